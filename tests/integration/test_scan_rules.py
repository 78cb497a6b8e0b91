"""Every per-package and cross-package rule, firing and not firing, on RPMs built by rpmbuild."""

from __future__ import annotations

import pytest

from rpm_bpf.policy import Policy
from rpm_bpf.samples import PkgFile, PkgSpec
from rpm_bpf.scan import scan
from tests.conftest import good_package

pytestmark = pytest.mark.integration


def findings_of(*paths) -> set[tuple[str, str, str]]:
    result = scan([str(p) for p in paths], Policy.load(system=None))
    assert result.errors == []
    return {(f.package.name, f.rule, f.path) for f in result.findings}


def rules_of(*paths) -> set[str]:
    return {rule for _, rule, _ in findings_of(*paths)}


def test_good_package_has_no_finding(rpms, objects, bpfdir):
    assert findings_of(rpms.build(good_package(objects, bpfdir))) == set()


def test_object_outside_bpfdir(rpms, objects, bpfdir):
    bad = rpms.build(PkgSpec("misplaced", files=[PkgFile("/usr/share/misplaced/prog.o", objects.full)]))
    assert findings_of(bad) == {("misplaced", "bpf-object-outside-bpfdir", "/usr/share/misplaced/prog.o")}


def test_runtime_locations_hold_ghosts_not_objects(rpms, objects):
    ghost = rpms.build(PkgSpec("runtime-ghost", files=[
        PkgFile("/var/cache/bpf/app", directory=True, mode=0o755),
        PkgFile("/var/cache/bpf/app/prog.o", ghost=True)]))
    shipped = rpms.build(PkgSpec("runtime-shipped", files=[PkgFile("/var/cache/bpf/app/prog.o", objects.full)]))
    assert findings_of(ghost) == set()
    result = scan([str(shipped)], Policy.load(system=None))
    (finding,) = result.findings
    assert finding.rule == "bpf-object-outside-bpfdir" and "%ghost" in finding.detail


def test_ghost_in_bpfdir(rpms, bpfdir):
    pkg = rpms.build(PkgSpec("ghosty", requires=["bpf-filesystem"],
                             files=[PkgFile(f"{bpfdir}/ghosty.o", ghost=True)]))
    assert findings_of(pkg) == {("ghosty", "bpfdir-ghost-file", f"{bpfdir}/ghosty.o")}


@pytest.mark.parametrize("mode,expected", [
    (0o644, set()),
    (0o664, {"bpf-object-writable"}),
    (0o646, {"bpf-object-writable"}),
    (0o755, {"bpf-object-executable"}),
    (0o775, {"bpf-object-writable", "bpf-object-executable"}),
])
def test_modes(rpms, objects, bpfdir, mode, expected):
    pkg = rpms.build(PkgSpec(f"mode{mode:o}", requires=["bpf-filesystem"],
                             files=[PkgFile(f"{bpfdir}/mode{mode:o}.o", objects.full, mode=mode)]))
    assert rules_of(pkg) == expected


def test_owner(rpms, objects, bpfdir):
    pkg = rpms.build(PkgSpec("owned-by-nobody", requires=["bpf-filesystem"], files=[
        PkgFile(f"{bpfdir}/nobody.o", objects.full, user="nobody", group="nogroup")]))
    assert findings_of(pkg) == {("owned-by-nobody", "bpf-object-not-root-owned", f"{bpfdir}/nobody.o")}


def test_config(rpms, objects, bpfdir):
    pkg = rpms.build(PkgSpec("configured", requires=["bpf-filesystem"], files=[
        PkgFile(f"{bpfdir}/configured.o", objects.full, config=True)]))
    assert rules_of(pkg) == {"bpf-object-config"}


def test_license_and_btf(rpms, objects, bpfdir):
    no_btf = rpms.build(PkgSpec("no-btf", requires=["bpf-filesystem"],
                                files=[PkgFile(f"{bpfdir}/no-btf.o", objects.no_btf)]))
    bare = rpms.build(PkgSpec("bare", requires=["bpf-filesystem"],
                              files=[PkgFile(f"{bpfdir}/bare.o", objects.no_license)]))
    assert rules_of(no_btf) == {"bpf-object-no-btf"}
    assert rules_of(bare) == {"bpf-object-no-btf", "bpf-object-no-license"}


def test_endianness_against_package_arch(rpms, objects, bpfdir):
    big_in_x86 = rpms.build(PkgSpec("big-in-x86", requires=["bpf-filesystem"],
                                    files=[PkgFile(f"{bpfdir}/big.o", objects.full_eb)]))
    little_in_x86 = rpms.build(PkgSpec("little-in-x86", requires=["bpf-filesystem"],
                                       files=[PkgFile(f"{bpfdir}/little.o", objects.full_el)]))
    assert rules_of(big_in_x86) == {"bpf-endianness-mismatch"}
    assert rules_of(little_in_x86) == set()
    # s390x is big-endian: rpm's macros give /usr/lib64 there too.
    big_in_s390x = rpms.build(PkgSpec("big-in-s390x", requires=["bpf-filesystem"],
                                      files=[PkgFile("/usr/lib64/bpf/big.o", objects.full_eb)]), target="s390x")
    little_in_s390x = rpms.build(PkgSpec("little-in-s390x", requires=["bpf-filesystem"],
                                         files=[PkgFile("/usr/lib64/bpf/little.o", objects.full)]), target="s390x")
    assert "s390x" in big_in_s390x.name
    assert rules_of(big_in_s390x) == set()
    assert rules_of(little_in_s390x) == {"bpf-endianness-mismatch"}


def test_bpfdir_follows_rpm_macros_for_the_arch(rpms, objects):
    # i686: %{_libdir} is /usr/lib, so /usr/lib64/bpf is the wrong place there.
    i686 = rpms.build(PkgSpec("lib64-on-i686", requires=["bpf-filesystem"],
                              files=[PkgFile("/usr/lib64/bpf/x.o", objects.full)]), target="i686")
    ok = rpms.build(PkgSpec("lib-on-i686", requires=["bpf-filesystem"],
                            files=[PkgFile("/usr/lib/bpf/x.o", objects.full)]), target="i686")
    assert rules_of(i686) == {"bpf-object-outside-bpfdir"}
    assert rules_of(ok) == set()


def test_noarch_packages(rpms, objects, bpfdir):
    single = rpms.build(PkgSpec("noarch-el", noarch=True, requires=["bpf-filesystem"],
                                files=[PkgFile("/usr/lib/bpf/prog.bpfel.o", objects.full_el)]))
    both = rpms.build(PkgSpec("noarch-both", noarch=True, requires=["bpf-filesystem"], files=[
        PkgFile("/usr/lib/bpf/prog.bpfel.o", objects.full_el),
        PkgFile("/usr/lib/bpf/prog.bpfeb.o", objects.full_eb)]))
    in_libdir = rpms.build(PkgSpec("noarch-lib64", noarch=True, requires=["bpf-filesystem"],
                                   files=[PkgFile(f"{bpfdir}/prog.bpfel.o", objects.full_el),
                                          PkgFile(f"{bpfdir}/prog.bpfeb.o", objects.full_eb)]))
    assert findings_of(single) == {("noarch-el", "bpf-noarch-single-endian", "/usr/lib/bpf/prog.bpfel.o")}
    assert findings_of(both) == set()
    assert rules_of(in_libdir) == {"bpf-object-outside-bpfdir"}


def test_non_bpf_file_in_bpfdir(rpms, objects, bpfdir):
    pkg = rpms.build(PkgSpec("with-readme", requires=["bpf-filesystem"], files=[
        PkgFile(f"{bpfdir}/prog.o", objects.full), PkgFile(f"{bpfdir}/README", text="notes\n")]))
    assert findings_of(pkg) == {("with-readme", "bpfdir-non-bpf-file", f"{bpfdir}/README")}


def test_unowned_bpfdir(rpms, objects, bpfdir):
    # Built as without the rpm-bpf macros, whose generator would add Requires: bpf-filesystem.
    no_requires = rpms.build(PkgSpec("no-owner", files=[PkgFile(f"{bpfdir}/no-owner.o", objects.full)]),
                             defines={"__bpf_requires": "%{nil}"})
    owns_root = rpms.build(PkgSpec("owns-root", files=[
        PkgFile(bpfdir, directory=True, mode=0o755), PkgFile(f"{bpfdir}/owns-root.o", objects.full)]))
    requires_path = rpms.build(PkgSpec("requires-path", requires=[bpfdir],
                                       files=[PkgFile(f"{bpfdir}/requires-path.o", objects.full)]))
    subdir_unowned = rpms.build(PkgSpec("subdir-unowned", requires=["bpf-filesystem"],
                                        files=[PkgFile(f"{bpfdir}/sub/x.o", objects.full)]))
    assert findings_of(no_requires) == {("no-owner", "bpfdir-unowned", bpfdir)}
    assert findings_of(owns_root) == set()
    assert findings_of(requires_path) == set()
    assert findings_of(subdir_unowned) == {("subdir-unowned", "bpfdir-unowned", f"{bpfdir}/sub")}


def test_invalid_object_in_bpfdir(rpms, objects, bpfdir, tmp_path):
    data = objects.full.read_bytes()
    truncated = tmp_path / "truncated.o"
    truncated.write_bytes(data[: len(data) // 2])  # libmagic still calls it eBPF
    pkg = rpms.build(PkgSpec("truncated-object", requires=["bpf-filesystem"],
                             files=[PkgFile(f"{bpfdir}/truncated.o", truncated)]))
    result = scan([str(pkg)], Policy.load(system=None))
    (finding,) = result.findings
    assert finding.rule == "bpf-object-invalid" and "runs past the end" in finding.detail


def test_embedded_object_is_information(rpms, objects):
    pkg = rpms.build(PkgSpec("skeleton-loader", files=[PkgFile("/usr/bin/skeleton-loader", objects.loader,
                                                               mode=0o755)]))
    result = scan([str(pkg)], Policy.load(system=None))
    (finding,) = result.findings
    assert finding.rule == "bpf-object-embedded" and finding.severity.label == "info"
    assert "xdp/xdp_count" in finding.detail


def test_name_conflict_between_packages(rpms, objects, bpfdir):
    a = rpms.build(good_package(objects, bpfdir, name="shared"))
    b = rpms.build(PkgSpec("other-source", requires=["bpf-filesystem"], files=[
        PkgFile(f"{bpfdir}/shared", directory=True, mode=0o755),
        PkgFile(f"{bpfdir}/shared/counter.bpf.o", objects.full)]))
    assert findings_of(a, b) == {
        ("shared", "bpf-name-conflict", f"{bpfdir}/shared/counter.bpf.o"),
        ("other-source", "bpf-name-conflict", f"{bpfdir}/shared/counter.bpf.o"),
    }
    assert findings_of(a) == set() and findings_of(b) == set()


def test_same_name_relative_to_both_bpfdirs_conflicts(rpms, objects, bpfdir):
    arch = rpms.build(PkgSpec("arch-side", requires=["bpf-filesystem"],
                              files=[PkgFile(f"{bpfdir}/common.o", objects.full)]))
    noarch = rpms.build(PkgSpec("noarch-side", noarch=True, requires=["bpf-filesystem"], files=[
        PkgFile("/usr/lib/bpf/common.o", objects.full_el), PkgFile("/usr/lib/bpf/common.eb.o", objects.full_eb)]))
    assert findings_of(arch, noarch) == {
        ("arch-side", "bpf-name-conflict", f"{bpfdir}/common.o"),
        ("noarch-side", "bpf-name-conflict", "/usr/lib/bpf/common.o"),
    }


def test_multilib_and_upgrades_are_not_conflicts(rpms, objects):
    spec = PkgSpec("multi", requires=["bpf-filesystem"], files=[PkgFile("/usr/lib/bpf/multi.o", objects.full)])
    x86_64 = rpms.build(spec, target="x86_64")
    i686 = rpms.build(spec, target="i686")
    newer = rpms.build(PkgSpec("multi", version="2.0", requires=["bpf-filesystem"],
                               files=[PkgFile("/usr/lib/bpf/multi.o", objects.no_btf)]), target="x86_64")
    assert rules_of(x86_64, i686, newer) == {"bpf-object-no-btf"}  # only the newer build's own warning


def test_multilib_copies_that_differ_conflict(rpms, objects):
    a = rpms.build(PkgSpec("differ", requires=["bpf-filesystem"],
                           files=[PkgFile("/usr/lib/bpf/differ.o", objects.full)]), target="x86_64")
    b = rpms.build(PkgSpec("differ", requires=["bpf-filesystem"],
                           files=[PkgFile("/usr/lib/bpf/differ.o", objects.full_el)]), target="i686")
    assert rules_of(a, b) == {"bpf-name-conflict"}


def test_same_file_given_twice_is_not_a_conflict(rpms, objects, bpfdir):
    pkg = rpms.build(good_package(objects, bpfdir, name="twice"))
    assert findings_of(pkg, pkg) == set()


@pytest.mark.parametrize("payload", ["w9.gzdio", "w9.bzdio", "w6.xzdio", "w6.lzdio", "w19.zstdio", "w.ufdio"])
def test_every_payload_compressor(rpms, objects, payload):
    pkg = rpms.build(PkgSpec("compressed", requires=["bpf-filesystem"], files=[
        PkgFile("/usr/share/compressed/bare.o", objects.no_license)]), payload=payload)
    assert rules_of(pkg) == {"bpf-object-outside-bpfdir", "bpf-object-no-btf", "bpf-object-no-license"}


def test_source_package_spec_rules(tmp_path):
    """scan judges the spec inside a source RPM with the same rules as rpmlint's BPFCheck."""
    import subprocess

    spec = tmp_path / "handmade.spec"
    spec.write_text("""Name: handmade
Version: 1
Release: 1
Summary: Hand-installed BPF object
License: MIT
Source0: prog.o

%description
Test.

%install
install -D -m 0644 %{SOURCE0} %{buildroot}/usr/lib64/bpf/prog.o

%files
%config %{_bpfdir}/prog.o
""")
    (tmp_path / "prog.o").write_bytes(b"placeholder")
    proc = subprocess.run(["rpmbuild", "-bs", "--define", f"_topdir {tmp_path}/top", "--define",
                           f"_sourcedir {tmp_path}", str(spec)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (srpm,) = (tmp_path / "top" / "SRPMS").glob("*.src.rpm")
    result = scan([str(srpm)], Policy.load(system=None))
    found = {(f.rule, f.path, f.detail.split(":")[0]) for f in result.findings}
    assert found == {("bpf-hardcoded-bpfdir", "handmade.spec", "line 12"),
                     ("bpf-install-by-hand", "handmade.spec", "line 12"),
                     ("bpf-object-config", "handmade.spec", "line 15")}
