"""What an RPM header says, checked before it is believed: tag types, per-file arrays, directory and file
names; and the triaged package model built from it (for RPM files and the rpm database alike).

Only the files that matter for BPF become ``FileEntry`` records (files in
the BPF directories, files libmagic calls eBPF, and the ELF files a header
signal says may embed BPF objects), which is what keeps scanning thousands
of packages cheap.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import rpm

from rpm_bpf.errors import RpmBpfError
from rpm_bpf.model import APP_PARENTS, ARCHIVE_CLASS, GO_CLASS, FileEntry, Package, PackageRef, app_provide_claims
from rpm_bpf.sources.bpfdirs import BpfDirs, under

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
# Which ELF files are searched for embedded objects. "all" (every one) is what scan, the gate, the
# rpmbuild check and BPFCheck do by default: header triage cannot be made complete (a binary that dlopen()s
# libbpf, Go built with cgo and the external linker, an object embedded without libbpf: no header says
# so). "signals" (where a header signal says so) is the DNF hooks' and the rpm database's, and an explicit
# choice for mass audits.
EMBEDDED_MODES = ("all", "signals")
FULL_RECALL, SIGNALS = EMBEDDED_MODES


def embedded_signal(dependencies: str) -> str | None:
    """The header signal that has this package's ELF files searched for embedded BPF objects.

    ``dependencies``: the package's Requires and Provides names, one a line
    (one substring scan instead of one call per dependency).
    """
    for signal, needles in EMBEDDED_SIGNALS:
        if any(needle in dependencies for needle in needles):
            return signal
    return None


def package_from_header(
    hdr: rpm.hdr,
    dirs_for: Callable[[str], BpfDirs],
    origin: str,
    deep: bool = False,
    embedded: str = SIGNALS,
    archives: bool = False,
) -> Package:
    """The Package model of a header, with only its BPF-relevant files.

    Shared by RPM files and the rpm database: both hand over headers.
    ``deep`` keeps every file (and later reads every one): no triage.
    ``embedded``: "signals" searches ELF files for embedded objects where a
    header signal says they may be (``embedded_signal``, Go binaries);
    "all" searches every ELF file (signal "payload" where none says so).
    ``archives`` keeps ar archives (static libraries, ``.rlib``) of packages that ship BPF objects, or of
    every package with ``embedded="all"``: their members may be BPF objects (scan's RPM files and list's
    rpm database; not the DNF checks).
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
    provides = tuple(hdr[rpm.RPMTAG_PROVIDENAME])
    pkg = Package(
        ref=ref,
        sourcerpm=hdr[rpm.RPMTAG_SOURCERPM] or "",
        requires=requires,
        digest_algo=hdr[rpm.RPMTAG_FILEDIGESTALGO] or 1,
        is_source=is_source,
        deep=deep,
    )
    pkg.provides = provides
    pkg.installtime = hdr[rpm.RPMTAG_INSTALLTIME]
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
    # Application directories: everything under the cache parent, and /run/APP of the runtime APPs it
    # provides (/run is every daemon's: owning /run/APP alone says nothing about BPF).
    apps = app_provide_claims(provides)
    app_roots = (APP_PARENTS["cache"], *(f"{APP_PARENTS[k]}/{app}" for k, app in apps if k == "runtime"))
    app_prefixes = tuple(root + "/" for root in app_roots)
    in_appdir = bool(apps) or any(d.startswith(app_prefixes) for d in hdr[rpm.RPMTAG_DIRNAMES])
    static: set[int] = set()
    # Full recall: files with an execute bit are searched whatever their class says (they are read and
    # searched only if they start as an ELF file does): an ELF file a crafted header classes otherwise.
    full = embedded == FULL_RECALL
    modes = hdr[rpm.RPMTAG_FILEMODES] if full else []
    executables = full and any(m & 0o170111 in _EXECUTABLE_REGULAR for m in modes)
    pkg.full_recall = full
    if has_elf or executables:
        dependencies = "\n".join(requires + provides)
        signal = embedded_signal(dependencies)
        if not signal and all(needle in dependencies for needle in STATIC_LIBBPF_NEEDS):
            static = _files_requiring(hdr, requires, STATIC_LIBBPF_NEEDS)
        # "payload" (search everything) last: a file that a header signal explains keeps that signal's name.
        pkg.embedded_signal = signal or ("payload" if embedded == FULL_RECALL else None)
    go_files = has_elf and not pkg.embedded_signal and any(GO_CLASS in c for c in classes)
    search_archives = (
        archives and (has_bpf_class or embedded == FULL_RECALL) and any(ARCHIVE_CLASS in c for c in classes)
    )
    if not (
        deep
        or has_bpf_class
        or in_bpfdir
        or in_appdir
        or no_classes
        or pkg.embedded_signal
        or go_files
        or static
        or search_archives
    ):
        return pkg
    searched = bool(pkg.embedded_signal)

    def wanted(index: int, path: str, fclass: str) -> bool:
        if index in static and fclass.startswith("ELF"):
            pkg.file_signals[path] = "libbpf-static"
            return True
        return (
            deep
            or any(under(path, root) for root in roots)
            or (in_appdir and any(under(path, root) for root in app_roots))
            or path.startswith("/run/")  # what a BPF application ships in /run is judged (rules/appdirs.py)
            or "eBPF" in fclass
            or "arch 0xf7" in fclass
            or (no_classes and path.endswith(".o"))
            or (fclass.startswith("ELF") and (searched or (go_files and GO_CLASS in fclass)))
            or (search_archives and ARCHIVE_CLASS in fclass)
            or (executables and modes[index] & 0o170111 in _EXECUTABLE_REGULAR)
        )

    pkg.files = _file_entries(hdr, wanted)
    return pkg


# A regular file with an execute bit, as (mode & (S_IFMT | 0o111)) values.
_EXECUTABLE_REGULAR = frozenset(0o100000 | bits for bits in range(1, 0o112) if bits & ~0o111 == 0)
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


def file_names(hdr: rpm.hdr) -> list[str]:
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
    names = file_names(hdr)
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
