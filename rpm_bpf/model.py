"""The package model every source fills: RPM files, the rpm database, DNF.

Only the files that matter for BPF are kept (see sources/rpmfile.py's triage), which
is what keeps scanning thousands of packages cheap.
"""

from __future__ import annotations

import stat
from collections import namedtuple
from collections.abc import Iterable
from typing import Any

from rpm_bpf.errors import RpmBpfError


class PackageRef(namedtuple("PackageRef", ("name", "epoch", "version", "release", "arch", "source"), defaults=("",))):
    """Enough of a package to name it in a report.

    ``epoch`` is an int or None; ``source`` is the RPM file or "rpmdb".
    """

    __slots__ = ()
    name: str
    epoch: int | None
    version: str
    release: str
    arch: str
    source: str

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.evr}.{self.arch}"

    @property
    def label(self) -> str:
        """rpmlint's way of naming a package in a message line."""
        return f"{self.name}.{self.arch}"

    @property
    def evr(self) -> str:
        """EVR as DNF and rpm write it: no epoch when it is 0 or absent."""
        return f"{self.epoch}:{self.version}-{self.release}" if self.epoch else f"{self.version}-{self.release}"


# One file's content read at most, from a payload, a directory tree or a user-named file:
# far above any BPF object or loader, and a bound for crafted sizes.
MAX_CONTENT = 1 << 30
# ... and of a file its package calls a BPF object: the largest real ones (Cilium's datapath, with BTF) are
# a few MiB. A crafted package compresses a 1000 MiB "object" into kilobytes; reading and inspecting one
# cost seconds and a GiB of memory per worker before this bound.
MAX_OBJECT = 64 << 20


def content_limit(entry: FileEntry) -> int:
    """How much of ``entry`` rpm-bpf reads at most (larger: not read, and said so).

    ``MAX_OBJECT`` for whatever may be judged as an object: called eBPF, a relocatable ELF file, a file
    libmagic said nothing of, a ``.o``; ``MAX_CONTENT`` only for the executables and libraries searched
    for embedded objects.
    """
    may_be_object = (
        entry.class_says_bpf or "relocatable" in entry.fileclass or not entry.fileclass or entry.path.endswith(".o")
    )
    return MAX_OBJECT if may_be_object else MAX_CONTENT


# rpm's file flags (rpmfiles.h); stable since rpm 4.0
RPMFILE_CONFIG = 1 << 0
RPMFILE_GHOST = 1 << 6


class FileEntry(
    namedtuple(
        "FileEntry", ("path", "mode", "size", "user", "group", "flags", "fileclass", "digest", "linkto"), defaults=("",)
    )
):
    """One file as the package header records it (an immutable record, see findings.py)."""

    __slots__ = ()
    path: str
    mode: int
    size: int
    user: str
    group: str
    flags: int
    fileclass: str  # libmagic's description recorded by rpmbuild ("" if none)
    digest: str
    linkto: str  # "" unless a symbolic link (a class-level default would hide the field)

    @property
    def is_regular(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def is_ghost(self) -> bool:
        return bool(self.flags & RPMFILE_GHOST)

    @property
    def is_config(self) -> bool:
        return bool(self.flags & RPMFILE_CONFIG)

    @property
    def class_says_bpf(self) -> bool:
        """libmagic names eBPF (older magic: "unknown arch 0xf7")."""
        return "eBPF" in self.fileclass or "arch 0xf7" in self.fileclass

    @property
    def class_says_elf(self) -> bool:
        return self.fileclass.startswith("ELF")


# libmagic's words for a Go binary: Go programs embed BPF objects with go:embed
# (cilium/ebpf's bpf2go) and need no library that would say so in Requires.
GO_CLASS = "Go BuildID"
# libmagic's words for an ar archive (static libraries, Rust's .rlib): members may be BPF objects.
ARCHIVE_CLASS = "ar archive"


class Package:
    """A package and its BPF-relevant files (all files when ``deep``)."""

    __slots__ = (
        "deep",
        "digest_algo",
        "embedded_signal",
        "file_signals",
        "files",
        "full_recall",
        "header",
        "installtime",
        "is_source",
        "provides",
        "ref",
        "requires",
        "signed",
        "sourcerpm",
    )

    def __init__(
        self,
        ref: PackageRef,
        sourcerpm: str,
        requires: tuple[str, ...],
        files: list[FileEntry] | None = None,
        digest_algo: int = 8,
        is_source: bool = False,
        embedded_signal: str | None = None,
        deep: bool = False,
    ) -> None:
        self.ref = ref
        self.sourcerpm = sourcerpm
        self.requires = requires
        self.files: list[FileEntry] = files if files is not None else []
        self.digest_algo = digest_algo  # rpm's PGPHASHALGO_*; 8 is SHA-256
        self.is_source = is_source
        # Why this package's ELF files are searched for embedded objects (a
        # header signal, see rpmheader.embedded_signal), None when only Go
        # binaries are.
        self.embedded_signal = embedded_signal
        self.file_signals: dict[str, str] = {}  # the same, for single files (a file that links libbpf's own deps)
        self.deep = deep  # no triage: every file kept and read (slow; proves triage loses nothing)
        # Every ELF file searched (scan's default): also files another class but an execute bit names, whose
        # bytes are searched if they start as an ELF file does (a header's class is the packager's to write).
        self.full_recall = False
        self.signed: bool | None = None  # an RPM file's signature header has an OpenPGP signature (None: unknown)
        self.header: Any = None  # the rpm.hdr it was read from, kept only when asked (signature checks)
        self.provides: tuple[str, ...] = ()  # Provides names (what may name an application directory)
        self.installtime: int | None = None  # when the rpm database says it was installed (None: a file)

    def search_signal(self, entry: FileEntry) -> str | None:
        """Why ``entry``'s bytes are searched for embedded BPF objects; None: they are not."""
        if self.deep:
            return "deep"
        if not entry.class_says_elf:
            if self.full_recall and entry.is_regular and entry.mode & 0o111 and not entry.class_says_bpf:
                return "payload"  # no header signal explains a file its class does not even call ELF
            return None
        if self.embedded_signal and self.embedded_signal != "payload":
            return self.embedded_signal
        # What a header signal says of this file comes before "payload" (searched only because all are).
        specific = self.file_signals.get(entry.path) or ("go" if GO_CLASS in entry.fileclass else None)
        return specific or self.embedded_signal

    def __repr__(self) -> str:
        return f"Package({self.ref.nevra}, {len(self.files)} files)"

    @property
    def is_noarch(self) -> bool:
        return self.ref.arch == "noarch"


class ContentError(RpmBpfError):
    """The package's content as a whole cannot be read (corrupt payload...)."""


class ContentReader:
    """Gives file contents for a package's paths, reading nothing else.

    A file that cannot be read maps to its OSError; a source that cannot be
    read at all raises ``ContentError``. A protocol in spirit: readers need
    not inherit from it (typing.Protocol would cost every command start-up time).
    """

    def read(self, paths: set[str]) -> dict[str, bytes | OSError]:
        raise NotImplementedError


# --- bpf(NAME) provides: what the rpm-bpf macros generate for each packaged object ---

BPF_PROVIDE_PREFIX = "bpf("


def bpf_provide(name: str) -> str:
    """The capability an object named NAME (relative to the BPF directory) is provided as."""
    return f"{BPF_PROVIDE_PREFIX}{name})"


def bpf_provide_name(capability: str) -> str | None:
    """NAME of a ``bpf(NAME)`` provide, None for any other capability.

    One parser for every source (RPM headers, repository metadata, a host's
    request): a name with a space is not one the macros generate (rpm would
    have split it), so such a capability names nothing.
    """
    if not (capability.startswith(BPF_PROVIDE_PREFIX) and capability.endswith(")")):
        return None
    name = capability[len(BPF_PROVIDE_PREFIX) : -1]
    return name if name and " " not in name else None


def bpf_provide_names(capabilities: Iterable[str]) -> set[str]:
    return {name for cap in capabilities if (name := bpf_provide_name(cap)) is not None}


# --- application directories: bpf-cache(APP) and bpf-runtime(APP) provides ---

# Where applications keep the BPF objects they compile: a cache that survives reboots, and run-time files.
APP_PARENTS = {"cache": "/var/cache/bpf", "runtime": "/run"}
APP_PROVIDE_PREFIXES = {"cache": "bpf-cache(", "runtime": "bpf-runtime("}
# What hosts test provides against, cheaply, before handing them over (DNF plugins): every capability
# the rpm-bpf macros and generators give.
BPF_CAPABILITY_PREFIXES = (BPF_PROVIDE_PREFIX, *APP_PROVIDE_PREFIXES.values())


def app_provide(kind: str, app: str) -> str:
    """The capability a package claiming application directory APP of ``kind`` provides."""
    return f"{APP_PROVIDE_PREFIXES[kind]}{app})"


def _isa_like(app: str) -> bool:
    """rpm's architecture suffix (``%{_isa}``: ``x86-64``, ``aarch-64``, ``x86-32``): a package named
    bpf-cache or bpf-runtime provides ``bpf-runtime(x86-64)`` about itself, which names no directory."""
    base, _, bits = app.rpartition("-")
    return bits in ("32", "64") and base.isascii() and base.isalnum() and base.islower()


def valid_app_name(app: str) -> bool:
    """One path component the macros accept: no separator, not . or .., no space or shell/glob syntax, not
    an architecture suffix."""
    return (
        0 < len(app) <= 200
        and app not in (".", "..")
        and app[0] not in "-."
        and all(c.isascii() and (c.isalnum() or c in "._+-@") for c in app)
        and not _isa_like(app)
    )


def app_provide_claim(capability: str) -> tuple[str, str] | None:
    """(kind, APP) of a ``bpf-cache(APP)`` or ``bpf-runtime(APP)`` provide; None for anything else."""
    if not capability.endswith(")"):
        return None
    for kind, prefix in APP_PROVIDE_PREFIXES.items():
        if capability.startswith(prefix):
            app = capability[len(prefix) : -1]
            return (kind, app) if valid_app_name(app) else None
    return None


def app_provide_claims(capabilities: Iterable[str]) -> set[tuple[str, str]]:
    return {claim for cap in capabilities if (claim := app_provide_claim(cap)) is not None}
