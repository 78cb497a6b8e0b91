"""Reading yum/dnf repository metadata: what a repository ships under the BPF directories.

For the gate (``rpm-bpf scan --against REPO``): a distribution repository has
~75,000 packages and ~3.5 million file entries, and only a few hundred ship
BPF objects. So the metadata is streamed, never held whole: each file
(primary, filelists) is read in bounded chunks, its checksum from repomd.xml
checked as it goes, decompressed (gzip, xz, bzip2 or zstd, recognised by
their magic bytes) with a bounded output, and searched for the few byte
strings that matter (``>/usr/lib64/bpf/`` in a ``<file>`` element,
``name="bpf(`` in a provides entry). Only the ``<package>`` elements around
a hit are handed to createrepo_c's own parser (``xml_parse_*_snippet``):
no XML is parsed here, and no package is downloaded.

Repositories are hostile input like packages: an ``href`` may not leave the
repository, sizes are bounded, a checksum that does not match makes the whole
repository an input error.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import re
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, cast

from rpm_bpf.errors import RpmBpfError
from rpm_bpf.model import PackageRef, bpf_provide_names

MAX_REPOMD = 16 << 20  # repomd.xml: a few kB in practice
MAX_COMPRESSED = 4 << 30  # one metadata file as stored
MAX_DECOMPRESSED = 16 << 30  # ... and decompressed (Fedora's filelists: ~0.3 GB)
MAX_ELEMENT = 256 << 20  # one <package> element: the biggest real ones (texlive, kernel-devel) are a few MB
_CHUNK = 4 << 20
_TIMEOUT = 60  # seconds for one network read
_DEADLINE = 1800  # seconds for one metadata file in all
MAX_KEPT = 200_000  # files under the BPF directories and bpf(NAME) provides kept per repository


class RepoError(RpmBpfError):
    """A repository that cannot be read; ``str()`` names it and says why."""


class RepoContents:
    """What matters in one repository: files under the BPF directories and bpf(NAME) provides, per package
    (a PackageRef whose ``source`` is the repository)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.files: dict[PackageRef, list[str]] = {}  # paths under a BPF directory (files, not directories)
        self.provides: dict[PackageRef, list[str]] = {}  # bpf(NAME) provides, as NAME
        self.packages = 0  # how many packages the primary metadata lists
        # With inventory=True (repo-report): files that look like BPF objects outside the BPF directories
        # (by name: metadata has no file types), the BPF directories each package owns, and the
        # Requires of the packages with files in them.
        self.outside: dict[PackageRef, list[str]] = {}
        self.owned: dict[PackageRef, set[str]] = {}
        self.requires: dict[PackageRef, list[str]] = {}


# --- where the bytes come from --------------------------------------------------------


def _is_url(location: str) -> bool:
    return urllib.parse.urlsplit(location).scheme in ("http", "https")


class _Source:
    """A repository root, local or http(s); every path is checked to stay below it."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.url = _is_url(location)
        if self.url:
            self.base = location.rstrip("/") + "/"
        else:
            self.base = os.path.realpath(location)

    def _href(self, href: str) -> str:
        parts = href.split("/")
        if (
            not href
            or href.startswith("/")
            or "\\" in href
            or any(p in ("", ".", "..") for p in parts)
            or urllib.parse.urlsplit(href).scheme
        ):
            raise RepoError(f"{self.location}: repomd.xml points outside the repository ({href!r})")
        return href

    def open(self, href: str, limit: int) -> _Bounded:
        href = self._href(href)
        if self.url:
            try:
                response = urllib.request.urlopen(self.base + urllib.parse.quote(href), timeout=_TIMEOUT)
            except (OSError, ValueError) as exc:
                raise RepoError(
                    f"{self.location}: cannot fetch {href}: {getattr(exc, 'reason', None) or exc}"
                ) from None
            return _Bounded(response, limit, f"{self.location}/{href}")
        from rpm_bpf.sources.rootfs import RootFS

        path = os.path.join(self.base, href)
        try:
            # One component at a time, no symbolic link followed (not even repodata/ itself), regular
            # files only: nothing outside the repository, no FIFO, no device.
            with RootFS(self.base) as fs:
                fd, _ = fs.open_regular("/" + href)
        except OSError as exc:
            raise RepoError(f"{path}: {exc.strerror or exc}") from None
        return _Bounded(os.fdopen(fd, "rb"), limit, path)


class _Bounded:
    """A byte stream that refuses to give more than ``limit`` bytes and hashes what it gives."""

    def __init__(self, raw: Any, limit: int, name: str) -> None:
        self.raw, self.limit, self.name, self.count = raw, limit, name, 0
        self.digest: Any = None
        self.deadline = time.monotonic() + _DEADLINE  # a server trickling bytes is cut off too

    def read(self, size: int = -1) -> bytes:
        size = _CHUNK if size is None or size < 0 else min(size, _CHUNK)
        try:
            data = self.raw.read(size)
        except OSError as exc:
            raise RepoError(f"{self.name}: read failed: {exc}") from None
        self.count += len(data)
        if time.monotonic() > self.deadline:
            raise RepoError(f"{self.name}: not read within {_DEADLINE} s")
        if self.count > self.limit:
            raise RepoError(f"{self.name}: larger than {self.limit} bytes")
        if self.digest is not None:
            self.digest.update(data)
        return bytes(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> _Bounded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- decompression ----------------------------------------------------------------------

_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"BZh", "bzip2"), (b"\x28\xb5\x2f\xfd", "zstd"))


class _Prefixed:
    """The bytes already read to recognise the format, then the rest of the stream."""

    def __init__(self, head: bytes, rest: _Bounded) -> None:
        self.head, self.rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head, b""
            return data
        return self.rest.read(size)

    def readable(self) -> bool:
        return True


def _decompressed(stream: _Bounded, name: str) -> Iterator[bytes]:
    """The decompressed bytes of ``stream`` in bounded chunks, whatever the format."""
    head = stream.read(8)
    kind = next((k for magic, k in _MAGIC if head.startswith(magic)), "plain")
    source = _Prefixed(head, stream)
    total = 0
    try:
        if kind == "plain":
            chunks: Iterator[bytes] = iter(lambda: source.read(_CHUNK), b"")
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
            chunks = iter(lambda: reader.read(_CHUNK), b"")
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
    """gzip, every member of a concatenated file (as zcat reads it), never more than _CHUNK bytes out per call."""
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    pending = b""
    while True:
        if not pending:
            pending = source.read(_CHUNK)
            if not pending:
                if not inflate.eof:
                    raise EOFError("truncated")
                return
        if inflate.eof:  # a member ended: another one follows, or NUL padding, nothing else
            pending = _next_member(source, pending, b"\x1f\x8b")
            if not pending:
                return
            inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out = inflate.decompress(pending, _CHUNK)
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
            pending = source.read(_CHUNK)
            if not pending:
                raise EOFError("truncated")
        out = decompressor.decompress(pending, _CHUNK)
        pending = b""
        if out:
            yield out


def _next_member(source: _Prefixed, pending: bytes, magic: bytes) -> bytes:
    """What follows a finished member: the next member's bytes, or b"" at the end (NUL padding allowed)."""
    while len(pending) < len(magic):
        more = source.read(_CHUNK)
        if not more:
            break
        pending += more
    if pending.startswith(magic):
        return pending
    while pending:
        if pending.strip(b"\0"):
            raise ValueError("data after the end of the compressed stream")
        pending = source.read(_CHUNK)
    return b""


# --- the pre-filter ---------------------------------------------------------------------

_OPEN, _CLOSE = b"<package ", b"</package>"


_NAME = re.compile(rb"<name>([^<]*)</name>")


def _named(names: set[bytes]) -> Callable[[bytes], Iterator[int]]:
    """Hit positions of the ``<package>`` elements whose ``<name>`` is one of ``names`` (primary metadata)."""

    def hits(complete: bytes) -> Iterator[int]:
        for match in _NAME.finditer(complete):
            if match.group(1) in names:
                yield match.start()

    return hits


def _snippets(
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
        end = buffer.rfind(_CLOSE)
        if end < 0:
            if len(buffer) > MAX_ELEMENT:
                raise RepoError(f"a <package> element larger than {MAX_ELEMENT >> 20} MiB (or no </package> at all)")
            continue
        end += len(_CLOSE)
        complete, buffer = buffer[:end], buffer[end:]
        hits = sorted(
            {i for needle in needles for i in _find_all(complete, needle)} | (set(extra(complete)) if extra else set())
        )
        last_end = -1
        for hit in hits:
            if hit < last_end:
                continue  # inside the element already given
            start = complete.rfind(_OPEN, 0, hit)
            stop = complete.find(_CLOSE, hit)
            if start < 0 or stop < 0:
                continue
            last_end = stop + len(_CLOSE)
            yield complete[start:last_end]


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


# --- repomd and the two metadata files ----------------------------------------------------


def _records(source: _Source) -> dict[str, Any]:
    import createrepo_c as cr  # type: ignore[import-untyped]

    with source.open("repodata/repomd.xml", MAX_REPOMD) as stream:
        data = b"".join(iter(lambda: stream.read(_CHUNK), b""))
    with tempfile.NamedTemporaryFile(prefix="rpm-bpf-repomd-", suffix=".xml") as copy:
        copy.write(data)
        copy.flush()
        try:
            repomd = cr.Repomd(copy.name)
        except Exception as exc:  # createrepo_c raises its own error type for bad XML
            reason = str(exc).replace(copy.name, "repodata/repomd.xml").split("\n", 1)[0][:200]
            raise RepoError(f"{source.location}: repodata/repomd.xml cannot be parsed ({reason})") from None
    records = {rec.type: rec for rec in repomd.records}
    for needed in ("primary", "filelists"):
        if needed not in records:
            raise RepoError(f"{source.location}: repomd.xml lists no {needed} metadata")
    return records


_DIGESTS = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "sha384": hashlib.sha384,
    "sha224": hashlib.sha224,
    "sha1": hashlib.sha1,
    "sha": hashlib.sha1,
    "md5": hashlib.md5,
}


def _stream(source: _Source, record: Any) -> Iterator[bytes]:
    """One metadata file, decompressed, its checksum (repomd.xml's) checked once it is all read."""
    algo = _DIGESTS.get((record.checksum_type or "").lower())
    if algo is None:
        raise RepoError(f"{source.location}: {record.location_href}: unknown checksum type {record.checksum_type!r}")
    with source.open(record.location_href, MAX_COMPRESSED) as stream:
        stream.digest = algo()
        yield from _decompressed(stream, f"{source.location}/{record.location_href}")
        while stream.read(_CHUNK):  # whatever follows the compressed data still counts for the checksum
            pass
        if stream.digest.hexdigest() != (record.checksum or "").lower():
            raise RepoError(
                f"{source.location}: {record.location_href}: checksum does not match repomd.xml "
                "(changed, truncated or corrupt metadata)"
            )


def _ref(pkg: Any, label: str) -> PackageRef:
    epoch = pkg.epoch or "0"
    if not (epoch.isascii() and epoch.isdigit() and len(epoch) <= 10):
        raise RepoError(f"{label}: package {pkg.name!r} has an epoch that is not a number ({epoch[:20]!r})")
    return PackageRef(pkg.name, int(epoch) or None, pkg.version, pkg.release, pkg.arch, label)


def looks_like_bpf_object(path: str) -> bool:
    """A file name BPF objects carry (``*.bpf.o``, or ``*.o`` in a directory named ``bpf``): metadata has no
    file types, so objects outside the BPF directories can only be recognised by name."""
    return path.endswith(".bpf.o") or (path.endswith(".o") and "/bpf/" in path)


def read_repository(location: str, roots: Iterable[str], inventory: bool = False) -> RepoContents:
    """The BPF side of one repository (a path or an http(s) URL with ``repodata/``).

    ``roots``: the BPF directories to look under (every architecture's).
    ``inventory``: also what ``repo-report`` shows (see ``RepoContents``);
    the primary metadata is then read after the filelists, not beside them.
    Raises ``RepoError`` for anything that makes the repository unreadable.
    """
    import createrepo_c as cr

    source = _Source(location)
    if not source.url and not os.path.isdir(source.base):
        raise RepoError(f"{location}: no such repository (not a directory or an http(s) URL)")
    records = _records(source)
    contents = RepoContents(location)
    roots = tuple(sorted(set(roots)))
    file_needles = tuple(b">" + root.encode() + b"/" for root in roots)
    if inventory:
        file_needles += (b".bpf.o<", b"/bpf/")
    errors: list[BaseException] = []
    kept = [0]  # entries kept from this repository: bounded, whatever a crafted file decompresses to

    def check_kept() -> None:
        if kept[0] > MAX_KEPT:
            raise RepoError(
                f"{location}: more than {MAX_KEPT} BPF entries (files under the BPF directories, "
                "bpf(NAME) provides): not a real repository"
            )

    def parse(kind: str, snippet: bytes) -> list[Any]:
        found: list[Any] = []

        def keep(pkg: Any) -> bool:
            found.append(pkg)
            return True

        try:
            text = snippet.decode("utf-8")
            if kind == "filelists":
                cr.xml_parse_filelists_snippet(text, None, keep, None)
            else:
                cr.xml_parse_primary_snippet(text, None, keep, None, False)
        except Exception as exc:  # createrepo_c's parser error, or bytes that are not UTF-8
            # createrepo_c quotes the whole element in its message: keep the reason, not the (hostile) text
            reason = str(exc).split("\n", 1)[0].split(": ")[-1][:200]
            raise RepoError(f"{location}: {kind} metadata cannot be parsed ({reason})") from None
        return found

    def filelists() -> None:
        try:
            for snippet in _snippets(_stream(source, records["filelists"]), file_needles):
                check_kept()
                for pkg in parse("filelists", snippet):
                    paths = [f"{d}{n}" for kind, d, n in pkg.files if kind != "dir"]
                    mine = [p for p in paths if any(p.startswith(root + "/") for root in roots)]
                    ref = _ref(pkg, location)
                    if mine:
                        contents.files.setdefault(ref, []).extend(mine)
                        kept[0] += len(mine)
                    if not inventory:
                        continue
                    outside = [p for p in paths if p not in mine and looks_like_bpf_object(p)]
                    if outside:
                        contents.outside.setdefault(ref, []).extend(outside)
                        kept[0] += len(outside)
                    dirs = {f"{d}{n}" for kind, d, n in pkg.files if kind == "dir"}
                    owned = {d for d in dirs if any(d == root or d.startswith(root + "/") for root in roots)}
                    if owned:
                        contents.owned.setdefault(ref, set()).update(owned)
        except BaseException as exc:  # reported by the caller's thread
            errors.append(exc)

    counter = _CountingIter()

    def primary() -> None:
        try:
            wanted = {ref.name.encode() for ref in contents.files}  # whose Requires the inventory needs
            stream = counter(_stream(source, records["primary"]))
            elements = _snippets(stream, (b'name="bpf(',), _named(wanted) if wanted else None)
            for chunk in elements:
                check_kept()
                for pkg in parse("primary", chunk):
                    ref = _ref(pkg, location)
                    names = sorted(bpf_provide_names(p[0] for p in pkg.provides))
                    if names:
                        contents.provides.setdefault(ref, []).extend(names)
                        kept[0] += len(names)
                    if ref in contents.files:
                        contents.requires[ref] = [r[0] for r in pkg.requires]
            contents.packages = counter.last
        except BaseException as exc:
            errors.append(exc)

    if inventory:  # the primary pass needs the names the filelists found
        filelists()
        if not errors:
            primary()
    else:  # two files, two cores: decompression releases the GIL
        worker = threading.Thread(target=filelists, name="rpm-bpf-filelists")
        worker.start()
        primary()
        worker.join()
    if errors:
        raise errors[0]
    return contents


class _CountingIter:
    """Counts ``<package `` openings in the primary stream as it passes (the repository's size, for reports)."""

    def __init__(self) -> None:
        self.last = 0

    def __call__(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        self.last = 0
        tail = b""
        for chunk in chunks:
            self.last += (tail + chunk[: len(_OPEN) - 1]).count(_OPEN) + chunk.count(_OPEN)
            tail = chunk[-(len(_OPEN) - 1) :]
            yield chunk
