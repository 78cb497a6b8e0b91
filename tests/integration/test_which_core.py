"""`rpm-bpf which` on CO-RE programs, on the real kernel: relocated against its BTF, their tags are exact.

A clang-built object using every relocation kind real tools use
(tests/support/programs.py's CORE_RICH_C), packaged as a file and inside a
packaged skeleton loader; Debian's libbpf-tools (the real-world corpus),
repacked as an RPM, installed in a root and run from there. Programs are
pinned under a test-owned bpffs directory or held by a process, and always
removed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from rpm_bpf.samples import build as samples
from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.support import realworld
from tests.support.builders import holding_loader
from tests.support.kernel import loadall, wait_freed, wait_held
from tests.support.paths import REPO
from tests.support.programs import CORE_RICH_C

pytestmark = pytest.mark.integration
ENV = dict(os.environ, PYTHONPATH=str(REPO))
KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")
# The five tools of the report that load on this kernel (tracefs is not mounted: no syscalls/* tracepoints).
TOOLS = ("biolatency", "runqlat", "cpudist", "softirqs", "hardirqs")


@pytest.fixture(scope="module", autouse=True)
def _kernel_btf() -> None:
    if not KERNEL_BTF.is_file():
        pytest.skip("this kernel has no BTF (CONFIG_DEBUG_INFO_BTF): CO-RE programs cannot be loaded at all")


@pytest.fixture(scope="module")
def system(rpms, bpfdir, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("which-core")
    rich = samples.compile_bpf(CORE_RICH_C, work / "rich.bpf.o")
    loader = holding_loader(rich, work / "skel" / "core-loader")
    specs = [
        PkgSpec("bpf-filesystem", files=[PkgFile(bpfdir, directory=True, mode=0o755)]),
        PkgSpec(
            "core-obj",
            files=[
                PkgFile(f"{bpfdir}/core-obj", directory=True, mode=0o755),
                PkgFile(f"{bpfdir}/core-obj/rich.bpf.o", rich),
            ],
        ),
        PkgSpec("core-loader", files=[PkgFile("/usr/bin/core-loader", loader, mode=0o755)]),
    ]
    root = work / "root"
    root.mkdir()
    built = [str(rpms.build(spec)) for spec in specs]
    subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", *built], check=True, capture_output=True)
    return root


def _which(root: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "which", "--root", str(root), "-f", "json", *args],
        capture_output=True,
        text=True,
        env=env or ENV,
        timeout=300,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, json.loads((REPO / "rpm_bpf/data/which.schema.json").read_text()))
    return doc


def _loadall(bpffs: Path, obj: Path) -> tuple[Path, dict[str, dict]]:
    return loadall(bpffs, obj, "rpm-bpf-which-core")


def test_packaged_core_loader_is_certain_and_decides_among_copies(system, bpffs):
    """Both programs relocated (field offsets, bitfields, existence, sizes, ids, enum values), loaded by the
    packaged skeleton: certain, traced to the loader's own file though the object is also shipped alone."""
    loader = subprocess.Popen([str(system / "usr/bin/core-loader")], stdout=subprocess.PIPE, text=True)
    try:
        assert loader.stdout.readline().strip() == "loaded"
        doc = _which(system, "--no-cache")
        mine = {p["name"]: p for p in doc["programs"] if any(ld["pid"] == loader.pid for ld in p["loaders"])}
        assert set(mine) == {"core_fields", "core_types"}
        for prog in mine.values():
            assert prog["confidence"] == "certain", prog
            (source,) = prog["sources"]
            assert source["path"] == "/usr/bin/core-loader" and source["caveats"] == []
            assert source["package"].startswith("core-loader-1.0-1")
            assert prog["reason"] == "2 packaged objects predict this tag; the loader's executable decided"
    finally:
        loader.kill()
        loader.wait()


def test_core_object_loaded_by_bpftool_has_its_exact_tag(system, bpffs, bpfdir):
    pins, shown = _loadall(bpffs, system / bpfdir.lstrip("/") / "core-obj" / "rich.bpf.o")
    try:
        ids = [str(info["id"]) for info in shown.values()]
        doc = _which(system, "--no-cache", *ids)
        assert {p["name"] for p in doc["programs"]} == {"core_fields", "core_types"}
        for prog in doc["programs"]:
            assert prog["tag"] == shown[prog["name"]]["tag"]
            assert prog["confidence"] == "tag", prog  # bpftool is no package here: the tag alone
            paths = {s["path"] for s in prog["sources"]}
            assert paths == {f"{bpfdir}/core-obj/rich.bpf.o", "/usr/bin/core-loader"}
            assert all(s["caveats"] == [] for s in prog["sources"])
    finally:
        shutil.rmtree(pins, ignore_errors=True)


def test_predictions_are_cached_per_kernel_btf_digest(system, bpffs, bpfdir, tmp_path):
    """The same BTF under another name hits; other BTF misses every object, and the relocations it gives do
    not match this kernel's programs: weak, never a wrong file."""
    env = dict(ENV, XDG_CACHE_HOME=str(tmp_path / "cache"))
    pins, shown = _loadall(bpffs, system / bpfdir.lstrip("/") / "core-obj" / "rich.bpf.o")
    try:
        ids = [str(info["id"]) for info in shown.values()]
        first = _which(system, *ids, env=env)
        objects = first["cache"]["misses"]
        assert objects == 2 and first["cache"]["hits"] == 0  # the object and the loader embedding it
        assert _which(system, *ids, env=env)["cache"] == {"hits": objects, "misses": 0}
        copy = tmp_path / "vmlinux-copy"
        shutil.copyfile(KERNEL_BTF, copy)
        again = _which(system, *ids, "--kernel-btf", str(copy), env=env)
        assert again["cache"] == {"hits": objects, "misses": 0} and again["programs"] == first["programs"]
        other = tmp_path / "other.btf"
        obj = samples.compile_bpf(
            "struct task_struct { long x; int tgid; };\nstruct task_struct *t;\n", tmp_path / "o.o"
        )
        other.write_bytes(_btf_section(obj))
        moved = _which(system, *ids, "--kernel-btf", str(other), env=env)
        assert moved["cache"] == {"hits": 0, "misses": objects}
        for prog in moved["programs"]:
            assert prog["confidence"] == "weak", prog
            assert {s["path"] for s in prog["sources"]} <= {f"{bpfdir}/core-obj/rich.bpf.o", "/usr/bin/core-loader"}
            assert prog["reason"].startswith("no packaged program has this tag")
    finally:
        shutil.rmtree(pins, ignore_errors=True)


def _btf_section(obj: Path) -> bytes:
    from tests.fuzz.targets import btf_section

    data = obj.read_bytes()
    at, size = btf_section(data)
    return data[at : at + size]


def test_real_libbpf_tools_are_certain_and_traced_to_the_one_right_binary(tmp_path):
    """Debian's libbpf-tools, installed in a root, run from there: every program they load is certain and
    has one source, the tool's own executable (runqlat, runqslower and wakeuptime share programs)."""
    if os.geteuid() != 0 or shutil.which("bpftool") is None:
        pytest.skip("running libbpf-tools needs root (and bpftool to see their programs)")
    rpms = realworld.rpms()
    root = tmp_path / "root"
    root.mkdir()
    (tools_rpm,) = rpms.glob("deb-libbpf-tools-*.rpm")
    subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", str(tools_rpm)], check=True, capture_output=True)
    procs: dict[str, subprocess.Popen] = {}
    held: dict[int, int] = {}
    try:
        for tool in TOOLS:
            procs[tool] = subprocess.Popen(
                [str(root / "usr/sbin" / tool), "600", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        pids = {p.pid: tool for tool, p in procs.items()}
        held = wait_held(list(procs.values()))
        assert len(held) >= 10, held
        doc = _which(root, "--no-cache", *map(str, held))
        assert len(doc["programs"]) == len(held)
        for prog in doc["programs"]:
            (tool,) = {pids[ld["pid"]] for ld in prog["loaders"] if ld["pid"] in pids}
            assert prog["confidence"] == "certain", prog
            (source,) = prog["sources"]
            assert source["path"] == f"/usr/sbin/{tool}" and source["package"].startswith("deb-libbpf-tools-")
            assert source["caveats"] == []
            assert prog["reason"] is None or prog["reason"].endswith("the loader's executable decided"), prog
        assert {pids[ld["pid"]] for p in doc["programs"] for ld in p["loaders"] if ld["pid"] in pids} == set(TOOLS)
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGKILL)
            p.wait()
    assert not wait_freed(set(held))  # nothing left loaded
