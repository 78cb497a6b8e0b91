"""Reading RPM package files with the rpm bindings: header triage, lazy payload.

The header alone decides whether a package matters for BPF (file classes that
rpmbuild recorded from libmagic, directory names, a dependency on a BPF
loader library).  Only then are file entries built, and the payload is
decompressed only for the files a rule has to look into.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

import rpm

from .bpfdirs import under
from .findings import PackageRef
from .package import ContentError, FileEntry, Package

_LEAD_SIZE = 96
_LEAD_MAGIC = b"\xed\xab\xee\xdb"
_HEADER_MAGIC = b"\x8e\xad\xe8\x01"
# Dependencies that mean "this package loads BPF programs": only such
# packages have their ELF files searched for embedded objects.
LOADER_LIBRARIES = ("libbpf.so", "libxdp.so")


def _links_loader(requires: tuple[str, ...]) -> bool:
    joined = "\n".join(requires)  # one scan instead of one call per dependency
    return any(lib in joined for lib in LOADER_LIBRARIES)


class RpmFileError(ContentError):
    """An RPM file that cannot be read; ``str()`` names the file."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def quiet_rpm_log() -> None:
    """Keep librpm's own "error: ..." lines off stderr; front ends report instead."""
    rpm.setVerbosity(rpm.RPMLOG_CRIT)


class RpmFile:
    """An opened RPM file: its header, the triaged package, and a payload reader."""

    def __init__(self, path: str, header: rpm.hdr, package: Package, payload_offset: int) -> None:
        self.path = path
        self.header = header
        self.package = package
        self.payload_offset = payload_offset

    def read(self, paths: set[str]) -> dict[str, bytes | OSError]:
        """Contents of ``paths`` from the payload (decompressing it once)."""
        wanted = set(paths)
        found: dict[str, bytes | OSError] = {}
        if not wanted:
            return found
        fd = None
        try:
            fd = rpm.fd.open(self.path)
            fd.seek(self.payload_offset)
            compressor = self.header[rpm.RPMTAG_PAYLOADCOMPRESSOR] or "ufdio"
            payload = rpm.fd(fd, "r", flags=compressor)
            archive = rpm.files(self.header).archive(payload)
            for entry in archive:
                if entry.name in wanted:
                    found[entry.name] = archive.read() if entry.size else b""
                    wanted.discard(entry.name)
                    if not wanted:
                        break
        except (rpm.error, OSError, ValueError, TypeError) as exc:
            raise RpmFileError(self.path, f"corrupt or truncated payload ({exc})") from None
        finally:
            if fd is not None:
                fd.close()
        for path in wanted:
            found[path] = FileNotFoundError(f"{path} is listed in the header but not in the payload")
        return found


_FIRST_READ = 16 * 1024  # lead, signature and main header of most packages; more is read when needed
_SIGTAG_SIZE, _SIGTAG_LONGSIZE = 1000, 270  # header+payload size, in the signature header


def _header_blob(path: str, fd: int, data: bytes, offset: int, what: str) -> tuple[bytes, int]:
    """The header structure at ``offset`` (as rpm.hdr() takes it) and its on-disk size."""
    if len(data) < offset + 16 or data[offset:offset + 4] != _HEADER_MAGIC:
        raise RpmFileError(path, f"truncated or corrupt RPM (no {what} header)")
    il, dl = struct.unpack_from(">II", data, offset + 8)
    size = 16 + 16 * il + dl
    if len(data) < offset + size:
        data = os.pread(fd, offset + size, 0)
        if len(data) < offset + size:
            raise RpmFileError(path, f"truncated RPM (in the {what} header)")
    return data[offset + 8:offset + size], size


def open_rpm(path: str, dirs_for, deep: bool = False) -> RpmFile:
    """Read and triage one RPM file; ``dirs_for(arch)`` gives its BpfDirs.

    The lead, signature and header are located with one read and handed to
    rpm's own header parser; the payload is left for ``RpmFile.read``.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise RpmFileError(path, exc.strerror or str(exc)) from None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            raise RpmFileError(path, "empty file, not an RPM package")
        data = os.pread(fd, _FIRST_READ, 0)
        if not data.startswith(_LEAD_MAGIC):
            raise RpmFileError(path, "not an RPM package (no RPM lead)")
        sig_blob, sig_size = _header_blob(path, fd, data, _LEAD_SIZE, "signature")
        header_start = _LEAD_SIZE + sig_size + (-sig_size % 8)
        hdr_blob, hdr_size = _header_blob(path, fd, data, header_start, "main")
    except IsADirectoryError:
        raise RpmFileError(path, "is a directory") from None
    except OSError as exc:
        raise RpmFileError(path, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    try:
        sig = rpm.hdr(sig_blob)
        hdr = rpm.hdr(hdr_blob)
    except (rpm.error, TypeError, ValueError) as exc:
        raise RpmFileError(path, f"corrupt RPM header ({exc})") from None
    expected = sig[_SIGTAG_LONGSIZE] or sig[_SIGTAG_SIZE]
    if expected and header_start + expected > size:
        raise RpmFileError(path, f"truncated RPM: {size} bytes, its header announces {header_start + expected}")
    package = package_from_header(hdr, dirs_for, origin=path, deep=deep)
    return RpmFile(path, hdr, package, header_start + hdr_size)


def package_from_header(hdr: rpm.hdr, dirs_for, origin: str, deep: bool = False) -> Package:
    """The Package model of a header, with only its BPF-relevant files.

    Shared by RPM files and the rpm database: both hand over headers.
    ``deep`` keeps every file (and later reads every one): no triage.
    """
    arch = hdr[rpm.RPMTAG_ARCH] or "noarch"
    is_source = bool(hdr[rpm.RPMTAG_SOURCEPACKAGE]) or not hdr[rpm.RPMTAG_SOURCERPM]
    ref = PackageRef(
        name=hdr[rpm.RPMTAG_NAME], epoch=hdr[rpm.RPMTAG_EPOCH], version=hdr[rpm.RPMTAG_VERSION],
        release=hdr[rpm.RPMTAG_RELEASE], arch="src" if is_source else arch, source=origin)
    requires = tuple(hdr[rpm.RPMTAG_REQUIRENAME])
    pkg = Package(ref=ref, sourcerpm=hdr[rpm.RPMTAG_SOURCERPM] or "", requires=requires,
                  digest_algo=hdr[rpm.RPMTAG_FILEDIGESTALGO] or 1, is_source=is_source, deep=deep)
    if is_source:
        # The spec file is what the spec rules judge; nothing else in a source package.
        pkg.files = _file_entries(hdr, lambda path, fclass: path.endswith(".spec"))
        return pkg
    roots = dirs_for(arch).roots
    classes = hdr[rpm.RPMTAG_CLASSDICT]
    has_bpf_class = any("eBPF" in c or "arch 0xf7" in c for c in classes)
    # DIRNAMES end with "/": one prefix test per directory covers root and below.
    prefixes = tuple(root + "/" for root in roots)
    in_bpfdir = any(d.startswith(prefixes) for d in hdr[rpm.RPMTAG_DIRNAMES])
    no_classes = not classes and any(b.endswith(".o") for b in hdr[rpm.RPMTAG_BASENAMES])
    pkg.wants_embedded_scan = deep or (any(c.startswith("ELF") for c in classes)
                                       and _links_loader(requires))
    if not (deep or has_bpf_class or in_bpfdir or no_classes or pkg.wants_embedded_scan):
        return pkg
    embedded = pkg.wants_embedded_scan

    def wanted(path: str, fclass: str) -> bool:
        return (deep or any(under(path, root) for root in roots)
                or "eBPF" in fclass or "arch 0xf7" in fclass
                or (no_classes and path.endswith(".o"))
                or (embedded and fclass.startswith("ELF")))

    pkg.files = _file_entries(hdr, wanted)
    return pkg


def _file_entries(hdr: rpm.hdr, wanted: Callable[[str, str], bool]) -> list[FileEntry]:
    """The header's files for which ``wanted(path, fileclass)`` holds."""
    names = hdr[rpm.RPMTAG_FILENAMES]
    fclasses = hdr[rpm.RPMTAG_FILECLASS] or [""] * len(names)
    picked = [i for i, path in enumerate(names) if wanted(path, fclasses[i])]
    if not picked:
        return []
    modes = hdr[rpm.RPMTAG_FILEMODES]
    sizes = hdr[rpm.RPMTAG_LONGFILESIZES] or hdr[rpm.RPMTAG_FILESIZES]
    users = hdr[rpm.RPMTAG_FILEUSERNAME]
    groups = hdr[rpm.RPMTAG_FILEGROUPNAME]
    flags = hdr[rpm.RPMTAG_FILEFLAGS]
    digests = hdr[rpm.RPMTAG_FILEDIGESTS]
    links = hdr[rpm.RPMTAG_FILELINKTOS]
    return [FileEntry(path=names[i], mode=modes[i] & 0xFFFF, size=sizes[i], user=users[i], group=groups[i],
                      flags=flags[i], fileclass=fclasses[i], digest=digests[i], linkto=links[i]) for i in picked]
