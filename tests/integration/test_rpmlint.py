"""BPFCheck inside the real rpmlint, on RPMs built by rpmbuild at test time."""

from __future__ import annotations

import re

import pytest

from rpm_bpf.rules import registry as rules
from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.support.archives import gnu_archive
from tests.support.builders import good_package
from tests.support.rpmlint import bpf_messages, rpmlint

pytestmark = pytest.mark.integration


def test_check_is_enabled_by_the_drop_in(rpms, objects, bpfdir):
    proc = rpmlint(rpms.build(good_package(objects, bpfdir, name="lint-good")))
    assert "/etc/xdg/rpmlint/bpf.toml" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_clean_package_has_no_bpf_message(rpms, objects, bpfdir):
    proc = rpmlint(rpms.build(good_package(objects, bpfdir, name="lint-good")))
    assert bpf_messages(proc) == set(), proc.stdout


def test_each_violation_gives_exactly_its_message(rpms, objects, bpfdir):
    misplaced = rpms.build(PkgSpec("lint-misplaced", files=[PkgFile("/usr/share/lint/prog.o", objects.full)]))
    writable = rpms.build(
        PkgSpec(
            "lint-writable", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/w.o", objects.full, mode=0o664)]
        )
    )
    config = rpms.build(
        PkgSpec("lint-config", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/c.o", objects.full, config=True)])
    )
    bare = rpms.build(
        PkgSpec("lint-bare", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/bare.o", objects.no_license)])
    )
    loader = rpms.build(PkgSpec("lint-loader", files=[PkgFile("/usr/bin/lint-loader", objects.loader, mode=0o755)]))
    proc = rpmlint(misplaced, writable, config, bare, loader)
    assert bpf_messages(proc) == {
        ("lint-misplaced", "E", "bpf-object-outside-bpfdir", "/usr/share/lint/prog.o"),
        ("lint-writable", "E", "bpf-object-writable", f"{bpfdir}/w.o"),
        ("lint-config", "E", "bpf-object-config", f"{bpfdir}/c.o"),
        ("lint-bare", "W", "bpf-object-no-license", f"{bpfdir}/bare.o"),
        ("lint-bare", "W", "bpf-object-no-btf", f"{bpfdir}/bare.o"),
        ("lint-loader", "I", "bpf-object-embedded", "/usr/bin/lint-loader"),
    }, proc.stdout
    assert proc.returncode == 64  # rpmlint's "errors found"


def test_bpf_members_of_a_static_library_are_listed(rpms, objects, bpfdir, tmp_path):
    """As scan does: an ar archive's BPF members are bpf-archive-member (I), never errors."""
    static = tmp_path / "libhelpers.a"
    static.write_bytes(gnu_archive([("helpers.o", objects.full.read_bytes()), ("plain.txt", b"not an object\n")]))
    spec = good_package(objects, bpfdir, name="lint-archive")
    spec.files.append(PkgFile("/usr/lib64/libhelpers.a", static))
    proc = rpmlint(rpms.build(spec))
    assert bpf_messages(proc) == {("lint-archive", "I", "bpf-archive-member", "/usr/lib64/libhelpers.a")}, proc.stdout
    assert "member helpers.o at offset" in proc.stdout


def test_conflict_across_packages_of_one_run(rpms, objects, bpfdir):
    a = rpms.build(good_package(objects, bpfdir, name="lint-shared"))
    b = rpms.build(
        PkgSpec(
            "lint-other",
            requires=["bpf-filesystem"],
            files=[
                PkgFile(f"{bpfdir}/lint-shared", directory=True, mode=0o755),
                PkgFile(f"{bpfdir}/lint-shared/counter.bpf.o", objects.full),
            ],
        )
    )
    path = f"{bpfdir}/lint-shared/counter.bpf.o"
    assert bpf_messages(rpmlint(a, b)) == {
        ("lint-shared", "E", "bpf-name-conflict", path),
        ("lint-other", "E", "bpf-name-conflict", path),
    }


def test_rpmlintrc_filter_and_policy_waiver(rpms, objects, bpfdir, tmp_path):
    bare = rpms.build(
        PkgSpec("lint-bare", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/bare.o", objects.no_license)])
    )
    rc = tmp_path / "lint.rpmlintrc"
    rc.write_text('addFilter("bpf-object-no-btf")\n')
    filtered = rpmlint("-r", rc, bare)
    assert bpf_messages(filtered) == {("lint-bare", "W", "bpf-object-no-license", f"{bpfdir}/bare.o")}
    assert "1 filtered" in filtered.stdout
    policy = tmp_path / "policy.toml"
    policy.write_text('[[waiver]]\nrule = "bpf-object-no-license"\npackage = "lint-bare"\nreason = "upstream bug 9"\n')
    config = tmp_path / "bpfpolicy.toml"
    config.write_text(f'BPFPolicy = ["{policy}"]\n')
    waived = rpmlint("-c", config, "-r", rc, bare)
    assert bpf_messages(waived) == set(), waived.stdout


def test_spec_file_with_hardcoded_paths(tmp_path):
    spec = tmp_path / "hardcoded.spec"
    spec.write_text("""Name: hardcoded
Version: 1
Release: 1
Summary: Hard-coded BPF paths
License: MIT
URL: https://example.org/
Source0: prog.o
BuildRequires: rpm-bpf-macros

%description
Test spec.

%install
mkdir -p %{buildroot}/usr/lib64/bpf
install -m 0644 %{SOURCE0} %{buildroot}%{_bpfdir}/prog.o

%files
%config %{_bpfdir}/prog.o
/usr/lib64/bpf/other.o

%changelog
* Mon Nov 23 2026 Packager <p@example.org> - 1-1
- moved out of /usr/lib64/bpf
""")
    proc = rpmlint(spec)
    lines = [line_ for line_ in proc.stdout.splitlines() if ": bpf-" in line_]
    assert any(line_.startswith("hardcoded.spec:14: W: bpf-hardcoded-bpfdir") for line_ in lines), proc.stdout
    assert any(line_.startswith("hardcoded.spec:15: I: bpf-install-by-hand") for line_ in lines), proc.stdout
    assert any(line_.startswith("hardcoded.spec:18: E: bpf-object-config") for line_ in lines), proc.stdout
    assert any(line_.startswith("hardcoded.spec:19: W: bpf-hardcoded-bpfdir") for line_ in lines), proc.stdout
    assert len(lines) == 4, proc.stdout  # nothing from %changelog


def test_corrupt_object_keeps_rpmlint_well_formed(rpms, objects, bpfdir, tmp_path):
    data = objects.full.read_bytes()
    broken = tmp_path / "broken.o"
    broken.write_bytes(data[:200] + b"\xff" * (len(data) - 200))  # header kept, sections garbage
    pkg = rpms.build(
        PkgSpec("lint-corrupt", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/broken.o", broken)])
    )
    proc = rpmlint(pkg)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 64
    assert ("lint-corrupt", "E", "bpf-object-invalid", f"{bpfdir}/broken.o") in bpf_messages(proc)
    assert re.search(r"1 packages and 0 specfiles checked; \d+ errors", proc.stdout)


def test_explain_reads_the_registry():
    proc = rpmlint("-e", "bpf-object-outside-bpfdir")
    text = " ".join(proc.stdout.split())
    assert " ".join(rules.get("bpf-object-outside-bpfdir").description.split()[:12]) in text


def test_debian_rpmlint_loads_the_check_too(rpms, objects):
    misplaced = rpms.build(PkgSpec("lint-misplaced", files=[PkgFile("/usr/share/lint/prog.o", objects.full)]))
    proc = rpmlint(misplaced, exe="/usr/bin/rpmlint")
    assert ("lint-misplaced", "E", "bpf-object-outside-bpfdir", "/usr/share/lint/prog.o") in bpf_messages(proc)
