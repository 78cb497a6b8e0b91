"""Shared fixtures: real BPF objects (clang) and real RPMs (rpmbuild), built once per session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rpm_bpf.samples import build as samples
from rpm_bpf.samples.build import PkgFile, PkgSpec
from rpm_bpf.sources import bpfdirs

REPO = Path(__file__).resolve().parent.parent

for tool in ("clang", "rpmbuild", "bpftool"):
    if shutil.which(tool) is None:
        raise RuntimeError(f"{tool} is missing: run ./setup.sh --no-demo (the README's test command does)")


@dataclass
class Objects:
    """Compiled once per session."""

    full: Path  # -target bpf, BTF, maps, two programs, license
    full_el: Path  # -target bpfel
    full_eb: Path  # -target bpfeb, BTF
    no_btf: Path
    no_license: Path  # no license, no BTF
    loader: Path  # executable embedding `full` via a libbpf skeleton


@pytest.fixture(scope="session")
def objects(tmp_path_factory) -> Objects:
    d = tmp_path_factory.mktemp("objects")
    full = samples.compile_bpf(samples.XDP_COUNTER_C, d / "full.bpf.o")
    return Objects(
        full=full,
        full_el=samples.compile_bpf(samples.XDP_COUNTER_C, d / "full.bpfel.o", target="bpfel"),
        full_eb=samples.compile_bpf(samples.XDP_COUNTER_C, d / "full.bpfeb.o", target="bpfeb"),
        no_btf=samples.compile_bpf(samples.XDP_COUNTER_C, d / "nobtf.bpf.o", btf=False),
        no_license=samples.compile_bpf(samples.NO_LICENSE_C, d / "nolicense.bpf.o", btf=False),
        loader=samples.build_skeleton_loader(full, d / "skel" / "loader"),
    )


@pytest.fixture(scope="session")
def bpfdir() -> str:
    return bpfdirs.for_arch(bpfdirs.host_arch()).arch_dir


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


@pytest.fixture(scope="session")
def rpms(tmp_path_factory) -> RpmFactory:
    return RpmFactory(tmp_path_factory.mktemp("rpms"))


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


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


@pytest.fixture(scope="session")
def as_nobody(tmp_path_factory):
    """Run rpm-bpf as an ordinary user (uid/gid 65534) through setpriv.

    The engine is copied to a world-readable folder (the checkout may not be
    readable by others) and run with Debian's python3, which has the rpm bindings.
    """
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot drop to an ordinary user")
    import tempfile

    code = Path(tempfile.mkdtemp(prefix="rpm-bpf-nobody-"))
    code.chmod(0o755)
    shutil.copytree(REPO / "rpm_bpf", code / "rpm_bpf", ignore=shutil.ignore_patterns("__pycache__"))
    for path in code.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)

    def run(*args: str) -> CliResult:
        proc = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "/usr/bin/python3",
                "-m",
                "rpm_bpf",
                *map(str, args),
            ],
            capture_output=True,
            text=True,
            cwd="/",
            env=dict(os.environ, PYTHONPATH=str(code)),
            timeout=600,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    yield run
    shutil.rmtree(code, ignore_errors=True)


def open_to_others(path: Path) -> None:
    """Let an ordinary user reach ``path`` (pytest's temporary folders are 0700)."""
    path.chmod(path.stat().st_mode | 0o055)
    for parent in path.parents:
        if parent == parent.parent:
            break
        parent.chmod(parent.stat().st_mode | 0o005)


def remove_deep(path: Path) -> None:
    """Remove a directory tree too deep for shutil.rmtree (and pytest's own clean-up): rm uses no recursion."""
    subprocess.run(["rm", "-rf", "--", str(path)], check=False)


def run_cli(*args: str, cwd: Path | None = None) -> CliResult:
    """The real command line, in a child process."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
