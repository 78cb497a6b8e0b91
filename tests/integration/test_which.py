"""`rpm-bpf which` on the real kernel: programs loaded from installed packages are traced back to them.

Packages built by rpmbuild and installed by dnf into an installroot; their
objects loaded with bpftool (libbpf) and by a packaged loader (a libbpf
skeleton that keeps its programs loaded), pinned under a test-owned bpffs
directory and always removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from rpm_bpf.samples import build as samples
from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.support import realworld
from tests.support.builders import holding_loader
from tests.support.kernel import loadall
from tests.support.paths import REPO
from tests.support.programs import CORE_C, SUBPROGRAMS_C

pytestmark = pytest.mark.integration
ENV = dict(os.environ, PYTHONPATH=str(REPO))

LONG_NAME_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int xdp_program_with_a_rather_long_name(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def system(rpms, objects, bpfdir, tmp_path_factory, bpffs) -> Path:
    work = tmp_path_factory.mktemp("which")
    sub = samples.compile_bpf(SUBPROGRAMS_C, work / "sub.bpf.o")
    long = samples.compile_bpf(LONG_NAME_C, work / "long.bpf.o")
    core = samples.compile_bpf(CORE_C, work / "core.bpf.o")
    loader = holding_loader(objects.full, work / "skel" / "which-loader")
    specs = [
        PkgSpec(
            "bpf-filesystem",
            files=[PkgFile(bpfdir, directory=True, mode=0o755), PkgFile("/usr/lib/bpf", directory=True, mode=0o755)],
        ),
        PkgSpec(
            "which-obj",
            files=[
                PkgFile(f"{bpfdir}/which-obj", directory=True, mode=0o755),
                PkgFile(f"{bpfdir}/which-obj/full.bpf.o", objects.full),
                PkgFile(f"{bpfdir}/which-obj/sub.bpf.o", sub),
                PkgFile(f"{bpfdir}/which-obj/long.bpf.o", long),
                PkgFile(f"{bpfdir}/which-obj/core.bpf.o", core),
            ],
        ),
        PkgSpec("which-loader", files=[PkgFile("/usr/bin/which-loader", loader, mode=0o755)]),
    ]
    root = work / "root"
    root.mkdir()
    # rpm itself installs them: --nodeps, as the loader needs libbpf and glibc, which this root does not have
    # (it runs with the host's libraries).
    built = [str(rpms.build(spec)) for spec in specs]
    proc = subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", *built], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return root


def _load(bpffs: Path, obj: Path) -> tuple[Path, dict[str, int]]:
    pins, shown = loadall(bpffs, obj, "rpm-bpf-which")
    return pins, {name: info["id"] for name, info in shown.items()}


def _which(root: Path, *args: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "which", "--root", str(root), "--no-cache", "-f", "json", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, json.loads((REPO / "rpm_bpf/data/which.schema.json").read_text()))
    return proc.returncode, doc


def test_installed_objects_loaded_by_bpftool_are_matched_by_tag(system, bpffs, bpfdir):
    pins, ids = [], {}
    try:
        for name in ("full", "sub", "long"):
            pin, loaded = _load(bpffs, system / bpfdir.lstrip("/") / "which-obj" / f"{name}.bpf.o")
            pins.append(pin)
            ids.update(loaded)
        status, doc = _which(system, *map(str, ids.values()))
        assert status == 0
        by_name = {p["name"]: p for p in doc["programs"]}
        # The kernel keeps 15 characters of a name; bpftool 7 shows the whole one, from the program's BTF.
        long_name = "xdp_program_with_a_rather_long_name"
        assert set(by_name) == set(ids) == {"xdp_count", "tc_pass", "xdp_sub", "tc_sub", long_name}
        for name, expected in (
            ("xdp_count", ("full", "xdp")),
            ("tc_pass", ("full", "tc")),
            ("xdp_sub", ("sub", "xdp")),
            ("tc_sub", ("sub", "tc")),
            (long_name, ("long", "xdp")),
        ):
            prog = by_name[name]
            # bpftool is no package of this root: the tag alone says where the program came from
            assert prog["confidence"] == "tag", prog
            # full.bpf.o's programs are also embedded in which-loader: every package shipping them is named
            assert {
                "package": "which-obj-1.0-1.x86_64",
                "path": f"{bpfdir}/which-obj/{expected[0]}.bpf.o",
                "offset": None,
                "section": expected[1],
            }.items() <= next(s for s in prog["sources"] if s["package"].startswith("which-obj")).items()
        assert by_name[long_name]["sources"][0]["program"] == long_name
        assert [s["package"] for s in by_name["xdp_sub"]["sources"]] == ["which-obj-1.0-1.x86_64"]
    finally:
        for pin in pins:
            shutil.rmtree(pin, ignore_errors=True)


def test_packaged_loader_holding_its_programs_is_certain(system):
    loader = subprocess.Popen([str(system / "usr/bin/which-loader")], stdout=subprocess.PIPE, text=True)
    try:
        assert loader.stdout.readline().strip() == "loaded"
        status, doc = _which(system)
        assert status == 0
        mine = [p for p in doc["programs"] if any(ld["pid"] == loader.pid for ld in p["loaders"])]
        assert {p["name"] for p in mine} == {"xdp_count", "tc_pass"}
        for prog in mine:
            assert prog["confidence"] == "certain", prog
            (loader_info,) = prog["loaders"]
            assert loader_info["package"].startswith("which-loader-1.0-1")
            assert loader_info["executable"] == str(system / "usr/bin/which-loader")
            packages = {s["package"].split("-1.0-1")[0] for s in prog["sources"]}
            assert "which-loader" in packages  # the object embedded in the loader itself
            embedded = [s for s in prog["sources"] if s["path"] == "/usr/bin/which-loader"]
            assert embedded and embedded[0]["offset"] > 0
    finally:
        loader.kill()
        loader.wait()


def test_changed_copy_is_unknown_and_strict_reports_it(system, bpffs, bpfdir, tmp_path):
    changed = samples.compile_bpf(
        LONG_NAME_C.replace("XDP_PASS", "XDP_DROP").replace("xdp_program_with_a_rather_long_name", "hand_made_prog"),
        tmp_path / "changed.bpf.o",
    )
    pin, ids = _load(bpffs, changed)
    try:
        status, doc = _which(system, str(ids["hand_made_prog"]))
        assert status == 0 and doc["programs"][0]["confidence"] == "unknown"
        status, doc = _which(system, "--strict", str(ids["hand_made_prog"]))
        assert status == 1
        (finding,) = doc["findings"]
        assert finding["rule"] == "bpf-program-unpackaged" and finding["severity"] == "warning"
        assert f"pinned at {pin}" in finding["detail"]
        for fmt in ("junit", "sarif", "text"):
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "rpm_bpf",
                    "which",
                    "--root",
                    str(system),
                    "--strict",
                    "-f",
                    fmt,
                    str(ids["hand_made_prog"]),
                ],
                capture_output=True,
                text=True,
                env=ENV,
            )
            assert proc.returncode == 1 and "bpf-program-unpackaged" in proc.stdout, fmt
        # --strict honours the policy like verify --loaded does: waivers, severities, "off".
        prog = str(ids["hand_made_prog"])
        waiver = tmp_path / "waiver.toml"
        waiver.write_text(f'[[waiver]]\nrule = "bpf-program-unpackaged"\npath = "bpf-prog:{prog}"\nreason = "ours"\n')
        status, doc = _which(system, "--strict", "--no-system-policy", "--policy", str(waiver), prog)
        assert status == 0 and [f["waived"] for f in doc["findings"]] == [True], doc["findings"]
        for level, want_status, want in (("off", 0, []), ("error", 1, ["error"])):
            policy = tmp_path / f"{level}.toml"
            policy.write_text(f'[severity]\n"bpf-program-unpackaged" = "{level}"\n')
            status, doc = _which(system, "--strict", "--no-system-policy", "--policy", str(policy), prog)
            assert (status, [f["severity"] for f in doc["findings"]]) == (want_status, want), level
    finally:
        shutil.rmtree(pin, ignore_errors=True)


def test_without_privilege_exit_2(as_nobody):
    result = as_nobody("which")
    assert result.returncode == 2, result.stderr
    assert "needs root, or CAP_BPF plus CAP_SYS_ADMIN or CAP_PERFMON" in result.stderr
    assert "Traceback" not in result.stderr


def test_core_program_tag_is_predicted_for_this_kernel(system, bpffs, bpfdir, tmp_path):
    """Its CO-RE relocations resolved against this kernel's BTF, its tag is exact; without kernel BTF it is
    matched by name and type only (weak), with the reason, never by a wrong tag."""
    pin, ids = _load(bpffs, system / bpfdir.lstrip("/") / "which-obj" / "core.bpf.o")
    try:
        status, doc = _which(system, str(ids["core_reader"]))
        assert status == 0
        (prog,) = doc["programs"]
        assert prog["confidence"] == "tag", prog  # bpftool, the loader, is no package of this root
        (source,) = prog["sources"]
        assert source["package"] == "which-obj-1.0-1.x86_64" and source["path"].endswith("/core.bpf.o")
        assert source["caveats"] == []
        assert doc["kernel_btf"]["path"] == "/sys/kernel/btf/vmlinux" and doc["kernel_btf"]["problem"] is None
        empty = tmp_path / "empty.btf"
        empty.write_bytes(b"")
        status, doc = _which(system, str(ids["core_reader"]), "--kernel-btf", str(empty))
        (prog,) = doc["programs"]
        assert status == 0 and prog["confidence"] == "weak", prog
        (source,) = prog["sources"]
        assert source["path"].endswith("/core.bpf.o")
        assert "kernel BTF unreadable" in prog["reason"] and str(empty) in prog["reason"], prog
        assert doc["kernel_btf"]["problem"].startswith("kernel BTF unreadable")
    finally:
        shutil.rmtree(pin, ignore_errors=True)


def test_cache_spares_reading_objects_again_and_survives_damage(system, bpfdir, tmp_path):
    cache = tmp_path / "cache"
    env = dict(ENV, XDG_CACHE_HOME=str(cache))

    def run() -> dict:
        proc = subprocess.run(
            [sys.executable, "-m", "rpm_bpf", "which", "--root", str(system), "-f", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    first = run()
    objects = first["cache"]["misses"]
    assert objects == 5 and first["cache"]["hits"] == 0  # four objects and the loader, each read once
    second = run()
    assert second["cache"] == {"hits": objects, "misses": 0}  # nothing read again
    assert second["programs"] == first["programs"]
    entries = sorted((cache / "rpm-bpf" / "progtags").glob("*.json"))
    assert len(entries) == objects
    entries[0].write_text("{not json")  # a damaged entry: ignored and rebuilt
    third = run()
    assert third["cache"] == {"hits": objects - 1, "misses": 1} and third["programs"] == first["programs"]
    # A file changed after installation is read again, and never cached under the packaged digest.
    changed = system / bpfdir.lstrip("/") / "which-obj" / "long.bpf.o"
    data = changed.read_bytes()
    try:
        changed.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        assert run()["cache"]["misses"] == 1
        assert run()["cache"]["misses"] == 1
    finally:
        changed.write_bytes(data)


def test_verify_loaded_reports_a_program_no_package_ships(system, bpffs, tmp_path):
    # XDP_TX: no packaged program has these instructions (a tag is the code's, whatever the name)
    source = LONG_NAME_C.replace("xdp_program_with_a_rather_long_name", "stray_prog").replace("XDP_PASS", "XDP_TX")
    stray = samples.compile_bpf(source, tmp_path / "stray.bpf.o")
    pin, ids = _load(bpffs, stray)
    try:
        plain = subprocess.run(
            [sys.executable, "-m", "rpm_bpf", "verify", "--root", str(system), "-f", "json"],
            capture_output=True,
            text=True,
            env=ENV,
        )
        assert plain.returncode == 0 and "bpf-program-unpackaged" not in plain.stdout
        proc = subprocess.run(
            [sys.executable, "-m", "rpm_bpf", "verify", "--root", str(system), "--loaded", "-f", "json"],
            capture_output=True,
            text=True,
            env=ENV,
        )
        assert proc.returncode == 0, proc.stderr  # a warning: the exit status is verify's as ever
        found = [f for f in json.loads(proc.stdout)["findings"] if f["rule"] == "bpf-program-unpackaged"]
        assert [f["path"] for f in found if f["path"] == f"bpf-prog:{ids['stray_prog']}"]
        # DNF 4: dnf bpf-verify --loaded, the plugin from this checkout
        dnf = subprocess.run(
            [
                "dnf",
                "-q",
                f"--installroot={system}",
                f"--setopt=pluginpath={REPO / 'dnf_plugin'}",
                "--setopt=reposdir=/nonexistent",
                "--releasever=1",
                "bpf-verify",
                "--loaded",
            ],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=300,
        )
        assert f"W: bpf-program-unpackaged bpf-prog:{ids['stray_prog']}" in dnf.stdout, dnf.stdout + dnf.stderr
    finally:
        shutil.rmtree(pin, ignore_errors=True)


def test_real_libxdp_objects_are_traced_to_their_package(bpffs, tmp_path):
    """Debian's libxdp1, repacked as an RPM (the real-world corpus), installed; its objects loaded and traced."""
    rpms = realworld.rpms()
    corpus = realworld.corpus
    root = tmp_path / "root"
    root.mkdir()
    (libxdp,) = rpms.glob("deb-libxdp1-*.rpm")
    subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", str(libxdp)], check=True, capture_output=True)
    pins, ids = [], {}
    try:
        for name in ("xdp-dispatcher.o", "xsk_def_xdp_prog.o"):
            pin, loaded = _load(bpffs, root / corpus.MULTIARCH_BPF.lstrip("/") / name)
            pins.append(pin)
            ids.update({f"{name}:{prog}": prog_id for prog, prog_id in loaded.items()})
        status, doc = _which(root, *map(str, ids.values()))
        assert status == 0 and len(doc["programs"]) == len(ids) >= 3
        for prog in doc["programs"]:
            assert prog["confidence"] == "tag", prog
            assert prog["sources"][0]["package"].startswith("deb-libxdp1-")
            assert prog["sources"][0]["path"].startswith(corpus.MULTIARCH_BPF + "/")
    finally:
        for pin in pins:
            shutil.rmtree(pin, ignore_errors=True)


# --- Hardening II: a hostile bpftool on PATH ------------------------------------------

_HOSTILE_BPFTOOL = {
    "not a list": "printf '{\"id\": 1}'",
    "id not a number": 'printf \'[{"id": "1; rm -rf /", "name": "x"}]\'',
    "pinned not paths": 'printf \'[{"id": 7, "pinned": "/sys/fs/bpf/x"}]\'',
    "nested too deep": "python3 -c 'print(\"[\" * 200000)'",
    "huge output": "head -c 100000000 /dev/zero | tr '\\\\0' ' '; printf '[]'",
}


@pytest.mark.parametrize("case", sorted(_HOSTILE_BPFTOOL))
def test_hostile_bpftool_output_is_one_error(case, tmp_path):
    """A bpftool that prints crafted or endless JSON: one error line and exit 2 for which, an input error for
    verify --loaded (which still verifies the packages), never a traceback, never unbounded memory."""
    fake = tmp_path / "bin"
    fake.mkdir()
    tool = fake / "bpftool"
    tool.write_text(f"#!/bin/sh\n{_HOSTILE_BPFTOOL[case]}\n")
    tool.chmod(0o755)
    env = dict(ENV, PATH=f"{fake}:{os.environ['PATH']}")
    which = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "which"], capture_output=True, text=True, env=env, timeout=300
    )
    assert which.returncode == 2 and "Traceback" not in which.stderr, which.stderr[-2000:]
    lines = which.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rpm-bpf: error: bpftool prog show"), lines[:3]
    verify = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "verify", "--loaded", "--no-system-policy", "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    doc = json.loads(verify.stdout)
    assert verify.returncode == 2 and "Traceback" not in verify.stderr
    assert [e["input"] for e in doc["input_errors"]] == ["loaded BPF programs"], doc["input_errors"]
