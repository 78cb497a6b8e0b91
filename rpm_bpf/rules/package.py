"""Per-package rules: everything that can be judged from one package.

Each rule is implemented here once; every front end (scan, rpmlint, DNF,
build-time enforcement) calls ``check_package`` and shows its findings.
"""

from __future__ import annotations

import errno

from rpm_bpf.bpf import archive, elf, embedded
from rpm_bpf.findings import Embedded, Finding
from rpm_bpf.model import ARCHIVE_CLASS, MAX_OBJECT, ContentError, ContentReader, FileEntry, Package
from rpm_bpf.rules import appdirs, attributes, ownership, signature, unreadable
from rpm_bpf.rules.clash import Claim
from rpm_bpf.rules.placement import exempt_finding, location_finding
from rpm_bpf.rules.spec import check_spec_text
from rpm_bpf.sources.bpfdirs import BpfDirs, is_big_endian, relative_name, under

ARCHIVE_MEMBER = "bpf-archive-member"


# Plain classes, not dataclasses: importing and applying dataclasses costs
# a scan of 2,000 packages about 5 % of its run time (see findings.py).
class ShippedObject:
    """A BPF object a package ships: what conflict detection compares."""

    __slots__ = ("entry", "info", "package", "relname")

    def __init__(
        self, package: Package, entry: FileEntry, relname: str | None, info: elf.BpfObject | None = None
    ) -> None:
        self.package = package
        self.entry = entry
        self.relname = relname  # name relative to the BPF directory, None outside it
        self.info = info

    def __repr__(self) -> str:
        return f"ShippedObject({self.package!r}, {self.entry.path!r}, {self.relname!r})"

    @property
    def key(self) -> str:
        return self.relname if self.relname is not None else self.entry.path

    @property
    def claim(self) -> Claim:
        """What the name-conflict rule compares (rules/clash.py)."""
        return Claim(self.package.ref, self.key, self.entry.path, self.entry.digest)


class PackageResult:
    __slots__ = ("apps", "content_error", "findings", "objects", "package")

    def __init__(self, package: Package) -> None:
        self.package = package
        self.findings: list[Finding] = []
        self.objects: list[ShippedObject] = []
        self.apps: list[Claim] = []  # the application directories it claims (rules/appdirs.py)
        self.content_error: str | None = None  # the payload could not be read


def check_package(
    pkg: Package,
    dirs: BpfDirs,
    owner_provides: tuple[str, ...],
    reader: ContentReader | None,
    exempt: tuple[str, ...] = (),
) -> PackageResult:
    """Run every per-package rule; ``reader=None`` judges from the header alone.

    ``exempt``: the policy's globs of locations where BPF ELF files are not
    deployed programs (``Policy.exempt_paths``).
    """
    result = PackageResult(pkg)
    if pkg.is_source:
        _check_source(pkg, reader, result)
        return result
    result.apps = appdirs.claims(pkg)
    result.findings += appdirs.unnamed(pkg, result.apps)
    if not pkg.files:
        return result
    contents = _read_needed(pkg, dirs, reader, result)
    checker = _PackageChecker(pkg, dirs, result, exempt)
    for entry in pkg.files:
        checker.check_entry(entry, contents.get(entry.path))
    checker.check_noarch_endianness()
    checker.check_ownership(owner_provides)
    ships = bool(result.objects) or any(f.embedded is not None for f in result.findings)
    if ships:  # a BPF application's files in /run, not only those of the directories it declares
        judged = {o.entry.path for o in result.objects} | {f.path for f in result.findings if f.rule == appdirs.SHIPPED}
        for entry in pkg.files:
            if entry.path not in judged:
                checker.found(appdirs.shipped_file(pkg, entry, ships_bpf=True))
    unsigned = signature.unsigned_build(pkg, ships, pkg.signed)
    if unsigned is not None:
        result.findings.append(unsigned)
    return result


def _check_source(pkg: Package, reader: ContentReader | None, result: PackageResult) -> None:
    """A source package: the spec file rules on its spec."""
    specs = {e.path for e in pkg.files if e.path.endswith(".spec") and e.is_regular}
    if reader is None or not specs:
        return
    try:
        contents = reader.read(specs)
    except ContentError as exc:
        result.content_error = str(exc)
        return
    for path in sorted(specs):
        data = contents.get(path)
        if not isinstance(data, bytes):
            continue
        for found in check_spec_text(data.decode("utf-8", "replace")):
            result.findings.append(Finding.of(found.rule, pkg.ref, path, f"line {found.line}: {found.text}"))


def _needs_content(pkg: Package, entry: FileEntry, roots: tuple[str, ...]) -> bool:
    if not entry.is_regular or entry.is_ghost:
        return False
    if entry.class_says_bpf or pkg.deep:
        return True
    in_root = any(under(entry.path, root) for root in roots)
    if in_root and (not entry.fileclass or entry.class_says_elf):
        return True  # sniff: magic may be older than eBPF support
    if not entry.fileclass and entry.path.endswith(".o"):
        return True
    if ARCHIVE_CLASS in entry.fileclass:
        return True  # kept by the triage only where its members may be BPF objects
    return pkg.search_signal(entry) is not None


def _read_needed(
    pkg: Package, dirs: BpfDirs, reader: ContentReader | None, result: PackageResult
) -> dict[str, bytes | OSError]:
    if reader is None:
        return {}
    needed = {e.path for e in pkg.files if _needs_content(pkg, e, dirs.roots)}
    if not needed:
        return {}
    try:
        return reader.read(needed)
    except ContentError as exc:
        result.content_error = str(exc)
        return {}


def _programs_text(obj: elf.BpfObject) -> str:
    return ", ".join(f"{p.section}/{p.name}" for p in obj.programs) or "no programs"


class _PackageChecker:
    def __init__(self, pkg: Package, dirs: BpfDirs, result: PackageResult, exempt: tuple[str, ...] = ()):
        self.pkg = pkg
        self.dirs = dirs
        self.result = result
        self.exempt = exempt

    def add(self, rule: str, path: str | None, detail: str = "") -> None:
        self.result.findings.append(Finding.of(rule, self.pkg.ref, path, detail))

    def found(self, finding: Finding | None) -> None:
        if finding is not None:
            self.result.findings.append(finding)

    def check_entry(self, entry: FileEntry, content: bytes | OSError | None) -> None:
        relname = relative_name(entry.path, self.dirs.roots)
        if entry.is_ghost:
            if relname is not None and not entry.is_dir:
                self.add("bpfdir-ghost-file", entry.path)
            return
        if not entry.is_regular:
            self.found(appdirs.shipped_file(self.pkg, entry))
            return
        data = content if isinstance(content, bytes) else None
        is_bpf = entry.class_says_bpf or (data is not None and elf.is_bpf_elf(data))
        if is_bpf:
            self.check_object(entry, relname, content)
        elif relname is not None:
            self.add("bpfdir-non-bpf-file", entry.path, entry.fileclass or "not an ELF BPF object")
        else:
            self.found(appdirs.shipped_file(self.pkg, entry))
        if is_bpf:
            return
        if data is None:
            if isinstance(content, OSError) and self.pkg.search_signal(entry) is not None:
                # To be searched and not read (larger than rpm-bpf reads): its BPF code is unknown. Fail closed.
                self.add(unreadable.RULE, entry.path, f"not searched for embedded BPF objects: {content}")
            return
        if archive.is_archive(data):
            self.check_archive(entry, data)
            return
        signal = self.pkg.search_signal(entry)
        if signal is not None and (entry.class_says_elf or data[:4] == elf.ELF_MAGIC):
            self.check_embedded(entry, data, signal)

    def check_object(self, entry: FileEntry, relname: str | None, content: bytes | OSError | None) -> None:
        path = entry.path
        exempt = exempt_finding(self.pkg, path, self.exempt)
        if exempt is not None:
            self.result.findings.append(exempt)  # not a deployed program: judged no further
            return
        info: elf.BpfObject | None = None
        invalid = None
        if isinstance(content, bytes) and len(content) > MAX_OBJECT:
            content = OSError(errno.EFBIG, f"{len(content)} bytes, larger than rpm-bpf reads of a BPF object")
        if isinstance(content, bytes):
            try:
                info = elf.inspect(content, path)
            except elf.BpfElfError as exc:
                invalid = str(exc).removeprefix(path + ": ")
        if info is not None and not info.has_programs:
            self.add(
                "bpf-object-no-programs",
                path,
                "no executable section with instructions "
                f"{'but .text (sub-programs only)' if '.text' in info.sections else 'at all'}",
            )
            if relname is not None:  # its name in the BPF directory can still clash
                self.result.objects.append(ShippedObject(self.pkg, entry, relname, info))
            return
        misplaced = location_finding(self.pkg, entry, self.dirs)
        if misplaced is not None:
            self.result.findings.append(misplaced)
        self.result.findings += attributes.packaged(self.pkg.ref, entry)
        shipped = ShippedObject(self.pkg, entry, relname)
        self.result.objects.append(shipped)
        if content is None:
            return  # header-only judgement
        if isinstance(content, OSError):
            self.add("bpf-object-invalid", path, f"content cannot be read: {content}")
            return
        if info is None:
            self.add("bpf-object-invalid", path, invalid or "cannot be parsed")
            return
        shipped.info = info
        if not info.is_relocatable:
            self.add("bpf-object-invalid", path, f"ELF type {info.elf_type}, libbpf loads ET_REL objects")
        if not self.pkg.is_noarch:
            want = "big" if is_big_endian(self.pkg.ref.arch) else "little"
            if info.endianness != want:
                self.add(
                    "bpf-endianness-mismatch",
                    path,
                    f"{info.endianness}-endian object in a {want}-endian {self.pkg.ref.arch} package",
                )
        if info.license is None:
            self.add("bpf-object-no-license", path)
        if not info.has_btf:
            self.add("bpf-object-no-btf", path)

    def check_embedded(self, entry: FileEntry, data: bytes, signal: str) -> None:
        for found in embedded.find_all(data):
            obj = found.object
            programs = _programs_text(obj)
            about = Embedded(
                found.offset,
                obj.size,
                tuple((p.section, p.name) for p in obj.programs),
                obj.license,
                signal,
                obj.signature,
            )
            signed = ""
            if embedded.is_light_skeleton(found):
                sig = obj.signature
                signed = (
                    "; unsigned"
                    if sig is None
                    else f"; signed ({sig.digest}, key {sig.key_id or '?'}, {sig.key_id_kind})"
                )
            self.result.findings.append(
                Finding.of(
                    "bpf-object-embedded",
                    self.pkg.ref,
                    entry.path,
                    f"{'light skeleton loader ' if embedded.is_light_skeleton(found) else ''}"
                    f"at offset {found.offset}: {obj.size} bytes, {programs}, license {obj.license or 'none'}"
                    f"{signed}; found by {signal}",
                    embedded=about,
                )
            )

    def check_archive(self, entry: FileEntry, data: bytes) -> None:
        """BPF members of a static library: listed for the inventory, never judged as deployed programs."""
        for member, obj in archive.bpf_members(data):
            programs = _programs_text(obj)
            self.add(
                ARCHIVE_MEMBER,
                entry.path,
                f"member {member.name} at offset {member.offset}: {member.size} bytes, {programs}, "
                f"license {obj.license or 'none'}",
            )

    def check_noarch_endianness(self) -> None:
        if not self.pkg.is_noarch:
            return
        parsed = [o for o in self.result.objects if o.info is not None]
        orders = {o.info.endianness for o in parsed if o.info is not None}
        if len(orders) == 1:
            (order,) = orders
            for shipped in parsed:
                self.add("bpf-noarch-single-endian", shipped.entry.path, f"loads only on {order}-endian kernels")

    def check_ownership(self, owner_provides: tuple[str, ...]) -> None:
        files = [e.path for e in self.pkg.files if not e.is_dir and not e.is_ghost]
        owned = {e.path for e in self.pkg.files if e.is_dir}
        unowned = ownership.unowned_directories(files, self.dirs.roots, owned, set(self.pkg.requires), owner_provides)
        for directory, count in sorted(unowned.items()):
            self.add(ownership.RULE, directory, ownership.detail(count))
