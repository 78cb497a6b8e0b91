"""Reading the kernel: the BPF programs loaded right now, who holds them, where they are pinned.

Through bpftool's JSON (``bpftool -j -f prog show``: id, type, name, tag,
pinned paths); the processes holding a program come from /proc/PID/fdinfo
(``prog_id:``), which needs no bpftool built with skeletons (Debian's is
not). Reading needs root, or CAP_BPF plus CAP_SYS_ADMIN or CAP_PERFMON;
without it ``PrivilegeError`` says exactly that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import namedtuple

from rpm_bpf.errors import RpmBpfError

NEEDS = "reading the loaded BPF programs needs root, or CAP_BPF plus CAP_SYS_ADMIN or CAP_PERFMON"


class PrivilegeError(RpmBpfError, PermissionError):
    """Not allowed to list the loaded programs."""


class KernelError(RpmBpfError, RuntimeError):
    """The loaded programs cannot be listed (no bpftool, a bpftool that fails)."""


class Loaded(namedtuple("Loaded", ("id", "type", "name", "tag", "pinned", "holders"))):
    """A loaded program: ``holders`` are (pid, executable path) of the processes with a descriptor of it."""

    __slots__ = ()
    id: int
    type: str
    name: str
    tag: str
    pinned: tuple[str, ...]
    holders: tuple[tuple[int, str], ...]


def _holders() -> dict[int, list[tuple[int, str]]]:
    """prog id -> processes holding a descriptor of it (from /proc/PID/fdinfo)."""
    held: dict[int, list[tuple[int, str]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        exe = None
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii", errors="replace") as stream:
                    info = stream.read(4096)
            except OSError:
                continue
            for line in info.splitlines():
                if line.startswith("prog_id:"):
                    if exe is None:
                        try:
                            exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
                        except OSError:
                            exe = ""
                    held.setdefault(int(line.split()[1]), []).append((pid, exe))
    return held


def loaded_programs(bpftool: str | None = None) -> list[Loaded]:
    """Every loaded program (``PrivilegeError`` without the privilege, ``KernelError`` if it cannot be read)."""
    tool = bpftool or shutil.which("bpftool") or shutil.which("bpftool", path="/usr/sbin:/sbin")
    if tool is None:
        raise KernelError("bpftool is not installed (it lists the loaded programs)")
    try:
        proc = subprocess.run([tool, "-j", "-f", "prog", "show"], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise KernelError("bpftool prog show did not answer within 120 s") from None
    except OSError as exc:
        raise KernelError(f"cannot run {tool}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        if "Operation not permitted" in text or "Permission denied" in text or os.geteuid() != 0:
            raise PrivilegeError(NEEDS)
        raise KernelError(f"bpftool prog show failed: {text.strip()[-300:]}")
    try:
        listed = json.loads(proc.stdout or "[]")
    except ValueError as exc:
        raise KernelError(f"bpftool prog show gave no JSON ({exc})") from None
    held = _holders()
    return [
        Loaded(
            int(p["id"]),
            str(p.get("type", "unknown")),
            str(p.get("name", "")),
            str(p.get("tag", "")),
            tuple(p.get("pinned", [])),
            tuple(held.get(int(p["id"]), [])),
        )
        for p in listed
        if isinstance(p, dict) and "id" in p
    ]
