"""Reading files below a root (``/`` or an installroot) that may be hostile.

An installroot is data: a symbolic link in it must never lead a read out of
it, a FIFO must never block, a device or a huge file must never be read
without bound. So every path is opened one component at a time from a
descriptor of the root (``openat`` with ``O_NOFOLLOW``): a symbolic link on
the way is reported, never followed; the type is checked with ``lstat``
before anything is opened and with ``fstat`` after (``O_NONBLOCK``), and
reads stop at a stated limit. Directory trees are walked with an explicit
stack, whatever their depth.

The same helpers read user-named files (policy files) safely: they follow
symlinks there, as the user named the file, but never block or read without
bound.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator

_OPEN_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
TEXT_LIMIT = 16 << 20  # /etc/passwd, /etc/group: far above any real system's


class UnsafePathError(OSError):
    """A path below the root that cannot be read without leaving it, blocking, or reading without bound."""

    def __init__(self, path: str, reason: str, code: int = errno.EPERM):
        super().__init__(code, reason, path)


def describe_mode(mode: int) -> str:
    """What kind of file a mode is, in words."""
    for test, words in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                        (stat.S_ISREG, "a regular file"), (stat.S_ISFIFO, "a FIFO"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device")):
        if test(mode):
            return words
    return "a special file"


def read_fd(fd: int, limit: int, name: str) -> bytes:
    """At most ``limit`` bytes from ``fd``; more is an error, not a silent cut."""
    parts, size = [], 0
    while True:
        chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise UnsafePathError(name, f"larger than {limit} bytes; not read", errno.EFBIG)


def _check_regular(fd: int, name: str) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(name, f"is {describe_mode(st.st_mode)}, not a regular file", errno.EINVAL)
    return st


def read_user_file(path: str | os.PathLike, limit: int) -> bytes:
    """A file the user named (symlinks followed): regular files only, at most ``limit`` bytes."""
    name = os.fspath(path)
    st = os.stat(name)  # before opening: opening a FIFO or a device may block or have effects
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(name, f"is {describe_mode(st.st_mode)}, not a regular file", errno.EINVAL)
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _check_regular(fd, name)
        return read_fd(fd, limit, name)
    finally:
        os.close(fd)


class RootFS:
    """Files below ``root``, reached without following any symbolic link.

    Paths are absolute paths inside the root (``/etc/passwd``). Errors are
    ``OSError``s whose ``filename`` is the path inside the root and whose
    ``strerror`` says what is wrong in words.
    """

    def __init__(self, root: str):
        if not os.path.isabs(root):
            raise ValueError(f"{root}: the root must be an absolute path")
        self.root = root
        self._fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "RootFS":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def host_path(self, path: str) -> str:
        """Where ``path`` is for messages (never opened by this name)."""
        return os.path.join(self.root, path.lstrip("/"))

    @staticmethod
    def _components(path: str) -> list[str]:
        parts = [p for p in path.split("/") if p and p != "."]
        if ".." in parts:
            raise UnsafePathError(path, "has a '..' component; not followed", errno.EINVAL)
        return parts

    def _parent(self, path: str) -> tuple[int, str]:
        """A descriptor of the directory holding ``path`` (caller closes it) and the last name."""
        parts = self._components(path)
        if not parts:
            return os.dup(self._fd), "."
        fd = os.dup(self._fd)
        walked = ""
        try:
            for part in parts[:-1]:
                walked += "/" + part
                try:
                    next_fd = os.open(part, _OPEN_DIR, dir_fd=fd)
                except OSError as exc:
                    raise self._component_error(fd, part, walked, path, exc) from None
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]

    @staticmethod
    def _component_error(dir_fd: int, name: str, walked: str, path: str, exc: OSError) -> OSError:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            try:
                mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
            except OSError:
                mode = 0
            if stat.S_ISLNK(mode):
                return UnsafePathError(path, f"{walked} is a symbolic link; not followed below the root", errno.ELOOP)
            return UnsafePathError(path, f"{walked} is {describe_mode(mode)}, not a directory", errno.ENOTDIR)
        return OSError(exc.errno, exc.strerror, path)

    def resolve(self, path: str, max_links: int = 40) -> str:
        """``path`` with its symbolic links resolved as if the root were ``/`` (``RESOLVE_IN_ROOT``).

        An absolute target starts again at the root, ``..`` stops at the
        root: the result never leaves it. For paths a root may legitimately
        lay out with links (Fedora's ``/var/lib/rpm -> ../../usr/lib/sysimage/rpm``).
        """
        pending = [p for p in path.split("/") if p and p != "."]
        done: list[str] = []
        links = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            current = "/" + "/".join(done + [part])
            try:
                mode = self.lstat(current).st_mode
            except FileNotFoundError:
                return "/" + "/".join(done + [part] + pending)  # the rest does not exist: nothing to resolve
            if not stat.S_ISLNK(mode):
                done.append(part)
                continue
            links += 1
            if links > max_links:
                raise UnsafePathError(path, f"more than {max_links} symbolic links", errno.ELOOP)
            target = self.readlink(current)
            if target.startswith("/"):
                done = []
            pending = [p for p in target.split("/") if p and p != "."] + pending
        return "/" + "/".join(done)

    def lstat(self, path: str) -> os.stat_result:
        fd, name = self._parent(path)
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, path) from None
        finally:
            os.close(fd)

    def readlink(self, path: str) -> str:
        fd, name = self._parent(path)
        try:
            return os.readlink(name, dir_fd=fd)
        finally:
            os.close(fd)

    def open_regular(self, path: str) -> tuple[int, os.stat_result]:
        """An open descriptor of a regular file (caller closes it) and its ``fstat``."""
        fd, name = self._parent(path)
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            if not stat.S_ISREG(mode):
                raise UnsafePathError(path, f"is {describe_mode(mode)}, not a regular file", errno.EINVAL)
            file_fd = os.open(name, _OPEN_FILE, dir_fd=fd)
        except UnsafePathError:
            raise
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, path) from None
        finally:
            os.close(fd)
        try:
            return file_fd, _check_regular(file_fd, path)
        except BaseException:
            os.close(file_fd)
            raise

    def read(self, path: str, limit: int = TEXT_LIMIT) -> bytes:
        fd, _ = self.open_regular(path)
        try:
            return read_fd(fd, limit, path)
        finally:
            os.close(fd)

    def open_dir(self, path: str) -> int:
        """A readable descriptor of a directory (for listing), no symlink followed."""
        fd, name = self._parent(path)
        try:
            if name == ".":
                return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                raise self._component_error(fd, name, "/" + "/".join(self._components(path)), path, exc) from None
            raise type(exc)(exc.errno, exc.strerror, path) from None
        finally:
            os.close(fd)

    def walk(self, top: str, onerror: Callable[[OSError], None]) -> Iterator[tuple[str, os.stat_result]]:
        """Every entry below ``top`` that is not a directory (symlinks included, not followed).

        Depth-first with an explicit stack (no recursion limit): each level
        keeps the descriptor of its directory, so a subdirectory is opened
        from its parent in one step and time stays linear in the tree's size.
        A tree deeper than the descriptors allow is an error for that subtree.
        """
        try:
            fd = self.open_dir(top)
        except OSError as exc:
            onerror(exc)
            return
        base = top.rstrip("/")
        stack: list[tuple[int, str, Iterator[str]]] = []
        try:
            self._push(stack, fd, base, onerror)
            while stack:
                dir_fd, path, names = stack[-1]
                name = next(names, None)
                if name is None:
                    os.close(dir_fd)
                    stack.pop()
                    continue
                child = f"{path}/{name}"
                try:
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except OSError as exc:
                    onerror(OSError(exc.errno, exc.strerror, child))
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    yield child, st
                    continue
                try:
                    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                except OSError as exc:
                    onerror(OSError(exc.errno, exc.strerror, child))
                    continue
                self._push(stack, sub, child, onerror)
        finally:
            for dir_fd, _, _ in stack:
                os.close(dir_fd)

    @staticmethod
    def _push(stack: list, fd: int, path: str, onerror: Callable[[OSError], None]) -> None:
        """List a directory (sorted) and put it on the walk's stack; it owns ``fd`` from now on."""
        try:
            with os.scandir(fd) as entries:
                names = sorted(e.name for e in entries)
        except OSError as exc:
            os.close(fd)
            onerror(OSError(exc.errno, exc.strerror, path or "/"))
            return
        stack.append((fd, path, iter(names)))
