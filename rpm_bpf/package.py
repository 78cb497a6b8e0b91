"""The package model every source fills: RPM files, the rpm database, DNF.

Only the files that matter for BPF are kept (see ``rpmheader.triage``), which
is what keeps scanning thousands of packages cheap.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from typing import Protocol

from .findings import PackageRef

# rpm's file flags (rpmfiles.h); stable since rpm 4.0
RPMFILE_CONFIG = 1 << 0
RPMFILE_GHOST = 1 << 6


@dataclass(frozen=True)
class FileEntry:
    path: str
    mode: int
    size: int
    user: str
    group: str
    flags: int
    fileclass: str  # libmagic's description recorded by rpmbuild ("" if none)
    digest: str
    linkto: str = ""

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


@dataclass
class Package:
    ref: PackageRef
    sourcerpm: str
    requires: tuple[str, ...]
    files: list[FileEntry] = field(default_factory=list)  # BPF-relevant files only
    digest_algo: int = 8  # PGPHASHALGO_SHA256
    is_source: bool = False
    wants_embedded_scan: bool = False  # links a BPF loader: look inside its ELF files
    deep: bool = False  # no triage: every file kept and read (slow; proves triage loses nothing)

    @property
    def is_noarch(self) -> bool:
        return self.ref.arch == "noarch"


class ContentError(Exception):
    """The package's content as a whole cannot be read (corrupt payload...)."""


class ContentReader(Protocol):
    """Gives file contents for a package's paths, reading nothing else.

    A file that cannot be read maps to its OSError; a source that cannot be
    read at all raises ``ContentError``.
    """

    def read(self, paths: set[str]) -> dict[str, bytes | OSError]:
        ...
