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
from typing import Any

from rpm_bpf.errors import RpmBpfError

_OPEN_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
TEXT_LIMIT = 16 << 20  # /etc/passwd, /etc/group: far above any real system's
_OPEN_LEVELS = 64  # descriptors a tree walk keeps open (one per level, the deepest ones)


class UnsafePathError(RpmBpfError, OSError):
    """A path below the root that cannot be read without leaving it, blocking, or reading without bound."""

    def __init__(self, path: str, reason: str, code: int = errno.EPERM):
        super().__init__(code, reason, path)


def describe_mode(mode: int) -> str:
    """What kind of file a mode is, in words."""
    for test, words in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return words
    return "a special file"


def read_fd(fd: int, limit: int, name: str) -> bytes:
    """At most ``limit`` bytes from ``fd``; more is an error, not a silent cut."""
    parts: list[bytes] = []
    size = 0
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


def open_user_file(path: str | os.PathLike[str], what: str = "a regular file") -> int:
    """A descriptor of a file the user named (symlinks followed), which must be a regular file.

    The type is checked before opening (opening a FIFO or a device may block
    or have effects) and again after (``O_NONBLOCK``); ``what`` names the
    kind of file expected in the message.
    """
    name = os.fspath(path)
    mode = os.stat(name).st_mode
    if not stat.S_ISREG(mode):
        raise UnsafePathError(name, f"is {describe_mode(mode)}, not {what}", errno.EINVAL)
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnsafePathError(name, f"is {describe_mode(mode)}, not {what}", errno.EINVAL)
    return fd


def read_user_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """A file the user named (symlinks followed): regular files only, at most ``limit`` bytes."""
    fd = open_user_file(path)
    try:
        return read_fd(fd, limit, os.fspath(path))
    finally:
        os.close(fd)


def _lexical(parts: list[str]) -> str:
    """An absolute path from components, ``..`` applied as text and stopping at ``/``."""
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        elif part and part != ".":
            out.append(part)
    return "/" + "/".join(out)


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

    def __enter__(self) -> RootFS:
        return self

    def __exit__(self, *exc: object) -> None:
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

    def resolve(self, path: str, max_links: int = 40, max_parts: int = 4096) -> str:
        """``path`` with its symbolic links resolved as if the root were ``/`` (``RESOLVE_IN_ROOT``).

        An absolute target starts again at the root, ``..`` stops at the
        root: the result never leaves it. For paths a root may legitimately
        lay out with links (Fedora's ``/var/lib/rpm -> ../../usr/lib/sysimage/rpm``).
        One step per component, from descriptors of the part already resolved:
        linear in the components walked, which are bounded like the links.
        """
        from collections import deque

        pending = deque(p for p in path.split("/") if p and p != ".")
        fds = [os.dup(self._fd)]  # fds[i]: the directory after i resolved components
        done: list[str] = []
        links = walked = 0
        try:
            while pending:
                walked += 1
                if walked > max_parts:
                    raise UnsafePathError(path, f"more than {max_parts} path components to resolve", errno.ELOOP)
                part = pending.popleft()
                if part == "..":
                    if done:
                        done.pop()
                        os.close(fds.pop())
                    continue
                try:
                    mode = os.stat(part, dir_fd=fds[-1], follow_symlinks=False).st_mode
                except FileNotFoundError:
                    return _lexical([*done, part, *list(pending)])  # nothing there to resolve
                if stat.S_ISLNK(mode):
                    links += 1
                    if links > max_links:
                        raise UnsafePathError(path, f"more than {max_links} symbolic links", errno.ELOOP)
                    target = os.readlink(part, dir_fd=fds[-1])
                    if target.startswith("/"):
                        for fd in fds[1:]:
                            os.close(fd)
                        del fds[1:]
                        done.clear()
                    pending.extendleft(reversed([p for p in target.split("/") if p and p != "."]))
                    continue
                if not stat.S_ISDIR(mode):
                    if pending:
                        raise UnsafePathError(
                            path, f"/{'/'.join([*done, part])} is {describe_mode(mode)}, not a directory", errno.ENOTDIR
                        )
                    done.append(part)
                    break
                fds.append(os.open(part, _OPEN_DIR, dir_fd=fds[-1]))
                done.append(part)
            return "/" + "/".join(done)
        finally:
            for fd in fds:
                os.close(fd)

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

        Depth-first with an explicit stack (no recursion limit). A level keeps
        the descriptor of its directory, so a subdirectory is opened from its
        parent in one step: time stays linear in the size of the tree. At most
        ``_OPEN_LEVELS`` descriptors stay open; a level closed on the way down
        is opened again on the way up as its child's ``..``, checked to be the
        same directory (device and inode) as before.
        """
        try:
            fd = self.open_dir(top)
        except OSError as exc:
            onerror(exc)
            return
        stack: list[list[Any]] = []  # [fd or -1, path, remaining names, (device, inode)]
        try:
            self._push(stack, fd, top.rstrip("/"), onerror)
            while stack:
                level = stack[-1]
                dir_fd, path, names, _ = level
                name = next(names, None)
                if name is None:
                    stack.pop()
                    if stack and stack[-1][0] < 0:
                        self._reopen_parent(stack[-1], dir_fd, onerror)
                    os.close(dir_fd)
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
                opened = [entry for entry in stack if entry[0] >= 0]
                if len(opened) > _OPEN_LEVELS:
                    os.close(opened[0][0])
                    opened[0][0] = -1
        finally:
            for entry in stack:
                if entry[0] >= 0:
                    os.close(entry[0])

    @staticmethod
    def _reopen_parent(parent: list[Any], child_fd: int, onerror: Callable[[OSError], None]) -> None:
        """Open a level closed on the way down again, from its child, if it is still the same directory."""
        try:
            fd = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=child_fd)
        except OSError as exc:
            onerror(OSError(exc.errno, exc.strerror, parent[1] or "/"))
            parent[2] = iter(())
            return
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != parent[3]:
            os.close(fd)
            onerror(UnsafePathError(parent[1] or "/", "moved while it was being listed; not listed further"))
            parent[2] = iter(())
            parent[0] = os.open("/", os.O_PATH | os.O_CLOEXEC)  # something to close; nothing is read from it
            return
        parent[0] = fd

    @staticmethod
    def _push(stack: list[list[Any]], fd: int, path: str, onerror: Callable[[OSError], None]) -> None:
        """List a directory (sorted) and put it on the walk's stack; it owns ``fd`` from now on."""
        try:
            st = os.fstat(fd)
            with os.scandir(fd) as entries:
                names = sorted(e.name for e in entries)
        except OSError as exc:
            os.close(fd)
            onerror(OSError(exc.errno, exc.strerror, path or "/"))
            return
        stack.append([fd, path, iter(names), (st.st_dev, st.st_ino)])
