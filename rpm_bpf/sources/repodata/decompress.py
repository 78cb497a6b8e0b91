"""Decompression of metadata files: gzip, xz, bzip2 or zstd by their magic bytes, every member, bounded output."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

from rpm_bpf.sources.repodata.transport import CHUNK, MAX_DECOMPRESSED, Bounded, RepoError

_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"BZh", "bzip2"), (b"\x28\xb5\x2f\xfd", "zstd"))


class _Prefixed:
    """The bytes already read to recognise the format, then the rest of the stream."""

    def __init__(self, head: bytes, rest: Bounded) -> None:
        self.head, self.rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head, b""
            return data
        return self.rest.read(size)

    def readable(self) -> bool:
        return True


def decompressed(stream: Bounded, name: str) -> Iterator[bytes]:
    """The decompressed bytes of ``stream`` in bounded chunks, whatever the format."""
    head = b""
    while len(head) < 8 and (more := stream.read(8 - len(head))):  # a server may send fewer bytes a read
        head += more
    kind = next((k for magic, k in _MAGIC if head.startswith(magic)), "plain")
    source = _Prefixed(head, stream)
    total = 0
    try:
        if kind == "plain":
            chunks: Iterator[bytes] = iter(lambda: source.read(CHUNK), b"")
        elif kind == "gzip":
            chunks = _gzip(source)
        elif kind == "xz":
            chunks = _lzma_like(source, lzma.LZMADecompressor, b"\xfd7zXZ\x00")
        elif kind == "bzip2":
            chunks = _lzma_like(source, bz2.BZ2Decompressor, b"BZh")
        else:
            try:
                import zstandard
            except ImportError:
                raise RepoError(
                    f"{name}: zstd-compressed metadata needs the zstandard module (Debian: python3-zstandard)"
                ) from None
            reader = zstandard.ZstdDecompressor().stream_reader(cast(IO[bytes], source), read_across_frames=True)
            chunks = iter(lambda: reader.read(CHUNK), b"")
        for chunk in chunks:
            total += len(chunk)
            if total > MAX_DECOMPRESSED:
                raise RepoError(f"{name}: decompresses to more than {MAX_DECOMPRESSED} bytes")
            yield chunk
    except RepoError:
        raise
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
        raise RepoError(f"{name}: corrupt {kind} data ({exc})") from None
    except Exception as exc:  # zstandard.ZstdError and the like: the file's fault
        raise RepoError(f"{name}: corrupt {kind} data ({type(exc).__name__}: {exc})") from None


def _gzip(source: _Prefixed) -> Iterator[bytes]:
    """gzip, every member of a concatenated file (as zcat reads it), never more than CHUNK bytes out per call."""
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    pending = b""
    while True:
        if not pending:
            pending = source.read(CHUNK)
            if not pending:
                if not inflate.eof:
                    raise EOFError("truncated")
                return
        if inflate.eof:  # a member ended: another one follows, or NUL padding, nothing else
            pending = _next_member(source, pending, b"\x1f\x8b")
            if not pending:
                return
            inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out = inflate.decompress(pending, CHUNK)
        pending = inflate.unused_data if inflate.eof else inflate.unconsumed_tail
        if out:
            yield out


def _lzma_like(source: _Prefixed, new: Callable[[], Any], magic: bytes) -> Iterator[bytes]:
    """xz or bzip2, every stream of a concatenated file; the decompressor keeps unread input itself."""
    decompressor = new()
    pending = b""
    while True:
        if decompressor.eof:
            pending = _next_member(source, decompressor.unused_data + pending, magic)
            if not pending:
                return
            decompressor = new()
        if decompressor.needs_input and not pending:
            pending = source.read(CHUNK)
            if not pending:
                raise EOFError("truncated")
        out = decompressor.decompress(pending, CHUNK)
        pending = b""
        if out:
            yield out


def _next_member(source: _Prefixed, pending: bytes, magic: bytes) -> bytes:
    """What follows a finished member: the next member's bytes, or b"" at the end (NUL padding allowed)."""
    while len(pending) < len(magic):
        more = source.read(CHUNK)
        if not more:
            break
        pending += more
    if pending.startswith(magic):
        return pending
    while pending:
        if pending.strip(b"\0"):
            raise ValueError("data after the end of the compressed stream")
        pending = source.read(CHUNK)
    return b""
