"""``bpf-program-unpackaged``: a loaded BPF program that no installed package ships."""

from __future__ import annotations

from rpm_bpf.findings import Finding
from rpm_bpf.sources.loaded import Loaded

RULE = "bpf-program-unpackaged"

Loaders = tuple[tuple[int, str, str | None], ...]  # (pid, executable, its package's NEVRA or None)


def unpackaged_finding(prog: Loaded, loaders: Loaders) -> Finding:
    """The finding for ``prog``, which nothing packaged matches; ``loaders``: the processes holding it."""
    where = [f"loaded by {exe or '?'} (pid {pid}{', package ' + pkg if pkg else ''})" for pid, exe, pkg in loaders]
    where += [f"pinned at {path}" for path in prog.pinned]
    detail = f"program {prog.id} {prog.name or '(no name)'} ({prog.type}), tag {prog.tag}"
    return Finding.of(RULE, None, f"bpf-prog:{prog.id}", detail + ("; " + "; ".join(where) if where else ""))
