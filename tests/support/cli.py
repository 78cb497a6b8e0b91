"""The rpm-bpf command line in a child process: as the test runner's user, or as an ordinary one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import REPO


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


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


def world_readable_engine() -> Path:
    """A copy of the engine in a world-readable folder (the checkout may not be readable by others)."""
    code = Path(tempfile.mkdtemp(prefix="rpm-bpf-nobody-"))
    code.chmod(0o755)
    shutil.copytree(REPO / "rpm_bpf", code / "rpm_bpf", ignore=shutil.ignore_patterns("__pycache__"))
    for path in code.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return code


def nobody_runner(code: Path) -> Callable[..., CliResult]:
    """Run rpm-bpf from ``code`` as an ordinary user (uid/gid 65534) through setpriv, with Debian's python3
    (which has the rpm bindings)."""

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

    return run
