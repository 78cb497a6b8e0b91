"""Packages in memory, in the style of rpmlint's FakePkg: a ``rpm_bpf.model.Package`` and its file contents
from a list of simple file descriptions, so that a rule's unit test needs no rpmbuild (and, with
tests/support/bpfelf.py, no clang).

    pkg = FakePkg([bpf("/usr/lib64/bpf/tool/prog.o", bpf_object()), directory("/usr/lib64/bpf/tool")],
                  requires=["bpf-filesystem"])
    result = pkg.check()          # rules/package.py's check_package, with X86_64's directories
    assert pkg.rules(result) == set()

Each description says what the header records (mode, owner, flags, libmagic's class, digest) and, for
regular files, the bytes the ``DictReader`` gives back when a rule asks for them.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from rpm_bpf.bpf import elf
from rpm_bpf.model import RPMFILE_CONFIG, RPMFILE_GHOST, ContentError, ContentReader, FileEntry, Package, PackageRef
from rpm_bpf.rules.package import PackageResult, check_package
from rpm_bpf.sources.bpfdirs import BpfDirs
from tests.support.bpfelf import BPF_CLASS, BPF_CLASS_BE, HOST_CLASS

# What rpm's macros give on the architectures the tests use (no rpm needed to know them).
X86_64 = BpfDirs("/usr/lib64/bpf", "/usr/lib/bpf")
I686 = BpfDirs("/usr/lib/bpf", "/usr/lib/bpf")
S390X = BpfDirs("/usr/lib64/bpf", "/usr/lib/bpf")
DIRS = {"x86_64": X86_64, "noarch": X86_64, "i686": I686, "s390x": S390X}
OWNER_PROVIDES = ("bpf-filesystem",)  # the policy's default [bpfdir] owner-provides


@dataclass(frozen=True)
class FakeFile:
    """One file of the header; ``content`` is what the payload holds (None: nothing to read)."""

    path: str
    mode: int
    content: bytes | OSError | None = None
    user: str = "root"
    group: str = "root"
    flags: int = 0
    fileclass: str = ""
    linkto: str = ""

    def entry(self) -> FileEntry:
        data = self.content if isinstance(self.content, bytes) else b""
        digest = hashlib.sha256(data).hexdigest() if stat.S_ISREG(self.mode) and not self.flags & RPMFILE_GHOST else ""
        return FileEntry(
            self.path, self.mode, len(data), self.user, self.group, self.flags, self.fileclass, digest, self.linkto
        )


def _class_of(data: bytes) -> str:
    """libmagic's description, as far as the rules look at it."""
    if elf.is_bpf_elf(data):
        return BPF_CLASS_BE if data[5] == 2 else BPF_CLASS
    if data[:4] == elf.ELF_MAGIC:
        return HOST_CLASS
    return "ASCII text" if data else "empty"


def file(
    path: str,
    content: bytes | OSError = b"",
    mode: int = 0o644,
    fileclass: str | None = None,
    config: bool = False,
    user: str = "root",
    group: str = "root",
) -> FakeFile:
    """A regular file; ``fileclass`` defaults to what libmagic says of ``content`` ("" : none recorded)."""
    if fileclass is None:
        fileclass = _class_of(content) if isinstance(content, bytes) else ""
    flags = RPMFILE_CONFIG if config else 0
    return FakeFile(path, stat.S_IFREG | mode, content, user, group, flags, fileclass)


def bpf(path: str, content: bytes, **kwargs) -> FakeFile:
    """A BPF object (``content`` from bpfelf.bpf_object), classified as libmagic would."""
    return file(path, content, **kwargs)


def text(path: str, content: str = "documentation\n", **kwargs) -> FakeFile:
    return file(path, content.encode(), **kwargs)


def directory(path: str, mode: int = 0o755) -> FakeFile:
    return FakeFile(path, stat.S_IFDIR | mode, fileclass="directory")


def ghost(path: str, is_dir: bool = False) -> FakeFile:
    """A %ghost entry: in the header, never in the payload."""
    mode = stat.S_IFDIR | 0o755 if is_dir else stat.S_IFREG | 0o644
    return FakeFile(path, mode, None, flags=RPMFILE_GHOST)


def symlink(path: str, target: str) -> FakeFile:
    return FakeFile(path, stat.S_IFLNK | 0o777, fileclass=f"symbolic link to {target}", linkto=target)


class DictReader(ContentReader):
    """File contents from a dict; records what was asked. ``broken``: the payload as a whole cannot be read."""

    def __init__(self, contents: dict[str, bytes | OSError], broken: str | None = None) -> None:
        self.contents = contents
        self.broken = broken
        self.asked: set[str] = set()

    def read(self, paths: set[str]) -> dict[str, bytes | OSError]:
        self.asked |= paths
        if self.broken is not None:
            raise ContentError(self.broken)
        return {path: self.contents[path] for path in paths if path in self.contents}


class FakePkg:
    """A package of ``files`` (FakeFile descriptions) and the reader of their contents."""

    def __init__(
        self,
        files: Iterable[FakeFile] = (),
        name: str = "fake",
        version: str = "1.0",
        release: str = "1",
        arch: str = "x86_64",
        epoch: int | None = None,
        requires: Iterable[str] = (),
        provides: Iterable[str] = (),
        sourcerpm: str | None = None,
        embedded_signal: str | None = None,
        is_source: bool = False,
        deep: bool = False,
        broken: str | None = None,
    ) -> None:
        self.files = list(files)
        ref = PackageRef(name, epoch, version, release, "src" if is_source else arch, f"{name}.rpm")
        self.package = Package(
            ref,
            sourcerpm if sourcerpm is not None else ("" if is_source else f"{name}-{version}-{release}.src.rpm"),
            tuple(requires),
            [f.entry() for f in self.files],
            is_source=is_source,
            embedded_signal=embedded_signal,
            deep=deep,
        )
        self.package.provides = tuple(provides)
        contents = {f.path: f.content for f in self.files if f.content is not None and stat.S_ISREG(f.mode)}
        self.reader = DictReader(contents, broken)

    @property
    def ref(self) -> PackageRef:
        return self.package.ref

    def check(
        self,
        dirs: BpfDirs | None = None,
        owner_provides: tuple[str, ...] = OWNER_PROVIDES,
        exempt: tuple[str, ...] = (),
        header_only: bool = False,
    ) -> PackageResult:
        """rules/package.py's ``check_package`` on this package (``header_only``: no reader, as the DNF
        plugin judges installed packages)."""
        dirs = dirs if dirs is not None else DIRS.get(self.package.ref.arch, X86_64)
        return check_package(self.package, dirs, owner_provides, None if header_only else self.reader, exempt)

    @staticmethod
    def rules(result: PackageResult) -> set[tuple[str, str | None]]:
        """(rule, path) of every finding."""
        return {(f.rule, f.path) for f in result.findings}
