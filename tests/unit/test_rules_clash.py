"""rules/clash.py: ``bpf-name-conflict``, the one predicate over ``Claim`` records, and its wording."""

from __future__ import annotations

import pytest

from rpm_bpf.model import PackageRef
from rpm_bpf.rules import clash
from rpm_bpf.rules.clash import Claim, can_clash, conflict_finding, conflicts, find_clashes
from rpm_bpf.rules.registry import Severity
from tests.support.bpfelf import bpf_object
from tests.support.fakepkg import I686, X86_64, FakePkg, bpf, directory

LIB64, LIB = "/usr/lib64/bpf", "/usr/lib/bpf"


def ref(name: str, version: str = "1.0", arch: str = "x86_64", release: str = "1", epoch: int | None = None):
    return PackageRef(name, epoch, version, release, arch, f"{name}-{version}.{arch}.rpm")


def claim(pkg: PackageRef, name: str = "tool/prog.o", path: str | None = f"{LIB64}/tool/prog.o", digest="aa", where=""):
    return Claim(pkg, name, path, digest, where)


A, B = ref("alpha"), ref("beta")


def test_different_packages_clash():
    assert can_clash(claim(A), claim(B))
    assert can_clash(claim(A, path=f"{LIB64}/tool/prog.o"), claim(B, path=f"{LIB}/tool/prog.o"))
    assert can_clash(claim(A), claim(B, path=None, digest=None))  # a bpf(NAME) provide


def test_versions_of_one_package_replace_each_other():
    assert not can_clash(claim(ref("alpha", "1.0")), claim(ref("alpha", "2.0"), digest="bb"))
    assert not can_clash(claim(ref("alpha", release="1")), claim(ref("alpha", release="2"), digest="bb"))
    assert not can_clash(claim(ref("alpha")), claim(ref("alpha", epoch=1), digest="bb"))


def test_multilib_builds_coexist_when_the_bytes_agree():
    x86_64, i686 = ref("alpha", arch="x86_64"), ref("alpha", arch="i686")
    shared = f"{LIB}/tool/prog.o"
    assert not can_clash(claim(x86_64, path=shared, digest="aa"), claim(i686, path=shared, digest="aa"))
    assert can_clash(claim(x86_64, path=shared, digest="aa"), claim(i686, path=shared, digest="bb"))
    # Each in its own architecture's directory: two files, no conflict.
    assert not can_clash(claim(x86_64, path=f"{LIB64}/tool/prog.o"), claim(i686, path=shared, digest="bb"))


def test_one_build_seen_twice_is_no_clash():
    assert not can_clash(claim(A, digest="aa"), claim(A, digest="bb"))  # same NEVRA: same package


def test_every_claim_of_a_clash_is_reported_with_its_others():
    c = claim(ref("gamma"))
    found = find_clashes([claim(A), claim(B), c, claim(ref("delta"), name="other.o")])
    assert [(mine.package.name, [o.package.name for o in others]) for mine, others in found] == [
        ("alpha", ["beta", "gamma"]),
        ("beta", ["alpha", "gamma"]),
        ("gamma", ["alpha", "beta"]),
    ]


def test_the_same_package_and_path_counts_once():
    found = find_clashes([claim(A), claim(A), claim(B)])
    assert [(mine.package.name, len(others)) for mine, others in found] == [("alpha", 1), ("beta", 1)]
    assert find_clashes([claim(A), claim(A, digest="bb")]) == []


def test_names_are_reported_in_order():
    found = find_clashes([claim(A, "z.o"), claim(B, "z.o"), claim(A, "a.o"), claim(B, "a.o")])
    assert [mine.name for mine, _ in found] == ["a.o", "a.o", "z.o", "z.o"]


def test_reported_selects_whose_findings_are_made():
    """A transaction reports its incoming packages only; the installed ones still count as the others."""
    incoming, installed = ref("incoming"), ref("installed")
    found = find_clashes([claim(incoming), claim(installed)], reported=lambda c: c.package == incoming)
    assert [(mine.package, [o.package for o in others]) for mine, others in found] == [(incoming, [installed])]


def test_counted_selects_who_can_be_the_other():
    """The gate does not count a repository package that the new build replaces (obsoletes)."""
    new, replaced, kept = ref("new-tool"), ref("old-tool"), ref("third")
    claims = [claim(new), claim(replaced), claim(kept)]
    found = find_clashes(claims, reported=lambda c: c.package == new, counted=lambda c: c.package != replaced)
    assert [(mine.package, [o.package for o in others]) for mine, others in found] == [(new, [kept])]
    assert find_clashes(claims[:2], reported=lambda c: c.package == new, counted=lambda c: c.package != replaced) == []


def test_finding_wording():
    mine = claim(A)
    finding = conflict_finding(mine, [claim(B), claim(ref("gamma"), path=f"{LIB}/tool/prog.o")])
    assert finding.rule == clash.RULE == "bpf-name-conflict" and finding.severity == Severity.ERROR
    assert finding.package == A and finding.path == f"{LIB64}/tool/prog.o"
    assert finding.detail == (
        f"tool/prog.o is also shipped by beta-1.0-1.x86_64, gamma-1.0-1.x86_64 ({LIB}/tool/prog.o)"
    )
    assert finding.related == ("beta-1.0-1.x86_64", "gamma-1.0-1.x86_64")


def test_finding_wording_for_provides_and_repositories():
    mine = claim(A, path=None, digest=None)
    others = [
        claim(B, path=f"{LIB64}/tool/prog.o", where=f"{LIB64}/tool/prog.o in https://repo/"),
        claim(B, path=f"{LIB}/tool/prog.o", where=f"{LIB64}/tool/prog.o in https://repo/"),
    ]
    finding = conflict_finding(mine, others, "bpf(tool/prog.o)", verb="provided", note="repository metadata")
    assert finding.path is None
    # the same package shown once for the same place; related names each package once
    assert finding.detail == (
        f"bpf(tool/prog.o) is also provided by beta-1.0-1.x86_64 ({LIB64}/tool/prog.o in https://repo/) "
        "(repository metadata)"
    )
    assert finding.related == ("beta-1.0-1.x86_64",)


def test_conflicts_words_one_finding_per_reported_claim():
    findings = conflicts([claim(A), claim(B)], reported=lambda c: c.package == B, subject=lambda c: f"<{c.name}>")
    assert [(f.package, f.detail) for f in findings] == [(B, "<tool/prog.o> is also shipped by alpha-1.0-1.x86_64")]
    assert conflicts([claim(A), claim(ref("alpha", "2.0"))]) == []


# --- claims made by check_package ------------------------------------------------------


def _shipping(name: str, path: str, content: bytes, arch: str = "x86_64", version: str = "1.0") -> FakePkg:
    parent = path.rsplit("/", 1)[0]
    return FakePkg(
        [directory(parent), bpf(path, content)], name=name, arch=arch, version=version, requires=["bpf-filesystem"]
    )


def _claims(*pkgs: FakePkg, dirs=None):
    out = []
    for pkg in pkgs:
        result = pkg.check(dirs=dirs.get(pkg.ref.arch) if dirs else None)
        out += [obj.claim for obj in result.objects]
    return out


def test_packages_shipping_one_name_in_either_bpfdir_conflict():
    one = _shipping("one", f"{LIB64}/tool/prog.o", bpf_object())
    two = _shipping("two", f"{LIB}/tool/prog.o", bpf_object())
    claims = _claims(one, two)
    assert {(c.name, c.path) for c in claims} == {
        ("tool/prog.o", f"{LIB64}/tool/prog.o"),
        ("tool/prog.o", f"{LIB}/tool/prog.o"),
    }
    findings = conflicts(claims)
    assert sorted((f.package.name, f.related) for f in findings) == [
        ("one", ("two-1.0-1.x86_64",)),
        ("two", ("one-1.0-1.x86_64",)),
    ]
    assert {f.detail for f in findings} == {
        f"tool/prog.o is also shipped by two-1.0-1.x86_64 ({LIB}/tool/prog.o)",
        f"tool/prog.o is also shipped by one-1.0-1.x86_64 ({LIB64}/tool/prog.o)",
    }


def test_an_upgrade_is_no_conflict():
    assert (
        conflicts(
            _claims(
                _shipping("one", f"{LIB64}/t.o", bpf_object()),
                _shipping("one", f"{LIB64}/t.o", bpf_object(btf=False), version="2.0"),
            )
        )
        == []
    )


@pytest.mark.parametrize("same_bytes, clashes", [(True, False), (False, True)])
def test_multilib_pair_in_the_shared_directory(same_bytes, clashes):
    """x86_64 and i686 builds of one version both ship /usr/lib/bpf/tool/prog.o: fine only if identical."""
    i686_obj = bpf_object() if same_bytes else bpf_object(license="Dual BSD/GPL")
    x86_64 = _shipping("tool", f"{LIB}/tool/prog.o", bpf_object())
    i686 = _shipping("tool", f"{LIB}/tool/prog.o", i686_obj, arch="i686")
    findings = conflicts(_claims(x86_64, i686, dirs={"x86_64": X86_64, "i686": I686}))
    assert sorted(f.package.arch for f in findings) == (["i686", "x86_64"] if clashes else [])
    if clashes:
        assert {f.detail for f in findings} == {
            "tool/prog.o is also shipped by tool-1.0-1.i686",
            "tool/prog.o is also shipped by tool-1.0-1.x86_64",
        }


def test_multilib_pair_each_in_its_own_directory_is_fine():
    x86_64 = _shipping("tool", f"{LIB64}/tool/prog.o", bpf_object())
    i686 = _shipping("tool", f"{LIB}/tool/prog.o", bpf_object(license="MIT"), arch="i686")
    assert conflicts(_claims(x86_64, i686, dirs={"x86_64": X86_64, "i686": I686})) == []
