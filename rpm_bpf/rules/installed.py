"""An installed BPF object against its packaged entry: ``bpf-object-missing``, ``-modified``, ``-attrs-changed``,
and files in a BPF directory that no package owns (``bpf-object-unowned``).

Each predicate takes what the flow observed below the root (flows/verify.py
reads it safely and lazily: no digest is computed when the size already
differs); the mode and owner rules of packaged objects are in attributes.py.
"""

from __future__ import annotations

import stat

from rpm_bpf.findings import Finding
from rpm_bpf.model import FileEntry, PackageRef
from rpm_bpf.sources.rootfs import describe_mode

MISSING = "bpf-object-missing"
MODIFIED = "bpf-object-modified"
ATTRS_CHANGED = "bpf-object-attrs-changed"
UNOWNED = "bpf-object-unowned"

# What reinstalling the package restores.
REPAIRABLE = frozenset({MISSING, MODIFIED, ATTRS_CHANGED})


def missing(ref: PackageRef, entry: FileEntry) -> Finding:
    return Finding.of(MISSING, ref, entry.path)


def type_changed(ref: PackageRef, entry: FileEntry, mode: int, link_target: str | None) -> Finding | None:
    """A file replaced by another kind of file (a link, a directory, a FIFO...)."""
    if stat.S_IFMT(entry.mode) == stat.S_IFMT(mode):
        return None
    detail = f"{describe_mode(entry.mode)} was replaced by {describe_mode(mode)}"
    if link_target is not None:
        detail += f" to {link_target}"
    return Finding.of(MODIFIED, ref, entry.path, detail)


def link_changed(ref: PackageRef, entry: FileEntry, target: str) -> Finding | None:
    if target == entry.linkto:
        return None
    return Finding.of(MODIFIED, ref, entry.path, f"link points to {target}, not {entry.linkto}")


def size_changed(ref: PackageRef, entry: FileEntry, size: int) -> Finding | None:
    if size == entry.size:
        return None
    return Finding.of(MODIFIED, ref, entry.path, f"size {size} (packaged {entry.size})")


def digest_changed(ref: PackageRef, entry: FileEntry, digest: str | None, algo: str, size: int) -> Finding | None:
    """``digest``: of the bytes on disk, None when they were not hashed (they changed size while opened)."""
    if digest == entry.digest:
        return None
    grown = "" if size == entry.size else f", size {size} (packaged {entry.size})"
    return Finding.of(MODIFIED, ref, entry.path, f"{algo} digest differs{grown}")


def attrs_changed(ref: PackageRef, entry: FileEntry, mode: int, user: str, group: str) -> Finding | None:
    changes = []
    if stat.S_IMODE(mode) != stat.S_IMODE(entry.mode):
        changes.append(f"mode {stat.S_IMODE(mode):04o} (packaged {stat.S_IMODE(entry.mode):04o})")
    if user != entry.user:
        changes.append(f"owner {user} (packaged {entry.user})")
    if group != entry.group:
        changes.append(f"group {group} (packaged {entry.group})")
    return Finding.of(ATTRS_CHANGED, ref, entry.path, ", ".join(changes)) if changes else None


def unowned_file(path: str) -> Finding:
    return Finding.of(UNOWNED, None, path, "written at run time or copied by hand")


def not_a_directory(path: str, mode: int) -> Finding:
    """Something else where the BPF directory belongs, and no package owns it."""
    return Finding.of(UNOWNED, None, path, f"{describe_mode(mode)} where the BPF directory belongs")
