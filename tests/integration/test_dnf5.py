"""DNF 5: the libdnf5 plugin and `dnf5 bpf-verify`, for real, in a Debian sid root.

Debian 12 has no dnf5; sid does. A sid tree with dnf5 and its development
packages is made once by debootstrap and cached (tests/support/debroot.py);
each session copies it, builds both C++ shims there with CMake, installs
rpm-bpf into it, and runs real `dnf5 --installroot` transactions against the
createrepo_c repository of rpmbuild-built packages that the DNF 4 tests use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import debroot
from tests.support.dnf import BPFDIR, GOOD_OBJ
from tests.support.dnf5 import CONF, DNF5_PACKAGES, install_checkout
from tests.support.paths import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sid(dnf_repo, tmp_path_factory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("chroot into the sid root needs root")
    try:
        base = debroot.base_tree("sid-dnf5", "sid", DNF5_PACKAGES)
    except debroot.RootUnavailable as exc:
        pytest.skip(f"no Debian sid root with dnf5: {exc}")
    root = debroot.fresh_copy(base, tmp_path_factory.mktemp("sid-dnf5"))
    built = install_checkout(root)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    shutil.copytree(dnf_repo, root / "repo")
    return root


class Dnf5:
    """dnf5 inside the sid root, into a fresh installroot of its own."""

    def __init__(self, root: Path, name: str):
        self.root, self.inst = root, f"/inst-{name}"
        self.configure()

    def configure(self, mode: str = "enforce", fail_on_error: int = 0, command: str = "/usr/bin/rpm-bpf") -> None:
        (self.root / CONF.lstrip("/")).write_text(
            f"[main]\nname = bpf\nenabled = 1\nmode = {mode}\nfail_on_error = {fail_on_error}\n"
            f"verify_after = 1\npolicy =\ncommand = {command}\n"
        )

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return debroot.run_in(
            self.root,
            "dnf5",
            "-y",
            f"--installroot={self.inst}",
            "--setopt=reposdir=/nonexistent",
            "--repofrompath=local,/repo",
            "--setopt=local.gpgcheck=0",
            "--releasever=1",
            *args,
            timeout=300,
        )

    def installed(self, name: str) -> bool:
        return debroot.run_in(self.root, "rpm", "--root", self.inst, "-q", name).returncode == 0

    def path(self, inside: str) -> Path:
        return self.root / self.inst.lstrip("/") / inside.lstrip("/")


@pytest.fixture
def dnf5(sid, request) -> Dnf5:
    return Dnf5(sid, request.node.name.replace("[", "-").replace("]", ""))


def _out(proc) -> str:
    return proc.stdout + proc.stderr


def test_clean_install_passes(dnf5):
    proc = dnf5("install", "xdp-good-1.0")
    assert proc.returncode == 0, _out(proc)
    assert dnf5.installed("xdp-good") and "rpm-bpf" not in _out(proc)


def test_misplaced_object_refused_under_enforce_and_warned_under_warn(dnf5):
    proc = dnf5("install", "misplaced")
    assert proc.returncode == 1, _out(proc)
    assert "rpm-bpf: transaction refused: incoming packages break the BPF object policy" in _out(proc)
    assert "misplaced.x86_64: E: bpf-object-outside-bpfdir /usr/share/misplaced/prog.o" in _out(proc)
    assert not dnf5.installed("misplaced")
    dnf5.configure(mode="warn")
    warned = dnf5("install", "misplaced")
    assert warned.returncode == 0, _out(warned)
    assert "mode=warn, continuing" in _out(warned) and dnf5.installed("misplaced")


@pytest.mark.parametrize("clash", ["xdp-clash-same", "xdp-clash-diff"])
def test_clashing_provides_refused_before_download(dnf5, clash):
    """Identical bytes at one path, other bytes under /usr/lib/bpf: the metadata tells, nothing is fetched."""
    assert dnf5("install", "xdp-good-1.0").returncode == 0
    cache = dnf5.path("/var/cache")
    before = set(cache.rglob("*.rpm"))
    proc = dnf5("install", clash)
    assert proc.returncode == 1, _out(proc)
    assert (
        f"{clash}.x86_64: E: bpf-name-conflict bpf(xdp-good/counter.bpf.o) is also provided by "
        "xdp-good-1.0-1.x86_64 (repository metadata, before download)"
    ) in _out(proc)
    assert {p for p in cache.rglob("*.rpm") if clash in p.name} - before == set()  # never downloaded
    assert not dnf5.installed(clash)


def test_second_claim_of_a_cache_directory_refused_before_download(dnf5):
    """bpf-cache(APP) provides (bpfapp.attr) clash like bpf(NAME): the C++ shim hands them over at goal_resolved."""
    assert dnf5("install", "runtime-user").returncode == 0
    cache = dnf5.path("/var/cache")
    before = set(cache.rglob("*.rpm"))
    proc = dnf5("install", "cache-rival")
    assert proc.returncode == 1, _out(proc)
    assert (
        "cache-rival.x86_64: E: bpf-app-dir-conflict /var/cache/bpf/runtime-user bpf-cache(runtime-user) is also "
        "claimed by runtime-user-1.0-1.x86_64 (repository metadata, before download)"
    ) in _out(proc)
    assert {p for p in cache.rglob("*.rpm") if "cache-rival" in p.name} - before == set()  # never downloaded
    assert not dnf5.installed("cache-rival")


def test_clash_without_provides_refused_on_the_downloaded_file(dnf5):
    assert dnf5("install", "xdp-good-1.0").returncode == 0
    proc = dnf5("install", "xdp-clash-noprov")
    assert proc.returncode == 1, _out(proc)
    assert f"xdp-clash-noprov.x86_64: E: bpf-name-conflict {GOOD_OBJ}" in _out(proc)
    assert "also shipped by xdp-good-1.0-1.x86_64" in _out(proc)


def test_upgrade_keeping_the_name_passes(dnf5):
    assert dnf5("install", "xdp-good-1.0").returncode == 0
    proc = dnf5("upgrade", "xdp-good")
    assert proc.returncode == 0, _out(proc)
    version = debroot.run_in(dnf5.root, "rpm", "--root", dnf5.inst, "-q", "xdp-good").stdout
    assert version.startswith("xdp-good-2.0-1")


def test_bpf_verify_reports_tampering(dnf5):
    assert dnf5("install", "xdp-good-1.0").returncode == 0
    clean = debroot.run_in(dnf5.root, "dnf5", f"--installroot={dnf5.inst}", "bpf-verify")
    assert clean.returncode == 0, _out(clean)
    assert "0 errors" in clean.stdout
    obj = dnf5.path(GOOD_OBJ)
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF
    obj.write_bytes(bytes(data))
    dnf5.path(f"{BPFDIR}/dropped.o").write_bytes(b"\x7fELF at run time")
    proc = debroot.run_in(dnf5.root, "dnf5", f"--installroot={dnf5.inst}", "bpf-verify")
    assert proc.returncode == 1, _out(proc)
    assert f"xdp-good.x86_64: E: bpf-object-modified {GOOD_OBJ}" in proc.stdout
    assert f"rpm-bpf: E: bpf-object-unowned {BPFDIR}/dropped.o" in proc.stdout
    as_json = debroot.run_in(dnf5.root, "dnf5", f"--installroot={dnf5.inst}", "bpf-verify", "--json", "xdp-good")
    assert as_json.returncode == 1 and '"rule": "bpf-object-modified"' in as_json.stdout


def test_bpf_verify_help(sid):
    proc = debroot.run_in(sid, "dnf5", "bpf-verify", "--help")
    assert proc.returncode == 0, _out(proc)
    assert "--json" in proc.stdout and "PACKAGE" in proc.stdout


def test_failing_rpm_bpf_does_not_block_by_default(dnf5):
    dnf5.configure(command="/bin/false")
    proc = dnf5("install", "xdp-good-1.0")
    assert proc.returncode == 0, _out(proc)
    assert "rpm-bpf: internal error of the BPF plugin" in _out(proc)
    assert "goes on without the BPF policy check" in _out(proc)
    assert dnf5.installed("xdp-good")


def test_failing_rpm_bpf_refuses_with_fail_on_error(dnf5):
    dnf5.configure(command="/bin/false", fail_on_error=1)
    proc = dnf5("install", "xdp-good-1.0")
    assert proc.returncode == 1, _out(proc)
    assert "rpm-bpf: internal error of the BPF plugin" in _out(proc)
    assert not dnf5.installed("xdp-good")


def _wrapper(dnf5, name: str, body: str) -> str:
    """A command for bpf.conf: a shell script in the sid root that ends in the real rpm-bpf."""
    script = dnf5.root / "usr/local/bin" / name
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f'#!/bin/sh\n{body}\nexec /usr/bin/rpm-bpf "$@"\n')
    script.chmod(0o755)
    return f"/usr/local/bin/{name}"


def test_one_rpm_bpf_process_serves_every_hook(dnf5):
    """goal_resolved (bpf() provides), pre_transaction and post_transaction: one `rpm-bpf serve`, started early."""
    starts = dnf5.root / "tmp/rpm-bpf-starts"
    starts.unlink(missing_ok=True)
    dnf5.configure(command=_wrapper(dnf5, "rpm-bpf-logged", 'echo "$1" >> /tmp/rpm-bpf-starts'))
    proc = dnf5("install", "xdp-good-1.0")
    assert proc.returncode == 0, _out(proc)
    assert starts.read_text().split() == ["serve"]
    log = "".join(p.read_text(errors="replace") for p in dnf5.path("/").rglob("dnf5.log"))
    for hook in ("repos_configured", "goal_resolved", "pre_transaction", "post_transaction"):
        assert f"rpm-bpf: {hook} took" in log, hook
    # ... and the server still judges: a misplaced object is refused through it.
    refused = dnf5("install", "misplaced")
    assert refused.returncode == 1 and "bpf-object-outside-bpfdir /usr/share/misplaced/prog.o" in _out(refused)
    assert starts.read_text().split() == ["serve", "serve"]


def test_server_that_dies_is_replaced_by_one_shot_runs(dnf5):
    dies = _wrapper(dnf5, "rpm-bpf-dies", 'if [ "$1" = serve ]; then head -c 1 >/dev/null; exit 3; fi')
    dnf5.configure(command=dies)
    proc = dnf5("install", "misplaced")
    assert proc.returncode == 1, _out(proc)
    assert "misplaced.x86_64: E: bpf-object-outside-bpfdir /usr/share/misplaced/prog.o" in _out(proc)
    assert not dnf5.installed("misplaced")


def test_server_speaking_nonsense_is_an_internal_error(dnf5):
    nonsense = _wrapper(
        dnf5, "rpm-bpf-nonsense", 'if [ "$1" = serve ]; then read line; echo "not a status"; exec sleep 300; fi'
    )
    dnf5.configure(command=nonsense)
    proc = dnf5("install", "xdp-good-1.0")
    assert proc.returncode == 0, _out(proc)
    assert (
        "rpm-bpf: internal error of the BPF plugin: goal_resolved: /usr/local/bin/rpm-bpf-nonsense serve "
        "answered something that is not its protocol" in _out(proc)
    )
    assert dnf5.installed("xdp-good")
    dnf5.configure(command=nonsense, fail_on_error=1)
    proc = dnf5("install", "misplaced")
    assert proc.returncode == 1 and "not its protocol" in _out(proc)
    assert not dnf5.installed("misplaced")
    lingering = subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True, text=True)
    assert lingering.stdout == "", "the plugin left its server running"


def test_spec_files_match_what_cmake_installs(sid):
    """The spec's libdnf5-plugin-bpf (--with dnf5; Fedora's %cmake macros are not on Debian, so rpmbuild
    cannot run that part here) must list exactly what the shims' CMake install puts in a root."""
    spec = (REPO / "packaging" / "rpm-bpf.spec").read_text()
    section = spec.split("%files -n libdnf5-plugin-bpf\n", 1)[1].split("%endif", 1)[0]
    # The man page comes from the spec's own generation step, not from CMake.
    listed = {line.split()[-1] for line in section.splitlines() if line.strip() and "%{_mandir}" not in line}
    assert "%{_mandir}/man8/dnf5-bpf-verify.8*" in section
    proc = debroot.run_in(sid, "sh", "-c", "DESTDIR=/staged cmake --install /build")
    assert proc.returncode == 0, _out(proc)
    staged = sid / "staged"
    try:
        installed = {"/" + str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()}
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    libdir = "/usr/lib/x86_64-linux-gnu"  # the sid root's %{_libdir}, as the fixture configured CMake
    expected = {p.replace("%{_libdir}", libdir).replace("%{_sysconfdir}", "/etc") for p in listed}
    assert installed == expected
    names = subprocess.run(
        ["rpmspec", "-q", "--with", "dnf5", "--provides", str(REPO / "packaging/rpm-bpf.spec")],
        capture_output=True,
        text=True,
    )
    assert names.returncode == 0 and "dnf5-command(bpf-verify)" in names.stdout.split("\n")


def test_bpf_verify_loaded_reaches_the_engine(dnf5):
    """dnf5 bpf-verify --loaded hands --loaded to rpm-bpf verify; this root has no bpftool to list the loaded
    programs with, which the engine reports as an input error (exit 2), as it must rather than stay silent."""
    assert dnf5("install", "xdp-good-1.0").returncode == 0
    helped = debroot.run_in(dnf5.root, "dnf5", "bpf-verify", "--help")
    assert "--loaded" in helped.stdout
    proc = debroot.run_in(dnf5.root, "dnf5", f"--installroot={dnf5.inst}", "bpf-verify", "--loaded")
    assert proc.returncode == 2, _out(proc)
    assert "loaded BPF programs: bpftool is not installed" in _out(proc)


def test_bpf_verify_checks_header_signatures_with_trusted_keys(dnf5, kit):
    """dnf5 bpf-verify --trusted-keys reaches rpm-bpf verify, and sid's librpm (rpm 6) checks the signature."""
    shutil.copy(kit["distro_key"], dnf5.root / "distro.asc")
    for name in ("good", "unsigned"):
        shutil.copy(kit["pkgs"][name], dnf5.root / f"{name}.rpm")
    inst = dnf5.path("/")
    inst.mkdir(parents=True, exist_ok=True)

    def rpm(*args: str) -> subprocess.CompletedProcess:
        return debroot.run_in(dnf5.root, "rpm", "--root", dnf5.inst, *args)

    assert rpm("--import", "/distro.asc").returncode == 0
    assert rpm("-i", "--nodeps", "/good.rpm").returncode == 0
    verify = ("dnf5", f"--installroot={dnf5.inst}", "bpf-verify", "--trusted-keys", "/distro.asc")
    clean = debroot.run_in(dnf5.root, *verify)
    assert clean.returncode == 0, _out(clean)
    assert "1 package signatures checked; 1 verified." in clean.stdout
    assert rpm("-U", "--nodeps", "--replacepkgs", "--nosignature", "/unsigned.rpm").returncode == 0
    caught = debroot.run_in(dnf5.root, *verify)
    assert caught.returncode == 1, _out(caught)
    assert "P.x86_64: E: bpf-package-unsigned no header signature in the rpm database" in caught.stdout


def test_check_after_the_transaction_takes_trusted_keys_from_the_conf(dnf5, kit):
    shutil.copy(kit["distro_key"], dnf5.root / "distro.asc")
    conf = dnf5.root / CONF.lstrip("/")
    conf.write_text(conf.read_text() + "trusted_keys = /distro.asc\n")
    proc = dnf5("install", "xdp-good-1.0")  # the test repository's packages are not signed
    assert proc.returncode == 0, _out(proc)
    assert "xdp-good.x86_64: E: bpf-package-unsigned no header signature" in _out(proc)
