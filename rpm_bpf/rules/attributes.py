"""A packaged object's attributes: ``bpf-object-writable``, ``-executable``, ``-not-root-owned``, ``-config``.

One home for each predicate, judged on what the header says a package ships
(rules/package.py) and on what is installed (flows/verify.py): an installed
file is judged only where it departs from a packaged one that was fine, so
that a package's own fault is reported once, by the package rules.
"""

from __future__ import annotations

import stat

from rpm_bpf.findings import Finding
from rpm_bpf.model import FileEntry, PackageRef

WRITABLE = "bpf-object-writable"
EXECUTABLE = "bpf-object-executable"
NOT_ROOT_OWNED = "bpf-object-not-root-owned"
CONFIG = "bpf-object-config"


def writable(mode: int) -> bool:
    """Anyone but its owner may rewrite it: group or others have write permission."""
    return bool(mode & 0o022)


def root_owned(user: str) -> bool:
    return user == "root"


def _mode(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"


def packaged(ref: PackageRef, entry: FileEntry) -> list[Finding]:
    """What the header says about a packaged object's attributes."""
    path = entry.path
    found = []
    if writable(entry.mode):
        found.append(Finding.of(WRITABLE, ref, path, f"mode {_mode(entry.mode)}"))
    if entry.mode & 0o111:
        found.append(Finding.of(EXECUTABLE, ref, path, f"mode {_mode(entry.mode)}"))
    if not root_owned(entry.user) or not root_owned(entry.group):
        found.append(Finding.of(NOT_ROOT_OWNED, ref, path, f"{entry.user}:{entry.group}"))
    if entry.is_config:
        found.append(Finding.of(CONFIG, ref, path))
    return found


def installed(ref: PackageRef, entry: FileEntry, mode: int, user: str) -> list[Finding]:
    """An installed regular file whose mode or owner broke the rules its packaged entry kept."""
    if not entry.is_regular:
        return []
    found = []
    if writable(mode) and not writable(entry.mode):
        # The packaged-object rules hold on disk too: anyone may now rewrite it.
        found.append(Finding.of(WRITABLE, ref, entry.path, f"installed file has mode {_mode(mode)}"))
    if not root_owned(user) and root_owned(entry.user):
        found.append(Finding.of(NOT_ROOT_OWNED, ref, entry.path, f"installed file is owned by {user}"))
    return found
