"""libbpf itself (``libbpf.so.1``, through ctypes): open and load a BPF object, attach a program, update
and read its maps, poll a ring buffer. The few calls ``rpm-bpf admission`` needs, no bpf() syscall of our
own: libbpf does the loading, CO-RE relocation against the running kernel's BTF included.

Everything is owned by one ``BpfObject``; closing it (or the process ending, however it ends) releases the
links and maps with their descriptors: nothing is pinned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Callable

from rpm_bpf.errors import RpmBpfError

_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


class LibbpfError(RpmBpfError, OSError):
    """A libbpf call failed (errno and what was being done)."""


def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise LibbpfError(errno.ENOENT, f"libbpf is not installed ({name}: {exc})") from None
    sigs: dict[str, tuple[object, list[object]]] = {
        "bpf_object__open_file": (ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_void_p]),
        "bpf_object__load": (ctypes.c_int, [ctypes.c_void_p]),
        "bpf_object__close": (None, [ctypes.c_void_p]),
        "bpf_object__find_program_by_name": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]),
        "bpf_object__find_map_by_name": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]),
        "bpf_program__attach": (ctypes.c_void_p, [ctypes.c_void_p]),
        "bpf_program__fd": (ctypes.c_int, [ctypes.c_void_p]),
        "bpf_link__destroy": (ctypes.c_int, [ctypes.c_void_p]),
        "bpf_map__fd": (ctypes.c_int, [ctypes.c_void_p]),
        "bpf_map_update_elem": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64]),
        "bpf_map_delete_elem": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p]),
        "ring_buffer__new": (ctypes.c_void_p, [ctypes.c_int, _SAMPLE_FN, ctypes.c_void_p, ctypes.c_void_p]),
        "ring_buffer__poll": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
        "ring_buffer__free": (None, [ctypes.c_void_p]),
        "libbpf_set_print": (ctypes.c_void_p, [ctypes.c_void_p]),
    }
    for fn, (restype, argtypes) in sigs.items():
        func = getattr(lib, fn)
        func.restype = restype
        func.argtypes = argtypes
    lib.libbpf_set_print(None)  # libbpf's own messages would go to stderr unasked; errors carry errno
    return lib


def _fail(what: str, rc: int | None = None) -> LibbpfError:
    code = ctypes.get_errno() or (-rc if rc is not None and rc < 0 else 0) or errno.EINVAL
    return LibbpfError(code, f"{what}: {os.strerror(code)}")


class BpfObject:
    """One BPF object file opened and loaded by libbpf; links attached through it live as long as it does."""

    def __init__(self, path: str) -> None:
        self._lib = _library()
        self._links: list[int] = []
        self._rings: list[tuple[int, object]] = []
        ctypes.set_errno(0)
        obj = self._lib.bpf_object__open_file(os.fsencode(path), None)
        if not obj:
            raise _fail(f"libbpf cannot open {path}")
        self._obj: int | None = obj
        rc = self._lib.bpf_object__load(obj)
        if rc:
            self.close()
            raise _fail(f"libbpf cannot load {path} (the kernel refused it, or a CO-RE relocation failed)", rc)

    def attach(self, program: str) -> None:
        """Attach ``program`` as its section says (an LSM hook: the policy is active until closed)."""
        prog = self._lib.bpf_object__find_program_by_name(self._obj, program.encode())
        if not prog:
            raise LibbpfError(errno.ENOENT, f"no program {program} in the object")
        ctypes.set_errno(0)
        link = self._lib.bpf_program__attach(prog)
        if not link:
            raise _fail(f"cannot attach {program}")
        self._links.append(link)

    def map_fd(self, name: str) -> int:
        found = self._lib.bpf_object__find_map_by_name(self._obj, name.encode())
        if not found:
            raise LibbpfError(errno.ENOENT, f"no map {name} in the object")
        return int(self._lib.bpf_map__fd(found))

    def update(self, fd: int, key: bytes, value: bytes) -> None:
        ctypes.set_errno(0)
        rc = self._lib.bpf_map_update_elem(fd, ctypes.c_char_p(key), ctypes.c_char_p(value), 0)
        if rc:
            raise _fail("cannot update a map", rc)

    def delete(self, fd: int, key: bytes) -> None:
        ctypes.set_errno(0)
        rc = self._lib.bpf_map_delete_elem(fd, ctypes.c_char_p(key))
        if rc and ctypes.get_errno() != errno.ENOENT:
            raise _fail("cannot delete from a map", rc)

    def ring(self, fd: int, callback: Callable[[bytes], None]) -> int:
        """A ring buffer over map ``fd``; ``poll`` hands each record to ``callback``."""

        def sample(_ctx: int | None, data: int | None, size: int) -> int:
            if data:
                callback(ctypes.string_at(data, size))
            return 0

        keep = _SAMPLE_FN(sample)  # the C callback must outlive the ring buffer
        ctypes.set_errno(0)
        ring = self._lib.ring_buffer__new(fd, keep, None, None)
        if not ring:
            raise _fail("cannot open the ring buffer")
        self._rings.append((ring, keep))
        return int(ring)

    def poll(self, ring: int, timeout_ms: int) -> int:
        rc = int(self._lib.ring_buffer__poll(ring, timeout_ms))
        if rc < 0 and -rc != errno.EINTR:
            raise LibbpfError(-rc, f"cannot read the ring buffer: {os.strerror(-rc)}")
        return rc

    def close(self) -> None:
        """Detach and release everything (what the process's end would do anyway)."""
        for link in self._links:
            self._lib.bpf_link__destroy(link)
        self._links = []
        for ring, _ in self._rings:
            self._lib.ring_buffer__free(ring)
        self._rings = []
        if self._obj:
            self._lib.bpf_object__close(self._obj)
            self._obj = None
