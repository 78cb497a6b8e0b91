"""``bpf-name-conflict``: one object name claimed by two packages that can be installed together.

The one predicate, whatever says that a package ships a name: a packaged
file under a BPF directory (RPM files, the rpm database), a file list in
repository metadata, or a ``bpf(NAME)`` provide. Flows turn what they read
into ``Claim`` records; this module decides which claims clash and words the
finding.
"""

from __future__ import annotations

from collections import defaultdict, namedtuple
from collections.abc import Callable, Iterable

from rpm_bpf.findings import Finding
from rpm_bpf.model import PackageRef

RULE = "bpf-name-conflict"


class Claim(namedtuple("Claim", ("package", "name", "path", "digest", "where"), defaults=(None, None, ""))):
    """A package says it ships ``name`` (relative to the BPF directory; the path itself outside it).

    ``path``: the file, None when only a provide says so; ``digest``: its
    packaged digest when known; ``where``: how other packages' findings
    show this claim ("": its path, when that differs from theirs).
    """

    __slots__ = ()
    package: PackageRef
    name: str
    path: str | None
    digest: str | None
    where: str


def can_clash(a: Claim, b: Claim) -> bool:
    """Two claims of one name that cannot both be installed as they are."""
    pa, pb = a.package, b.package
    if pa.name != pb.name:
        return True  # different packages that could be installed together
    # One package name: versions replace each other, multilib builds of one
    # source coexist and are fine when the bytes agree.
    return pa.evr == pb.evr and pa.arch != pb.arch and a.path == b.path and a.digest != b.digest


Selector = Callable[[Claim], bool]


def find_clashes(
    claims: Iterable[Claim], reported: Selector | None = None, counted: Selector | None = None
) -> list[tuple[Claim, tuple[Claim, ...]]]:
    """Each claim ``reported`` selects (default: all), with the claims it clashes with among those ``counted``
    selects (default: all). The same package, path and ``where`` claimed twice counts once."""
    by_name: dict[str, dict[tuple[str, str | None, str], Claim]] = defaultdict(dict)
    for claim in claims:
        by_name[claim.name].setdefault((claim.package.nevra, claim.path, claim.where), claim)
    found = []
    for _, group in sorted(by_name.items()):
        members = list(group.values())
        if len(members) < 2:
            continue
        for claim in members:
            if reported is not None and not reported(claim):
                continue
            others = tuple(
                o for o in members if o is not claim and (counted is None or counted(o)) and can_clash(claim, o)
            )
            if others:
                found.append((claim, others))
    return found


def _shown(other: Claim, viewer: Claim) -> str:
    nevra = other.package.nevra
    if other.where:
        return f"{nevra} ({other.where})"
    if other.path is not None and other.path != viewer.path:
        return f"{nevra} ({other.path})"
    return nevra


def conflict_finding(
    claim: Claim,
    others: Iterable[Claim],
    subject: str | None = None,
    verb: str = "shipped",
    note: str = "",
    rule: str = RULE,
) -> Finding:
    """The finding on ``claim``'s package: "NAME is also shipped by OTHER (where), ..." plus ``note``.

    ``rule``: the clash rule (this module's, or rules/appdirs.py's for application directories).
    """
    others = list(others)
    where = ", ".join(dict.fromkeys(_shown(o, claim) for o in others))
    detail = f"{subject or claim.name} is also {verb} by {where}" + (f" ({note})" if note else "")
    return Finding.of(rule, claim.package, claim.path, detail, related=tuple(sorted({o.package.nevra for o in others})))


def conflicts(
    claims: Iterable[Claim],
    reported: Selector | None = None,
    counted: Selector | None = None,
    subject: Callable[[Claim], str] | None = None,
    verb: str = "shipped",
    note: str = "",
    rule: str = RULE,
) -> list[Finding]:
    """``find_clashes`` worded as findings, one per reported claim."""
    return [
        conflict_finding(claim, others, subject(claim) if subject else None, verb, note, rule)
        for claim, others in find_clashes(claims, reported, counted)
    ]
