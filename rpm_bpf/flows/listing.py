"""``rpm-bpf list``: every BPF object an installed system ships, and what each holds.

From the rpm database of a root and the files below it (read through
``RootFS``, as verify reads them: no link followed, nothing blocks, nothing
read without bound). A file is looked at when rpmbuild classified it as eBPF,
when it lies in a BPF directory, or when a header signal says its package's
ELF files may embed objects (the same triage as ``scan`` and ``which``;
``embedded="all"`` searches every ELF file). For each object: where it is,
its package and that package's ``bpf(NAME)`` provides, its programs with the
kernel tags predicted for them (bpf/progtag.py), license, BTF and CO-RE
records, the packaged digest and whether the disk still matches it, and,
when the kernel can be asked, which of its programs are loaded now (the
``which`` join, flows/which.py).

A file that is not the packaged bytes, is missing, or is no longer a regular
file is a finding of the installed-object rules (rules/installed.py), judged
by the policy like verify's: ``list`` shows what ships, and says when the
disk no longer is it.
"""

from __future__ import annotations

import hashlib
import re
import stat
from collections import namedtuple
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rpm_bpf import __version__
from rpm_bpf.bpf import archive, elf, embedded
from rpm_bpf.bpf.progtag import PredictionError, predict
from rpm_bpf.findings import Finding, InputError
from rpm_bpf.model import ARCHIVE_CLASS, FileEntry, Package, PackageRef, bpf_provide_names, content_limit
from rpm_bpf.rules import installed
from rpm_bpf.rules.policy import Policy
from rpm_bpf.sources import bpfdirs, rpmdb
from rpm_bpf.sources.kernelbtf import KernelBtf
from rpm_bpf.sources.rootfs import RootFS
from rpm_bpf.sources.rpmfile import DIGEST_ALGOS

if TYPE_CHECKING:
    from rpm_bpf.flows import which

# The list's entries in the prediction cache: keyed by content, versioned with what a description holds.
CACHE_KEY = f"list-v2:{__version__}:sha256"

LIGHT_CAVEAT = "light skeleton: the loader builds the instructions at load time; no tag predicted"

# Whether the disk still holds the packaged bytes.
DISK_OK = "ok"
DISK_MODIFIED = "modified"
DISK_MISSING = "missing"
DISK_UNREADABLE = "unreadable"
DISK_STATES = (DISK_OK, DISK_MODIFIED, DISK_MISSING, DISK_UNREADABLE)


class Listed(
    namedtuple(
        "Listed",
        (
            "package",
            "sourcerpm",
            "bpf_provides",
            "path",
            "member",
            "offset",
            "size",
            "bpf_name",
            "found_by",
            "description",
            "sha256",
            "packaged_digest",
            "disk",
            "loaded",
        ),
    )
):
    """One BPF object: standalone (``offset`` None), embedded in the ELF file ``path`` at ``offset``, or the
    ``member`` of the ar archive ``path`` whose bytes start at ``offset``.

    ``description``: its facts (``BpfObject.to_dict()``) with ``kernel`` (the
    predicted programs), None when the file could not be read; ``sha256``: of
    the object's own bytes; ``packaged_digest``: "ALGO:HEX" of the file as the
    rpm database records it; ``disk``: one of ``DISK_STATES``; ``loaded``: ids
    of its programs loaded now, None when the kernel was not asked.
    """

    __slots__ = ()
    package: PackageRef
    sourcerpm: str
    bpf_provides: tuple[str, ...]
    path: str
    member: str | None
    offset: int | None
    size: int
    bpf_name: str | None
    found_by: str
    description: dict[str, Any] | None
    sha256: str | None
    packaged_digest: str
    disk: str
    loaded: tuple[int, ...] | None

    @property
    def outside_bpfdir(self) -> bool:
        return self.offset is None and self.bpf_name is None


class ListResult:
    """The objects, the findings as the policy has them, what could not be read, and what was not checked."""

    def __init__(self) -> None:
        self.objects: list[Listed] = []
        self.findings: list[Finding] = []
        self.errors: list[InputError] = []
        self.notes: list[str] = []
        self.loaded_checked = False
        self.distro: tuple[str, str] = ("", "")  # the root's os-release ID and VERSION_ID, for purls


_OS_RELEASE_VALUE = re.compile(r"[a-z0-9._-]{1,64}")


def os_release(fs: RootFS) -> tuple[str, str]:
    """ID and VERSION_ID of the root's os-release ("" when absent or not plain names: they go into purls)."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = fs.read(path, 64 << 10).decode("utf-8", "replace")
        except OSError:
            continue
        values = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                value = value.strip().strip("\"'")
                values[key.strip()] = value if _OS_RELEASE_VALUE.fullmatch(value) else ""
        return values.get("ID", ""), values.get("VERSION_ID", "")
    return "", ""


def _why(pkg: Package, entry: FileEntry, in_bpfdir: bool) -> str | None:
    """Why this entry is looked at (None: it is not)."""
    if not entry.is_regular or entry.is_ghost:
        return None
    if entry.class_says_bpf:
        return "file class"
    if in_bpfdir:
        return "bpf directory"
    if not entry.fileclass and entry.path.endswith(".o"):
        return "no file class"
    if ARCHIVE_CLASS in entry.fileclass:
        return "archive"
    return pkg.search_signal(entry)


def _objects(data: bytes) -> list[tuple[str | None, int | None, bytes, elf.BpfObject]]:
    """The BPF objects ``data`` is, embeds or archives: (member name, offset or None, their bytes, their facts)."""
    if elf.is_bpf_elf(data):
        try:
            return [(None, None, data, elf.inspect(data))]
        except elf.BpfElfError:
            return []
    if archive.is_archive(data):
        return [(m.name, m.offset, data[m.offset : m.offset + m.size], obj) for m, obj in archive.bpf_members(data)]
    if elf.elf_machine(data) is None:
        return []
    return [(None, e.offset, data[e.offset : e.offset + e.object.size], e.object) for e in embedded.find_all(data)]


def _describe(obj: elf.BpfObject, span: bytes, kernel: KernelBtf | None) -> dict[str, Any]:
    if obj.elf_type == embedded.LIGHT_SKELETON:  # names and types from the loader's attributes, no tags
        light = [
            {"section": "", "name": p.name, "kernel_name": p.name[:15], "type": p.section, "insns": 0, "tag": "",
             "tag_sha1": "", "caveats": [LIGHT_CAVEAT]}
            for p in obj.programs
        ]  # fmt: skip
        return obj.to_dict() | {"kernel": light}
    try:
        predicted = [p.to_dict() for p in predict(span, kernel)]
    except PredictionError:
        predicted = []
    return obj.to_dict() | {"kernel": predicted}


def _cached_shape(item: Any) -> bool:
    """Whether a cache entry has the shape ``described`` writes."""
    return (
        isinstance(item, dict)
        and isinstance(item.get("member"), str | None)
        and isinstance(item.get("offset"), int | None)
        and isinstance(item.get("size"), int)
        and isinstance(item.get("sha256"), str)
        and isinstance(item.get("description"), dict)
        and isinstance(item["description"].get("kernel"), list)
        and all(
            isinstance(p, dict)
            and all(isinstance(p.get(k), str) for k in ("section", "name", "kernel_name", "type", "tag", "tag_sha1"))
            and isinstance(p.get("caveats"), list)
            for p in item["description"]["kernel"]
        )
    )


class _Lister:
    def __init__(self, fs: RootFS, result: ListResult, cache: which.Cache, kernel: KernelBtf | None) -> None:
        self.kernel = kernel  # CO-RE relocations resolved against it (when programs are joined), or as compiled
        self.fs = fs
        self.result = result
        self.cache = cache  # flows/which.py's cache of predictions
        self.raw: list[Finding] = []

    def package(self, pkg: Package) -> None:
        dirs = bpfdirs.for_arch(pkg.ref.arch)
        algo = DIGEST_ALGOS.get(pkg.digest_algo, "sha256")
        provides = tuple(sorted(bpf_provide_names(pkg.provides)))
        for entry in pkg.files:
            bpf_name = bpfdirs.relative_name(entry.path, dirs.roots)
            why = _why(pkg, entry, bpf_name is not None)
            if why is None:
                continue
            base = Listed(
                pkg.ref, pkg.sourcerpm, provides, entry.path, None, None, entry.size, bpf_name, why, None, None,
                f"{algo}:{entry.digest}", DISK_OK, None,
            )  # fmt: skip
            data, disk = self.read(pkg, entry, algo)
            if data is None:
                if entry.class_says_bpf or bpf_name is not None:  # a BPF object that cannot be shown
                    self.result.objects.append(base._replace(disk=disk))
                continue
            described = self.described(data)
            if not described and (entry.class_says_bpf or (bpf_name is not None and elf.is_bpf_elf(data))):
                # a BPF ELF file that does not parse: listed (without a description) and said so, never dropped
                self.result.objects.append(base._replace(sha256=hashlib.sha256(data).hexdigest(), disk=disk))
                self.result.notes.append(f"{entry.path}: a BPF ELF file that cannot be parsed; listed undescribed")
            for found in described:
                self.result.objects.append(
                    base._replace(
                        member=found["member"],
                        offset=found["offset"],
                        size=found["size"],
                        bpf_name=bpf_name if found["offset"] is None else None,
                        description=found["description"],
                        sha256=found["sha256"],
                        disk=disk,
                    )
                )

    def described(self, data: bytes) -> list[dict[str, Any]]:
        """What ``_objects`` finds in ``data``, described; cached by the SHA-256 of the bytes themselves, so an
        entry can only ever describe those bytes (the disk check above never comes from the cache)."""
        btf = f":btf:{self.kernel.digest}" if self.kernel is not None else ""
        key = f"{CACHE_KEY}:{hashlib.sha256(data).hexdigest()}{btf}"
        cached = self.cache.get(key, [])
        if cached is not None and all(_cached_shape(item) for item in cached):
            return cached  # an entry of another shape (hand-edited, damaged) is a miss: described again
        found = [
            {
                "member": member,
                "offset": offset,
                "size": len(span),
                "description": _describe(obj, span, self.kernel),
                "sha256": hashlib.sha256(span).hexdigest(),
            }
            for member, offset, span, obj in _objects(data)
        ]
        self.cache.put(key, [], found)
        return found

    def read(self, pkg: Package, entry: FileEntry, algo: str) -> tuple[bytes | None, str]:
        """The file's bytes (None when it cannot be read) and how the disk compares with the package."""
        try:
            st = self.fs.lstat(entry.path)
        except FileNotFoundError:
            self.raw.append(installed.missing(pkg.ref, entry))
            return None, DISK_MISSING
        except OSError as exc:
            self.cannot_read(entry.path, exc)
            return None, DISK_UNREADABLE
        if not stat.S_ISREG(st.st_mode):
            link = self._readlink(entry.path) if stat.S_ISLNK(st.st_mode) else None
            finding = installed.type_changed(pkg.ref, entry, st.st_mode, link)
            if finding is not None:
                self.raw.append(finding)
            return None, DISK_MODIFIED
        if st.st_size > content_limit(entry):  # grown past what it may be: changed, and not read
            finding = installed.size_changed(pkg.ref, entry, st.st_size)
            if finding is not None:
                self.raw.append(finding)
                return None, DISK_MODIFIED
        try:
            data = self.fs.read(entry.path, content_limit(entry))
        except OSError as exc:  # too large for what it is packaged as, or replaced while opened
            self.cannot_read(entry.path, exc)
            return None, DISK_UNREADABLE
        finding = installed.digest_changed(pkg.ref, entry, hashlib.new(algo, data).hexdigest(), algo, len(data))
        if finding is not None:
            self.raw.append(finding)
            return data, DISK_MODIFIED
        return data, DISK_OK

    def _readlink(self, path: str) -> str:
        try:
            return self.fs.readlink(path)
        except OSError as exc:
            return f"? ({exc.strerror})"

    def cannot_read(self, path: str, exc: OSError) -> None:
        self.result.errors.append(InputError(self.fs.host_path(path), f"cannot read: {exc.strerror}"))


def listing(
    root: str = "/",
    policy: Policy | None = None,
    names: Iterable[str] = (),
    loaded: bool | None = None,
    embedded: str = "signals",
    only_loaded: bool = False,
    only_outside: bool = False,
    cache_directory: Path | None = None,
) -> ListResult:
    """The BPF objects the packages of ``root`` ship (all packages, or those named).

    ``loaded``: True asks the kernel which programs are loaded now (an input
    error when it cannot be asked), None asks when allowed (a note when not),
    False never (``only_loaded`` implies True). ``embedded``: "signals" or "all", as ``scan --embedded``.
    ``only_loaded``, ``only_outside``: keep only the objects with a program loaded now, or the standalone
    ones outside the BPF directories (the findings stay those of every object). ``cache_directory``: where
    descriptions are cached (``which.cache_dir()``; None: no cache).
    Raises ``RpmdbError`` when the database cannot be read.
    """
    from rpm_bpf.flows import which

    policy = policy or Policy.load(system=None)
    names = list(names)
    result = ListResult()
    programs = _loaded_programs(True if only_loaded else loaded, result)
    with rpmdb.snapshot(root) as db, RootFS(root) as fs:
        for missing in rpmdb.missing_names(db, names):
            result.errors.append(InputError(missing, "package is not installed"))
        result.distro = os_release(fs)
        # Tags compared with the loaded programs' are this kernel's: CO-RE relocations resolved against its BTF.
        kernel = KernelBtf() if programs is not None else None
        lister = _Lister(fs, result, which.Cache(cache_directory), kernel)
        for pkg in rpmdb.installed(db, names, result.errors, embedded=embedded, archives=True):
            lister.package(pkg)
        owners = which.loaders(db, root, programs, result.errors) if programs is not None else {}
    if programs is not None:
        _join(result, programs, owners)
    result.findings = policy.apply(lister.raw)
    if only_loaded:
        result.objects = [o for o in result.objects if o.loaded]
    if only_outside:
        result.objects = [o for o in result.objects if o.outside_bpfdir]
    return result


def _loaded_programs(wanted: bool | None, result: ListResult) -> list[Any] | None:
    from rpm_bpf.sources.loaded import KernelError, PrivilegeError, loaded_programs

    if wanted is False:
        return None
    try:
        programs = loaded_programs()
    except (PrivilegeError, KernelError) as exc:
        if wanted:
            result.errors.append(InputError("loaded BPF programs", str(exc)))
        else:
            result.notes.append(f"loaded programs were not looked up: {exc}")
        return None
    result.loaded_checked = True
    return programs


def _join(result: ListResult, programs: list[Any], owners: dict[str, Package]) -> None:
    """Each object's loaded programs, matched as ``which`` matches them (by tag; weak name matches do not count)."""
    from rpm_bpf.flows import which

    sources = [
        which.source(o.package, o.sourcerpm, o.path, p | {"offset": o.offset})
        for o in result.objects
        for p in (o.description or {}).get("kernel", [])
    ]
    ids: dict[tuple[str, str, int | None], set[int]] = {}
    for found in which.match(programs, sources, owners):
        if found.confidence in ("certain", "tag"):
            for src in found.sources:
                ids.setdefault((src.package.nevra, src.path, src.offset), set()).add(found.program.id)
    result.objects = [
        o._replace(loaded=tuple(sorted(ids.get((o.package.nevra, o.path, o.offset), ())))) for o in result.objects
    ]
