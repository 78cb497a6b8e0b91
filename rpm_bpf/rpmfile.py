"""Reading RPM package files with the rpm bindings: header triage, lazy payload.

The header alone decides whether a package matters for BPF (file classes that
rpmbuild recorded from libmagic, directory names, a dependency on a BPF
loader library).  Only then are file entries built, and the payload is
decompressed only for the files a rule has to look into.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import rpm

from .bpfdirs import BpfDirs, under
from .findings import PackageRef
from .package import ContentError, FileEntry, Package

_LEAD_SIZE = 96
_LEAD_MAGIC = b"\xed\xab\xee\xdb"
_HEADER_MAGIC = b"\x8e\xad\xe8\x01"
# Dependencies that mean "this package loads BPF programs": only such
# packages have their ELF files searched for embedded objects.
LOADER_LIBRARIES = ("libbpf.so", "libxdp.so")


class RpmFileError(ContentError):
    """An RPM file that cannot be read; ``str()`` names the file."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _transaction_set() -> rpm.TransactionSet:
    ts = rpm.TransactionSet()
    # Signatures are the job of rpm -K / dnf; the header's own structure is
    # still checked by rpm when it is imported.
    ts.setVSFlags(getattr(rpm, "_RPMVSF_NOSIGNATURES", 0) | getattr(rpm, "_RPMVSF_NODIGESTS", 0))
    return ts


_TS: rpm.TransactionSet | None = None


def quiet_rpm_log() -> None:
    """Keep librpm's own "error: ..." lines off stderr; front ends report instead."""
    rpm.setVerbosity(rpm.RPMLOG_CRIT)


@dataclass
class RpmFile:
    """An opened RPM file: its header, the triaged package, and a payload reader."""

    path: str
    header: rpm.hdr
    package: Package
    payload_offset: int

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


def open_rpm(path: str, dirs_for) -> RpmFile:
    """Read and triage one RPM file; ``dirs_for(arch)`` gives its BpfDirs."""
    global _TS
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            intro = stream.read(_LEAD_SIZE + 16)
    except IsADirectoryError:
        raise RpmFileError(path, "is a directory") from None
    except OSError as exc:
        raise RpmFileError(path, exc.strerror or str(exc)) from None
    if size == 0:
        raise RpmFileError(path, "empty file, not an RPM package")
    if not intro.startswith(_LEAD_MAGIC):
        raise RpmFileError(path, "not an RPM package (no RPM lead)")
    if len(intro) < _LEAD_SIZE + 16 or intro[_LEAD_SIZE:_LEAD_SIZE + 4] != _HEADER_MAGIC:
        raise RpmFileError(path, "truncated or corrupt RPM (no signature header)")
    il, dl = struct.unpack_from(">II", intro, _LEAD_SIZE + 8)
    sig_size = 16 + 16 * il + dl
    header_start = _LEAD_SIZE + sig_size + (-sig_size % 8)
    if _TS is None:
        _TS = _transaction_set()
    fd = rpm.fd.open(path)
    try:
        hdr = _TS.hdrFromFdno(fd)
        payload_offset = fd.tell()
    except (rpm.error, OSError) as exc:
        raise RpmFileError(path, f"corrupt or truncated RPM header ({exc})") from None
    finally:
        fd.close()
    expected = hdr[rpm.RPMTAG_LONGSIGSIZE] or hdr[rpm.RPMTAG_SIGSIZE]
    if expected and header_start + expected > size:
        raise RpmFileError(path, f"truncated RPM: {size} bytes, its header announces {header_start + expected}")
    return RpmFile(path, hdr, package_from_header(hdr, dirs_for, origin=path), payload_offset)


def package_from_header(hdr: rpm.hdr, dirs_for, origin: str) -> Package:
    """The Package model of a header, with only its BPF-relevant files.

    Shared by RPM files and the rpm database: both hand over headers.
    """
    arch = hdr[rpm.RPMTAG_ARCH] or "noarch"
    is_source = bool(hdr[rpm.RPMTAG_SOURCEPACKAGE]) or not hdr[rpm.RPMTAG_SOURCERPM]
    ref = PackageRef(
        name=hdr[rpm.RPMTAG_NAME], epoch=hdr[rpm.RPMTAG_EPOCH], version=hdr[rpm.RPMTAG_VERSION],
        release=hdr[rpm.RPMTAG_RELEASE], arch="src" if is_source else arch, source=origin)
    requires = tuple(hdr[rpm.RPMTAG_REQUIRENAME])
    pkg = Package(ref=ref, sourcerpm=hdr[rpm.RPMTAG_SOURCERPM] or "", requires=requires,
                  digest_algo=hdr[rpm.RPMTAG_FILEDIGESTALGO] or 1, is_source=is_source)
    if is_source:
        return pkg
    roots = dirs_for(arch).roots
    classes = hdr[rpm.RPMTAG_CLASSDICT]
    has_bpf_class = any("eBPF" in c or "arch 0xf7" in c for c in classes)
    in_bpfdir = any(under(d.rstrip("/"), root) for d in hdr[rpm.RPMTAG_DIRNAMES] for root in roots)
    no_classes = not classes and any(b.endswith(".o") for b in hdr[rpm.RPMTAG_BASENAMES])
    pkg.wants_embedded_scan = any(r.startswith(LOADER_LIBRARIES) for r in requires) and any(
        c.startswith("ELF") for c in classes)
    if not (has_bpf_class or in_bpfdir or no_classes or pkg.wants_embedded_scan):
        return pkg
    names = hdr[rpm.RPMTAG_FILENAMES]
    fclasses = hdr[rpm.RPMTAG_FILECLASS] or [""] * len(names)
    modes = hdr[rpm.RPMTAG_FILEMODES]
    sizes = hdr[rpm.RPMTAG_LONGFILESIZES] or hdr[rpm.RPMTAG_FILESIZES]
    users = hdr[rpm.RPMTAG_FILEUSERNAME]
    groups = hdr[rpm.RPMTAG_FILEGROUPNAME]
    flags = hdr[rpm.RPMTAG_FILEFLAGS]
    digests = hdr[rpm.RPMTAG_FILEDIGESTS]
    links = hdr[rpm.RPMTAG_FILELINKTOS]
    for i, path in enumerate(names):
        fclass = fclasses[i]
        wanted = (any(under(path, root) for root in roots)
                  or "eBPF" in fclass or "arch 0xf7" in fclass
                  or (no_classes and path.endswith(".o"))
                  or (pkg.wants_embedded_scan and fclass.startswith("ELF")))
        if wanted:
            pkg.files.append(FileEntry(path=path, mode=modes[i] & 0xFFFF, size=sizes[i], user=users[i],
                                       group=groups[i], flags=flags[i], fileclass=fclass,
                                       digest=digests[i], linkto=links[i]))
    return pkg
