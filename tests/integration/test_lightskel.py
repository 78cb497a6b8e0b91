"""Light skeletons (`bpftool gen skeleton -L`): tools that carry BPF code without an ELF image of it.

Each tool is built here with Debian's bpftool and gcc from an object clang compiled (several programs of
several types, a map, global data and read-only data), links libc only, and loads its programs for real
(it is run once as root: the programs go when it exits, nothing is pinned). The ground truth is what
bpftool itself wrote into the header: the programs and maps of the skeleton's structure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rpm_bpf.bpf import lightskel
from rpm_bpf.samples import build as samples
from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.support.paths import REPO
from tests.support.programs import LIGHT_SKELETON_C
from tests.support.toolchain import require

pytestmark = pytest.mark.integration
ENV = dict(os.environ, PYTHONPATH=str(REPO))


TYPES = {"count_xdp": "xdp", "pass_tc": "sched_cls", "filter_sock": "socket_filter"}


@pytest.fixture(scope="module")
def tool(tmp_path_factory) -> Path:
    require("clang", "bpftool", "gcc")
    work = tmp_path_factory.mktemp("lightskel")
    obj = samples.compile_bpf(LIGHT_SKELETON_C, work / "multi.bpf.o")
    return samples.build_light_skeleton_loader(obj, work / "build" / "light-tool")


def _truth(tool: Path) -> tuple[set[str], set[str]]:
    """Programs and maps as bpftool laid them out in the skeleton's structure."""
    header = (tool.parent / "prog.lskel.h").read_text()
    progs = set(re.findall(r"struct bpf_prog_desc (\w+);", header))
    maps = set(re.findall(r"struct bpf_map_desc (\w+);", header))
    return progs, maps


def test_light_skeleton_is_found_with_names_types_and_license(tool):
    data = tool.read_bytes()
    at, bpf_headers = data.find(b"\x7fELF", 1), 0
    while at > 0:  # no ELF image of a BPF object anywhere in the tool: only the loader and its data
        bpf_headers += data[at + 18 : at + 20] == b"\xf7\x00"
        at = data.find(b"\x7fELF", at + 1)
    assert bpf_headers == 0
    progs, maps = _truth(tool)
    (found,) = lightskel.find(data)
    assert {p.name for p in found.object.programs} == progs == set(TYPES)
    assert {p.name: p.section for p in found.object.programs} == TYPES
    assert found.object.license == "Dual BSD/GPL"
    # the skeleton's maps: hits, and the global data's (.bss, .rodata) under libbpf's names
    assert len(found.object.maps) == len(maps) and "hits" in found.object.maps
    assert found.data_offset > 0 and 0 < found.offset < len(data)


def test_the_tool_really_loads(tool):
    if os.geteuid() != 0:
        pytest.skip("loading BPF programs needs root")
    proc = subprocess.run([str(tool), "load"], capture_output=True, text=True, input="", timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "0", proc.stdout + proc.stderr


def test_inspect_scan_and_list_show_it(tool, rpms, tmp_path):
    inspect = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "inspect", "-f", "json", str(tool)], capture_output=True, text=True, env=ENV
    )
    assert inspect.returncode == 0, inspect.stderr
    (described,) = json.loads(inspect.stdout)
    (emb,) = described["embedded"]
    assert emb["light_skeleton"] and {p["name"] for p in emb["programs"]} == set(TYPES)

    package = rpms.build(PkgSpec("light-tool", files=[PkgFile("/usr/bin/light-tool", tool, mode=0o755)]))
    scan = subprocess.run(
        # The default scan: a light-skeleton tool links only libc, no header signal names it.
        [sys.executable, "-m", "rpm_bpf", "scan", "--no-system-policy", "-f", "json", str(package)],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert scan.returncode == 0, scan.stderr
    (finding,) = [f for f in json.loads(scan.stdout)["findings"] if f["rule"] == "bpf-object-embedded"]
    assert finding["path"] == "/usr/bin/light-tool" and finding["detail"].startswith("light skeleton loader at offset")
    assert {p["name"] for p in finding["embedded"]["programs"]} == set(TYPES)
    assert finding["embedded"]["license"] == "Dual BSD/GPL"

    root = tmp_path / "root"
    root.mkdir()
    done = subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", str(package)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "list", "--no-system-policy", "--offline", "--embedded=all",
         "--root", str(root), "-f", "json"],
        capture_output=True, text=True, env=ENV,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    (obj,) = json.loads(listed.stdout)["objects"]
    assert obj["kind"] == "light skeleton" and obj["path"] == "/usr/bin/light-tool"
    assert {(p["name"], p["type"]) for p in obj["programs"]} == set(TYPES.items())
    assert all(p["tag"] == "" and p["caveats"] for p in obj["programs"])  # no tag is made up
    assert json.loads(listed.stdout)["counts"]["light_skeletons"] == 1


def test_ordinary_binaries_hold_no_light_skeleton(objects):
    """No false positive on the executables of this machine and on a libbpf skeleton's loader."""
    for path in (objects.loader, Path("/usr/bin/bpftool"), Path(sys.executable), Path("/usr/bin/gcc")):
        real = path.resolve()
        if real.exists():
            assert lightskel.find(real.read_bytes()) == [], path


def test_decoys_do_not_hide_a_loader(tool):
    """Prologue copies before a real loader (more than MAX_LOADERS of them), and more false two-byte anchors
    than the fast search tolerates (it falls back to the whole prologue): the loader is still found."""
    data = tool.read_bytes()
    (real,) = lightskel.find(data)
    prologues = lightskel.PROLOGUE * (2 * lightskel.MAX_LOADERS) + b"\xff" * 8
    anchors = b"\xbf\x16\x01" * (2 * lightskel.MAX_FALSE_ANCHORS)
    for decoy in (prologues, anchors, prologues + anchors):
        (found,) = lightskel.find(decoy + data)
        assert found.offset == real.offset + len(decoy)
        assert found.object.programs == real.object.programs
