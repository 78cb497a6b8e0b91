"""Fresh Debian root file systems for tests that need a system of their own.

A base tree is made once per machine with debootstrap (from the machine's
own apt mirror) and cached under /var/cache/rpm-bpf-test; each test session
gets a fresh copy of it, so what is installed there starts from nothing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

CACHE = Path("/var/cache/rpm-bpf-test")


class RootUnavailable(RuntimeError):
    """debootstrap cannot make the tree here (no tool, no mirror reachable)."""


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (never written into the repository)."""
    sources = list(Path("/etc/apt").glob("sources.list")) + list(Path("/etc/apt/sources.list.d").glob("*"))
    for source in sources:
        try:
            text = source.read_text()
        except OSError:
            continue
        for match in re.finditer(r"(https?://\S+/debian)/?(?=\s|$)", text):
            return match.group(1)
    raise RootUnavailable("no Debian mirror in /etc/apt sources")


def base_tree(name: str, suite: str, packages: list[str]) -> Path:
    # A changed package list makes a new tree rather than reusing an old one.
    target = CACHE / f"{name}-{hashlib.sha256(' '.join(sorted(packages)).encode()).hexdigest()[:10]}"
    if (target / ".complete").exists():
        return target
    if shutil.which("debootstrap") is None:
        raise RootUnavailable("debootstrap is not installed")
    if target.exists():
        shutil.rmtree(target)
    CACHE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(target), apt_mirror()],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RootUnavailable(f"debootstrap {suite} failed: {proc.stderr[-2000:] or proc.stdout[-2000:]}")
    (target / ".complete").touch()
    return target


def fresh_copy(base: Path, dest: Path) -> Path:
    subprocess.run(["cp", "-a", f"{base}/.", str(dest)], check=True)
    return dest


def run_in(root: Path, *cmd: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["chroot", str(root), *cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"},
    )
