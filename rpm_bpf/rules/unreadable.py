"""``bpf-package-unreadable``: a package that cannot be read is a finding, never a package let through.

Where a host asks whether to accept packages (a transaction, rpmlint), an
input that cannot be read or checked fails closed: nothing can be said about
its BPF objects, so it is refused at error level.
"""

from __future__ import annotations

from rpm_bpf.findings import Finding

RULE = "bpf-package-unreadable"


def unreadable(path: str | None, reason: str) -> Finding:
    """``path``: the package file when known; ``reason`` names what could not be read and why."""
    return Finding.of(RULE, None, path, reason)
