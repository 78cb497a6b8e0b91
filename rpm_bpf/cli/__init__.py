"""The ``rpm-bpf`` command: one module per command, shared options in ``options``; ``main`` runs it.

Nothing here judges anything: each command parses its arguments, calls one
flow (rpm_bpf/flows/) and hands the result to a renderer (rpm_bpf/report/).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """``rpm-bpf`` itself (the console script's entry point, ``rpm_bpf.cli:main``)."""
    from rpm_bpf.cli.main import main as run

    return run(argv)
