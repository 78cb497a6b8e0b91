"""Reading package files from a directory tree (an extracted payload, an installroot).

Never follows symbolic links: a packaged object replaced by a link must be
seen as what it is, not as the file the link points to.
"""

from __future__ import annotations

import errno
import os


class DiskReader:
    """A ContentReader over files below ``root``."""

    def __init__(self, root: str):
        self.root = root.rstrip("/")

    def path_of(self, path: str) -> str:
        return self.root + path

    def read(self, paths: set[str]) -> dict[str, bytes | OSError]:
        found: dict[str, bytes | OSError] = {}
        for path in paths:
            try:
                fd = os.open(self.path_of(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    exc = OSError(errno.ELOOP, "is a symbolic link", path)
                found[path] = exc
                continue
            try:
                with os.fdopen(fd, "rb") as stream:
                    found[path] = stream.read()
            except OSError as exc:
                found[path] = exc
        return found
