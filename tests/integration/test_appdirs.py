"""Application directories for BPF objects compiled at start-up (/var/cache/bpf/APP) or at run time (/run/APP),
for real: specs using the macros built with rpmbuild, installed with rpm and with DNF 4, the tmpfiles.d entries
applied by systemd-tmpfiles, clashes refused by scan, by the gate against a createrepo_c repository and by DNF
before download, and verify / clean-cache on a root with left-behind, stale and planted caches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.test_macros import build
from tests.support.cli import run_cli
from tests.support.dnf import Dnf, output, require_dnf

pytestmark = pytest.mark.integration
CACHE = "/var/cache/bpf"
TMPFILES = "/usr/lib/tmpfiles.d"

APP_SPEC = {
    "install": "%bpf_cache_dir -a 30d {app}\n%bpf_runtime_dir -m 0750 {app}",
    "files": "%bpf_cache_dir_files {app} prog.o\n%bpf_runtime_dir_files {app}",
}


def _build(d: Path, name: str, app: str) -> Path:
    spec = {k: v.format(app=app) for k, v in APP_SPEC.items()}
    b = build(d / name, name, spec["install"], spec["files"], {})
    assert b.proc.returncode == 0, b.output
    (rpm,) = b.rpms
    return rpm


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> dict[str, Path]:
    """RPMs built from specs with the macros: xdptool (its own cache), rival (xdptool's cache name), and a
    createrepo_c repository holding xdptool."""
    require_dnf()
    d = tmp_path_factory.mktemp("appdirs")
    rpms = {
        "xdptool": _build(d, "xdptool", "xdptool"),
        "rival": _build(d, "rival", "xdptool"),  # another package claiming xdptool's directories
        "freshapp": _build(d, "freshapp", "freshapp"),
    }
    # owns xdptool's cache directory, built without dependency generators: no provide tells, only its files
    b = build(
        d / "noprov",
        "noprov",
        f"mkdir -p %{{buildroot}}{CACHE}/xdptool",
        f"%dir {CACHE}/xdptool",
        {},
        extra="AutoProv: no",
    )
    assert b.proc.returncode == 0, b.output
    rpms["noprov"] = b.rpms[0]
    assert not any(p.startswith("bpf-cache(") for p in _qp(rpms["noprov"], "--provides"))
    repo = d / "repo"
    repo.mkdir()
    for key in ("xdptool", "rival", "freshapp", "noprov"):
        shutil.copy(rpms[key], repo)
    subprocess.run(["createrepo_c", "-q", str(repo)], check=True)
    rpms["repo"] = repo
    return rpms


def _qp(rpm: Path, *query: str) -> list[str]:
    out = subprocess.run(["rpm", "-qp", *query, str(rpm)], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def _rpm_root(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rpm", "--root", str(root), "--nodeps", *args], capture_output=True, text=True)


def test_macros_make_directories_tmpfiles_entries_and_provides(kit, tmp_path):
    rpm = kit["xdptool"]
    assert {"bpf-cache(xdptool)", "bpf-runtime(xdptool)"} <= set(_qp(rpm, "--provides"))
    listing = dict(line.split("=", 1) for line in _qp(rpm, "--qf", "[%{FILENAMES}=%{FILEFLAGS:fflags}\n]"))
    assert listing[f"{CACHE}/xdptool"] == "" and listing["/run/xdptool"] == ""
    assert listing[f"{CACHE}/xdptool/prog.o"] == "g"  # %ghost
    assert {f"{TMPFILES}/bpf-cache-xdptool.conf", f"{TMPFILES}/bpf-runtime-xdptool.conf"} <= set(listing)
    # Installed with rpm; the tmpfiles.d entries applied by the real systemd-tmpfiles --root.
    root = tmp_path / "root"
    proc = _rpm_root(root, "-i", str(rpm))
    assert proc.returncode == 0, proc.stderr
    conf = (root / TMPFILES.lstrip("/") / "bpf-cache-xdptool.conf").read_text()
    assert f"d {CACHE}/xdptool 0755 root root 30d" in conf
    assert "d /run/xdptool 0750 root root -" in (root / TMPFILES.lstrip("/") / "bpf-runtime-xdptool.conf").read_text()
    if shutil.which("systemd-tmpfiles") is None:
        pytest.skip("systemd-tmpfiles is not installed (Debian's systemd package has it)")
    shutil.rmtree(root / "run" / "xdptool")
    shutil.rmtree(root / CACHE.lstrip("/") / "xdptool")
    done = subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (root / "run/xdptool").is_dir() and (root / "run/xdptool").stat().st_mode & 0o777 == 0o750
    assert (root / CACHE.lstrip("/") / "xdptool").is_dir()


def test_invalid_application_names_fail_the_build(tmp_path):
    b = build(tmp_path, "badapp", "%bpf_cache_dir ../etc", "%bpf_cache_dir_files badapp", {})
    assert b.proc.returncode != 0
    assert "%bpf_cache_dir: '../etc' is not an application name" in b.output


def test_scan_reports_two_packages_claiming_one_app(kit):
    res = run_cli("scan", "-q", "--no-system-policy", "-f", "json", kit["xdptool"], kit["rival"])
    assert res.returncode == 1, res.stderr
    found = [(f["rule"], f["package"]["name"], f["path"]) for f in res.json()["findings"]]
    assert ("bpf-app-dir-conflict", "rival", f"{CACHE}/xdptool") in found
    assert ("bpf-app-dir-conflict", "xdptool", f"{CACHE}/xdptool") in found
    assert ("bpf-app-dir-conflict", "rival", "/run/xdptool") in found  # the runtime provide clashes too
    assert ("bpf-app-dir-unnamed", "rival", f"{CACHE}/xdptool") in found
    alone = run_cli("scan", "-q", "--no-system-policy", "-f", "json", kit["xdptool"])
    assert alone.returncode == 0 and alone.json()["findings"] == [], alone.stdout


def test_shipped_files_in_a_cache_fail_the_build_check(tmp_path):
    """A file (not %ghost) in /var/cache/bpf: the build-time check refuses it, naming the macros."""
    b = build(
        tmp_path,
        "shipper",
        f"mkdir -p %{{buildroot}}{CACHE}/shipper && echo x > %{{buildroot}}{CACHE}/shipper/state",
        f"%dir {CACHE}/shipper\n{CACHE}/shipper/state",
        {},
    )
    assert b.proc.returncode != 0
    assert f"E: bpf-app-dir-file {CACHE}/shipper/state" in b.output and "%bpf_cache_dir_files" in b.output


def test_gate_refuses_a_new_build_claiming_a_repository_app(kit, tmp_path):
    # The repository holds xdptool and rival: a new rival claims xdptool's cache; a new xdptool replaces its own.
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(kit["xdptool"], repo)
    subprocess.run(["createrepo_c", "-q", str(repo)], check=True)
    res = run_cli("scan", "-q", "--no-system-policy", "-f", "json", "--against", repo, kit["rival"])
    assert res.returncode == 1, res.stderr
    clashes = [f for f in res.json()["findings"] if f["rule"] == "bpf-app-dir-conflict"]
    assert {f["path"] for f in clashes} == {f"{CACHE}/xdptool", "/run/xdptool"}
    assert all(f["related"] == ["xdptool-1.0-1.x86_64"] and "repository metadata" in f["detail"] for f in clashes)
    upgrade = run_cli("scan", "-q", "--no-system-policy", "-f", "json", "--against", repo, kit["xdptool"])
    assert upgrade.returncode == 0, upgrade.stdout


def test_dnf_installs_and_refuses_a_second_claim_before_download(kit, tmp_path):
    dnf = Dnf(kit["repo"], tmp_path / "root", tmp_path / "plugconf")
    proc = dnf("install", "xdptool")
    assert proc.returncode == 0, output(proc)
    assert (dnf.root / CACHE.lstrip("/") / "xdptool").is_dir()
    refused = dnf("install", "rival")
    assert refused.returncode == 1, output(refused)
    assert (
        f"rival.x86_64: E: bpf-app-dir-conflict {CACHE}/xdptool bpf-cache(xdptool) is also claimed by "
        "xdptool-1.0-1.x86_64 (repository metadata, before download)"
    ) in refused.stderr
    assert "Running transaction check" not in refused.stdout
    assert not dnf.installed("rival")
    # without provides, the downloaded file's directory tells: refused before the transaction runs
    files = dnf("install", "noprov")
    assert files.returncode == 1, output(files)
    assert (
        f"noprov.x86_64: E: bpf-app-dir-conflict {CACHE}/xdptool bpf-cache(xdptool) is also claimed by" in files.stderr
    )
    assert "before download" not in files.stderr and not dnf.installed("noprov")
    # and the installed system verifies clean
    res = run_cli("verify", "--root", dnf.root, "-q", "--no-system-policy", "-f", "json")
    assert res.returncode == 0 and res.json()["findings"] == [], res.stdout


def _age(path: Path, seconds_ago: float) -> None:
    t = time.time() - seconds_ago
    os.utime(path, (t, t), follow_symlinks=False)


def test_verify_reports_and_clean_cache_removes_left_behind_and_stale(kit, tmp_path):
    root = tmp_path / "root"
    for key in ("xdptool", "freshapp"):
        proc = _rpm_root(root, "-i", str(kit[key]))
        assert proc.returncode == 0, proc.stderr
    cache = root / CACHE.lstrip("/")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("must survive\n")
    # left behind: a whole directory, and a symlink pointing out of the root
    (cache / "gone").mkdir()
    (cache / "gone" / "jit.o").write_bytes(b"old object")
    (cache / "escape").symlink_to(outside)
    # stale: xdptool's objects written a day before its package was installed, a symlink among them
    (cache / "xdptool" / "prog.o").write_bytes(b"compiled before the install")
    (cache / "xdptool" / "link").symlink_to(outside / "secret")
    (cache / "xdptool" / "sub").mkdir()
    (cache / "xdptool" / "sub" / "x.o").write_bytes(b"x")
    for p in ("prog.o", "link", "sub/x.o", "sub"):
        _age(cache / "xdptool" / p, 86400)
    # claimed and fresh: kept
    (cache / "freshapp" / "prog.o").write_bytes(b"just compiled")

    res = run_cli("verify", "--root", root, "-q", "--no-system-policy", "-f", "json")
    found = {(f["rule"], f["path"]) for f in res.json()["findings"]}
    assert found == {
        ("bpf-cache-left-behind", f"{CACHE}/gone"),
        ("bpf-cache-left-behind", f"{CACHE}/escape"),
        ("bpf-cache-stale", f"{CACHE}/xdptool"),
    }, res.stdout
    assert res.returncode == 0  # warnings only
    stale = next(f for f in res.json()["findings"] if f["rule"] == "bpf-cache-stale")
    assert stale["package"]["name"] == "xdptool" and "before its package was installed" in stale["detail"]

    dry = run_cli("clean-cache", "--root", root, "--dry-run", "--no-system-policy")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove {CACHE}/gone" in dry.stdout and f"would remove contents of {CACHE}/xdptool" in dry.stdout
    assert (cache / "gone").exists() and (cache / "xdptool" / "prog.o").exists()  # nothing removed

    named = run_cli("clean-cache", "--root", root, "--no-system-policy", "freshapp")
    assert named.returncode == 0 and "kept /var/cache/bpf/freshapp: claimed by an installed package" in named.stdout
    assert (cache / "freshapp" / "prog.o").exists()

    done = run_cli("clean-cache", "--root", root, "--no-system-policy", "-f", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {(r["path"], r["what"], r["removed"]) for r in done.json()["removals"]} == {
        (f"{CACHE}/gone", "entry", True),
        (f"{CACHE}/escape", "entry", True),
        (f"{CACHE}/xdptool", "contents", True),
    }
    assert not (cache / "gone").exists() and not os.path.lexists(cache / "escape")
    assert (cache / "xdptool").is_dir() and list((cache / "xdptool").iterdir()) == []
    assert (outside / "secret").read_text() == "must survive\n"  # no symlink followed
    assert (cache / "freshapp" / "prog.o").exists()
    again = run_cli("verify", "--root", root, "-q", "--no-system-policy", "-f", "json")
    assert again.json()["findings"] == [], again.stdout


def test_a_cache_older_than_the_running_kernel_is_stale(kit, tmp_path):
    root = tmp_path / "root"
    assert _rpm_root(root, "-i", str(kit["freshapp"])).returncode == 0
    obj = root / CACHE.lstrip("/") / "freshapp" / "prog.o"
    obj.write_bytes(b"compiled for the old kernel")
    modules = root / "usr/lib/modules" / os.uname().release
    modules.mkdir(parents=True)
    _age(obj, -5)  # after the package's installation...
    os.utime(modules, (time.time() + 60, time.time() + 60))  # ...but before the running kernel's
    res = run_cli("verify", "--root", root, "-q", "--no-system-policy", "-f", "json")
    (finding,) = res.json()["findings"]
    assert finding["rule"] == "bpf-cache-stale" and "running kernel" in finding["detail"]


def test_erase_leaves_what_the_application_wrote_and_verify_says_so(kit, tmp_path):
    """rpm -e removes the directory only when empty: an object the application compiled stays behind."""
    root = tmp_path / "root"
    assert _rpm_root(root, "-i", str(kit["xdptool"])).returncode == 0
    (root / CACHE.lstrip("/") / "xdptool" / "unlisted.o").write_bytes(b"written at run time")
    assert _rpm_root(root, "-e", "xdptool").returncode == 0
    assert (root / CACHE.lstrip("/") / "xdptool" / "unlisted.o").exists()
    res = run_cli("verify", "--root", root, "-q", "--no-system-policy", "-f", "json")
    assert [(f["rule"], f["path"]) for f in res.json()["findings"]] == [("bpf-cache-left-behind", f"{CACHE}/xdptool")]
    assert run_cli("clean-cache", "--root", root, "--no-system-policy").returncode == 0
    assert not (root / CACHE.lstrip("/") / "xdptool").exists()


def test_clean_cache_refuses_a_symlinked_cache_directory(kit, tmp_path):
    root = tmp_path / "root"
    assert _rpm_root(root, "-i", str(kit["freshapp"])).returncode == 0
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    cache = root / CACHE.lstrip("/")
    shutil.rmtree(cache)
    cache.symlink_to(outside)
    res = run_cli("clean-cache", "--root", root, "--no-system-policy")
    assert res.returncode == 2 and "not a directory; not followed" in res.stderr and "Traceback" not in res.stderr
    assert (outside / "victim").is_dir()
