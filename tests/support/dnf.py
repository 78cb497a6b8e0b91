"""Real DNF 4 (with this tree's plugin) into a fresh installroot, from a createrepo_c repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO

BPFDIR = "/usr/lib64/bpf"
GOOD_OBJ = f"{BPFDIR}/xdp-good/counter.bpf.o"


def require_dnf() -> None:
    if shutil.which("dnf") is None or shutil.which("createrepo_c") is None:
        pytest.skip("dnf or createrepo_c is not installed (./setup.sh installs them)")


class Dnf:
    def __init__(self, repo: Path, root: Path, confdir: Path):
        self.repo, self.root, self.confdir = repo, root, confdir
        self.configure()

    def configure(self, mode: str = "enforce", fail_on_error: int = 0) -> None:
        self.confdir.mkdir(exist_ok=True)
        (self.confdir / "bpf.conf").write_text(
            f"[main]\nenabled = 1\nmode = {mode}\nfail_on_error = {fail_on_error}\nverify_after = 1\n"
        )

    def options(self) -> list[str]:
        return [
            f"--installroot={self.root}",
            "--setopt=reposdir=/nonexistent",
            f"--repofrompath=local,{self.repo}",
            "--setopt=local.gpgcheck=0",
            "--releasever=1",
        ]

    def __call__(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [
            "dnf",
            "-y",
            *self.options(),
            f"--setopt=pluginpath={REPO / 'dnf_plugin'}",
            f"--setopt=pluginconfpath={self.confdir}",
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)

    def installed(self, name: str) -> bool:
        return subprocess.run(["rpm", "--root", str(self.root), "-q", name], capture_output=True).returncode == 0


def output(proc) -> str:
    """Everything a command wrote, for an assertion's message."""
    return proc.stdout + proc.stderr
