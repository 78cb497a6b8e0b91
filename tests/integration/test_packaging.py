"""The project's own RPMs: built by rpmbuild from packaging/rpm-bpf.spec, installed into a
fresh Debian root, and the installed rpm-bpf, macros and rpmlint check run from there."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import debroot
from tests.support.paths import REPO

pytestmark = pytest.mark.integration
ROOT_PACKAGES = [
    "python3",
    "python3-rpm",
    "rpm",
    "rpmlint",
    "python3-pyelftools",
    "python3-jinja2",
    "binutils",
    "dnf",
    "python3-dnf",
    "file",
    "cpio",
    "zstd",
    "python3-cffi-backend",
]  # debootstrap does not resolve the virtual package python3-zstandard needs


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pkg")
    proc = subprocess.run([str(REPO / "packaging" / "build-rpms.sh"), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rpms = {p.name.rsplit("-", 2)[0]: p for p in (out / "rpmbuild" / "RPMS").rglob("*.rpm")}
    return rpms


def _list(rpm_path: Path) -> set[str]:
    return set(
        subprocess.run(["rpm", "-qpl", str(rpm_path)], capture_output=True, text=True, check=True).stdout.split()
    )


def test_subpackages_put_each_piece_where_its_host_looks(built):
    assert set(built) == {
        "python3-rpm-bpf",
        "bpf-filesystem",
        "rpm-bpf-macros",
        "python3-rpmlint-bpf",
        "python3-dnf-plugin-bpf",
        "rpm-bpf-admission",
    }
    # The admission policy's own BPF object, where the convention puts it, with its bpf() provide.
    assert _list(built["rpm-bpf-admission"]) == {
        "/usr/lib64/bpf/rpm-bpf",
        "/usr/lib64/bpf/rpm-bpf/admission.bpf.o",
        "/usr/lib/systemd/system/rpm-bpf-admission.service",
    }
    provided = subprocess.run(
        ["rpm", "-qp", "--provides", str(built["rpm-bpf-admission"])], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert "bpf(rpm-bpf/admission.bpf.o)" in provided, provided
    assert {
        "/usr/bin/rpm-bpf",
        "/usr/lib/python3/dist-packages/rpm_bpf/cli/main.py",
        "/usr/share/rpm-bpf/spec-templates/prebuilt.spec.j2",
        "/etc/rpm-bpf/policy.toml",
        "/usr/share/man/man1/rpm-bpf.1",
        "/usr/share/man/man5/rpm-bpf-policy.5",
        "/usr/share/man/man7/rpm-bpf-rules.7",
        "/usr/share/bash-completion/completions/rpm-bpf",
        "/usr/share/zsh/site-functions/_rpm-bpf",
    } <= _list(built["python3-rpm-bpf"])
    assert _list(built["bpf-filesystem"]) == {"/usr/lib64/bpf", "/usr/lib/bpf", "/var/cache/bpf"}
    assert {
        "/usr/lib/rpm/macros.d/macros.bpf",
        "/usr/lib/rpm/fileattrs/bpf.attr",
        "/usr/lib/rpm/rpm-bpf/strip-bpf",
        "/usr/lib/rpm/rpm-bpf/pkgcheck-chain",
        "/usr/share/man/man7/rpm-bpf-macros.7",
    } <= _list(built["rpm-bpf-macros"])
    assert _list(built["python3-rpmlint-bpf"]) == {
        "/usr/lib/python3/dist-packages/rpmlint/checks/BPFCheck.py",
        "/etc/xdg/rpmlint/bpf.toml",
    }
    provides = subprocess.run(
        ["rpm", "-qp", "--provides", str(built["python3-rpm-bpf"])], capture_output=True, text=True
    ).stdout
    assert "rpm-bpf = " in provides
    assert _list(built["python3-dnf-plugin-bpf"]) == {
        "/usr/lib/python3/dist-packages/dnf-plugins/bpf.py",
        "/etc/dnf/plugins/bpf.conf",
        "/usr/share/man/man8/dnf-bpf-verify.8",
    }
    dnf_provides = subprocess.run(
        ["rpm", "-qp", "--provides", str(built["python3-dnf-plugin-bpf"])], capture_output=True, text=True
    ).stdout
    assert "dnf-command(bpf-verify)" in dnf_provides


def test_own_packages_scan_clean(built):
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "rpm-bpf"), "scan", *map(str, built.values())], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "0 errors, 0 warnings" in proc.stdout, proc.stdout


def _install_into(root: Path, rpms: list[Path]) -> None:
    drop = root / "tmp" / "rpms"
    drop.mkdir(parents=True)
    for path in rpms:
        shutil.copy(path, drop)
    # --nodeps: python3-rpm & co. are dpkg packages there, unknown to its rpm database.
    proc = debroot.run_in(root, "sh", "-c", "rpm -i --nodeps /tmp/rpms/*.rpm")
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def installroot(built, tmp_path_factory, objects) -> Path:
    try:
        base = debroot.base_tree("bookworm-rpm", "bookworm", ROOT_PACKAGES)
    except debroot.RootUnavailable as exc:
        pytest.skip(f"no fresh Debian root for an install test: {exc}")
    root = debroot.fresh_copy(base, tmp_path_factory.mktemp("root"))
    _install_into(root, list(built.values()))
    shutil.copy(objects.full, root / "tmp" / "counter.bpf.o")
    return root


def test_installed_command_runs(installroot):
    proc = debroot.run_in(installroot, "rpm-bpf", "--version")
    assert proc.returncode == 0 and proc.stdout.startswith("rpm-bpf "), proc.stderr
    assert debroot.run_in(installroot, "rpm", "-q", "--whatprovides", "bpf-filesystem").returncode == 0
    inspect = debroot.run_in(installroot, "rpm-bpf", "inspect", "/tmp/counter.bpf.o")
    assert inspect.returncode == 0 and "xdp_count" in inspect.stdout


SPEC = """Name: {name}
Version: 1
Release: 1
Summary: Installed macros test
License: GPL-2.0-only
Source0: counter.bpf.o
%description
Built inside the fresh root with the installed rpm-bpf-macros.
%install
{install}
%files
{files}
"""


def _build_in_root(root: Path, name: str, install: str, files: str, preamble: str = "") -> subprocess.CompletedProcess:
    top = root / "tmp" / name
    (top / "SOURCES").mkdir(parents=True)
    shutil.copy(root / "tmp" / "counter.bpf.o", top / "SOURCES")
    (top / f"{name}.spec").write_text(preamble + "\n" + SPEC.format(name=name, install=install, files=files))
    return debroot.run_in(root, "rpmbuild", "-bb", "--define", f"_topdir /tmp/{name}", f"/tmp/{name}/{name}.spec")


def test_installed_macros_build_and_enforce(installroot):
    assert debroot.run_in(installroot, "rpm", "--eval", "%_bpfdir").stdout.strip() == "/usr/lib64/bpf"
    good = _build_in_root(
        installroot,
        "inroot-good",
        "%bpf_install -d inroot %{SOURCE0}",
        "%dir %{_bpfdir}/inroot\n%{_bpfdir}/inroot/counter.bpf.o",
    )
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    (pkg,) = (installroot / "tmp" / "inroot-good" / "RPMS").rglob("*.rpm")
    provides = debroot.run_in(installroot, "rpm", "-qp", "--provides", f"/{pkg.relative_to(installroot)}").stdout
    assert "bpf(inroot/counter.bpf.o)" in provides
    bad = _build_in_root(
        installroot, "inroot-bad", "install -D -m 0644 %{SOURCE0} %{buildroot}/opt/inroot/x.o", "/opt/inroot/x.o"
    )
    assert bad.returncode != 0
    assert "inroot-bad.x86_64: E: bpf-object-outside-bpfdir /opt/inroot/x.o" in bad.stdout + bad.stderr


def test_installed_dnf_plugin(installroot):
    """dnf finds the plugin where the RPM put it, and bpf-verify sees the root's own rpm database."""
    proc = debroot.run_in(installroot, "dnf", "bpf-verify", "--help")
    assert proc.returncode == 0 and "bpf-verify" in proc.stdout, proc.stdout + proc.stderr
    clean = debroot.run_in(installroot, "dnf", "bpf-verify")
    assert clean.returncode == 0 and "0 errors" in clean.stdout, clean.stdout + clean.stderr
    (installroot / "usr/lib64/bpf/dropped.o").write_bytes(b"runtime")
    dirty = debroot.run_in(installroot, "dnf", "bpf-verify")
    assert dirty.returncode == 1
    assert "E: bpf-object-unowned /usr/lib64/bpf/dropped.o" in dirty.stdout
    (installroot / "usr/lib64/bpf/dropped.o").unlink()


def test_installed_rpmlint_check(installroot):
    _build_in_root(
        installroot, "inroot-lint", "install -D -m 0644 %{SOURCE0} %{buildroot}/opt/lint/x.o", "/opt/lint/x.o"
    )
    # That build failed its BPF check, but rpmbuild had written the package before the check ran.
    (pkg,) = (installroot / "tmp" / "inroot-lint" / "RPMS").rglob("*.rpm")
    proc = debroot.run_in(installroot, "rpmlint", f"/{pkg.relative_to(installroot)}")
    assert "/etc/xdg/rpmlint/bpf.toml" in proc.stdout
    assert "E: bpf-object-outside-bpfdir /opt/lint/x.o" in proc.stdout, proc.stdout + proc.stderr


# --- the same build with a newer rpm (Debian sid: rpm 6.x) --------------------

SID_PACKAGES = [
    "python3",
    "python3-rpm",
    "rpm",
    "python3-pyelftools",
    "python3-jinja2",
    "binutils",
    "file",
    "cpio",
    "zstd",
    "debugedit",
]


@pytest.fixture(scope="module")
def sid_root(built, tmp_path_factory, objects) -> Path:
    try:
        base = debroot.base_tree("sid-rpm", "sid", SID_PACKAGES)
    except debroot.RootUnavailable as exc:
        pytest.skip(f"no Debian sid root for the newer-rpm build: {exc}")
    root = debroot.fresh_copy(base, tmp_path_factory.mktemp("sidroot"))
    if debroot.run_in(root, "sh", "-c", "command -v rpmbuild").returncode != 0:
        pytest.skip("Debian sid's rpm packages ship no rpmbuild in this root")
    _install_into(root, [built[name] for name in ("python3-rpm-bpf", "bpf-filesystem", "rpm-bpf-macros")])
    shutil.copy(objects.full, root / "tmp" / "counter.bpf.o")
    return root


def test_newer_rpm_builds_with_the_macros(sid_root, objects):
    version = debroot.run_in(sid_root, "rpm", "--version").stdout.split()[-1]
    assert tuple(int(x) for x in version.split(".")[:2]) >= (4, 20), version
    good = _build_in_root(
        sid_root, "sid-good", "%bpf_install -d sid %{SOURCE0}", "%dir %{_bpfdir}/sid\n%{_bpfdir}/sid/counter.bpf.o"
    )
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    (pkg,) = (sid_root / "tmp" / "sid-good" / "RPMS").rglob("*.rpm")
    inside = f"/{pkg.relative_to(sid_root)}"
    # rpm >= 4.20 runs the generator with the multifile protocol.
    assert "bpf(sid/counter.bpf.o)" in debroot.run_in(sid_root, "rpm", "-qp", "--provides", inside).stdout
    extracted = debroot.run_in(
        sid_root, "sh", "-c", f"rpm2cpio {inside} | cpio -i --to-stdout ./usr/lib64/bpf/sid/counter.bpf.o | sha256sum"
    )
    assert extracted.stdout.split()[0] == hashlib.sha256(objects.full.read_bytes()).hexdigest()
    bad = _build_in_root(sid_root, "sid-bad", "install -D -m 0644 %{SOURCE0} %{buildroot}/opt/sid/x.o", "/opt/sid/x.o")
    assert bad.returncode != 0
    assert "E: bpf-object-outside-bpfdir /opt/sid/x.o" in bad.stdout + bad.stderr


# --- the distribution's own build check (%_build_pkgcheck_set) is chained, not replaced ---

# Where rpm 4.18 loads a vendor's macros relative to the installed macros.d/macros.bpf
# (its compiled-in macro path: macros.d/macros.* in name order, then the vendor directory).
VENDOR_FILES = {
    "vendor-loaded-first": "/usr/lib/rpm/macros.d/macros.aaa-vendor",
    "vendor-loaded-last": "/usr/lib/rpm/debian/macros",
}


@pytest.fixture
def vendor(installroot, request):
    """A vendor's package check (as OpenMandriva's and Mageia's rpmlint runs) defined in a real macro file
    of the root: it logs its arguments to /tmp/vendor.log and exits with the number in /tmp/vendor-status."""
    check = installroot / "usr/local/bin/vendor-check"
    check.parent.mkdir(parents=True, exist_ok=True)
    check.write_text('#!/bin/sh\necho "vendor-check $*" >> /tmp/vendor.log\nexit "$(cat /tmp/vendor-status)"\n')
    check.chmod(0o755)
    (installroot / "tmp/vendor-status").write_text("0")
    (installroot / "tmp/vendor.log").unlink(missing_ok=True)
    target = installroot / VENDOR_FILES[request.param].lstrip("/")
    saved = target.read_bytes() if target.exists() else None
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("ab") as stream:
        stream.write(b"\n%_build_pkgcheck_set /usr/local/bin/vendor-check --strict\n")
    yield installroot
    if saved is None:
        target.unlink()
    else:
        target.write_bytes(saved)


def _vendor_log(root: Path) -> list[str]:
    log = root / "tmp/vendor.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("vendor", list(VENDOR_FILES), indirect=True)
def test_vendor_check_and_rpm_bpf_both_run(vendor, request):
    order = request.node.callspec.params["vendor"]
    good = _build_in_root(
        vendor,
        f"chain-good-{order}",
        "%bpf_install -d inroot %{SOURCE0}",
        "%dir %{_bpfdir}/inroot\n%{_bpfdir}/inroot/counter.bpf.o",
    )
    out = good.stdout + good.stderr
    assert good.returncode == 0, out[-3000:]
    (pkg,) = (vendor / "tmp" / f"chain-good-{order}" / "RPMS").rglob("*.rpm")
    assert _vendor_log(vendor) == [f"vendor-check --strict /{pkg.relative_to(vendor)}"]
    assert "1 packages checked; 0 errors" in out  # rpm-bpf's own summary: it ran as well

    (vendor / "tmp/vendor-status").write_text("3")
    vendor_fails = _build_in_root(
        vendor,
        f"chain-vendor-fails-{order}",
        "%bpf_install -d inroot %{SOURCE0}",
        "%dir %{_bpfdir}/inroot\n%{_bpfdir}/inroot/counter.bpf.o",
    )
    out = vendor_fails.stdout + vendor_fails.stderr
    assert vendor_fails.returncode != 0 and "Package check" in out and "failed" in out
    assert "1 packages checked; 0 errors" in out  # rpm-bpf still ran after the failing check
    (vendor / "tmp/vendor-status").write_text("0")

    ours_fail = _build_in_root(
        vendor,
        f"chain-ours-fail-{order}",
        "install -D -m 0644 %{SOURCE0} %{buildroot}/opt/inroot/x.o",
        "/opt/inroot/x.o",
    )
    out = ours_fail.stdout + ours_fail.stderr
    assert ours_fail.returncode != 0
    assert f"chain-ours-fail-{order}.x86_64: E: bpf-object-outside-bpfdir /opt/inroot/x.o" in out
    assert len(_vendor_log(vendor)) == 3  # the vendor's check ran on every build


@pytest.mark.parametrize("vendor", ["vendor-loaded-last"], indirect=True)
def test_spec_switching_the_vendor_check_off_keeps_rpm_bpf(vendor):
    """OpenMandriva's specs turn rpmlint off with %define _build_pkgcheck_set %{nil}: rpm-bpf's check stays."""
    bad = _build_in_root(
        vendor,
        "chain-vendor-off",
        "install -D -m 0644 %{SOURCE0} %{buildroot}/opt/inroot/x.o",
        "/opt/inroot/x.o",
        preamble="%define _build_pkgcheck_set %{nil}",
    )
    assert bad.returncode != 0
    assert "chain-vendor-off.x86_64: E: bpf-object-outside-bpfdir /opt/inroot/x.o" in bad.stdout + bad.stderr
    assert _vendor_log(vendor) == []
