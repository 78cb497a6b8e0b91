"""Where repository metadata comes from: a directory or http(s), read in bounded chunks, checksummed."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from rpm_bpf.errors import RpmBpfError

MAX_REPOMD = 16 << 20  # repomd.xml: a few kB in practice
MAX_COMPRESSED = 4 << 30  # one metadata file as stored
MAX_DECOMPRESSED = 16 << 30  # ... and decompressed (Fedora's filelists: ~0.3 GB)
MAX_ELEMENT = 256 << 20  # one <package> element: the biggest real ones (texlive, kernel-devel) are a few MB
CHUNK = 4 << 20  # bytes read at a time
TIMEOUT = 60  # seconds for the connection, and for one network read
DEADLINE = 1800  # seconds of wall time for one metadata file in all ($RPM_BPF_REPO_DEADLINE)
MAX_REDIRECTS = 5
MAX_KEPT = 200_000  # files under the BPF directories and bpf(NAME) provides kept per repository


class RepoError(RpmBpfError):
    """A repository that cannot be read; ``str()`` names it and says why."""


def is_url(location: str) -> bool:
    return urllib.parse.urlsplit(location).scheme in ("http", "https")


class Source:
    """A repository root, local or http(s); every path is checked to stay below it."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.url = is_url(location)
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

    def open(self, href: str, limit: int) -> Bounded:
        href = self._href(href)
        if self.url:
            name = f"{self.location}/{href}"
            dog = _Watchdog(deadline_seconds(), name)
            _current.dog = dog  # the connections opened now (redirects included) register their sockets
            try:
                response = _opener().open(self.base + urllib.parse.quote(href), timeout=TIMEOUT)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                dog.cancel()
                if dog.fired:
                    raise dog.late() from None
                raise RepoError(
                    f"{self.location}: cannot fetch {href}: {getattr(exc, 'reason', None) or exc}"
                ) from None
            finally:
                _current.dog = None
            return Bounded(response, limit, name, dog)
        from rpm_bpf.sources.rootfs import RootFS

        path = os.path.join(self.base, href)
        try:
            # One component at a time, no symbolic link followed (not even repodata/ itself), regular
            # files only: nothing outside the repository, no FIFO, no device.
            with RootFS(self.base) as fs:
                fd, _ = fs.open_regular("/" + href)
        except OSError as exc:
            raise RepoError(f"{path}: {exc.strerror or exc}") from None
        return Bounded(os.fdopen(fd, "rb"), limit, path)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Redirects to http and https only (urllib also follows ftp://), and a few of them."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        scheme = urllib.parse.urlsplit(newurl).scheme
        if scheme not in ("http", "https"):
            raise urllib.error.HTTPError(
                req.full_url,
                code,
                f"redirect to a {scheme or 'relative'} URL refused (http and https only)",
                headers,
                fp,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Watchdog:
    """Shuts a transfer's sockets down when its wall-time deadline passes, whatever http.client is doing
    then (reading headers, a chunk-size line, a trailer): the deadline checks between reads cannot."""

    def __init__(self, seconds: float, name: str) -> None:
        self.seconds, self.name = seconds, name
        self.sockets: list[socket.socket] = []
        self.fired = False
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        self.fired = True
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def late(self) -> RepoError:
        return RepoError(f"{self.name}: not read within {self.seconds:g} s")

    def cancel(self) -> None:
        self.timer.cancel()


_current = threading.local()  # the watchdog of the transfer this thread is opening


def _watched(sock: Any) -> None:
    dog = getattr(_current, "dog", None)
    if dog is not None and isinstance(sock, socket.socket):
        dog.sockets.append(sock)


class _WatchedHTTP(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watched(self.sock)


class _WatchedHTTPS(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watched(self.sock)


class _HTTP(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_WatchedHTTP, req)


class _HTTPS(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_WatchedHTTPS, req, context=getattr(self, "_context", None))


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_Redirects, _HTTP, _HTTPS)


def deadline_seconds() -> float:
    """Wall time one metadata file may take: ``DEADLINE``, or ``$RPM_BPF_REPO_DEADLINE`` (seconds) when set."""
    try:
        value = float(os.environ.get("RPM_BPF_REPO_DEADLINE", ""))
    except ValueError:
        return DEADLINE
    return value if 0 < value <= DEADLINE else DEADLINE


def _socket_of(raw: Any) -> socket.socket | None:
    """The socket under an http.client response (to bound each read by what is left of the deadline)."""
    sock = getattr(getattr(getattr(raw, "fp", None), "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


class Bounded:
    """A byte stream that refuses to give more than ``limit`` bytes and hashes what it gives.

    Over http, each read returns what has arrived (never waits for a whole
    chunk) and may wait only what is left of the file's wall-time deadline:
    a server trickling bytes is cut off when the deadline passes.
    """

    def __init__(self, raw: Any, limit: int, name: str, dog: _Watchdog | None = None) -> None:
        self.raw, self.limit, self.name, self.count = raw, limit, name, 0
        self.digest: Any = None
        self.seconds = dog.seconds if dog is not None else deadline_seconds()
        self.deadline = time.monotonic() + self.seconds
        self.sock = _socket_of(raw)
        self.dog = dog

    def _late(self) -> RepoError:
        return RepoError(f"{self.name}: not read within {self.seconds:g} s")

    def read(self, size: int = -1) -> bytes:
        size = CHUNK if size is None or size < 0 else min(size, CHUNK)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self._late()
        try:
            if self.sock is not None:
                if self.raw.isclosed():
                    return b""  # http.client closes the response at the end of a chunked body
                self.sock.settimeout(min(TIMEOUT, left))
                data = self.raw.read1(size)
            else:
                data = self.raw.read(size)
        except TimeoutError:
            raise (
                self._late() if time.monotonic() >= self.deadline else RepoError(f"{self.name}: read timed out")
            ) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if self.dog is not None and self.dog.fired:
                raise self._late() from None
            raise RepoError(f"{self.name}: read failed: {type(exc).__name__} {str(exc)[:200]}") from None
        self.count += len(data)
        if (self.dog is not None and self.dog.fired) or time.monotonic() > self.deadline:
            raise self._late()
        if self.count > self.limit:
            raise RepoError(f"{self.name}: larger than {self.limit} bytes")
        if self.digest is not None:
            self.digest.update(data)
        return bytes(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self.dog is not None:
            self.dog.cancel()
        self.raw.close()

    def __enter__(self) -> Bounded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- repomd and the two metadata files ----------------------------------------------------


def read_records(source: Source) -> dict[str, Any]:
    import createrepo_c as cr  # type: ignore[import-untyped]

    with source.open("repodata/repomd.xml", MAX_REPOMD) as stream:
        data = b"".join(iter(lambda: stream.read(CHUNK), b""))
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


DIGESTS = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "sha384": hashlib.sha384,
    "sha224": hashlib.sha224,
    "sha1": hashlib.sha1,
    "sha": hashlib.sha1,
    "md5": hashlib.md5,
}
