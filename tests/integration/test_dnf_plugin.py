"""The DNF 4 plugin, `dnf bpf-verify` and `rpm-bpf verify`, with real dnf, rpm and createrepo_c.

Each test gets a fresh --installroot; packages come from a createrepo_c
repository of RPMs built by rpmbuild. The plugin is loaded from this tree
(--setopt=pluginpath) with a bpf.conf written per test. The repository is the
``dnf_repo`` fixture (tests/integration/conftest.py), shared with other modules.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from tests.support.cli import run_cli
from tests.support.dnf import BPFDIR, GOOD_OBJ, Dnf, output
from tests.support.paths import open_to_others

pytestmark = pytest.mark.integration


@pytest.fixture
def dnf(dnf_repo, tmp_path) -> Dnf:
    return Dnf(dnf_repo, tmp_path / "root", tmp_path / "plugconf")


def test_clean_install_passes(dnf):
    proc = dnf("install", "xdp-good-1.0")
    assert proc.returncode == 0, output(proc)
    assert dnf.installed("xdp-good") and "rpm-bpf" not in output(proc)


def test_misplaced_object_refused_under_enforce(dnf):
    proc = dnf("install", "misplaced")
    assert proc.returncode == 1
    assert "rpm-bpf: transaction refused" in proc.stderr
    assert "misplaced.x86_64: E: bpf-object-outside-bpfdir /usr/share/misplaced/prog.o" in proc.stderr
    assert not dnf.installed("misplaced")


def test_misplaced_object_installed_with_warning_under_warn(dnf):
    dnf.configure(mode="warn")
    proc = dnf("install", "misplaced")
    assert proc.returncode == 0, output(proc)
    assert "mode=warn, continuing" in output(proc)
    assert "E: bpf-object-outside-bpfdir /usr/share/misplaced/prog.o" in output(proc)
    assert dnf.installed("misplaced")


@pytest.mark.parametrize("clash", ["xdp-clash-same", "xdp-clash-diff"])
def test_clashing_bpf_provides_are_refused_before_download(dnf, clash):
    """Identical bytes at the same path (rpm would allow it) and other bytes under the other BPF directory:
    the bpf() provides in the repository metadata already tell, at `resolved`."""
    assert dnf("install", "xdp-good-1.0").returncode == 0
    proc = dnf("install", clash)
    assert proc.returncode == 1
    assert (
        f"{clash}.x86_64: E: bpf-name-conflict bpf(xdp-good/counter.bpf.o) is also provided by "
        "xdp-good-1.0-1.x86_64 (repository metadata, before download)"
    ) in proc.stderr
    assert "Running transaction check" not in proc.stdout  # refused before the downloaded files were read
    assert not dnf.installed(clash)


def test_clash_without_provides_is_refused_on_the_downloaded_files(dnf):
    assert dnf("install", "xdp-good-1.0").returncode == 0
    proc = dnf("install", "xdp-clash-noprov")
    assert proc.returncode == 1
    assert f"xdp-clash-noprov.x86_64: E: bpf-name-conflict {GOOD_OBJ}" in proc.stderr
    assert "also shipped by xdp-good-1.0-1.x86_64" in proc.stderr
    assert not dnf.installed("xdp-clash-noprov")


def test_clash_in_one_transaction_from_an_http_repository_downloads_nothing(dnf_repo, tmp_path):
    """Both sides incoming, served over HTTP on loopback: refused before a package reaches dnf's cache."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(dnf_repo))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dnf = Dnf(dnf_repo, tmp_path / "root", tmp_path / "plugconf")
        dnf.options = lambda: [
            f"--installroot={dnf.root}",
            "--setopt=reposdir=/nonexistent",
            f"--repofrompath=web,http://127.0.0.1:{server.server_port}/",
            "--setopt=web.gpgcheck=0",
            "--releasever=1",
        ]
        proc = dnf("install", "xdp-good-1.0", "xdp-clash-same")
        downloaded = list(dnf.root.rglob("*.rpm"))
        allowed = dnf("install", "--setopt=keepcache=1", "xdp-good-1.0")  # the repository does serve packages
    finally:
        server.shutdown()
    assert proc.returncode == 1, output(proc)
    assert "xdp-clash-same.x86_64: E: bpf-name-conflict bpf(xdp-good/counter.bpf.o)" in proc.stderr
    assert "xdp-good.x86_64: E: bpf-name-conflict bpf(xdp-good/counter.bpf.o)" in proc.stderr
    assert downloaded == []  # refused before download
    assert allowed.returncode == 0 and list(dnf.root.rglob("xdp-good-1.0-*.rpm")), output(allowed)


def test_owners_of_paths_come_from_the_file_index(dnf):
    """The plugin's installed side of a conflict: owners of exact paths, each package once."""
    from rpm_bpf.sources import rpmdb

    dnf.configure(mode="warn")  # enforce would (rightly) refuse "misplaced"
    assert dnf("install", "xdp-good-1.0", "misplaced").returncode == 0
    owners = list(
        rpmdb.owners(
            str(dnf.root), [GOOD_OBJ, f"{BPFDIR}/xdp-good", f"{BPFDIR}/absent.o", "/usr/share/misplaced/prog.o"]
        )
    )
    assert sorted(p.ref.nevra for p in owners) == ["misplaced-1.0-1.x86_64", "xdp-good-1.0-1.x86_64"]
    good = next(p for p in owners if p.ref.name == "xdp-good")
    assert GOOD_OBJ in {f.path for f in good.files}
    assert list(rpmdb.owners(str(dnf.root), [f"{BPFDIR}/absent.o"])) == []


def test_upgrade_keeping_the_name_is_not_a_conflict(dnf):
    assert dnf("install", "xdp-good-1.0").returncode == 0
    proc = dnf("upgrade", "xdp-good")
    assert proc.returncode == 0, output(proc)
    out = subprocess.run(["rpm", "--root", str(dnf.root), "-q", "xdp-good"], capture_output=True, text=True).stdout
    assert out.startswith("xdp-good-2.0-1")


def test_ghosts_in_runtime_locations_are_fine(dnf):
    proc = dnf("install", "runtime-user")
    assert proc.returncode == 0 and "rpm-bpf" not in output(proc), output(proc)


def test_plugin_crash_does_not_break_the_transaction_by_default(dnf):
    proc = dnf("install", "misplaced", env={"RPM_BPF_DNF_TEST_CRASH": "1"})
    assert proc.returncode == 0, output(proc)
    assert "rpm-bpf: internal error of the BPF plugin" in output(proc)
    assert "goes on without the BPF policy check" in output(proc)
    assert dnf.installed("misplaced")


def test_plugin_crash_refuses_with_fail_on_error(dnf):
    dnf.configure(fail_on_error=1)
    proc = dnf("install", "xdp-good-1.0", env={"RPM_BPF_DNF_TEST_CRASH": "1"})
    assert proc.returncode == 1 and "internal error of the BPF plugin" in proc.stderr
    assert not dnf.installed("xdp-good")


# --- verification after install ---------------------------------------------


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _tamper_cases(root: Path):
    obj = root / GOOD_OBJ.lstrip("/")
    return {
        "flip": (lambda: _flip(obj), {("xdp-good", "bpf-object-modified", GOOD_OBJ)}),
        "delete": (lambda: obj.unlink(), {("xdp-good", "bpf-object-missing", GOOD_OBJ)}),
        # World-writable: the mode change, and what it means for a packaged object.
        "chmod": (
            lambda: obj.chmod(0o666),
            {("xdp-good", "bpf-object-attrs-changed", GOOD_OBJ), ("xdp-good", "bpf-object-writable", GOOD_OBJ)},
        ),
        "symlink": (
            lambda: (obj.unlink(), obj.symlink_to("/etc/hostname")),
            {("xdp-good", "bpf-object-modified", GOOD_OBJ)},
        ),
        "unowned": (
            lambda: (root / "usr/lib64/bpf/dropped.o").write_bytes(b"\x7fELF runtime"),
            {(None, "bpf-object-unowned", f"{BPFDIR}/dropped.o")},
        ),
    }


@pytest.mark.parametrize("case", ["flip", "delete", "chmod", "symlink", "unowned"])
def test_tampering_is_reported_by_both_verifiers(dnf, case):
    assert dnf("install", "xdp-good-1.0").returncode == 0
    clean = run_cli("verify", "--root", dnf.root, "--no-system-policy")
    assert clean.returncode == 0 and "0 errors, 0 warnings" in clean.stdout, clean.stdout
    tamper, expected = _tamper_cases(dnf.root)[case]
    tamper()
    cli = run_cli("verify", "--root", dnf.root, "--no-system-policy", "-f", "json")
    assert cli.returncode == 1, cli.stdout + cli.stderr
    found = {(f["package"]["name"] if f["package"] else None, f["rule"], f["path"]) for f in cli.json()["findings"]}
    assert found == expected
    via_dnf = dnf("bpf-verify", "--json")
    assert via_dnf.returncode == 1
    doc = json.loads(via_dnf.stdout[via_dnf.stdout.index("{") :])
    assert {(f["package"]["name"] if f["package"] else None, f["rule"], f["path"]) for f in doc["findings"]} == expected
    text = dnf("bpf-verify")
    assert text.returncode == 1 and all(rule in text.stdout for _, rule, _ in expected)


def test_symlink_is_not_followed(dnf):
    assert dnf("install", "xdp-good-1.0").returncode == 0
    obj = dnf.root / GOOD_OBJ.lstrip("/")
    target = dnf.root / "copy.o"
    shutil.copy(obj, target)  # identical bytes behind the link
    obj.unlink()
    obj.symlink_to(target)
    (finding,) = run_cli("verify", "--root", dnf.root, "--no-system-policy", "-f", "json").json()["findings"]
    assert finding["rule"] == "bpf-object-modified" and "replaced by a symbolic link" in finding["detail"]


def test_bpf_verify_json_schema_and_package_filter(dnf):
    assert dnf("install", "xdp-good-1.0", "runtime-user").returncode == 0
    _flip(dnf.root / GOOD_OBJ.lstrip("/"))
    proc = dnf("bpf-verify", "--json", "runtime-user")
    assert proc.returncode == 0, output(proc)  # only runtime-user verified: its ghost may change
    doc = json.loads(proc.stdout[proc.stdout.index("{") :])
    schema = json.loads(resources.files("rpm_bpf").joinpath("data/report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["summary"]["packages"] == 1 and doc["findings"] == []
    missing = run_cli("verify", "--root", dnf.root, "no-such-package")
    assert missing.returncode == 2 and "no-such-package: package is not installed" in missing.stderr


def test_repair_reinstalls_through_dnf(dnf):
    assert dnf("install", "xdp-good-1.0").returncode == 0
    obj = dnf.root / GOOD_OBJ.lstrip("/")
    _flip(obj)
    said = run_cli("verify", "--root", dnf.root, "--no-system-policy", "--repair")
    assert said.returncode == 1 and "dnf reinstall -y" in said.stderr and "xdp-good-1.0-1.x86_64" in said.stderr
    args = [f"--dnf-arg={a}" for a in dnf.options()[1:]]  # the installroot is given by --root
    done = run_cli("verify", "--root", dnf.root, "--no-system-policy", "--repair", "--yes", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "repaired 1 package(s); 0 finding(s) left" in done.stderr
    assert run_cli("verify", "--root", dnf.root, "--no-system-policy").returncode == 0


def test_unreadable_object_as_ordinary_user(dnf, as_nobody):
    assert dnf("install", "xdp-good-1.0").returncode == 0
    open_to_others(dnf.root)
    obj = dnf.root / GOOD_OBJ.lstrip("/")
    readable = as_nobody("verify", "--root", dnf.root, "--no-system-policy")
    assert readable.returncode == 0, readable.stdout + readable.stderr
    obj.chmod(0o600)
    proc = as_nobody("verify", "--root", dnf.root, "--no-system-policy")
    assert proc.returncode == 2
    assert f"{obj}: cannot verify: Permission denied" in proc.stderr
    # Unreadable is not "modified"; the mode change is what differs from the package.
    assert "bpf-object-modified" not in proc.stdout
    assert "bpf-object-attrs-changed" in proc.stdout


def test_path_scoped_waiver_holds_before_download(dnf, tmp_path):
    """A waiver for the object's path applies to the metadata check too, whichever BPF directory holds it."""
    policy = tmp_path / "waive.toml"
    policy.write_text(
        '[[waiver]]\nrule = "bpf-name-conflict"\npackage = "xdp-clash-diff"\n'
        'path = "/usr/lib/bpf/xdp-good/*"\nreason = "transition, bug 7"\n'
    )
    (dnf.confdir / "bpf.conf").write_text(f"[main]\nenabled = 1\nmode = enforce\npolicy = {policy}\n")
    assert dnf("install", "xdp-good-1.0").returncode == 0
    proc = dnf("install", "xdp-clash-diff")
    assert proc.returncode == 0, output(proc)
    assert dnf.installed("xdp-clash-diff")
