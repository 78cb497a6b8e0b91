"""``bpf-name-conflict``: the same object name shipped by two packages.

Used by ``rpm-bpf scan`` (the packages given), the DNF plugin (incoming
against installed) and repository gating (a new build against a repo).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from .checks import ShippedObject
from .findings import Finding


def _clash(a: ShippedObject, b: ShippedObject) -> bool:
    pa, pb = a.package, b.package
    if pa.ref.name != pb.ref.name:
        # Different packages that could be installed together.
        return True
    # One package name: versions replace each other, multilib builds of one
    # source coexist and are fine when the bytes agree.
    same_evr = (pa.ref.epoch, pa.ref.version, pa.ref.release) == (pb.ref.epoch, pb.ref.version, pb.ref.release)
    return same_evr and pa.ref.arch != pb.ref.arch and a.entry.path == b.entry.path and a.entry.digest != b.entry.digest


def find_conflicts(objects: Iterable[ShippedObject], only_for: set[str] | None = None) -> list[Finding]:
    """Findings for every object whose name another package also ships.

    ``only_for``: NEVRAs whose side of a conflict is reported (the DNF plugin
    reports the incoming packages, not the installed ones).
    """
    by_key: dict[str, dict[tuple[str, str], ShippedObject]] = defaultdict(dict)
    for obj in objects:
        # The same package given twice (or listed twice) counts once.
        by_key[obj.key].setdefault((obj.package.ref.nevra, obj.entry.path), obj)
    findings = []
    for key, group in sorted(by_key.items()):
        members = list(group.values())
        if len(members) < 2:
            continue
        for obj in members:
            if only_for is not None and obj.package.ref.nevra not in only_for:
                continue
            others = [o for o in members if o is not obj and _clash(obj, o)]
            if not others:
                continue
            names = tuple(sorted({o.package.ref.nevra for o in others}))
            where = ", ".join(
                f"{o.package.ref.nevra} ({o.entry.path})" if o.entry.path != obj.entry.path else o.package.ref.nevra
                for o in others
            )
            findings.append(
                Finding.of(
                    "bpf-name-conflict",
                    obj.package.ref,
                    obj.entry.path,
                    f"{key!s} is also shipped by {where}",
                    related=names,
                )
            )
    return findings
