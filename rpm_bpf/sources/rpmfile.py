"""Reading RPM package files with the rpm bindings: header triage, lazy payload.

The header alone decides whether a package matters for BPF (file classes that
rpmbuild recorded from libmagic, directory names, a dependency on a BPF
loader library).  Only then are file entries built, and the payload is
decompressed only for the files a rule has to look into.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import struct
from collections.abc import Callable

import rpm

from rpm_bpf.model import (
    MAX_OBJECT,
    ContentError,
    ContentReader,
    Package,
    content_limit,
)
from rpm_bpf.sources.bpfdirs import BpfDirs, is_arch_name
from rpm_bpf.sources.rootfs import open_user_file
from rpm_bpf.sources.rpmheader import _SIG_TAG_TYPES, HeaderError, check_index, package_from_header

_LEAD_SIZE = 96
_LEAD_MAGIC = b"\xed\xab\xee\xdb"
_HEADER_MAGIC = b"\x8e\xad\xe8\x01"


class RpmFileError(ContentError):
    """An RPM file that cannot be read; ``str()`` names the file."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def quiet_rpm_log() -> None:
    """Keep librpm's own "error: ..." lines off stderr; front ends report instead."""
    rpm.setVerbosity(rpm.RPMLOG_CRIT)


def _link_sets(header: rpm.hdr) -> dict[int, tuple[int, int]]:
    """File index -> (device, inode) of every file in a hard-link set (two or more files share it)."""
    inodes, devices, modes = header[rpm.RPMTAG_FILEINODES], header[rpm.RPMTAG_FILEDEVICES], header[rpm.RPMTAG_FILEMODES]
    if not (len(inodes) == len(devices) == len(modes)):
        return {}  # the per-file arrays were checked before (rpmheader): only a header without files
    keys = [(devices[i], inodes[i]) if stat.S_ISREG(modes[i]) else None for i in range(len(inodes))]
    count: dict[tuple[int, int], int] = {}
    for key in keys:
        if key is not None:
            count[key] = count.get(key, 0) + 1
    return {i: key for i, key in enumerate(keys) if key is not None and count[key] > 1}


class RpmFile(ContentReader):
    """An opened RPM file: its header, the triaged package, and a payload reader."""

    def __init__(
        self, path: str, header: rpm.hdr, package: Package, payload_offset: int, identity: tuple[int, ...] = ()
    ) -> None:
        self.path = path
        self.header = header
        self.package = package
        self.payload_offset = payload_offset
        self.identity = identity  # (device, inode, size, mtime): the file whose header was checked

    def read(self, paths: set[str]) -> dict[str, bytes | OSError]:
        """Contents of ``paths`` from the payload (decompressing it once).

        The payload's own digest (PAYLOADDIGEST) is checked first, so that
        only the bytes rpmbuild wrote reach the decompressor; files larger
        than ``model.content_limit`` allows are not read (their entry gets an OSError).
        """
        wanted = set(paths)
        found: dict[str, bytes | OSError] = {}
        if not wanted:
            return found
        entries = {e.path: e for e in self.package.files}
        for path in list(wanted):
            entry = entries.get(path)
            if entry is not None and entry.size > content_limit(entry):
                limit = content_limit(entry)
                what = "a BPF object" if limit == MAX_OBJECT else "a file"
                found[path] = OSError(errno.EFBIG, f"{entry.size} bytes, larger than rpm-bpf reads of {what} ({limit})")
                wanted.discard(path)
        if not wanted:
            return found
        os_fd = _open_regular(self.path)
        try:
            if self.identity and _identity(os.fstat(os_fd)) != self.identity:
                raise RpmFileError(self.path, "the file changed while it was being checked")
            self._check_payload_digest(os_fd)
            os.lseek(os_fd, self.payload_offset, os.SEEK_SET)
            fd = rpm.fd(os_fd, "r")
            streams = [fd]
            try:
                compressor = self.header[rpm.RPMTAG_PAYLOADCOMPRESSOR]
                if compressor not in _COMPRESSORS:
                    raise RpmFileError(self.path, f"unknown payload compressor {compressor!r}")
                payload = rpm.fd(fd, "r", flags=_COMPRESSORS[compressor])
                streams.append(payload)
                files = rpm.files(self.header)
                # A hard-link set's data travels with one of its members only (rpmbuild: the last): every
                # member wanted is given those bytes, so the set's other members are read as well. Sets are
                # keyed by (device, inode) from the header, in one pass (never rpm.file.links: quadratic).
                set_of = _link_sets(self.header)
                links = {f.name: set_of[f.fx] for f in files if f.fx in set_of and f.name in wanted}
                wanted_sets = set(links.values())
                needed = wanted | {f.name for f in files if set_of.get(f.fx) in wanted_sets}
                shared: dict[tuple[int, int], bytes | OSError] = {}
                archive = files.archive(payload)
                budget = MAX_CONTENT_TOTAL
                for entry in archive:
                    if entry.name not in needed:
                        continue
                    needed.discard(entry.name)
                    if not archive.hascontent() and entry.fx in set_of:
                        continue  # a member whose bytes another member carries
                    if entry.size > budget:
                        data: bytes | OSError = OSError(
                            errno.EFBIG,
                            f"not read: the files to check in this package exceed {MAX_CONTENT_TOTAL} bytes",
                        )
                    else:
                        data = archive.read() if entry.size else b""
                        budget -= entry.size
                    if entry.fx in set_of:
                        shared[set_of[entry.fx]] = data
                    if entry.name in wanted:
                        found[entry.name] = data
                        wanted.discard(entry.name)
                    if not needed:
                        break
                for name, names in links.items():
                    carried = shared.get(names)
                    if name in wanted and carried is not None:
                        found[name] = carried
                        wanted.discard(name)
            finally:
                for stream in reversed(streams):  # the decompressor first: each holds a descriptor
                    with contextlib.suppress(rpm.error, OSError, ValueError):
                        stream.close()
        except RpmFileError:
            raise
        except (rpm.error, OSError, ValueError, TypeError) as exc:
            raise RpmFileError(self.path, f"corrupt or truncated payload ({exc})") from None
        finally:
            os.close(os_fd)
        for path in wanted:
            found[path] = FileNotFoundError(f"{path} is listed in the header but not in the payload")
        self._check_file_digests(found)
        return found

    def _check_file_digests(self, found: dict[str, bytes | OSError]) -> None:
        """Every file read against the digest the (checked) header records for it, as rpm does when it
        installs: a payload whose names or bytes disagree with the header is not this package, whatever
        its payload digest says (recomputed, or absent: then nothing else would have caught it)."""
        algo = DIGEST_ALGOS.get(self.package.digest_algo)
        if algo is None:
            raise RpmFileError(self.path, f"file digests of an unknown algorithm ({self.package.digest_algo})")
        entries = {e.path: e for e in self.package.files}
        for path, data in found.items():
            entry = entries.get(path)
            if isinstance(data, bytes) and entry is not None and entry.is_regular and len(data) != entry.size:
                raise RpmFileError(self.path, f"{path}: {len(data)} bytes in the payload, the header says {entry.size}")
            expected = entry.digest if entry is not None else None
            if (
                isinstance(data, bytes)
                and expected
                and hashlib.new(algo, data, usedforsecurity=False).hexdigest() != expected
            ):
                raise RpmFileError(self.path, f"{path}: payload content does not match the header's {algo} digest")

    def _check_payload_digest(self, fd: int) -> None:
        """The compressed payload against the header's PAYLOADDIGEST (rpm >= 4.14 writes it)."""
        digests = self.header[_TAG_PAYLOADDIGEST]
        if not digests:
            return  # older packages: the header digest still covers the file list and sizes
        algo = DIGEST_ALGOS.get(self.header[_TAG_PAYLOADDIGESTALGO] or 8)
        if algo is None:
            raise RpmFileError(self.path, "payload digest of an unknown algorithm")
        h = hashlib.new(algo)
        offset = self.payload_offset
        buffer = bytearray(_READ_CHUNK)  # one buffer for the whole payload: no allocation per chunk
        view = memoryview(buffer)
        while count := os.preadv(fd, [buffer], offset):
            h.update(view[:count])
            offset += count
        if h.hexdigest() != digests[0]:
            raise RpmFileError(self.path, f"payload digest mismatch ({algo}): the payload is not what was built")


_FIRST_READ = 16 * 1024  # lead, signature and main header of most packages; more is read when needed
_READ_CHUNK = 1 << 20
MAX_CONTENT_TOTAL = 2 << 30  # all the files read from one payload, at most
_SIGTAG_SIZE, _SIGTAG_LONGSIZE = 1000, 270  # header+payload size, in the signature header
_SIGTAG_SHA1, _SIGTAG_SHA256 = 269, 273  # hex digests of the main header, in the signature header
# OpenPGP signatures in the signature header: DSA/RSA over the header, PGP/GPG over header and payload,
# rpm 6's OPENPGP.
_SIGTAGS_OPENPGP = (267, 268, 1002, 1005, 278)
# By number: rpm 6 calls them PAYLOADSHA256(ALGO); the numbers are the on-disk format.
_TAG_PAYLOADDIGEST, _TAG_PAYLOADDIGESTALGO = 5092, 5093
# PAYLOADCOMPRESSOR values and the rpmio type each names (rpmio.c): a header
# string becomes an rpmio mode only if it is one of these.
_COMPRESSORS = {
    None: "ufdio",
    "": "ufdio",
    "identity": "ufdio",
    "ufdio": "ufdio",
    "gzip": "gzdio",
    "bzip2": "bzdio",
    "xz": "xzdio",
    "lzma": "lzdio",
    "zstd": "zstdio",
}
# rpm's own sanity limits (lib/header.c, hdrblobRead): index entries and data bytes.
_LIMITS = {"signature": (32, 64 << 20), "main": (0xFFFF, 0x0FFFFFFF)}
# rpm's PGPHASHALGO_* ids (rpmpgp.h) to hashlib names; shared with verification.
DIGEST_ALGOS = {
    1: "md5",
    2: "sha1",
    8: "sha256",
    9: "sha384",
    10: "sha512",
    11: "sha224",
    12: "sha3_256",
    14: "sha3_512",
}


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _open_regular(path: str) -> int:
    """A descriptor of ``path``, which must be a regular file: never blocks on a FIFO or reads a device."""
    try:
        return open_user_file(path, "an RPM file")
    except OSError as exc:
        raise RpmFileError(path, exc.strerror or str(exc)) from None


def _header_blob(path: str, fd: int, data: bytes, offset: int, what: str, file_size: int) -> tuple[bytes, int]:
    """The header structure at ``offset`` (as rpm.hdr() takes it) and its on-disk size.

    Its size is checked against rpm's limits and the file's size before
    anything more is read: a crafted count cannot make us read gigabytes.
    """
    if len(data) < offset + 16 or data[offset : offset + 4] != _HEADER_MAGIC:
        raise RpmFileError(path, f"truncated or corrupt RPM (no {what} header)")
    il, dl = struct.unpack_from(">II", data, offset + 8)
    max_il, max_dl = _LIMITS[what]
    if not 1 <= il <= max_il or dl > max_dl:
        raise RpmFileError(
            path,
            f"corrupt RPM: {what} header announces {il} entries and {dl} bytes of data "
            f"(rpm allows at most {max_il} and {max_dl})",
        )
    size = 16 + 16 * il + dl
    if offset + size > file_size:
        raise RpmFileError(path, f"truncated RPM (in the {what} header)")
    if len(data) < offset + size:
        data = os.pread(fd, offset + size, 0)
        if len(data) < offset + size:
            raise RpmFileError(path, f"truncated RPM (in the {what} header)")
    return data[offset + 8 : offset + size], size


def _check_header_digest(path: str, sig: rpm.hdr, on_disk: bytes) -> None:
    """The main header's bytes against the digest the signature header holds, as ``rpm -qp`` checks it.

    Only then is the header handed to librpm's tag readers: one flipped
    byte must make the package unreadable, not crash the reader.
    """
    for tag, algo in ((_SIGTAG_SHA256, "sha256"), (_SIGTAG_SHA1, "sha1")):
        expected = sig[tag]
        if expected:
            if hashlib.new(algo, on_disk).hexdigest() != expected:
                raise RpmFileError(path, f"header digest mismatch ({algo}): the header is not what was built")
            return
    raise RpmFileError(path, "the RPM has no header digest (SHA-256 or SHA-1) to check its header against")


def open_rpm(
    path: str,
    dirs_for: Callable[[str], BpfDirs],
    deep: bool = False,
    embedded: str = "signals",
    archives: bool = False,
) -> RpmFile:
    """Read, check and triage one RPM file; ``dirs_for(arch)`` gives its BpfDirs.

    ``deep``, ``embedded``, ``archives``: as ``package_from_header`` (scan asks for archives; the DNF
    check after download does not, so it reads no more of a payload than before).

    The lead, signature and header are located with one read, the header
    digest is checked, and the header goes to rpm's own parser; the payload
    is left for ``RpmFile.read``. Any defect raises ``RpmFileError``.
    """
    fd = _open_regular(path)
    try:
        st = os.fstat(fd)
        if st.st_size == 0:
            raise RpmFileError(path, "empty file, not an RPM package")
        data = os.pread(fd, _FIRST_READ, 0)
        if not data.startswith(_LEAD_MAGIC):
            raise RpmFileError(path, "not an RPM package (no RPM lead)")
        sig_blob, sig_size = _header_blob(path, fd, data, _LEAD_SIZE, "signature", st.st_size)
        header_start = _LEAD_SIZE + sig_size + (-sig_size % 8)
        hdr_blob, hdr_size = _header_blob(path, fd, data, header_start, "main", st.st_size)
    except OSError as exc:
        raise RpmFileError(path, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    try:
        check_index(sig_blob, _SIG_TAG_TYPES)
        sig = rpm.hdr(sig_blob)
    except (rpm.error, TypeError, ValueError) as exc:
        raise RpmFileError(path, f"corrupt RPM signature header ({exc})") from None
    _check_header_digest(path, sig, _HEADER_MAGIC + b"\0\0\0\0" + hdr_blob)
    try:
        check_index(hdr_blob)
        hdr = rpm.hdr(hdr_blob)
    except (rpm.error, TypeError, ValueError) as exc:
        raise RpmFileError(path, f"corrupt RPM header ({exc})") from None
    expected = sig[_SIGTAG_LONGSIZE] or sig[_SIGTAG_SIZE]
    if expected and header_start + expected > st.st_size:
        raise RpmFileError(path, f"truncated RPM: {st.st_size} bytes, its header announces {header_start + expected}")
    arch = hdr[rpm.RPMTAG_ARCH] or "noarch"
    if not is_arch_name(arch):
        raise RpmFileError(path, f"architecture {arch!r} is not an architecture name")
    try:
        package = package_from_header(hdr, dirs_for, origin=path, deep=deep, embedded=embedded, archives=archives)
    except HeaderError as exc:
        raise RpmFileError(path, f"corrupt RPM header ({exc})") from None
    package.signed = any(sig[tag] for tag in _SIGTAGS_OPENPGP)
    return RpmFile(path, hdr, package, header_start + hdr_size, _identity(st))
