"""createrepo_c's log output kept off the terminal while it parses hostile metadata.

createrepo_c reports a parse error through GLib's log (``g_critical``), and
GLib again when the error is overwritten, each quoting the whole element: one
crafted 12 MiB attribute made 818 MB of stderr. While rpm-bpf parses, GLib's
default log handler is one that only counts; the parse error itself reaches
the user as one line (the ``RepoError`` the caller raises).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_lock = threading.Lock()
_depth = 0
_previous: int | None = None
suppressed = 0  # messages GLib was asked to print and did not, since the process started


def _count(_domain: bytes | None, _level: int, _message: bytes | None, _data: int | None) -> None:
    global suppressed
    suppressed += 1


_COUNT = _HANDLER(_count)  # kept alive for as long as GLib may call it


def _glib() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("glib-2.0") or "libglib-2.0.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None  # no GLib: createrepo_c cannot be loaded either
    lib.g_log_set_default_handler.restype = ctypes.c_void_p
    lib.g_log_set_default_handler.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    return lib


@contextmanager
def quiet() -> Iterator[None]:
    """GLib's default log handler counts instead of printing while the context lasts (nestable, any thread)."""
    global _depth, _previous
    lib = _glib()
    if lib is None:
        yield
        return
    with _lock:
        if _depth == 0:
            _previous = lib.g_log_set_default_handler(ctypes.cast(_COUNT, ctypes.c_void_p), None)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                lib.g_log_set_default_handler(_previous, None)
