"""The pre-filter: the few <package> elements around a byte-string hit, handed to createrepo_c's own parser."""

from __future__ import annotations

import bisect
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


def any_of(needles: tuple[bytes, ...], common: bytes) -> Callable[[bytes], Iterator[int]]:
    """Hit positions of any of ``needles``, found by one search for ``common`` (a part every needle
    contains) and a comparison at each of its few occurrences: one pass over the data however many
    needles (each search of a 250 MB filelists costs ~80 ms)."""
    offsets = [(needle, needle.rindex(common)) for needle in needles]

    def hits(complete: bytes) -> Iterator[int]:
        for at in _find_all(complete, common):
            for needle, offset in offsets:
                if at >= offset and complete.startswith(needle, at - offset):
                    yield at - offset
                    break

    return hits


def either(*finders: Callable[[bytes], Iterator[int]] | None) -> Callable[[bytes], Iterator[int]]:
    """The hits of every finder given (None: none)."""
    chosen = [f for f in finders if f is not None]

    def hits(complete: bytes) -> Iterator[int]:
        for finder in chosen:
            yield from finder(complete)

    return hits


def snippets(
    chunks: Iterable[bytes], needles: tuple[bytes, ...], extra: Callable[[bytes], Iterator[int]] | None = None
) -> Iterator[bytes]:
    """The ``<package>`` elements that contain one of ``needles`` (or a position ``extra`` gives), from a
    stream of XML bytes.

    Only complete elements are searched (the tail after the last ``</package>``
    waits for the next chunk), so a hit is never missed at a chunk boundary.
    Linear in the input whatever it holds: every byte is searched for
    ``</package>`` once, and each hit finds its element by a binary search in
    the element boundaries of its block, never by rescanning the block.
    """
    buffer = bytearray()
    for chunk in _without_markup(chunks):
        searched = max(0, len(buffer) - len(CLOSE) + 1)  # what earlier chunks already showed has no </package>
        buffer += chunk
        end = buffer.rfind(CLOSE, searched)
        if end < 0:
            if len(buffer) > MAX_ELEMENT:
                raise RepoError(f"a <package> element larger than {MAX_ELEMENT >> 20} MiB (or no </package> at all)")
            continue
        end += len(CLOSE)
        complete = bytes(buffer[:end])
        del buffer[:end]
        yield from _elements(complete, needles, extra)


_MARKUP = {b"<!--": b"-->", b"<?": b"?>"}  # comments and processing instructions: no data in them
_CDATA = b"<![CDATA["
_TAIL = len(_CDATA) - 1  # how much of a chunk's end may be the start of a delimiter
MAX_MARKUP = 10_000  # comments, processing instructions, declarations per document (createrepo_c writes one)


def _without_markup(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The stream with every comment and processing instruction blanked (spaces, same length): a
    ``<!-- </package> -->`` inside an element is valid XML, and would otherwise cut the element where no
    element ends. CDATA sections, which createrepo_c never writes and which would hide a file name from the
    byte search, are refused. Linear, and a chunk without "<!" or "<?" passes as it is (two searches)."""
    pending = b""
    closing: bytes | None = None  # the terminator of the markup the stream is in
    seen = 0  # markup met so far: each costs a step here, so a stream made of it is refused, not crawled
    for chunk in chunks:
        pending = pending + chunk if pending else chunk
        out: list[bytes] = []
        at = 0
        bang = pi = -2  # where the next "<!" and "<?" are (-1: none in pending; -2: not searched yet)
        while True:
            if closing is not None:
                end = pending.find(closing, at)
                if end < 0:
                    keep = max(at, len(pending) - len(closing) + 1)
                    out.append(b" " * (keep - at))
                    at = keep
                    break
                out.append(b" " * (end + len(closing) - at))
                at, closing = end + len(closing), None
                continue
            # Each needle searched again only once passed: a search never rescans what an earlier one covered.
            if bang != -1 and bang < at:
                bang = pending.find(b"<!", at)
            if pi != -1 and pi < at:
                pi = pending.find(b"<?", at)
            start = min(i for i in (bang, pi, len(pending)) if i >= 0)
            if start == len(pending):
                # No markup begins here; a delimiter may begin in the last bytes: they wait for the next chunk.
                tail = pending.rfind(b"<", max(at, len(pending) - _TAIL))
                keep = tail if tail >= 0 else len(pending)
                out.append(pending[at:keep] if at or keep < len(pending) else pending)
                at = keep
                break
            if pending.startswith(_CDATA, start):
                raise RepoError("a CDATA section in the metadata (createrepo_c writes none): not a real repository")
            seen += 1
            if seen > MAX_MARKUP:
                raise RepoError(
                    f"more than {MAX_MARKUP} comments or declarations in the metadata: not a real repository"
                )
            opener = next((o for o in _MARKUP if pending.startswith(o, start)), None)
            if opener is None:
                if len(pending) - start < len(_CDATA):  # "<!" at the very end: undecided until more comes
                    out.append(pending[at:start])
                    at = start
                    break
                out.append(pending[at : start + 2])  # "<!DOCTYPE" and the like: left as they are
                at = start + 2
                continue
            out.append(pending[at:start])
            at, closing = start, _MARKUP[opener]
        pending = pending[at:]
        data = b"".join(out)
        if data:
            yield data
    if pending:
        if closing is not None:
            yield b" " * len(pending)
        elif pending.startswith(_CDATA):
            raise RepoError("a CDATA section in the metadata (createrepo_c writes none): not a real repository")
        else:
            yield pending


def _elements(
    complete: bytes, needles: tuple[bytes, ...], extra: Callable[[bytes], Iterator[int]] | None
) -> Iterator[bytes]:
    """The elements of ``complete`` (a block ending with ``</package>``) around each hit, each once."""
    hits = sorted(
        {i for needle in needles for i in _find_all(complete, needle)} | set(extra(complete) if extra else ())
    )
    if not hits:
        return
    opens = list(_find_all(complete, OPEN))
    closes = list(_find_all(complete, CLOSE))
    last_end = -1
    for hit in hits:
        if hit < last_end:
            continue  # inside the element already given
        before = bisect.bisect_right(opens, hit - len(OPEN)) - 1  # the last "<package " that ends before the hit
        after = bisect.bisect_left(closes, hit)  # the first </package> at or after it
        if before < 0 or after >= len(closes) or opens[before] < last_end:
            continue  # inside no element, or after the end of one already given: only crafted metadata
        last_end = closes[after] + len(CLOSE)
        yield complete[opens[before] : last_end]


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)
