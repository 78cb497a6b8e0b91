"""The pre-filter: the few <package> elements around a byte-string hit, handed to createrepo_c's own parser."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from rpm_bpf.sources.repodata.transport import MAX_ELEMENT, RepoError

OPEN, CLOSE = b"<package ", b"</package>"
_NAME = re.compile(rb"<name>([^<]*)</name>")


def named(names: set[bytes]) -> Callable[[bytes], Iterator[int]]:
    """Hit positions of the ``<package>`` elements whose ``<name>`` is one of ``names`` (primary metadata)."""

    def hits(complete: bytes) -> Iterator[int]:
        for match in _NAME.finditer(complete):
            if match.group(1) in names:
                yield match.start()

    return hits


def snippets(
    chunks: Iterable[bytes], needles: tuple[bytes, ...], extra: Callable[[bytes], Iterator[int]] | None = None
) -> Iterator[bytes]:
    """The ``<package>`` elements that contain one of ``needles`` (or a position ``extra`` gives), from a
    stream of XML bytes.

    Only complete elements are searched (the tail after the last ``</package>``
    waits for the next chunk), so a hit is never missed at a chunk boundary.
    """
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        end = buffer.rfind(CLOSE)
        if end < 0:
            if len(buffer) > MAX_ELEMENT:
                raise RepoError(f"a <package> element larger than {MAX_ELEMENT >> 20} MiB (or no </package> at all)")
            continue
        end += len(CLOSE)
        complete, buffer = buffer[:end], buffer[end:]
        hits = sorted(
            {i for needle in needles for i in _find_all(complete, needle)} | (set(extra(complete)) if extra else set())
        )
        last_end = -1
        for hit in hits:
            if hit < last_end:
                continue  # inside the element already given
            start = complete.rfind(OPEN, 0, hit)
            stop = complete.find(CLOSE, hit)
            if start < 0 or stop < 0:
                continue
            last_end = stop + len(CLOSE)
            yield complete[start:last_end]


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)
