"""The kernel's view of loaded programs, read independently of rpm-bpf: which process holds which program
(its fdinfo), and waiting until programs are freed (tests that run real loaders: test_which_core, test_list)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path


def held_programs(pids: set[int]) -> dict[int, int]:
    """Program id -> the pid of ``pids`` holding a descriptor of it (as the kernel lists it in fdinfo)."""
    held = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fdinfo")
        except OSError:
            continue
        for fd in fds:
            try:
                text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("prog_id:"):
                    held[int(line.split()[1])] = pid
    return held


def wait_held(procs: list[subprocess.Popen], timeout: float = 30) -> dict[int, int]:
    """The programs ``procs`` hold once each holds one (and half a second more: a tool loads all of its
    programs before it attaches them); a process that exits first fails with its stderr."""
    pids = {p.pid for p in procs}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and set(held_programs(pids).values()) != pids:
        dead = [p for p in procs if p.poll() is not None]
        assert not dead, [(p.args, p.stderr.read() if p.stderr else "") for p in dead]
        time.sleep(0.2)
    time.sleep(0.5)
    held = held_programs(pids)
    assert set(held.values()) == pids, held
    return held


def wait_freed(ids: set[int], timeout: float = 10) -> set[int]:
    """The programs of ``ids`` still loaded after ``timeout`` (the kernel frees a program shortly after its
    last descriptor closes)."""
    deadline, left = time.monotonic() + timeout, set(ids)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        shown = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, check=True).stdout
        left = {p["id"] for p in json.loads(shown)} & set(ids)
    return left


def loadall(bpffs: Path, obj: Path, prefix: str = "rpm-bpf-test") -> tuple[Path, dict[str, dict]]:
    """Every program of ``obj`` loaded by bpftool and pinned in a directory of its own under ``bpffs`` (the
    caller removes it): the directory, and bpftool's view of each program by name (id, tag, ...)."""
    pins = bpffs / f"{prefix}-{uuid.uuid4().hex[:8]}"
    subprocess.run(["bpftool", "prog", "loadall", str(obj), str(pins)], capture_output=True, text=True, check=True)
    shown = {}
    for pin in pins.iterdir():
        show = ["bpftool", "-j", "prog", "show", "pinned", str(pin)]
        info = json.loads(subprocess.run(show, capture_output=True, check=True).stdout)
        shown[info["name"]] = info
    return pins, shown
