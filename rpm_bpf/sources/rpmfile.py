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
import struct
from collections.abc import Callable

import rpm

from rpm_bpf.errors import RpmBpfError
from rpm_bpf.model import (
    GO_CLASS,
    MAX_OBJECT,
    ContentError,
    ContentReader,
    FileEntry,
    Package,
    PackageRef,
    content_limit,
)
from rpm_bpf.sources.bpfdirs import BpfDirs, is_arch_name, under
from rpm_bpf.sources.rootfs import open_user_file

_LEAD_SIZE = 96
_LEAD_MAGIC = b"\xed\xab\xee\xdb"
_HEADER_MAGIC = b"\x8e\xad\xe8\x01"
# Header signals that a package's ELF files may carry BPF objects, as
# (signal, dependency names (Requires or Provides) containing one of these).
# The first that matches names the signal; Go binaries are also known by
# their file class (package.GO_CLASS). Substrings, so that Fedora's
# bundled(golang(...)) and bundled(crate(...)) provides match too.
EMBEDDED_SIGNALS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("libbpf-dynamic", ("libbpf.so", "libxdp.so")),
    ("rust", ("crate(libbpf-sys", "crate(libbpf-rs", "crate(libbpf-cargo", "crate(aya")),
    ("go", ("golang(github.com/cilium/ebpf",)),
    ("libbpf-static", ("bundled(libbpf)",)),  # Fedora's mark of a vendored libbpf
)
# libbpf linked statically leaves its own link dependencies in the ELF file:
# libelf and zlib, both (libbpf.pc: Requires.private: libelf zlib). Judged per
# file from rpm's per-file dependencies: a package whose tools link libelf for
# other reasons (elfutils users) is not searched for that.
STATIC_LIBBPF_NEEDS = ("libelf.so", "libz.so")
EMBEDDED_MODES = ("signals", "all")


def embedded_signal(dependencies: str) -> str | None:
    """The header signal that has this package's ELF files searched for embedded BPF objects.

    ``dependencies``: the package's Requires and Provides names, one a line
    (one substring scan instead of one call per dependency).
    """
    for signal, needles in EMBEDDED_SIGNALS:
        if any(needle in dependencies for needle in needles):
            return signal
    return None


class RpmFileError(ContentError):
    """An RPM file that cannot be read; ``str()`` names the file."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def quiet_rpm_log() -> None:
    """Keep librpm's own "error: ..." lines off stderr; front ends report instead."""
    rpm.setVerbosity(rpm.RPMLOG_CRIT)


def _link_names(member: rpm.file) -> tuple[str, ...]:
    """The paths of ``member``'s hard-link set, in one order (the set's key)."""
    return tuple(sorted(link.name for link in member.links))


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
                # member wanted is given those bytes, so the set's other members are read as well.
                links = {f.name: _link_names(f) for f in files if f.nlink > 1 and f.name in wanted}
                needed = wanted | {name for names in links.values() for name in names}
                shared: dict[tuple[str, ...], bytes | OSError] = {}
                archive = files.archive(payload)
                budget = MAX_CONTENT_TOTAL
                for entry in archive:
                    if entry.name not in needed:
                        continue
                    needed.discard(entry.name)
                    if not archive.hascontent() and entry.nlink > 1:
                        continue  # a member whose bytes another member carries
                    if entry.size > budget:
                        data: bytes | OSError = OSError(
                            errno.EFBIG,
                            f"not read: the files to check in this package exceed {MAX_CONTENT_TOTAL} bytes",
                        )
                    else:
                        data = archive.read() if entry.size else b""
                        budget -= entry.size
                    if entry.nlink > 1:
                        shared[_link_names(entry)] = data
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
        digests = {e.path: e.digest for e in self.package.files}
        for path, data in found.items():
            expected = digests.get(path)
            if isinstance(data, bytes) and expected and hashlib.new(algo, data).hexdigest() != expected:
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
        while chunk := os.pread(fd, _READ_CHUNK, offset):
            h.update(chunk)
            offset += len(chunk)
        if h.hexdigest() != digests[0]:
            raise RpmFileError(self.path, f"payload digest mismatch ({algo}): the payload is not what was built")


_FIRST_READ = 16 * 1024  # lead, signature and main header of most packages; more is read when needed
_READ_CHUNK = 1 << 20
MAX_CONTENT_TOTAL = 2 << 30  # all the files read from one payload, at most
_SIGTAG_SIZE, _SIGTAG_LONGSIZE = 1000, 270  # header+payload size, in the signature header
_SIGTAG_SHA1, _SIGTAG_SHA256 = 269, 273  # hex digests of the main header, in the signature header
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


def open_rpm(path: str, dirs_for: Callable[[str], BpfDirs], deep: bool = False, embedded: str = "signals") -> RpmFile:
    """Read, check and triage one RPM file; ``dirs_for(arch)`` gives its BpfDirs.

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
        package = package_from_header(hdr, dirs_for, origin=path, deep=deep, embedded=embedded)
    except HeaderError as exc:
        raise RpmFileError(path, f"corrupt RPM header ({exc})") from None
    return RpmFile(path, hdr, package, header_start + hdr_size, _identity(st))


def package_from_header(
    hdr: rpm.hdr, dirs_for: Callable[[str], BpfDirs], origin: str, deep: bool = False, embedded: str = "signals"
) -> Package:
    """The Package model of a header, with only its BPF-relevant files.

    Shared by RPM files and the rpm database: both hand over headers.
    ``deep`` keeps every file (and later reads every one): no triage.
    ``embedded``: "signals" searches ELF files for embedded objects where a
    header signal says they may be (``embedded_signal``, Go binaries);
    "all" searches every ELF file (signal "payload" where none says so).
    """
    arch = hdr[rpm.RPMTAG_ARCH] or "noarch"
    # As rpm decides (headerIsSource): a package without SOURCERPM is a source package.
    is_source = not hdr[rpm.RPMTAG_SOURCERPM]
    if hdr[rpm.RPMTAG_SOURCEPACKAGE] and not is_source:
        raise HeaderError("SOURCEPACKAGE set on a package that names its SOURCERPM")
    _check_dirnames(hdr[rpm.RPMTAG_DIRNAMES], is_source)
    for tag, what in ((rpm.RPMTAG_NAME, "name"), (rpm.RPMTAG_VERSION, "version"), (rpm.RPMTAG_RELEASE, "release")):
        if not isinstance(hdr[tag], str) or not hdr[tag]:
            raise HeaderError(f"no package {what}")
    if hdr[rpm.RPMTAG_OLDFILENAMES]:
        raise HeaderError("legacy file list (OLDFILENAMES), as no rpm of the last 20 years writes")
    ref = PackageRef(
        name=hdr[rpm.RPMTAG_NAME],
        epoch=hdr[rpm.RPMTAG_EPOCH],
        version=hdr[rpm.RPMTAG_VERSION],
        release=hdr[rpm.RPMTAG_RELEASE],
        arch="src" if is_source else arch,
        source=origin,
    )
    requires = tuple(hdr[rpm.RPMTAG_REQUIRENAME])
    pkg = Package(
        ref=ref,
        sourcerpm=hdr[rpm.RPMTAG_SOURCERPM] or "",
        requires=requires,
        digest_algo=hdr[rpm.RPMTAG_FILEDIGESTALGO] or 1,
        is_source=is_source,
        deep=deep,
    )
    if is_source:
        # The spec file is what the spec rules judge; nothing else in a source package.
        pkg.files = _file_entries(hdr, lambda index, path, fclass: path.endswith(".spec"))
        return pkg
    roots = dirs_for(arch).roots
    classes = hdr[rpm.RPMTAG_CLASSDICT]
    has_bpf_class = any("eBPF" in c or "arch 0xf7" in c for c in classes)
    # DIRNAMES end with "/": one prefix test per directory covers root and below.
    prefixes = tuple(root + "/" for root in roots)
    in_bpfdir = any(d.startswith(prefixes) for d in hdr[rpm.RPMTAG_DIRNAMES])
    no_classes = not classes and any(b.endswith(".o") for b in hdr[rpm.RPMTAG_BASENAMES])
    has_elf = any(c.startswith("ELF") for c in classes)
    static: set[int] = set()
    if has_elf:
        dependencies = "\n".join(requires + tuple(hdr[rpm.RPMTAG_PROVIDENAME]))
        pkg.embedded_signal = embedded_signal(dependencies) or ("payload" if embedded == "all" else None)
        if not pkg.embedded_signal and all(needle in dependencies for needle in STATIC_LIBBPF_NEEDS):
            static = _files_requiring(hdr, requires, STATIC_LIBBPF_NEEDS)
    go_files = has_elf and not pkg.embedded_signal and any(GO_CLASS in c for c in classes)
    if not (deep or has_bpf_class or in_bpfdir or no_classes or pkg.embedded_signal or go_files or static):
        return pkg
    searched = bool(pkg.embedded_signal)

    def wanted(index: int, path: str, fclass: str) -> bool:
        if index in static and fclass.startswith("ELF"):
            pkg.file_signals[path] = "libbpf-static"
            return True
        return (
            deep
            or any(under(path, root) for root in roots)
            or "eBPF" in fclass
            or "arch 0xf7" in fclass
            or (no_classes and path.endswith(".o"))
            or (fclass.startswith("ELF") and (searched or (go_files and GO_CLASS in fclass)))
        )

    pkg.files = _file_entries(hdr, wanted)
    return pkg


_DEP_REQUIRE = ord("R")  # DEPENDSDICT class of a Requires (rpmfiles.h: class << 24 | index)


def _files_requiring(hdr: rpm.hdr, requires: tuple[str, ...], needles: tuple[str, ...]) -> set[int]:
    """Indexes of the files whose own Requires (rpmbuild's per-file dependencies) contain every needle.

    Read from the raw tags and bounds-checked here: a crafted header's
    indexes point nowhere rather than anywhere.
    """
    starts, counts, table = (
        hdr[tag] or [] for tag in (rpm.RPMTAG_FILEDEPENDSX, rpm.RPMTAG_FILEDEPENDSN, rpm.RPMTAG_DEPENDSDICT)
    )
    # Prefix sums per needle over the table: each file's range is then checked in constant time, so
    # crafted overlapping ranges cost O(files + table), not their product.
    has = [[needle in name for name in requires] for needle in needles]
    sums = []
    for matches in has:
        running, total = [0], 0
        for d in table:
            ri = d & 0xFFFFFF
            total += d >> 24 == _DEP_REQUIRE and ri < len(requires) and matches[ri]
            running.append(total)
        sums.append(running)
    found = set()
    for index, (start, count) in enumerate(zip(starts, counts, strict=False)):
        if start < 0 or count <= 0 or start + count > len(table):
            continue
        if all(running[start + count] > running[start] for running in sums):
            found.add(index)
    return found


class HeaderError(RpmBpfError, ValueError):
    """A header whose tags contradict each other (crafted or corrupt)."""


# rpm's on-disk types (rpmtag.h) of the tags rpm-bpf reads. librpm's tag
# extensions (FILENAMES, FILECLASS) trust these types: a DIRNAMES or CLASSDICT
# stored as another string type (or a second entry of the tag, of another
# type) makes librpm 4.18 read text as pointers (SIGSEGV), although each
# entry is well-formed. A tag may legitimately appear twice (an entry added
# after the immutable region replaces the region's own): every one is checked.
_STRING, _STRING_ARRAY, _INT16, _INT32, _INT64 = 6, 8, 3, 4, 5
_TAG_TYPES = {
    1000: _STRING,
    1001: _STRING,
    1002: _STRING,
    1022: _STRING,
    1044: _STRING,
    1125: _STRING,  # N V R A, srpm
    1003: _INT32,
    1106: _INT32,
    5011: _INT32,
    5093: _INT32,  # EPOCH, SOURCEPACKAGE, digest algorithms
    1027: _STRING_ARRAY,
    1035: _STRING_ARRAY,
    1036: _STRING_ARRAY,
    1039: _STRING_ARRAY,  # OLDFILENAMES...
    1040: _STRING_ARRAY,
    1047: _STRING_ARRAY,
    1049: _STRING_ARRAY,  # ...PROVIDENAME, REQUIRENAME
    1117: _STRING_ARRAY,
    1118: _STRING_ARRAY,  # BASENAMES, DIRNAMES
    1142: _STRING_ARRAY,
    5092: _STRING_ARRAY,  # CLASSDICT, PAYLOADDIGEST
    1028: _INT32,
    1037: _INT32,
    1116: _INT32,
    1141: _INT32,  # FILESIZES, FILEFLAGS, DIRINDEXES, FILECLASS
    1143: _INT32,
    1144: _INT32,
    1145: _INT32,  # FILEDEPENDSX, FILEDEPENDSN, DEPENDSDICT
    1030: _INT16,
    5008: _INT64,  # FILEMODES, LONGFILESIZES
}


# The signature header's tags rpm-bpf reads (RPMSIGTAG_*): sizes and header digests.
_SIG_TAG_TYPES = {1000: _INT32, 270: _INT64, 269: _STRING, 273: _STRING}


def check_index(blob: bytes, types: dict[int, int] = _TAG_TYPES) -> None:
    """The header's index, before librpm's tag readers see it: the types rpm writes.

    ``blob`` starts at the index count (as ``rpm.hdr()`` and ``hdr.unload()`` have it).
    """
    il = struct.unpack_from(">I", blob, 0)[0]
    for tag, kind, _offset, _count in struct.iter_unpack(">iIiI", blob[8 : 8 + 16 * il]):
        expected = types.get(tag)
        if expected is not None and kind != expected:
            raise HeaderError(f"tag {tag} has type {kind}, rpm writes it as type {expected}")


_PER_FILE_TAGS = (
    (rpm.RPMTAG_FILEMODES, "FILEMODES"),
    (rpm.RPMTAG_FILEUSERNAME, "FILEUSERNAME"),
    (rpm.RPMTAG_FILEGROUPNAME, "FILEGROUPNAME"),
    (rpm.RPMTAG_FILEFLAGS, "FILEFLAGS"),
    (rpm.RPMTAG_FILEDIGESTS, "FILEDIGESTS"),
    (rpm.RPMTAG_FILELINKTOS, "FILELINKTOS"),
)


def _check_dirnames(dirnames: list[str], source: bool) -> None:
    """Directory names as rpmbuild writes them: absolute, normalised, ending in "/"
    (a source package's files have the empty directory name).

    rpm installs ``/usr/lib64/bpf/../../../usr/share/x/`` where it leads, while
    every prefix test would place it in the BPF directory.
    """
    for name in dirnames:
        if source and name == "":
            continue
        if not name.startswith("/") or not name.endswith("/") or "//" in name or "/./" in name or "/../" in name:
            raise HeaderError(f"directory name {name!r} is not a normalised absolute path")


def _file_names(hdr: rpm.hdr) -> list[str]:
    """Every file's path, from the raw BASENAMES/DIRNAMES/DIRINDEXES tags, checked first.

    rpm's own FILENAMES (and FILECLASS) are computed by librpm from these
    tags; on contradicting ones it can crash, so they are checked here and
    the names are joined as rpm joins them.
    """
    basenames = hdr[rpm.RPMTAG_BASENAMES]
    if not basenames:
        return []
    dirnames, dirindexes = hdr[rpm.RPMTAG_DIRNAMES], hdr[rpm.RPMTAG_DIRINDEXES]
    count = len(basenames)
    if len(dirindexes) != count:
        raise HeaderError(f"{len(dirindexes)} DIRINDEXES for {count} files")
    if count and not 0 <= min(dirindexes) <= max(dirindexes) < len(dirnames):
        raise HeaderError(f"a DIRINDEXES entry is out of range (there are {len(dirnames)} DIRNAMES)")
    for tag, name in _PER_FILE_TAGS:
        if len(hdr[tag]) != count:
            raise HeaderError(f"{len(hdr[tag])} {name} entries for {count} files")
    sizes = hdr[rpm.RPMTAG_LONGFILESIZES] or hdr[rpm.RPMTAG_FILESIZES]
    if len(sizes) != count:
        raise HeaderError(f"{len(sizes)} file sizes for {count} files")
    classes = hdr[rpm.RPMTAG_FILECLASS]
    if classes and len(classes) != count:
        raise HeaderError(f"{len(classes)} FILECLASS entries for {count} files")
    for name, d in zip(basenames, dirindexes, strict=False):
        if "/" in name or name in (".", "..") or (name == "" and dirnames[d] != "/"):
            # (rpm keeps "/" itself as the directory "/" with an empty file name)
            raise HeaderError(f"file name {name!r} in BASENAMES is not a plain name")
    return [dirnames[d] + b for d, b in zip(dirindexes, basenames, strict=False)]


def _file_entries(hdr: rpm.hdr, wanted: Callable[[int, str, str], bool]) -> list[FileEntry]:
    """The header's files for which ``wanted(index, path, fileclass)`` holds."""
    check_index(hdr.unload())  # FILECLASS is computed by librpm: headers from an rpmdb are checked too
    names = _file_names(hdr)
    if not names:
        return []
    fclasses = hdr[rpm.RPMTAG_FILECLASS] or [""] * len(names)
    picked = [i for i, path in enumerate(names) if wanted(i, path, fclasses[i])]
    if not picked:
        return []
    modes = hdr[rpm.RPMTAG_FILEMODES]
    sizes = hdr[rpm.RPMTAG_LONGFILESIZES] or hdr[rpm.RPMTAG_FILESIZES]
    users = hdr[rpm.RPMTAG_FILEUSERNAME]
    groups = hdr[rpm.RPMTAG_FILEGROUPNAME]
    flags = hdr[rpm.RPMTAG_FILEFLAGS]
    digests = hdr[rpm.RPMTAG_FILEDIGESTS]
    links = hdr[rpm.RPMTAG_FILELINKTOS]
    return [
        FileEntry(
            path=names[i],
            mode=modes[i] & 0xFFFF,
            size=sizes[i],
            user=users[i],
            group=groups[i],
            flags=flags[i],
            fileclass=fclasses[i],
            digest=digests[i],
            linkto=links[i],
        )
        for i in picked
    ]
