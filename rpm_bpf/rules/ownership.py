"""``bpfdir-unowned``: files in a BPF directory whose package neither owns it nor requires its owner.

One predicate for packaged files (rules/package.py) and repository file lists
(flows/inventory.py): the BPF directory itself may be owned, required by path
or through one of the policy's ``[bpfdir] owner-provides``; a subdirectory
below it must be owned by the package that puts files there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

RULE = "bpfdir-unowned"


def unowned_directories(
    files: Iterable[str],
    roots: tuple[str, ...],
    owned: set[str],
    requires: set[str],
    owner_provides: tuple[str, ...],
) -> dict[str, int]:
    """Directory -> how many of ``files`` (plain files, no directories) are below it without an owner."""
    owner_required = bool(requires & set(owner_provides))
    unowned: dict[str, int] = {}
    for path in files:
        root = next((r for r in roots if path.startswith(r + "/")), None)
        if root is None:
            continue
        if root not in owned and root not in requires and not owner_required:
            unowned[root] = unowned.get(root, 0) + 1
        parent = os.path.dirname(path)
        while parent != root:
            if parent not in owned:
                unowned[parent] = unowned.get(parent, 0) + 1
            parent = os.path.dirname(parent)
    return unowned


def detail(count: int) -> str:
    return f"{count} {'file' if count == 1 else 'files'} below it"
