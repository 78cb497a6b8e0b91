"""The DNF 4 plugin fails closed on hostile packages: one bad package cannot switch the policy off.

Real dnf, a createrepo_c repository of rpmbuild-built RPMs, a fresh installroot.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.support import craft
from tests.support.builders import NO_STRIP, binary_with_truncated_bpf_header
from tests.support.dnf import BPFDIR, Dnf, output, require_dnf

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hostile_repo(rpms, objects, tmp_path_factory) -> Path:
    require_dnf()
    d = tmp_path_factory.mktemp("hostile-repo")
    binary = binary_with_truncated_bpf_header(tmp_path_factory.mktemp("tail"))
    packages = [
        PkgSpec("libbpf-stub", provides=["libbpf.so.1"], files=[PkgFile("/usr/share/doc/libbpf-stub/README")]),
        PkgSpec(
            "bpf-filesystem",
            files=[PkgFile(BPFDIR, directory=True, mode=0o755), PkgFile("/usr/lib/bpf", directory=True, mode=0o755)],
        ),
        # Valid, built by plain rpmbuild: crashed the embedded-object search before.
        PkgSpec(
            "tail-tool",
            requires=["libbpf.so.1"],
            autodeps=False,
            files=[PkgFile("/usr/bin/tail-tool", binary, mode=0o755)],
        ),
        # What the policy must still refuse in the same transaction.
        PkgSpec(
            "writable",
            requires=["bpf-filesystem"],
            files=[
                PkgFile(f"{BPFDIR}/writable", directory=True, mode=0o755),
                PkgFile(f"{BPFDIR}/writable/prog.bpf.o", objects.full, mode=0o666),
            ],
        ),
        PkgSpec(
            "payload-victim",
            requires=["bpf-filesystem"],
            files=[
                PkgFile(f"{BPFDIR}/payload-victim", directory=True, mode=0o755),
                PkgFile(f"{BPFDIR}/payload-victim/prog.bpf.o", objects.full),
            ],
        ),
    ]
    for pkg in packages:
        for path in rpms.build_all(pkg, defines=NO_STRIP) if pkg.name == "tail-tool" else rpms.build_all(pkg):
            shutil.copy(path, d)
    victim = next(d.glob("payload-victim-*.rpm"))
    # No header digest: rpm installs it (the MD5 and payload digests pass), rpm-bpf cannot trust its header.
    craft.strip_digests(victim, victim, keep_md5=True)
    subprocess.run(["createrepo_c", "-q", str(d)], check=True)
    return d


@pytest.fixture
def dnf(hostile_repo, tmp_path) -> Dnf:
    return Dnf(hostile_repo, tmp_path / "root", tmp_path / "plugconf")


def test_package_that_crashed_the_search_cannot_smuggle_a_violation(dnf):
    proc = dnf("install", "tail-tool", "writable")
    assert proc.returncode == 1, output(proc)
    assert "internal error" not in output(proc)
    assert "rpm-bpf: transaction refused" in proc.stderr
    assert f"writable.x86_64: E: bpf-object-writable {BPFDIR}/writable/prog.bpf.o mode 0666" in proc.stderr
    assert not dnf.installed("writable") and not dnf.installed("tail-tool")
    alone = dnf("install", "tail-tool")  # the valid package itself installs
    assert alone.returncode == 0, output(alone)


@pytest.mark.parametrize("fail_on_error", [0, 1])
def test_unreadable_incoming_package_is_refused_as_a_finding(dnf, fail_on_error):
    """Fail closed: a package that cannot be checked is an error of its own, whatever fail_on_error says."""
    dnf.configure(fail_on_error=fail_on_error)
    proc = dnf("install", "payload-victim")
    assert proc.returncode == 1, output(proc)
    assert "internal error" not in output(proc)
    assert "rpm-bpf: transaction refused" in proc.stderr
    assert "rpm-bpf: E: bpf-package-unreadable" in proc.stderr
    assert "payload-victim-1.0-1.x86_64: the RPM has no header digest" in proc.stderr
    assert not dnf.installed("payload-victim")


def test_unreadable_package_only_warns_under_warn(dnf):
    dnf.configure(mode="warn")
    proc = dnf("install", "tail-tool")
    assert proc.returncode == 0, output(proc)
    proc = dnf("install", "payload-victim")
    assert "mode=warn, continuing" in output(proc) and "bpf-package-unreadable" in output(proc)
