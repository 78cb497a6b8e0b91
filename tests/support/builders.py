"""Real BPF objects (clang) and real RPMs (rpmbuild) for the integration tests, and package descriptions."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rpm_bpf.bpf import elf
from rpm_bpf.samples import build as samples
from rpm_bpf.samples.build import PkgFile, PkgSpec


@dataclass
class Objects:
    """Compiled once per session."""

    full: Path  # -target bpf, BTF, maps, two programs, license
    full_el: Path  # -target bpfel
    full_eb: Path  # -target bpfeb, BTF
    no_btf: Path
    no_license: Path  # no license, no BTF
    loader: Path  # executable embedding `full` via a libbpf skeleton


def compile_objects(d: Path) -> Objects:
    """Every sample object, compiled into the folder ``d``."""
    full = samples.compile_bpf(samples.XDP_COUNTER_C, d / "full.bpf.o")
    return Objects(
        full=full,
        full_el=samples.compile_bpf(samples.XDP_COUNTER_C, d / "full.bpfel.o", target="bpfel"),
        full_eb=samples.compile_bpf(samples.XDP_COUNTER_C, d / "full.bpfeb.o", target="bpfeb"),
        no_btf=samples.compile_bpf(samples.XDP_COUNTER_C, d / "nobtf.bpf.o", btf=False),
        no_license=samples.compile_bpf(samples.NO_LICENSE_C, d / "nolicense.bpf.o", btf=False),
        loader=samples.build_skeleton_loader(full, d / "skel" / "loader"),
    )


class RpmFactory:
    """Builds RPMs with rpmbuild, caching by package description."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[str, list[Path]] = {}

    def build_all(self, pkg: PkgSpec, **kwargs) -> list[Path]:
        key = repr((pkg, sorted(kwargs.items(), key=str)))
        if key not in self.cache:
            work = self.root / f"b{len(self.cache)}"
            work.mkdir()
            self.cache[key] = samples.build_rpms(pkg, work, **kwargs)
        return self.cache[key]

    def build(self, pkg: PkgSpec, **kwargs) -> Path:
        (path,) = self.build_all(pkg, **kwargs)
        return path


def good_package(objects: Objects, bpfdir: str, name: str = "xdp-good", **kwargs) -> PkgSpec:
    """A package that follows the convention: no finding expected."""
    return PkgSpec(
        name,
        requires=["bpf-filesystem"],
        files=[
            PkgFile(f"{bpfdir}/{name}", directory=True, mode=0o755),
            PkgFile(f"{bpfdir}/{name}/counter.bpf.o", objects.full),
        ],
        **kwargs,
    )


def shipping(name: str, obj: Path, path: str, version: str = "1.0", **kwargs) -> PkgSpec:
    """A package that requires the BPF directory's owner and ships ``obj`` at ``path`` (the gate's packages)."""
    return PkgSpec(name, version=version, requires=["bpf-filesystem"], files=[PkgFile(path, obj)], **kwargs)


# rpm's brp-strip would cut the trailing bytes: built as packages that skip it (Go packages often do).
NO_STRIP = {"__os_install_post": "%{nil}"}


def binary_with_truncated_bpf_header(tmp_path: Path) -> Path:
    """A real executable whose last 24 bytes are the start of a 64-bit little-endian BPF ELF header."""
    data = Path("/usr/bin/true").read_bytes()
    tail = elf.ELF_MAGIC + bytes([2, 1, 1, 0]) + bytes(8) + (1).to_bytes(2, "little") + (247).to_bytes(2, "little")
    tail += (1).to_bytes(4, "little")
    assert len(tail) == 24
    out = tmp_path / "tool"
    out.write_bytes(data + tail)
    return out


HOLDING_LOADER_C = r"""
#include <stdio.h>
#include <unistd.h>
#include "prog.skel.h"

int main(void)
{
    struct prog *skel = prog__open_and_load();
    if (!skel)
        return 1;
    printf("loaded\n");
    fflush(stdout);
    pause();  /* keep the programs loaded until killed */
    return 0;
}
"""


def holding_loader(obj: Path, out: Path) -> Path:
    """A skeleton loader of ``obj`` that keeps its programs loaded until killed (prints "loaded" first)."""
    work = out.parent
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(obj, work / "prog.bpf.o")
    skel = subprocess.run(
        ["bpftool", "gen", "skeleton", str(work / "prog.bpf.o"), "name", "prog"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (work / "prog.skel.h").write_text(skel)
    (work / "loader.c").write_text(HOLDING_LOADER_C)
    subprocess.run(["gcc", "-O2", "-o", str(out), str(work / "loader.c"), "-lbpf"], cwd=work, check=True)
    return out
