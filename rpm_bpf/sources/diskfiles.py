"""Reading package files from a directory tree (an extracted payload, an installroot).

Through ``RootFS``: no symbolic link is followed on the way or at the end (a
packaged object replaced by a link must be seen as what it is, not as the
file the link points to), nothing blocks, and no file is read beyond
``MAX_CONTENT``.
"""

from __future__ import annotations

from rpm_bpf.model import MAX_CONTENT, ContentReader
from rpm_bpf.sources.rootfs import RootFS


class DiskReader(ContentReader):
    """A ContentReader over files below ``root``."""

    def __init__(self, root: str):
        self.root = root.rstrip("/") or "/"

    def read(self, paths: set[str]) -> dict[str, bytes | OSError]:
        found: dict[str, bytes | OSError] = {}
        with RootFS(self.root) as fs:
            for path in paths:
                try:
                    found[path] = fs.read(path, MAX_CONTENT)
                except OSError as exc:
                    found[path] = exc
        return found
