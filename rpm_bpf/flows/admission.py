"""``rpm-bpf admission``: only packaged, verified loaders may load BPF programs.

On a system where every BPF application comes from packages, a program
loaded by anything else is an intruder. The allowlist is built from the rpm
database: the executables of installed packages that ship or embed BPF code,
or require libbpf or libxdp, or that the policy names (``[admission]
packages``); each package verified first (``flows/verify.py``: a changed or
missing object, or, where trust anchors are configured, a header signature
that does not verify, keeps all its executables off the list) and each
executable's bytes compared with the digest the database records (a changed
one stays off). An executable is known to the kernel by device and inode.

The policy itself is a packaged BPF object (``lsm/admission.bpf.c``, in
``%{_libdir}/bpf/rpm-bpf/``) on the ``bpf_prog_load`` LSM hook, loaded by
libbpf (``sources/libbpf.py``): loads by an executable not on the list are
reported through its ring buffer and, when enforcing, refused with EPERM.
The link lives in this process: when it ends, however it ends, the policy
is gone; nothing is pinned.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import stat
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from rpm_bpf.errors import RpmBpfError
from rpm_bpf.findings import InputError
from rpm_bpf.model import Package, content_limit
from rpm_bpf.rules import installed, signature
from rpm_bpf.rules.policy import Policy
from rpm_bpf.sources import bpfdirs, rpmdb
from rpm_bpf.sources.rootfs import RootFS, read_user_file
from rpm_bpf.sources.rpmfile import DIGEST_ALGOS

PROGRAM = "admission_prog_load"
OBJECT_NAME = "rpm-bpf/admission.bpf.o"
PID_FILE = "/run/rpm-bpf/admission.pid"
LSM_LIST = "/sys/kernel/security/lsm"
LOADER_LIBRARIES = ("libbpf.so", "libxdp.so")  # a package requiring one of these is a loader
# What keeps a package's executables off the list: changed or missing objects, failed signature checks.
EXCLUDING = installed.REPAIRABLE | signature.REPAIRABLE
_EVENT = struct.Struct("<QQIIIIII16s16s")
_KEY = struct.Struct("<QII")


MSG_REFUSED_LOAD = (
    "{error}; the kernel refused the BPF LSM program though this process has the capabilities for it "
    "(CAP_BPF, CAP_PERFMON, CAP_MAC_ADMIN): it allows no program attached through a BPF trampoline "
    "(LSM, fentry), as under some lockdown or sandbox kernels"
)


class AdmissionError(RpmBpfError):
    """The policy cannot be put in place (no BPF LSM, no privilege, a safety rail): exit 2."""


class Allowed(NamedTuple):
    path: str  # inside the root, or the host path given with --allow
    package: str | None  # NEVRA; None for --allow
    dev: int  # the kernel's dev_t (major << 20 | minor), as the LSM program reads it
    ino: int


def kernel_dev(st_dev: int) -> int:
    """``stat``'s device number as the kernel's ``sb->s_dev`` holds it (MKDEV: major << 20 | minor)."""
    return (os.major(st_dev) << 20) | os.minor(st_dev)


class Allowlist:
    """The executables admitted, and what was left off and why."""

    def __init__(self) -> None:
        self.entries: dict[tuple[int, int], Allowed] = {}
        self.excluded: list[tuple[str, str]] = []  # (package or file, why)
        self.errors: list[InputError] = []
        self.notes: list[str] = []
        self.packages: list[str] = []  # NEVRAs whose executables are on the list

    def add(self, entry: Allowed) -> None:
        self.entries.setdefault((entry.dev, entry.ino), entry)

    def admits(self, path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (kernel_dev(st.st_dev), st.st_ino) in self.entries

    def keys(self) -> set[bytes]:
        return {_KEY.pack(ino, dev, 0) for dev, ino in self.entries}


def _is_loader(pkg: Package, named: set[str]) -> bool:
    if pkg.ref.name in named:
        return True
    if any(any(lib in req for lib in LOADER_LIBRARIES) for req in pkg.requires):
        return True
    return any(e.is_regular and (e.class_says_bpf or pkg.search_signal(e) is not None) for e in pkg.files)


def build(
    root: str = "/",
    policy: Policy | None = None,
    allow: Sequence[str] = (),
    trusted_keys: Sequence[str] = (),
    trusted_certs: Sequence[str] = (),
    host_keys: bool = True,
) -> Allowlist:
    """The allowlist of ``root``'s rpm database (``allow``: host executables added as given).

    Raises ``RpmdbError`` when the database cannot be read, ``TrustError`` for unusable trust anchors.
    """
    from rpm_bpf.flows.verify import verify

    policy = policy or Policy.load(system=None)
    out = Allowlist()
    named = set(policy.admission_packages)
    # One copy of the database for the triage and the executables (verify reads one of its own).
    with rpmdb.snapshot(root) as db, RootFS(root) as fs:
        candidates = sorted({p.ref.name for p in rpmdb.installed(db, (), out.errors) if _is_loader(p, named)})
        if candidates:
            checked = verify(root, policy, candidates, trusted_keys=trusted_keys, trusted_certs=trusted_certs,
                             host_keys=host_keys)  # fmt: skip
            out.errors += checked.errors
            out.notes += checked.notes
            bad: dict[str, str] = {}
            for f in checked.findings:
                if f.counts and f.rule in EXCLUDING and f.package is not None:
                    bad.setdefault(f.package.nevra, f"{f.rule} ({f.path or 'package'})")
            for pkg in rpmdb.installed(db, candidates, out.errors, deep=True):
                if pkg.ref.nevra in bad:
                    out.excluded.append((pkg.ref.nevra, f"not verified: {bad[pkg.ref.nevra]}"))
                    continue
                if _executables(fs, pkg, out):
                    out.packages.append(pkg.ref.nevra)
    for path in (*policy.admission_executables, *allow):
        try:
            st = os.stat(path)
        except OSError as exc:
            out.errors.append(InputError(path, f"--allow: cannot stat: {exc.strerror}"))
            continue
        if not stat.S_ISREG(st.st_mode):
            out.errors.append(InputError(path, "--allow: not a regular file"))
            continue
        out.add(Allowed(path, None, kernel_dev(st.st_dev), st.st_ino))
    return out


def _executables(fs: RootFS, pkg: Package, out: Allowlist) -> int:
    """Adds ``pkg``'s executables whose bytes are the packaged ones; returns how many."""
    algo = DIGEST_ALGOS.get(pkg.digest_algo, "sha256")
    added = 0
    for entry in pkg.files:
        if not entry.is_regular or entry.is_ghost or not entry.mode & 0o111 or not entry.digest:
            continue
        try:
            st = fs.lstat(entry.path)
            if not stat.S_ISREG(st.st_mode):
                continue
            data = fs.read(entry.path, content_limit(entry))
        except OSError:
            continue  # missing or unreadable: not admitted (verify reports BPF files missing)
        if hashlib.new(algo, data).hexdigest() != entry.digest:
            out.excluded.append((f"{pkg.ref.nevra} {entry.path}", "changed since installation (digest)"))
            continue
        out.add(Allowed(entry.path, pkg.ref.nevra, kernel_dev(st.st_dev), st.st_ino))
        added += 1
    return added


def critical_executables() -> list[tuple[str, str]]:
    """What must never be refused: (what, executable path) for this process, systemd and the package manager."""
    found = [("this process (rpm-bpf admission)", os.path.realpath("/proc/self/exe"))]
    try:
        init = os.readlink("/proc/1/exe")
        if "systemd" in os.path.basename(init):
            found.append(("systemd (PID 1)", init))
    except OSError:
        pass
    for tool in ("dnf5", "dnf", "rpm"):
        for directory in ("/usr/bin", "/bin"):
            path = os.path.join(directory, tool)
            if os.path.isfile(path):
                found.append((f"the package manager ({tool})", _interpreter(path)))
                break
    return found


def _interpreter(path: str) -> str:
    """A script's interpreter (dnf is a Python script: python loads what it loads), else the file."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(256)
    except OSError:
        return os.path.realpath(path)
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n", 1)[0].split()
        if words:
            target = os.fsdecode(words[1] if os.path.basename(words[0]) == b"env" and len(words) > 1 else words[0])
            if not target.startswith("/"):
                from shutil import which

                target = which(target) or target
            return os.path.realpath(target)
    return os.path.realpath(path)


def refused_critical(allowlist: Allowlist) -> list[tuple[str, str]]:
    """The critical executables ``--enforce`` would refuse."""
    return [(what, path) for what, path in critical_executables() if not allowlist.admits(path)]


# CAP_SYS_ADMIN, CAP_MAC_ADMIN, CAP_PERFMON, CAP_BPF: loading an LSM program and attaching it.
_CAPS_NEEDED = (33, 38, 39)
_CAP_SYS_ADMIN = 21


def privileged() -> bool:
    """Whether this process may load and attach BPF LSM programs (root, or the capabilities for it)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("CapEff:"):
                caps = int(line.split()[1], 16)
                return all(caps >> c & 1 for c in _CAPS_NEEDED) or bool(caps >> _CAP_SYS_ADMIN & caps >> 33 & 1)
    except (OSError, ValueError):
        pass
    return os.geteuid() == 0


def bpf_lsm_active() -> bool | None:
    """Whether the BPF LSM is active (None: securityfs is not mounted, so it cannot be told)."""
    try:
        with open(LSM_LIST, encoding="ascii") as stream:
            return "bpf" in stream.read().strip().split(",")
    except OSError:
        return None


def object_path() -> str:
    """Where the rpm-bpf-admission package installs the policy object."""
    return os.path.join(bpfdirs.for_arch(bpfdirs.host_arch()).arch_dir, OBJECT_NAME)


class Event(NamedTuple):
    time: float  # seconds since the epoch
    refused: bool
    pid: int
    tid: int
    uid: int
    exe: str  # "?" when the process is gone
    comm: str
    dev: int
    ino: int
    prog_type: str
    prog_name: str

    def to_dict(self, mode: str) -> dict[str, Any]:
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time)) + f".{int(self.time % 1 * 1000):03d}Z",
            "verdict": "refused" if self.refused else "admitted (audit)",
            "mode": mode,
            "pid": self.pid,
            "tid": self.tid,
            "uid": self.uid,
            "executable": self.exe,
            "comm": self.comm,
            "device": f"{self.dev >> 20}:{self.dev & 0xFFFFF}",
            "inode": self.ino,
            "program_type": self.prog_type,
            "program_name": self.prog_name,
        }


def decode_event(data: bytes, boot_offset: float) -> Event | None:
    from rpm_bpf.bpf.lightskel import PROG_TYPES  # enum bpf_prog_type, in bpftool's words

    if len(data) < _EVENT.size:
        return None
    ktime, ino, dev, pid, tid, uid, ptype, refused, comm, name = _EVENT.unpack_from(data)
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = "?"
    return Event(
        boot_offset + ktime / 1e9,
        bool(refused),
        pid,
        tid,
        uid,
        exe,
        comm.split(b"\0", 1)[0].decode("utf-8", "replace"),
        dev,
        ino,
        PROG_TYPES[ptype] if ptype < len(PROG_TYPES) else str(ptype),
        name.split(b"\0", 1)[0].decode("utf-8", "replace"),
    )


class Admission:
    """The policy in place: the LSM program attached, the allowlist in its map, events read."""

    def __init__(self, obj_path: str, allowlist: Allowlist, enforce: bool) -> None:
        from rpm_bpf.sources.libbpf import BpfObject, LibbpfError

        if bpf_lsm_active() is False:
            raise AdmissionError(f"the BPF LSM is not active ({LSM_LIST} does not list bpf; boot with lsm=...,bpf)")
        try:
            self.obj = BpfObject(obj_path)
        except LibbpfError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise AdmissionError(MSG_REFUSED_LOAD.format(error=exc.strerror)) from None
            raise AdmissionError(str(exc.strerror)) from None
        try:
            self.allowed_fd = self.obj.map_fd("allowed")
            self.config_fd = self.obj.map_fd("config")
            self.keys: set[bytes] = set()
            self.set_allowlist(allowlist)
            self.set_enforce(enforce)
            self.obj.attach(PROGRAM)
        except LibbpfError as exc:
            self.obj.close()
            if exc.errno in (errno.EPERM, errno.EACCES, errno.EOPNOTSUPP, errno.EINVAL):
                raise AdmissionError(
                    f"cannot attach the BPF LSM program ({exc.strerror}): is the BPF LSM active?"
                ) from None
            raise AdmissionError(str(exc.strerror)) from None

    def set_enforce(self, enforce: bool) -> None:
        self.obj.update(self.config_fd, struct.pack("<I", 0), struct.pack("<II", int(enforce), 0))

    def set_allowlist(self, allowlist: Allowlist) -> tuple[int, int]:
        """Replace the map's contents with ``allowlist`` (new keys first: nothing admitted is ever missing)."""
        wanted = allowlist.keys()
        added, removed = wanted - self.keys, self.keys - wanted
        for key in added:
            self.obj.update(self.allowed_fd, key, b"\x01")
        for key in removed:
            self.obj.delete(self.allowed_fd, key)
        self.keys = wanted
        return len(added), len(removed)

    def events(self, callback: Callable[[Event], None]) -> int:
        boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        return self.obj.ring(self.obj.map_fd("events"), lambda data: _deliver(data, boot, callback))

    def close(self) -> None:
        self.obj.close()


def _deliver(data: bytes, boot: float, callback: Callable[[Event], None]) -> None:
    event = decode_event(data, boot)
    if event is not None:
        callback(event)


def notify_ready(status: str) -> None:
    """sd_notify READY=1 when systemd started us (``Type=notify``); nothing otherwise."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    import socket

    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock, contextlib.suppress(OSError):
        sock.sendto(f"READY=1\nSTATUS={status}\nMAINPID={os.getpid()}".encode(), address)


class DatabaseWatch:
    """inotify on the rpm database's directory (the fallback when no DNF hook pokes us)."""

    IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE, IN_DELETE, IN_DONT_FOLLOW = 0x8, 0x80, 0x100, 0x200, 0x02000000

    def __init__(self, directory: str) -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        self.ok = self.fd >= 0
        if self.ok:
            # IN_DONT_FOLLOW: a database directory that is a link (out of the root) is not watched through it
            mask = self.IN_CLOSE_WRITE | self.IN_MOVED_TO | self.IN_CREATE | self.IN_DELETE | self.IN_DONT_FOLLOW
            self.ok = libc.inotify_add_watch(self.fd, os.fsencode(directory), mask) >= 0

    def changed(self) -> bool:
        import select

        if not self.ok:
            return False
        got = False
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0)
            if not ready:
                return got
            try:
                if not os.read(self.fd, 65536):
                    return got
            except BlockingIOError:
                return got
            got = True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)


def database_dir(root: str) -> str:
    return os.path.join(root, rpmdb.dbpath().lstrip("/"))


def write_pid_file(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    temp = f"{path}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="ascii") as stream:
        stream.write(f"{os.getpid()}\n")
    os.replace(temp, path)


def poke(pid_file: str = PID_FILE) -> int | None:
    """SIGHUP to the running ``rpm-bpf admission`` named by ``pid_file``: it refreshes its allowlist.
    Returns the pid, or None when none runs (no file, a stale one, or a process that is not ours)."""
    try:
        pid = int(read_user_file(pid_file, 64).decode("ascii").strip())  # never a FIFO, never unbounded
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    if b"admission" not in cmdline:
        return None  # the pid was reused by another process: never signalled
    os.kill(pid, signal.SIGHUP)
    return pid


def signals(names: Iterable[int], handler: Callable[[int], None]) -> None:
    for signum in names:
        signal.signal(signum, lambda s, _f: handler(s))


class Status(NamedTuple):
    """What the running policy tells its front end (a line on stderr, sd_notify's STATUS)."""

    kind: str  # "ready", "refreshed", "stopped", "error"
    text: str


def run(
    obj_path: str,
    rebuild: Callable[[], Allowlist],
    first: Allowlist,
    enforce: bool,
    on_event: Callable[[Event], None],
    on_status: Callable[[Status], None],
    root: str = "/",
    pid_file: str | None = PID_FILE,
    watch: bool = True,
) -> int:
    """The policy in place until SIGINT or SIGTERM; SIGHUP (``rpm-bpf admission --refresh``, the DNF hooks)
    or a change of the rpm database rebuilds the allowlist. Returns 0; raises ``AdmissionError``."""
    state = {"stop": 0, "refresh": False}

    def on_signal(signum: int) -> None:
        if signum == signal.SIGHUP:
            state["refresh"] = True
        else:
            state["stop"] = signum

    signals((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), on_signal)
    policy = Admission(obj_path, first, enforce)
    dbwatch = DatabaseWatch(database_dir(root)) if watch else None
    try:
        ring = policy.events(on_event)
        if pid_file:
            write_pid_file(pid_file)
        mode = "enforce" if enforce else "audit"
        ready = f"{mode}: {len(first.entries)} executables admitted from {len(first.packages)} packages"
        on_status(Status("ready", ready))
        notify_ready(ready)
        quiet_until = 0.0
        while not state["stop"]:
            policy.obj.poll(ring, 250)
            if dbwatch is not None and dbwatch.changed():
                quiet_until = time.monotonic() + 1.0  # a transaction writes many times: wait for quiet
            if quiet_until and time.monotonic() >= quiet_until:
                quiet_until, state["refresh"] = 0.0, True
            if state["refresh"] and not state["stop"]:
                state["refresh"] = False
                try:
                    fresh = rebuild()
                except RpmBpfError as exc:
                    on_status(Status("error", f"allowlist not rebuilt, the previous one stays: {exc}"))
                    continue
                added, removed = policy.set_allowlist(fresh)
                on_status(Status("refreshed", f"{len(fresh.entries)} executables admitted (+{added} -{removed})"))
        policy.obj.poll(ring, 0)  # what is still in the ring buffer
        on_status(Status("stopped", f"stopped by signal {state['stop']}: the policy is gone"))
    finally:
        policy.close()
        if dbwatch is not None:
            dbwatch.close()
        if pid_file:
            try:
                if read_user_file(pid_file, 64).decode("ascii").strip() == str(os.getpid()):
                    os.unlink(pid_file)
            except (OSError, UnicodeDecodeError):
                pass
    return 0
