"""Every per-package and cross-package rule, firing and not firing, on RPMs built by rpmbuild."""

from __future__ import annotations

import subprocess

import pytest

from rpm_bpf.flows.scan import scan
from rpm_bpf.rules.policy import Policy
from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.support.builders import good_package
from tests.support.toolchain import require

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
    ghost = rpms.build(
        PkgSpec(
            "runtime-ghost",
            files=[
                PkgFile("/var/cache/bpf/runtime-ghost", directory=True, mode=0o755),
                PkgFile("/var/cache/bpf/runtime-ghost/prog.o", ghost=True),
            ],
        )
    )
    shipped = rpms.build(
        PkgSpec("runtime-shipped", files=[PkgFile("/var/cache/bpf/runtime-shipped/prog.o", objects.full)])
    )
    assert findings_of(ghost) == set()
    result = scan([str(shipped)], Policy.load(system=None))
    (finding,) = result.findings  # once, by the placement rule (not bpf-app-dir-file as well)
    assert finding.rule == "bpf-object-outside-bpfdir" and "%ghost" in finding.detail
    # a cache directory named after nothing the package is
    generic = rpms.build(PkgSpec("runtime-generic", files=[PkgFile("/var/cache/bpf/app", directory=True)]))
    assert findings_of(generic) == {("runtime-generic", "bpf-app-dir-unnamed", "/var/cache/bpf/app")}


def test_ghost_in_bpfdir(rpms, bpfdir):
    pkg = rpms.build(PkgSpec("ghosty", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/ghosty.o", ghost=True)]))
    assert findings_of(pkg) == {("ghosty", "bpfdir-ghost-file", f"{bpfdir}/ghosty.o")}


@pytest.mark.parametrize(
    "mode,expected",
    [
        (0o644, set()),
        (0o664, {"bpf-object-writable"}),
        (0o646, {"bpf-object-writable"}),
        (0o755, {"bpf-object-executable"}),
        (0o775, {"bpf-object-writable", "bpf-object-executable"}),
    ],
)
def test_modes(rpms, objects, bpfdir, mode, expected):
    pkg = rpms.build(
        PkgSpec(
            f"mode{mode:o}",
            requires=["bpf-filesystem"],
            files=[PkgFile(f"{bpfdir}/mode{mode:o}.o", objects.full, mode=mode)],
        )
    )
    assert rules_of(pkg) == expected


def test_owner(rpms, objects, bpfdir):
    pkg = rpms.build(
        PkgSpec(
            "owned-by-nobody",
            requires=["bpf-filesystem"],
            files=[PkgFile(f"{bpfdir}/nobody.o", objects.full, user="nobody", group="nogroup")],
        )
    )
    assert findings_of(pkg) == {("owned-by-nobody", "bpf-object-not-root-owned", f"{bpfdir}/nobody.o")}


def test_config(rpms, objects, bpfdir):
    pkg = rpms.build(
        PkgSpec(
            "configured",
            requires=["bpf-filesystem"],
            files=[PkgFile(f"{bpfdir}/configured.o", objects.full, config=True)],
        )
    )
    assert rules_of(pkg) == {"bpf-object-config"}


def test_license_and_btf(rpms, objects, bpfdir):
    no_btf = rpms.build(
        PkgSpec("no-btf", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/no-btf.o", objects.no_btf)])
    )
    bare = rpms.build(
        PkgSpec("bare", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/bare.o", objects.no_license)])
    )
    assert rules_of(no_btf) == {"bpf-object-no-btf"}
    assert rules_of(bare) == {"bpf-object-no-btf", "bpf-object-no-license"}


def test_endianness_against_package_arch(rpms, objects, bpfdir):
    big_in_x86 = rpms.build(
        PkgSpec("big-in-x86", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/big.o", objects.full_eb)])
    )
    little_in_x86 = rpms.build(
        PkgSpec("little-in-x86", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/little.o", objects.full_el)])
    )
    assert rules_of(big_in_x86) == {"bpf-endianness-mismatch"}
    assert rules_of(little_in_x86) == set()
    # s390x is big-endian: rpm's macros give /usr/lib64 there too.
    big_in_s390x = rpms.build(
        PkgSpec("big-in-s390x", requires=["bpf-filesystem"], files=[PkgFile("/usr/lib64/bpf/big.o", objects.full_eb)]),
        target="s390x",
    )
    little_in_s390x = rpms.build(
        PkgSpec(
            "little-in-s390x", requires=["bpf-filesystem"], files=[PkgFile("/usr/lib64/bpf/little.o", objects.full)]
        ),
        target="s390x",
    )
    assert "s390x" in big_in_s390x.name
    assert rules_of(big_in_s390x) == set()
    assert rules_of(little_in_s390x) == {"bpf-endianness-mismatch"}


def test_bpfdir_follows_rpm_macros_for_the_arch(rpms, objects):
    # i686: %{_libdir} is /usr/lib, so /usr/lib64/bpf is the wrong place there.
    i686 = rpms.build(
        PkgSpec("lib64-on-i686", requires=["bpf-filesystem"], files=[PkgFile("/usr/lib64/bpf/x.o", objects.full)]),
        target="i686",
    )
    ok = rpms.build(
        PkgSpec("lib-on-i686", requires=["bpf-filesystem"], files=[PkgFile("/usr/lib/bpf/x.o", objects.full)]),
        target="i686",
    )
    assert rules_of(i686) == {"bpf-object-outside-bpfdir"}
    assert rules_of(ok) == set()


def test_noarch_packages(rpms, objects, bpfdir):
    single = rpms.build(
        PkgSpec(
            "noarch-el",
            noarch=True,
            requires=["bpf-filesystem"],
            files=[PkgFile("/usr/lib/bpf/prog.bpfel.o", objects.full_el)],
        )
    )
    both = rpms.build(
        PkgSpec(
            "noarch-both",
            noarch=True,
            requires=["bpf-filesystem"],
            files=[
                PkgFile("/usr/lib/bpf/prog.bpfel.o", objects.full_el),
                PkgFile("/usr/lib/bpf/prog.bpfeb.o", objects.full_eb),
            ],
        )
    )
    in_libdir = rpms.build(
        PkgSpec(
            "noarch-lib64",
            noarch=True,
            requires=["bpf-filesystem"],
            files=[
                PkgFile(f"{bpfdir}/prog.bpfel.o", objects.full_el),
                PkgFile(f"{bpfdir}/prog.bpfeb.o", objects.full_eb),
            ],
        )
    )
    assert findings_of(single) == {("noarch-el", "bpf-noarch-single-endian", "/usr/lib/bpf/prog.bpfel.o")}
    assert findings_of(both) == set()
    assert rules_of(in_libdir) == {"bpf-object-outside-bpfdir"}


def test_non_bpf_file_in_bpfdir(rpms, objects, bpfdir):
    pkg = rpms.build(
        PkgSpec(
            "with-readme",
            requires=["bpf-filesystem"],
            files=[PkgFile(f"{bpfdir}/prog.o", objects.full), PkgFile(f"{bpfdir}/README", text="notes\n")],
        )
    )
    assert findings_of(pkg) == {("with-readme", "bpfdir-non-bpf-file", f"{bpfdir}/README")}


def test_unowned_bpfdir(rpms, objects, bpfdir):
    # Built as without the rpm-bpf macros, whose generator would add Requires: bpf-filesystem.
    no_requires = rpms.build(
        PkgSpec("no-owner", files=[PkgFile(f"{bpfdir}/no-owner.o", objects.full)]), defines={"__bpf_requires": "%{nil}"}
    )
    owns_root = rpms.build(
        PkgSpec(
            "owns-root",
            files=[PkgFile(bpfdir, directory=True, mode=0o755), PkgFile(f"{bpfdir}/owns-root.o", objects.full)],
        )
    )
    requires_path = rpms.build(
        PkgSpec("requires-path", requires=[bpfdir], files=[PkgFile(f"{bpfdir}/requires-path.o", objects.full)])
    )
    subdir_unowned = rpms.build(
        PkgSpec("subdir-unowned", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/sub/x.o", objects.full)])
    )
    assert findings_of(no_requires) == {("no-owner", "bpfdir-unowned", bpfdir)}
    assert findings_of(owns_root) == set()
    assert findings_of(requires_path) == set()
    assert findings_of(subdir_unowned) == {("subdir-unowned", "bpfdir-unowned", f"{bpfdir}/sub")}


def test_invalid_object_in_bpfdir(rpms, objects, bpfdir, tmp_path):
    data = objects.full.read_bytes()
    truncated = tmp_path / "truncated.o"
    truncated.write_bytes(data[: len(data) // 2])  # libmagic still calls it eBPF
    pkg = rpms.build(
        PkgSpec("truncated-object", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/truncated.o", truncated)])
    )
    result = scan([str(pkg)], Policy.load(system=None))
    (finding,) = result.findings
    assert finding.rule == "bpf-object-invalid" and "runs past the end" in finding.detail


def test_embedded_object_is_information(rpms, objects):
    pkg = rpms.build(
        PkgSpec("skeleton-loader", files=[PkgFile("/usr/bin/skeleton-loader", objects.loader, mode=0o755)])
    )
    result = scan([str(pkg)], Policy.load(system=None))
    (finding,) = result.findings
    assert finding.rule == "bpf-object-embedded" and finding.severity.label == "info"
    assert "xdp/xdp_count" in finding.detail


def test_name_conflict_between_packages(rpms, objects, bpfdir):
    a = rpms.build(good_package(objects, bpfdir, name="shared"))
    b = rpms.build(
        PkgSpec(
            "other-source",
            requires=["bpf-filesystem"],
            files=[
                PkgFile(f"{bpfdir}/shared", directory=True, mode=0o755),
                PkgFile(f"{bpfdir}/shared/counter.bpf.o", objects.full),
            ],
        )
    )
    assert findings_of(a, b) == {
        ("shared", "bpf-name-conflict", f"{bpfdir}/shared/counter.bpf.o"),
        ("other-source", "bpf-name-conflict", f"{bpfdir}/shared/counter.bpf.o"),
    }
    assert findings_of(a) == set() and findings_of(b) == set()


def test_same_name_relative_to_both_bpfdirs_conflicts(rpms, objects, bpfdir):
    arch = rpms.build(
        PkgSpec("arch-side", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/common.o", objects.full)])
    )
    noarch = rpms.build(
        PkgSpec(
            "noarch-side",
            noarch=True,
            requires=["bpf-filesystem"],
            files=[
                PkgFile("/usr/lib/bpf/common.o", objects.full_el),
                PkgFile("/usr/lib/bpf/common.eb.o", objects.full_eb),
            ],
        )
    )
    assert findings_of(arch, noarch) == {
        ("arch-side", "bpf-name-conflict", f"{bpfdir}/common.o"),
        ("noarch-side", "bpf-name-conflict", "/usr/lib/bpf/common.o"),
    }


def test_multilib_and_upgrades_are_not_conflicts(rpms, objects):
    spec = PkgSpec("multi", requires=["bpf-filesystem"], files=[PkgFile("/usr/lib/bpf/multi.o", objects.full)])
    x86_64 = rpms.build(spec, target="x86_64")
    i686 = rpms.build(spec, target="i686")
    newer = rpms.build(
        PkgSpec(
            "multi", version="2.0", requires=["bpf-filesystem"], files=[PkgFile("/usr/lib/bpf/multi.o", objects.no_btf)]
        ),
        target="x86_64",
    )
    assert rules_of(x86_64, i686, newer) == {"bpf-object-no-btf"}  # only the newer build's own warning


def test_multilib_copies_that_differ_conflict(rpms, objects):
    a = rpms.build(
        PkgSpec("differ", requires=["bpf-filesystem"], files=[PkgFile("/usr/lib/bpf/differ.o", objects.full)]),
        target="x86_64",
    )
    b = rpms.build(
        PkgSpec("differ", requires=["bpf-filesystem"], files=[PkgFile("/usr/lib/bpf/differ.o", objects.full_el)]),
        target="i686",
    )
    assert rules_of(a, b) == {"bpf-name-conflict"}


def test_same_file_given_twice_is_not_a_conflict(rpms, objects, bpfdir):
    pkg = rpms.build(good_package(objects, bpfdir, name="twice"))
    assert findings_of(pkg, pkg) == set()


@pytest.mark.parametrize("payload", ["w9.gzdio", "w9.bzdio", "w6.xzdio", "w6.lzdio", "w19.zstdio", "w.ufdio"])
def test_every_payload_compressor(rpms, objects, payload):
    pkg = rpms.build(
        PkgSpec(
            "compressed",
            requires=["bpf-filesystem"],
            files=[PkgFile("/usr/share/compressed/bare.o", objects.no_license)],
        ),
        payload=payload,
    )
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
    proc = subprocess.run(
        ["rpmbuild", "-bs", "--define", f"_topdir {tmp_path}/top", "--define", f"_sourcedir {tmp_path}", str(spec)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    (srpm,) = (tmp_path / "top" / "SRPMS").glob("*.src.rpm")
    result = scan([str(srpm)], Policy.load(system=None))
    found = {(f.rule, f.path, f.detail.split(":")[0]) for f in result.findings}
    assert found == {
        ("bpf-hardcoded-bpfdir", "handmade.spec", "line 12"),
        ("bpf-install-by-hand", "handmade.spec", "line 12"),
        ("bpf-object-config", "handmade.spec", "line 15"),
    }


# --- BPF ELF files that are not deployed programs (issue: real-world fidelity) ---

BPF_LIBRARY_C = r"""
/* Only a sub-program in .text and data: nothing a loader can attach. */
int shared_counter = 1;
__attribute__((noinline)) int add_one(int x) { return x + shared_counter; }
"""


@pytest.fixture(scope="module")
def no_programs(tmp_path_factory):
    from rpm_bpf.bpf import elf
    from rpm_bpf.samples import build as samples

    require("clang")
    path = samples.compile_bpf(BPF_LIBRARY_C, tmp_path_factory.mktemp("noprog") / "lib.bpf.o")
    info = elf.inspect(path.read_bytes())
    assert ".text" in info.sections and not info.has_programs  # what clang made, checked with pyelftools
    return path


def test_object_without_programs_is_information_not_misplaced(rpms, no_programs, bpfdir):
    outside = rpms.build(PkgSpec("bpf-runtime", files=[PkgFile("/usr/lib/bpf-runtime/crt.o", no_programs, mode=0o755)]))
    result = scan([str(outside)], Policy.load(system=None))
    (finding,) = result.findings
    assert (finding.rule, finding.severity.label) == ("bpf-object-no-programs", "info")
    assert "sub-programs only" in finding.detail
    # In the BPF directory its name still counts: two sources shipping it clash.
    a = rpms.build(PkgSpec("libbpfa", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/lib.o", no_programs)]))
    b = rpms.build(PkgSpec("libbpfb", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/lib.o", no_programs)]))
    assert ("libbpfa", "bpf-name-conflict", f"{bpfdir}/lib.o") in findings_of(a, b)


@pytest.mark.parametrize(
    "path",
    [
        "/usr/share/gocode/src/github.com/cilium/ebpf/testdata/loader-el.elf",
        "/usr/share/cargo/registry/aya-obj-0.1.0/tests/prog.o",
        "/usr/lib/gcc/bpf-unknown-none/13/crti.o",
        "/usr/lib/rustlib/bpfel-unknown-none/lib/x.o",
    ],
)
def test_exempt_locations_are_information(rpms, objects, path, tmp_path):
    name = "exempt-" + str(abs(hash(path)))[:8]
    pkg = rpms.build(PkgSpec(name, noarch=True, files=[PkgFile(path, objects.no_license, mode=0o664)]))
    result = scan([str(pkg)], Policy.load(system=None))
    (finding,) = result.findings  # not misplaced, no license, no BTF, writable: not judged as a program
    assert (finding.rule, finding.severity.label, finding.path) == ("bpf-object-exempt-location", "info", path)
    # The policy may take the exemption back: then it is judged like any object.
    strict = tmp_path / "strict.toml"
    strict.write_text("[exempt]\npaths = []\n")
    judged = {f.rule for f in scan([str(pkg)], Policy.load([strict], system=None)).findings}
    assert {"bpf-object-outside-bpfdir", "bpf-object-writable", "bpf-object-no-license"} <= judged


def test_policy_exempt_paths_are_checked(tmp_path):
    from rpm_bpf.rules.policy import PolicyError

    for text in ('[exempt]\npaths = "/usr/*"\n', '[exempt]\npaths = ["relative/*"]\n', "[exempt]\nroots = []\n"):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(PolicyError, match=r"\[exempt\]"):
            Policy.load([bad], system=None)


# --- embedded objects: every ELF file searched by default, header signals as a mode ---


@pytest.mark.parametrize(
    "provides, requires, signal",
    [
        ([], ["libbpf.so.1()(64bit)"], "libbpf-dynamic"),
        (["bundled(libbpf) = 1.4"], [], "libbpf-static"),
        (["bundled(golang(github.com/cilium/ebpf)) = 0.16.0"], [], "go"),
        (["bundled(crate(libbpf-rs)) = 0.24.0"], [], "rust"),
        (["bundled(crate(aya)) = 0.13.0"], [], "rust"),
        ([], [], None),
    ],
)
def test_embedded_found_by_each_header_signal(rpms, objects, provides, requires, signal):
    name = f"loader-{signal or 'none'}-{len(provides)}{len(requires)}"
    spec = PkgSpec(
        name,
        provides=provides,
        requires=requires,
        autodeps=False,
        files=[PkgFile(f"/usr/bin/{name}", objects.loader, mode=0o755)],
    )
    pkg = rpms.build(spec)
    triaged = [
        f
        for f in scan([str(pkg)], Policy.load(system=None), embedded="signals").findings
        if f.rule == "bpf-object-embedded"
    ]
    everything = [f for f in scan([str(pkg)], Policy.load(system=None)).findings if f.rule == "bpf-object-embedded"]
    (one,) = everything  # the default searches every ELF file: found whatever the header says
    # A file that a header signal explains keeps that signal's name; "payload" only where none does.
    assert one.embedded.signal == (signal or "payload")
    assert f"found by {signal or 'payload'}" in one.detail
    assert ("xdp", "xdp_count") in one.embedded.programs and one.embedded.license == "GPL"
    assert one.embedded.offset > 0 and one.embedded.size > 0
    if signal is None:
        assert triaged == []  # no header signal: --embedded=signals does not read this payload
    else:
        (hit,) = triaged
        assert hit.embedded == one.embedded and hit.detail == one.detail


def test_an_elf_file_a_crafted_header_classes_otherwise(rpms, objects, tmp_path):
    """FILECLASS is the header's word: an ELF file classed "data" is still searched by default when it has an
    execute bit (its bytes start as an ELF file's); without one it is not (documented), --deep reads it."""
    import rpm

    from tests.support import craft

    src = rpms.build(
        PkgSpec(
            "disguised",
            autodeps=False,
            files=[
                PkgFile("/usr/bin/disguised", objects.loader, mode=0o755),
                PkgFile("/usr/lib64/libdisguised.so.1", objects.loader, mode=0o644),
            ],
        )
    )

    def reclass(hdr):
        craft.set_tag(hdr, rpm.RPMTAG_CLASSDICT, ["data" if "ELF" in c else c for c in hdr[rpm.RPMTAG_CLASSDICT]])

    crafted = craft.edit_header(src, tmp_path / "disguised.rpm", reclass)

    def embedded(**options) -> dict[str, str]:
        found = scan([str(crafted)], Policy.load(system=None), **options).findings
        return {f.path: f.embedded.signal for f in found if f.rule == "bpf-object-embedded"}

    assert embedded() == {"/usr/bin/disguised": "payload"}
    assert embedded(embedded="signals") == {}
    assert embedded(deep=True) == {"/usr/bin/disguised": "deep", "/usr/lib64/libdisguised.so.1": "deep"}


def test_a_file_too_large_to_search_fails_closed(rpms, objects, monkeypatch):
    """An ELF file to be searched that rpm-bpf does not read (larger than it reads) is an error naming it,
    never a package that passes: its BPF code is unknown. The limit is lowered here (1 GiB for real)."""
    from rpm_bpf import model

    pkg = rpms.build(PkgSpec("big-loader", autodeps=False, files=[PkgFile("/usr/bin/big", objects.loader, mode=0o755)]))
    (found,) = [f for f in scan([str(pkg)], Policy.load(system=None)).findings if f.rule == "bpf-object-embedded"]
    assert found.path == "/usr/bin/big"  # read, it is searched and its object found
    monkeypatch.setattr(model, "MAX_CONTENT", 4096)
    findings = scan([str(pkg)], Policy.load(system=None), jobs=1).findings
    (refused,) = [f for f in findings if f.rule == "bpf-package-unreadable"]
    assert refused.path == "/usr/bin/big" and refused.severity.name.lower() == "error"
    assert "not searched for embedded BPF objects" in refused.detail and "larger than rpm-bpf reads" in refused.detail
    assert not [f for f in findings if f.rule == "bpf-object-embedded"]


def test_static_libbpf_found_per_file_by_its_link_dependencies(rpms, objects, tmp_path, no_programs):
    """libbpf linked in (libbpf-tools): the ELF file itself needs libelf and zlib, as rpm's per-file
    dependencies record; another file of the package that links libelf alone is not read for it."""
    from rpm_bpf.samples import build as samples

    static = samples.build_skeleton_loader(objects.full, tmp_path / "static" / "loader", static_libbpf=True)
    elf_user = tmp_path / "elfuser"
    (tmp_path / "elfuser.c").write_text(
        "#include <libelf.h>\nint main(void) { return elf_version(EV_CURRENT) == 0; }\n"
    )
    subprocess.run(["gcc", "-O2", "-o", str(elf_user), str(tmp_path / "elfuser.c"), "-lelf"], check=True)
    pkg = rpms.build(
        PkgSpec(
            "static-tools",
            files=[
                PkgFile("/usr/bin/static-tool", static, mode=0o755),
                PkgFile("/usr/bin/elf-user", elf_user, mode=0o755),
            ],
        )
    )
    from rpm_bpf.sources import bpfdirs
    from rpm_bpf.sources.rpmfile import open_rpm

    opened = open_rpm(str(pkg), bpfdirs.for_arch)
    assert opened.package.file_signals == {"/usr/bin/static-tool": "libbpf-static"}
    assert [e.path for e in opened.package.files] == ["/usr/bin/static-tool"]
    (hit,) = [f for f in scan([str(pkg)], Policy.load(system=None)).findings if f.rule == "bpf-object-embedded"]
    assert (hit.path, hit.embedded.signal) == ("/usr/bin/static-tool", "libbpf-static")
    # An elfutils user alone has its payload left alone.
    alone = rpms.build(PkgSpec("elf-user-only", files=[PkgFile("/usr/bin/elf-user", elf_user, mode=0o755)]))
    assert open_rpm(str(alone), bpfdirs.for_arch).package.files == []


@pytest.mark.parametrize("edit", ["index-out-of-range", "start-past-table", "negative-start", "provides-class"])
def test_crafted_per_file_dependencies_point_nowhere(rpms, objects, tmp_path, edit):
    """FILEDEPENDSX/N and DEPENDSDICT come from the package: indexes out of range are ignored, never followed."""
    import rpm

    from rpm_bpf.sources import bpfdirs
    from rpm_bpf.sources.rpmfile import open_rpm
    from tests.support import craft

    static = objects.loader.parent.parent / "static" / "loader"
    if not static.exists():
        from rpm_bpf.samples import build as samples

        samples.build_skeleton_loader(objects.full, static, static_libbpf=True)
    src = rpms.build(PkgSpec(f"crafted-deps-{edit}", files=[PkgFile("/usr/bin/tool", static, mode=0o755)]))
    assert open_rpm(str(src), bpfdirs.for_arch).package.file_signals == {"/usr/bin/tool": "libbpf-static"}

    def change(hdr):
        table, starts = list(hdr[rpm.RPMTAG_DEPENDSDICT]), list(hdr[rpm.RPMTAG_FILEDEPENDSX])
        if edit == "index-out-of-range":
            table = [(d & 0xFF000000) | 0xFFFFFF for d in table]
        elif edit == "start-past-table":
            starts = [len(table) + 5 for _ in starts]
        elif edit == "negative-start":
            starts = [-1 for _ in starts]
        else:
            table = [(ord("P") << 24) | (d & 0xFFFFFF) for d in table]
        craft.set_tag(hdr, rpm.RPMTAG_DEPENDSDICT, table)
        craft.set_tag(hdr, rpm.RPMTAG_FILEDEPENDSX, starts)

    crafted = craft.edit_header(src, tmp_path / f"{edit}.rpm", change)
    package = open_rpm(str(crafted), bpfdirs.for_arch).package
    assert package.file_signals == {} and package.files == []  # nothing to follow: not searched
    assert scan([str(crafted)], Policy.load(system=None)).errors == []
