"""Hostile repositories for the gate: real createrepo_c repositories, damaged with their checksums made to match."""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpm_bpf.sources import bpfdirs
from rpm_bpf.sources.repodata import read_repository
from tests.support.paths import REPO
from tests.support.repodata import rewritten

pytestmark = pytest.mark.integration
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def _spaces_then_hits(bpfdir: str, spaces: int, hits: int) -> bytes:
    """What the pre-filter must not rescan: a long run of spaces, then many BPF-directory hits, all before
    the first ``<package `` (so no element holds them)."""
    return b" " * spaces + f"<file>{bpfdir}/x.o</file>".encode() * hits


def _crafted(gate_repo: Path, dest: Path, bpfdir: str, scale: int) -> Path:
    def edit(kind: str, xml: bytes) -> bytes:
        if kind != "filelists":
            return gzip.compress(xml)
        first = xml.index(b"<package ")
        return gzip.compress(xml[:first] + _spaces_then_hits(bpfdir, scale << 20, 4000 * scale) + xml[first:])

    return rewritten(gate_repo, dest, edit)


def _read_seconds(repo: Path) -> float:
    """The fastest of three reads of ``repo`` by the gate's reader, in this process."""
    roots = bpfdirs.repository_roots()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        contents = read_repository(str(repo), roots)
        best = min(best, time.perf_counter() - started)
        assert any(path.endswith("/shared.o") for paths in contents.files.values() for path in paths)
    return best


def test_prefilter_is_linear_in_the_input(built, gate_repo, bpfdir, tmp_path):
    """Hits with no element around them once cost a rescan each (1 MiB and 4,000 hits: seconds; 8 MiB and
    32,000: hours). Doubling the crafted part must about double the time, and the largest stays fast."""
    sizes = (1, 2, 4, 8)
    seconds = {scale: _read_seconds(_crafted(gate_repo, tmp_path / f"x{scale}", bpfdir, scale)) for scale in sizes}
    assert seconds[8] < 10, seconds
    # Linear: 8x the input, well under 8x8 = 64x the time (quadratic); the fixed cost only helps the ratio.
    assert seconds[8] / seconds[1] < 20, seconds
    # The gate still finds the clash behind the crafted part.
    gate = ["scan", "-q", "--no-system-policy", "--against", str(tmp_path / "x8"), str(built["new-clash"])]
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", *gate],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert proc.returncode == 1 and "other-tool-1.0-1" in proc.stdout, proc.stdout + proc.stderr


def test_parser_messages_do_not_flood_stderr(built, gate_repo, bpfdir, tmp_path):
    """One 12 MiB attribute in a BPF-looking element: createrepo_c quotes it in hundreds of GLib messages
    (818 MB of stderr before); now one line names the repository, and the other repository is still read."""

    def edit(kind: str, xml: bytes) -> bytes:
        if kind != "filelists":
            return gzip.compress(xml)
        first = xml.index(b"<package ")
        bomb = b'<package pkgid="x" name="bomb" arch="x86_64" junk="' + b"A" * (12 << 20) + b'">'
        bomb += f'<version epoch="0" ver="1" rel="1"/><file>{bpfdir}/bomb.o</file></package>'.encode()
        return gzip.compress(xml[:first] + bomb + xml[first:])

    bad = rewritten(gate_repo, tmp_path / "bomb", edit)
    assert (bad / "repodata").stat().st_size < 1 << 20
    gate = ["scan", "-q", "--no-system-policy", "--against", str(bad), "--against", str(gate_repo)]
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", *gate, str(built["new-clash"])],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert len(proc.stderr) < 4096, proc.stderr[:500]
    lines = [line for line in proc.stderr.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith(f"rpm-bpf: error: {bad}: filelists metadata cannot be parsed")
    assert proc.returncode == 2 and "other-tool-1.0-1" in proc.stdout  # the clash in the good repository


class _Hostile(http.server.SimpleHTTPRequestHandler):
    """Serves the repository, but trickles the filelists (one byte per half second) and can redirect."""

    redirect_to = ""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.redirect_to and self.path.endswith("repomd.xml"):
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        if "filelists" not in self.path:
            super().do_GET()
            return
        path = self.translate_path(self.path)
        data = Path(path).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.5)


@contextlib.contextmanager
def _server(directory: Path, redirect_to: str = "") -> Iterator[str]:
    handler = functools.partial(type("H", (_Hostile,), {"redirect_to": redirect_to}), directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _gate(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "scan", "-q", "--no-system-policy", *args],
        capture_output=True,
        text=True,
        env=dict(ENV, **env),
        timeout=120,
    )


def test_trickling_server_is_cut_off_by_the_wall_time_deadline(built, gate_repo):
    """One byte every 0.5 s: each 4 MiB read used to wait for all its bytes (hours for a real file). The
    deadline ($RPM_BPF_REPO_DEADLINE here, 30 minutes by default) now bounds the whole transfer."""
    with _server(gate_repo) as url:
        started = time.monotonic()
        proc = _gate("--against", url, str(built["new-clash"]), RPM_BPF_REPO_DEADLINE="3")
        took = time.monotonic() - started
    assert proc.returncode == 2 and "not read within 3 s" in proc.stderr, proc.stderr
    assert took < 20, took


def test_redirect_to_ftp_is_refused(built, gate_repo):
    with _server(gate_repo, redirect_to="ftp://127.0.0.1/repodata/repomd.xml") as url:
        proc = _gate("--against", url, str(built["new-clash"]))
    assert proc.returncode == 2, proc.stderr
    assert "redirect to a ftp URL refused (http and https only)" in proc.stderr, proc.stderr


def test_hostile_baseline_inputs_are_errors_and_the_new_build_still_judged(built, gate_repo, tmp_path):
    """--baseline is read like any input: a FIFO named like a package, a damaged package and a directory
    link loop are one error each (exit 2), nothing blocks, and the new build's clash is still reported."""
    old = tmp_path / "old"
    old.mkdir()
    os.mkfifo(old / "fifo-1.0-1.x86_64.rpm")
    (old / "damaged-1.0-1.x86_64.rpm").write_bytes(built["repo-owner"].read_bytes()[:3000])
    (old / "loop").symlink_to(old)
    proc = _gate("--baseline", str(old), "--against", str(gate_repo), str(built["new-clash"]))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("rpm-bpf: error: ")]
    assert sorted(line.split(": ")[2].rsplit("/", 1)[1] for line in errors) == [
        "damaged-1.0-1.x86_64.rpm",
        "fifo-1.0-1.x86_64.rpm",
    ], errors
    assert "bpf-name-conflict" in proc.stdout and "other-tool-1.0-1" in proc.stdout


def test_comment_with_a_closing_tag_does_not_hide_a_package(built, gate_repo, tmp_path):
    """``<!-- </package> -->`` inside an element is valid XML that createrepo_c and dnf read as ever: the
    pre-filter must still hand the whole element over (a review of the linear pre-filter found it hid the
    package, and with it the clash)."""

    commented = rewritten(gate_repo, tmp_path / "commented", _commented)
    proc = _gate("--against", str(commented), str(built["new-clash"]))
    assert proc.returncode == 1 and "other-tool-1.0-1" in proc.stdout, proc.stdout + proc.stderr


def _commented(kind: str, xml: bytes) -> bytes:
    """Each package element with ``<!-- </package> -->`` after its first "/>" (filelists) or its
    ``<rpm:provides>`` (primary): valid XML."""
    anchor = b"/>" if kind == "filelists" else b"<rpm:provides>"
    out = b"".join(
        part.replace(anchor, anchor + b"<!-- </package> -->", 1) if part.startswith(b"<package ") else part
        for part in xml.replace(b"<package ", b"\0<package ").split(b"\0")
    )
    return gzip.compress(out)


def test_comment_with_a_closing_tag_in_the_inventory_read(built, gate_repo, bpfdir, tmp_path):
    """The inventory reads filelists first, then each named package's primary element: the name comes before
    the comment, so its element once ended at the comment's </package> (createrepo_c refused the half: the
    gate's two threads met that only when the filelists were read first, now and then in CI)."""
    commented = rewritten(gate_repo, tmp_path / "commented", _commented)
    contents = read_repository(str(commented), [bpfdir], inventory=True)
    (ref,) = [ref for ref in contents.files if ref.name == "other-tool"]
    assert contents.files[ref] == [f"{bpfdir}/shared.o"]
    assert ref in contents.requires  # its primary element, found by name, was parsed whole


def test_cdata_in_metadata_is_refused_naming_the_repository(built, gate_repo, tmp_path):
    """A file name in a CDATA section would hide from the byte search (dnf reads it): refused, exit 2."""

    def edit(kind: str, xml: bytes) -> bytes:
        if kind == "filelists":
            xml = xml.replace(b">/usr/lib64/bpf/", b"><![CDATA[/usr/lib64/bpf/", 1)
            xml = xml.replace(b".o</file>", b".o]]></file>", 1)
        return gzip.compress(xml)

    cdata = rewritten(gate_repo, tmp_path / "cdata", edit)
    proc = _gate("--against", str(cdata), str(built["new-clash"]))
    assert proc.returncode == 2 and f"{cdata}: a CDATA section" in proc.stderr, proc.stderr


def test_chunked_http_responses_are_read_to_their_end(built, gate_repo):
    """A server without Content-Length (chunked, in small chunks): the reads after the end of the body must
    give end of file, and the format must be known from a first read shorter than its magic."""

    class Chunked(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = Path(self.translate_path(self.path))
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for at in range(0, len(data), 3):
                piece = data[at : at + 3]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    handler = functools.partial(Chunked, directory=str(gate_repo))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = _gate("--against", f"http://127.0.0.1:{server.server_address[1]}/", str(built["new-clash"]))
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 1 and "other-tool-1.0-1" in proc.stdout, proc.stdout + proc.stderr


def test_server_trickling_its_headers_is_cut_off_by_the_deadline(built, gate_repo):
    """The status line and headers one byte every 0.5 s: http.client waits for them before any read of
    ours, so only a watchdog on the socket holds the deadline (a review of the first fix found this)."""

    class Slow(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            try:
                for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"a" * 10000:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        proc = _gate(
            "--against",
            f"http://127.0.0.1:{server.server_address[1]}/",
            str(built["new-clash"]),
            RPM_BPF_REPO_DEADLINE="3",
        )
        took = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 2 and "not read within 3 s" in proc.stderr, proc.stderr
    assert took < 20, took
