"""Where a BPF object may be: ``bpf-object-outside-bpfdir`` and ``bpf-object-exempt-location``.

One home for both, whatever the input: packaged files (rules/package.py) and
installed ones (flows/verify.py) are judged by these functions.
"""

from __future__ import annotations

from rpm_bpf.findings import Finding
from rpm_bpf.model import FileEntry, Package
from rpm_bpf.sources.bpfdirs import BpfDirs, under

# Where applications put objects they build at run time: %ghost only.
RUNTIME_DIRS = ("/var/cache/bpf", "/run")


def exempt_finding(pkg: Package, path: str, exempt: tuple[str, ...]) -> Finding | None:
    """``bpf-object-exempt-location`` when ``path`` matches one of the policy's ``exempt`` globs."""
    import fnmatch

    for pattern in exempt:
        if fnmatch.fnmatchcase(path, pattern):
            return Finding.of("bpf-object-exempt-location", pkg.ref, path, f"policy [exempt] path {pattern}")
    return None


def location_finding(pkg: Package, entry: FileEntry, dirs: BpfDirs) -> Finding | None:
    """``bpf-object-outside-bpfdir`` for a BPF object, or None where it belongs.

    Shared by package checks and the verification of installed systems.
    """
    allowed = dirs.allowed(pkg.is_noarch)
    path = entry.path
    if any(under(path, d) for d in allowed):
        return None
    target = allowed[0]
    if any(under(path, d) for d in RUNTIME_DIRS):
        detail = f"runtime locations may only hold %ghost entries; ship it in {target}"
    elif pkg.is_noarch and any(under(path, r) for r in dirs.roots):
        detail = f"noarch packages ship BPF objects in {target}"
    else:
        detail = f"expected under {target}"
    return Finding.of("bpf-object-outside-bpfdir", pkg.ref, path, detail)
