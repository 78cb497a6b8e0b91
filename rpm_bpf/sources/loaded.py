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


MAX_OUTPUT = 64 << 20  # bpftool's JSON for every loaded program: a few kB each, far below this
TIMEOUT = 120


def _bounded_run(argv: list[str]) -> tuple[int, bytes, bytes]:
    """Exit status, stdout and the tail of stderr of ``argv``: at most ``MAX_OUTPUT`` bytes, ``TIMEOUT`` s."""
    import selectors
    import time

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + TIMEOUT
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ, out)
            selector.register(proc.stderr, selectors.EVENT_READ, err)
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise KernelError(f"bpftool prog show did not answer within {TIMEOUT} s")
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, 1 << 20)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    key.data.extend(chunk)
                    if len(out) > MAX_OUTPUT:
                        raise KernelError(f"bpftool prog show wrote more than {MAX_OUTPUT} bytes; not read")
                    del err[: max(0, len(err) - 4096)]  # only the end of stderr is shown
        return proc.wait(timeout=max(0.1, deadline - time.monotonic())), bytes(out), bytes(err)
    except subprocess.TimeoutExpired:
        raise KernelError(f"bpftool prog show did not answer within {TIMEOUT} s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _program(item: object, held: dict[int, list[tuple[int, str]]]) -> Loaded:
    """One entry of bpftool's list, its types checked (a crafted bpftool is input like any other)."""
    if not isinstance(item, dict):
        raise KernelError("bpftool prog show gave unexpected JSON (an entry that is not an object)")
    ident = item.get("id")
    if not isinstance(ident, int) or isinstance(ident, bool) or ident < 0:
        raise KernelError("bpftool prog show gave unexpected JSON (an entry without a numeric id)")
    pinned = item.get("pinned", [])
    if not isinstance(pinned, list) or not all(isinstance(p, str) for p in pinned):
        raise KernelError(f"bpftool prog show gave unexpected JSON (program {ident}: 'pinned' is not a list of paths)")
    texts = {key: item.get(key, default) for key, default in (("type", "unknown"), ("name", ""), ("tag", ""))}
    if not all(isinstance(value, str) for value in texts.values()):
        raise KernelError(f"bpftool prog show gave unexpected JSON (program {ident}: type, name or tag not a string)")
    return Loaded(ident, texts["type"], texts["name"], texts["tag"], tuple(pinned), tuple(held.get(ident, [])))


def loaded_programs(bpftool: str | None = None) -> list[Loaded]:
    """Every loaded program (``PrivilegeError`` without the privilege, ``KernelError`` if it cannot be read)."""
    tool = bpftool or shutil.which("bpftool") or shutil.which("bpftool", path="/usr/sbin:/sbin")
    if tool is None:
        raise KernelError("bpftool is not installed (it lists the loaded programs)")
    try:
        status, out, err = _bounded_run([tool, "-j", "-f", "prog", "show"])
    except OSError as exc:
        raise KernelError(f"cannot run {tool}: {exc.strerror or exc}") from None
    if status != 0:
        text = (out[-4096:] + err).decode("utf-8", "replace")
        if "Operation not permitted" in text or "Permission denied" in text or os.geteuid() != 0:
            raise PrivilegeError(NEEDS)
        raise KernelError(f"bpftool prog show failed: {text.strip()[-300:]}")
    try:
        listed = json.loads(out.decode("utf-8", "replace") or "[]")
    except (ValueError, RecursionError) as exc:
        raise KernelError(f"bpftool prog show gave no JSON ({str(exc)[:200]})") from None
    if not isinstance(listed, list):
        raise KernelError("bpftool prog show gave unexpected JSON (not a list of programs)")
    held = _holders()
    return [_program(item, held) for item in listed]
