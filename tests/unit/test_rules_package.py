"""rules/package.py's ``check_package``: every per-package rule, on packages held in memory.

Each rule has a package that triggers it and a near miss that does not (the
same package with the one thing the rule is about put right); the details
of the findings follow. The packages come from tests/support/fakepkg.py and
their objects from tests/support/bpfelf.py: no rpmbuild, no clang.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from rpm_bpf.findings import Embedded
from rpm_bpf.rules import registry
from rpm_bpf.rules.package import PackageResult
from rpm_bpf.rules.registry import Severity
from tests.support.archives import ARCHIVE_CLASS, gnu_archive
from tests.support.bpfelf import GO_CLASS, bpf_object, host_elf
from tests.support.fakepkg import I686, FakeFile, FakePkg, bpf, directory, file, ghost, symlink, text

LIB64 = "/usr/lib64/bpf"
LIB = "/usr/lib/bpf"
OBJ = bpf_object()
OBJ_BE = bpf_object(big_endian=True)
ENGINE_RULES = Path(__file__).resolve().parents[2] / "rpm_bpf" / "rules"


def good(*extra: FakeFile, obj: FakeFile | None = None, **pkg) -> FakePkg:
    """A package that follows the convention (its own subdirectory, the owner required), plus ``extra`` files."""
    base = pkg.pop("base", LIB64)
    pkg.setdefault("requires", ["bpf-filesystem"])
    shipped = obj if obj is not None else bpf(f"{base}/tool/prog.o", OBJ)
    return FakePkg([directory(f"{base}/tool"), shipped, *extra], name=pkg.pop("name", "tool"), **pkg)


def obj_at(content: bytes = OBJ, path: str = f"{LIB64}/tool/prog.o", **kwargs) -> FakePkg:
    """``good()`` with its object replaced."""
    return good(obj=bpf(path, content, **kwargs))


def found(result: PackageResult) -> set[tuple[str, str | None]]:
    return FakePkg.rules(result)


def by_rule(result: PackageResult, rule: str):
    (finding,) = [f for f in result.findings if f.rule == rule]
    return finding


# rule -> (a check that triggers it, a near miss that does not)
Check = Callable[[], PackageResult]
CASES: dict[str, tuple[Check, Check]] = {
    "bpf-archive-member": (
        lambda: good(file("/usr/lib64/libtool.a", gnu_archive([("m.o", OBJ)]), fileclass=ARCHIVE_CLASS)).check(),
        lambda: good(file("/usr/lib64/libtool.a", gnu_archive([("m.txt", b"x")]), fileclass=ARCHIVE_CLASS)).check(),
    ),
    "bpf-object-outside-bpfdir": (
        lambda: good(bpf("/usr/share/tool/prog.o", OBJ)).check(),
        lambda: good(bpf(f"{LIB}/tool-data/prog.o", OBJ), directory(f"{LIB}/tool-data")).check(),
    ),
    "bpf-object-invalid": (
        lambda: obj_at(OBJ[: len(OBJ) // 2]).check(),
        lambda: obj_at(OBJ).check(),
    ),
    "bpf-object-writable": (
        lambda: obj_at(mode=0o664).check(),
        lambda: obj_at(mode=0o644).check(),
    ),
    "bpf-object-not-root-owned": (
        lambda: obj_at(user="tool").check(),
        lambda: obj_at(user="root").check(),
    ),
    "bpf-object-config": (
        lambda: obj_at(config=True).check(),
        lambda: obj_at(config=False).check(),
    ),
    "bpf-endianness-mismatch": (
        lambda: obj_at(OBJ_BE).check(),
        lambda: good(obj=bpf(f"{LIB64}/tool/prog.o", OBJ_BE), arch="s390x").check(),
    ),
    "bpf-object-executable": (
        lambda: obj_at(mode=0o755).check(),
        lambda: obj_at(mode=0o644).check(),
    ),
    "bpf-object-no-license": (
        lambda: obj_at(bpf_object(license=None)).check(),
        lambda: obj_at(bpf_object(license="GPL")).check(),
    ),
    "bpf-object-no-btf": (
        lambda: obj_at(bpf_object(btf=False)).check(),
        lambda: obj_at(bpf_object(btf=True)).check(),
    ),
    "bpf-noarch-single-endian": (
        lambda: good(base=LIB, arch="noarch").check(),
        lambda: good(bpf(f"{LIB}/tool/prog.bpfeb.o", OBJ_BE), base=LIB, arch="noarch").check(),
    ),
    "bpfdir-non-bpf-file": (
        lambda: good(text(f"{LIB64}/tool/README")).check(),
        lambda: good(text("/usr/share/doc/tool/README")).check(),
    ),
    "bpfdir-ghost-file": (
        lambda: good(ghost(f"{LIB64}/tool/jit.o")).check(),
        lambda: good(ghost("/var/cache/bpf/tool/jit.o")).check(),
    ),
    "bpfdir-unowned": (
        lambda: FakePkg([bpf(f"{LIB64}/tool/prog.o", OBJ)]).check(),
        lambda: good().check(),
    ),
    "bpf-object-embedded": (
        lambda: good(file("/usr/bin/tool", host_elf(OBJ), mode=0o755), embedded_signal="libbpf-dynamic").check(),
        lambda: good(file("/usr/bin/tool", host_elf(OBJ), mode=0o755), embedded_signal=None).check(),
    ),
    "bpf-object-no-programs": (
        lambda: obj_at(bpf_object((), text=True)).check(),
        lambda: obj_at(bpf_object(text=True)).check(),
    ),
    "bpf-object-exempt-location": (
        lambda: good(bpf("/usr/share/doc/tool/example.o", OBJ)).check(exempt=("/usr/share/doc/*",)),
        lambda: good(bpf("/usr/share/doc/tool/example.o", OBJ)).check(exempt=("/usr/share/tool/*",)),
    ),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_is_triggered(rule):
    trigger, _ = CASES[rule]
    result = trigger()
    assert rule in {r for r, _ in found(result)}, result.findings
    assert result.content_error is None


@pytest.mark.parametrize("rule", sorted(CASES))
def test_near_miss_does_not_trigger_it(rule):
    _, near_miss = CASES[rule]
    assert rule not in {r for r, _ in found(near_miss())}


def test_a_package_following_the_convention_has_no_finding():
    result = good().check()
    assert result.findings == []
    assert [(o.entry.path, o.relname, o.key) for o in result.objects] == [
        (f"{LIB64}/tool/prog.o", "tool/prog.o", "tool/prog.o")
    ]
    assert result.objects[0].info is not None and result.objects[0].info.license == "GPL"


def _rules_spelled_in(*modules: str) -> set[str]:
    ids = set(registry.registry())
    spelled = set()
    for name in modules:
        spelled |= set(re.findall(r"""["']([a-z0-9-]+)["']""", (ENGINE_RULES / name).read_text())) & ids
    return spelled


def test_every_per_package_rule_has_cases():
    """What check_package can report (rules/package.py and the rule modules it calls) has a case above."""
    per_package = _rules_spelled_in("package.py", "attributes.py", "placement.py", "ownership.py")
    assert len(per_package) >= 16, per_package  # the pattern found the ids: the comparison proves something
    assert per_package <= set(CASES)


# --- where objects belong -------------------------------------------------------------


def test_outside_bpfdir_says_where_it_belongs():
    result = good(bpf("/usr/share/tool/prog.o", OBJ)).check()
    finding = by_rule(result, "bpf-object-outside-bpfdir")
    assert (finding.path, finding.detail) == ("/usr/share/tool/prog.o", f"expected under {LIB64}")
    assert finding.severity == Severity.ERROR and finding.package == result.package.ref


def test_runtime_locations_hold_ghosts_only():
    shipped = good(bpf("/var/cache/bpf/tool/prog.o", OBJ)).check()
    assert by_rule(shipped, "bpf-object-outside-bpfdir").detail == (
        f"runtime locations may only hold %ghost entries; ship it in {LIB64}"
    )
    assert found(good(ghost("/run/tool/prog.o")).check()) == set()


def test_noarch_objects_belong_in_the_noarch_directory():
    wrong = good(arch="noarch").check()  # in lib64
    assert by_rule(wrong, "bpf-object-outside-bpfdir").detail == f"noarch packages ship BPF objects in {LIB}"
    right = good(bpf(f"{LIB}/tool/prog.bpfeb.o", OBJ_BE), directory(f"{LIB}/tool"), base=LIB, arch="noarch")
    assert found(right.check()) == set()


def test_arch_packages_may_use_both_directories_where_they_differ():
    both = good(directory(f"{LIB}/tool"), bpf(f"{LIB}/tool/other.o", OBJ))
    assert found(both.check()) == set()
    # Where the architecture's directory is the noarch one (i686), lib64 is outside.
    i686 = good(bpf(f"{LIB64}/tool/prog.o", OBJ), base=LIB, arch="i686")
    result = i686.check(dirs=I686)
    assert found(result) == {("bpf-object-outside-bpfdir", f"{LIB64}/tool/prog.o")}
    assert by_rule(result, "bpf-object-outside-bpfdir").detail == f"expected under {LIB}"


def test_exempt_location_is_judged_no_further():
    """An exempt BPF file (documentation, a test suite) is not a deployed program: no other rule applies."""
    pkg = good(bpf("/usr/share/doc/tool/example.o", bpf_object(license=None, btf=False), mode=0o666))
    result = pkg.check(exempt=("/usr/share/doc/*",))
    assert found(result) == {("bpf-object-exempt-location", "/usr/share/doc/tool/example.o")}
    assert by_rule(result, "bpf-object-exempt-location").detail == "policy [exempt] path /usr/share/doc/*"
    assert [o.entry.path for o in result.objects] == [f"{LIB64}/tool/prog.o"]  # the exempt one claims no name
    without = pkg.check()
    assert {r for r, _ in found(without)} == {
        "bpf-object-outside-bpfdir",
        "bpf-object-writable",
        "bpf-object-no-license",
        "bpf-object-no-btf",
    }


# --- attributes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"mode": 0o664}, {("bpf-object-writable", "mode 0664")}),
        ({"mode": 0o646}, {("bpf-object-writable", "mode 0646")}),
        ({"mode": 0o744}, {("bpf-object-executable", "mode 0744")}),
        ({"mode": 0o777}, {("bpf-object-writable", "mode 0777"), ("bpf-object-executable", "mode 0777")}),
        ({"user": "tool"}, {("bpf-object-not-root-owned", "tool:root")}),
        ({"group": "wheel"}, {("bpf-object-not-root-owned", "root:wheel")}),
        ({"config": True}, {("bpf-object-config", "")}),
        ({"mode": 0o444}, set()),
    ],
)
def test_attribute_findings_and_their_details(kwargs, expected):
    result = obj_at(**kwargs).check()
    assert {(f.rule, f.detail) for f in result.findings} == expected


def test_attributes_are_judged_from_the_header_alone():
    result = obj_at(mode=0o666, config=True).check(header_only=True)
    assert {r for r, _ in found(result)} == {"bpf-object-writable", "bpf-object-config"}
    assert result.objects[0].info is None  # nothing read


# --- the object's bytes ------------------------------------------------------------


@pytest.mark.parametrize(
    "content, detail",
    [
        (OBJ[: len(OBJ) // 2], "section header table"),
        (bpf_object(e_type=2), "ELF type ET_EXEC, libbpf loads ET_REL objects"),
        (OSError(errno.EIO, "Input/output error"), "content cannot be read: [Errno 5] Input/output error"),
    ],
    ids=["truncated", "not-relocatable", "unreadable"],
)
def test_invalid_objects_say_why(content, detail):
    result = good(obj=bpf(f"{LIB64}/tool/prog.o", content, fileclass="ELF 64-bit LSB relocatable, eBPF")).check()
    finding = by_rule(result, "bpf-object-invalid")
    assert detail in finding.detail and not finding.detail.startswith(f"{LIB64}/tool/prog.o:")
    assert finding.severity == Severity.ERROR


def test_invalid_object_is_still_placed_and_claimed():
    result = good(bpf("/opt/tool/broken.o", OBJ[:200])).check()
    assert {r for r, _ in found(result)} == {"bpf-object-invalid", "bpf-object-outside-bpfdir"}
    assert "/opt/tool/broken.o" in {o.entry.path for o in result.objects}


def test_byte_order_against_the_packages_architecture():
    little_in_big = good(arch="s390x").check()
    assert by_rule(little_in_big, "bpf-endianness-mismatch").detail == (
        "little-endian object in a big-endian s390x package"
    )
    big_in_little = obj_at(OBJ_BE).check()
    assert by_rule(big_in_little, "bpf-endianness-mismatch").detail == (
        "big-endian object in a little-endian x86_64 package"
    )


def test_license_and_btf_are_warnings():
    result = obj_at(bpf_object(license=None, btf=False)).check()
    assert {(f.rule, f.severity) for f in result.findings} == {
        ("bpf-object-no-license", Severity.WARNING),
        ("bpf-object-no-btf", Severity.WARNING),
    }


def test_noarch_package_with_one_byte_order():
    result = good(bpf(f"{LIB}/tool/second.o", OBJ), base=LIB, arch="noarch").check()
    findings = [f for f in result.findings if f.rule == "bpf-noarch-single-endian"]
    assert sorted(f.path for f in findings) == [f"{LIB}/tool/prog.o", f"{LIB}/tool/second.o"]
    assert {f.detail for f in findings} == {"loads only on little-endian kernels"}
    assert "bpf-endianness-mismatch" not in {r for r, _ in found(result)}  # no architecture to compare with
    big_only = good(obj=bpf(f"{LIB}/tool/prog.o", OBJ_BE), base=LIB, arch="noarch").check()
    assert by_rule(big_only, "bpf-noarch-single-endian").detail == "loads only on big-endian kernels"


def test_object_without_programs():
    sub_only = obj_at(bpf_object((), text=True)).check()
    finding = by_rule(sub_only, "bpf-object-no-programs")
    assert finding.detail == "no executable section with instructions but .text (sub-programs only)"
    assert finding.severity == Severity.INFO
    # Its name in the BPF directory still counts for conflicts.
    assert [o.relname for o in sub_only.objects] == ["tool/prog.o"]
    nothing = obj_at(bpf_object((), text=False)).check()
    assert by_rule(nothing, "bpf-object-no-programs").detail == "no executable section with instructions at all"


def test_object_without_programs_outside_the_bpfdir_is_not_misplaced():
    """A toolchain's crt*.o or a library of BPF functions elsewhere: no program, not a misplaced one."""
    result = good(bpf("/usr/lib/gcc/bpf-unknown-none/crt0.o", bpf_object((), text=True))).check()
    assert found(result) == {("bpf-object-no-programs", "/usr/lib/gcc/bpf-unknown-none/crt0.o")}
    assert [o.entry.path for o in result.objects] == [f"{LIB64}/tool/prog.o"]


def test_bpf_elf_is_recognised_by_its_bytes_when_magic_did_not_say():
    """Older libmagic, or no class recorded: an ELF in the BPF directory, or a .o anywhere, is read and sniffed."""
    unclassified = obj_at(fileclass="").check()
    assert unclassified.findings == [] and unclassified.objects[0].info is not None
    old_magic = obj_at(OBJ_BE, fileclass="ELF 64-bit MSB relocatable, unknown arch 0xf7 version 1").check()
    assert {r for r, _ in found(old_magic)} == {"bpf-endianness-mismatch"}
    elsewhere = good(bpf("/usr/share/tool/x.o", OBJ, fileclass="")).check()
    assert ("bpf-object-outside-bpfdir", "/usr/share/tool/x.o") in found(elsewhere)


def test_only_the_files_that_matter_are_read():
    pkg = good(
        text("/usr/share/doc/tool/README"),
        file("/usr/bin/tool", host_elf(), mode=0o755),
        text(f"{LIB64}/tool/notes.txt"),
    )
    pkg.check()
    assert pkg.reader.asked == {f"{LIB64}/tool/prog.o"}


def test_payload_that_cannot_be_read_is_a_content_error():
    pkg = FakePkg([directory(f"{LIB64}/tool"), bpf(f"{LIB64}/tool/prog.o", OBJ)], requires=["bpf-filesystem"])
    pkg.reader.broken = "corrupt payload (xz)"
    result = pkg.check()
    assert result.content_error == "corrupt payload (xz)"
    # Judged from the header: the object is still shipped (and claims its name), its bytes unknown.
    assert [o.relname for o in result.objects] == ["tool/prog.o"] and result.findings == []


# --- files in the BPF directory -------------------------------------------------------


@pytest.mark.parametrize(
    "extra, detail",
    [
        (text(f"{LIB64}/tool/README"), "ASCII text"),
        (file(f"{LIB64}/tool/helper.so", host_elf(), mode=0o755), "ELF 64-bit LSB shared object"),
        (file(f"{LIB64}/tool/blob", b"\0\1\2", fileclass=""), "not an ELF BPF object"),
    ],
    ids=["text", "host-elf", "unclassified"],
)
def test_non_bpf_files_in_the_bpfdir(extra, detail):
    finding = by_rule(good(extra).check(), "bpfdir-non-bpf-file")
    assert finding.path == extra.path and detail in finding.detail


def test_symlinks_and_directories_in_the_bpfdir_are_fine():
    pkg = good(symlink(f"{LIB64}/tool/current.o", "prog.o"), directory(f"{LIB64}/tool/sub"))
    assert found(pkg.check()) == set()


def test_ghosts_in_the_bpfdir():
    result = good(ghost(f"{LIB64}/tool/jit.o"), ghost(f"{LIB64}/tool/cache", is_dir=True)).check()
    assert found(result) == {("bpfdir-ghost-file", f"{LIB64}/tool/jit.o")}
    assert by_rule(result, "bpfdir-ghost-file").severity == Severity.ERROR


# --- ownership of the BPF directory ------------------------------------------------


def test_unowned_directories_with_counts():
    pkg = FakePkg([bpf(f"{LIB64}/tool/a.o", OBJ), bpf(f"{LIB64}/tool/b.o", OBJ), bpf(f"{LIB64}/top.o", OBJ)])
    result = pkg.check()
    unowned = {(f.path, f.detail) for f in result.findings if f.rule == "bpfdir-unowned"}
    assert unowned == {(LIB64, "3 files below it"), (f"{LIB64}/tool", "2 files below it")}


@pytest.mark.parametrize(
    "requires, owner_provides",
    [(["bpf-filesystem"], ("bpf-filesystem",)), ([LIB64], ()), (["my-bpf-dirs"], ("my-bpf-dirs", "other"))],
    ids=["owner-provide", "path", "policy-owner-provides"],
)
def test_bpfdir_owner_may_be_required(requires, owner_provides):
    pkg = FakePkg([directory(f"{LIB64}/tool"), bpf(f"{LIB64}/tool/prog.o", OBJ)], requires=requires)
    assert found(pkg.check(owner_provides=owner_provides)) == set()


def test_a_requirement_that_is_not_an_owner_does_not_count():
    pkg = FakePkg([directory(f"{LIB64}/tool"), bpf(f"{LIB64}/tool/prog.o", OBJ)], requires=["bpf-filesystem"])
    assert found(pkg.check(owner_provides=("my-bpf-dirs",))) == {("bpfdir-unowned", LIB64)}
    other_dir = FakePkg([directory(f"{LIB64}/tool"), bpf(f"{LIB64}/tool/prog.o", OBJ)], requires=[LIB])
    assert found(other_dir.check(owner_provides=())) == {("bpfdir-unowned", LIB64)}


def test_owning_the_bpfdir_itself_is_owning_it():
    pkg = FakePkg([directory(LIB64), directory(f"{LIB64}/tool"), bpf(f"{LIB64}/tool/prog.o", OBJ)])
    assert found(pkg.check()) == set()


# --- objects embedded in executables and libraries -------------------------------


def test_embedded_object_is_described():
    tool = host_elf(b"\0" * 40 + bpf_object((("xdp", "xdp_count"), ("tc", "tc_pass")), license="Dual MIT/GPL"))
    pkg = good(file("/usr/bin/tool", tool, mode=0o755), embedded_signal="libbpf-dynamic")
    finding = by_rule(pkg.check(), "bpf-object-embedded")
    assert finding.path == "/usr/bin/tool" and finding.severity == Severity.INFO
    assert isinstance(finding.embedded, Embedded)
    assert finding.embedded.offset == 64 + 40 and finding.embedded.signal == "libbpf-dynamic"
    assert finding.embedded.programs == (("xdp", "xdp_count"), ("tc", "tc_pass"))
    assert finding.embedded.license == "Dual MIT/GPL"
    assert finding.detail == (
        f"at offset 104: {finding.embedded.size} bytes, xdp/xdp_count, tc/tc_pass, license Dual MIT/GPL; "
        "found by libbpf-dynamic"
    )


def test_go_binaries_are_searched_without_a_header_signal():
    pkg = good(file("/usr/bin/agent", host_elf(OBJ), mode=0o755, fileclass=GO_CLASS))
    assert by_rule(pkg.check(), "bpf-object-embedded").embedded.signal == "go"


def test_file_signal_and_deep_search():
    pkg = good(file("/usr/bin/tool", host_elf(OBJ), mode=0o755))
    pkg.package.file_signals["/usr/bin/tool"] = "libbpf-static"
    assert by_rule(pkg.check(), "bpf-object-embedded").embedded.signal == "libbpf-static"
    deep = good(file("/usr/share/tool/blob.bin", host_elf(OBJ), fileclass="data"), deep=True)
    assert by_rule(deep.check(), "bpf-object-embedded").embedded.signal == "deep"


def test_embedded_search_needs_an_elf_file():
    not_elf = good(file("/usr/share/tool/blob", b"junk" + OBJ, fileclass="data"), embedded_signal="libbpf-dynamic")
    assert "bpf-object-embedded" not in {r for r, _ in found(not_elf.check())}
