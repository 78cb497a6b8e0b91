"""``rpm-bpf which``: which package a loaded BPF program came from.

Every program of every BPF object the rpm database knows (standalone files,
and objects embedded in installed executables and libraries where a header
signal says so) gets a predicted kernel name, type and tag (progtag.py); a
loaded program (loaded.py) is matched by its tag, and its loader (the
processes holding it) is looked up in the same database:

* ``certain``: tag and loader agree (the loader is the object's package, or
  built from the same source);
* ``tag``: the tag alone matches;
* ``weak``: no tag matches, but the name and type of a packaged program do
  (a CO-RE program on another kernel, or changed code);
* ``unknown``: nothing packaged looks like it.

Predictions are cached per object file (``~/.cache/rpm-bpf/progtags``),
keyed by the digest the rpm database records and used again only while the
file is unchanged since (its digest matched then; size, mtime and inode
still the same): the cache only saves work, a bad entry is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import namedtuple
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rpm_bpf.bpf import elf, embedded
from rpm_bpf.bpf.progtag import PredictionError, predict
from rpm_bpf.findings import Finding, InputError
from rpm_bpf.model import FileEntry, Package, PackageRef, content_limit
from rpm_bpf.rules.loaded import unpackaged_finding
from rpm_bpf.rules.policy import Policy
from rpm_bpf.sources import rpmdb
from rpm_bpf.sources.kernelbtf import KERNEL_BTF, KernelBtf
from rpm_bpf.sources.loaded import Loaded
from rpm_bpf.sources.rootfs import RootFS
from rpm_bpf.sources.rpmfile import DIGEST_ALGOS

CACHE_VERSION = 3  # 2: CO-RE relocations resolved, keyed by the kernel's BTF too; 3: libbpf's program types


class Source(
    namedtuple(
        "Source",
        (
            "package",
            "sourcerpm",
            "path",
            "offset",
            "section",
            "name",
            "kernel_name",
            "type",
            "tag",
            "tag_sha1",
            "caveats",
        ),
    )
):
    """A packaged program: which package, file (and offset, when embedded) and section it is in."""

    __slots__ = ()
    package: PackageRef
    sourcerpm: str
    path: str
    offset: int | None
    section: str
    name: str
    kernel_name: str
    type: str
    tag: str
    tag_sha1: str
    caveats: tuple[str, ...]


class Match(namedtuple("Match", ("program", "sources", "loaders", "confidence", "reason"))):
    """A loaded program and what it was matched with; ``loaders``: (pid, executable, package NEVRA or None);
    ``reason``: why the confidence is what it is, when the tag alone does not say it (None when it does)."""

    __slots__ = ()
    program: Loaded
    sources: tuple[Source, ...]
    loaders: tuple[tuple[int, str, str | None], ...]
    confidence: str
    reason: str | None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rpm-bpf" / "progtags"


class Cache:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.hits = self.misses = 0

    def _file(self, key: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / (hashlib.sha256(key.encode()).hexdigest() + ".json")

    def get(self, key: str, stamp: list[int]) -> list[dict[str, Any]] | None:
        path = self._file(key)
        if path is None:
            return None
        try:
            from rpm_bpf.sources.rootfs import read_user_file

            doc = json.loads(read_user_file(path, 16 << 20))  # a regular file of bounded size, never a FIFO
            if doc["version"] == CACHE_VERSION and doc["key"] == key and doc["stamp"] == stamp:
                self.hits += 1
                return list(doc["programs"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # missing, corrupt or stale: recomputed
        self.misses += 1
        return None

    def put(self, key: str, stamp: list[int], programs: list[dict[str, Any]]) -> None:
        path = self._file(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_suffix(f".{os.getpid()}.tmp")
            temp.write_text(json.dumps({"version": CACHE_VERSION, "key": key, "stamp": stamp, "programs": programs}))
            os.replace(temp, path)
        except OSError:
            pass  # an accelerator only


def _describe(data: bytes, kernel: KernelBtf | None = None) -> list[dict[str, Any]]:
    """The programs of a BPF object, or of the objects embedded in an ELF file, as cacheable dicts."""
    spans = (
        [(None, data)]
        if elf.is_bpf_elf(data)
        else [
            (found.offset, data[found.offset : found.offset + found.object.size]) for found in embedded.find_all(data)
        ]
    )
    out = []
    for offset, span in spans:
        try:
            predictions = predict(span, kernel)
        except PredictionError:
            continue
        out += [{"offset": offset, **p.to_dict()} for p in predictions]
    return out


def _wanted(pkg: Package, entry: FileEntry) -> bool:
    return entry.is_regular and not entry.is_ghost and (entry.class_says_bpf or pkg.search_signal(entry) is not None)


def source(ref: PackageRef, sourcerpm: str, path: str, p: dict[str, Any]) -> Source:
    """A packaged program from its prediction (``Prediction.to_dict()`` with its object's ``offset``)."""
    return Source(
        ref,
        sourcerpm,
        path,
        p["offset"],
        p["section"],
        p["name"],
        p["kernel_name"],
        p["type"],
        p["tag"],
        p["tag_sha1"],
        tuple(p["caveats"]),
    )


def trace(
    root: str, programs: list[Loaded], errors: list[InputError], cache: Cache, kernel: KernelBtf | None = None
) -> list[Match]:
    """Each loaded program matched against what the rpm database of ``root`` ships (one private copy of it).

    ``kernel``: the running kernel's BTF, which CO-RE relocations are resolved against (always the running
    kernel's, whatever ``root``: the programs were loaded into it)."""
    kernel = kernel if kernel is not None else KernelBtf()
    with rpmdb.snapshot(root) as db, RootFS(root) as fs:
        sources = _packaged_programs(db, fs, errors, cache, kernel)
        owners = loaders(db, root, programs, errors)
    return match(programs, sources, owners, root)


def _packaged_programs(db: str, fs: RootFS, errors: list[InputError], cache: Cache, kernel: KernelBtf) -> list[Source]:
    """Every program of every BPF object the rpm database ``db`` knows, with its predicted tags (CO-RE
    relocations resolved against ``kernel``: cached per packaged digest and kernel BTF digest)."""
    btf_key = kernel.digest or "none"
    sources = []
    for pkg in rpmdb.installed(db, (), errors):
        algo = DIGEST_ALGOS.get(pkg.digest_algo, "sha256")
        for entry in pkg.files:
            if not _wanted(pkg, entry):
                continue
            try:
                st = fs.lstat(entry.path)
            except OSError:
                continue  # not there: rpm-bpf verify reports missing files
            # ctime too: an mtime set back after a change in place does not make a file unchanged
            stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
            key = f"{algo}:{entry.digest}:btf:{btf_key}"
            programs = cache.get(key, stamp) if entry.digest else None
            if programs is None:
                try:
                    data = fs.read(entry.path, content_limit(entry))
                except OSError as exc:
                    errors.append(InputError(fs.host_path(entry.path), f"cannot read: {exc.strerror}"))
                    continue
                programs = _describe(data, kernel)
                if entry.digest and hashlib.new(algo, data).hexdigest() == entry.digest:
                    cache.put(key, stamp, programs)  # only what is still the packaged file
            sources += [source(pkg.ref, pkg.sourcerpm, entry.path, p) for p in programs]
    return sources


def loaders(db: str, root: str, programs: list[Loaded], errors: list[InputError]) -> dict[str, Package]:
    """The installed package owning each loader executable (as ``rpm -qf``: rpm's file index)."""
    # Only executables in the root: a host process's file is not the root's file of the same name.
    exes = sorted({exe for prog in programs for _, exe in prog.holders if exe and is_inside(root, exe)})
    inside = {exe: inside_root(root, exe) for exe in exes}
    found: dict[str, Package] = {}
    for exe, path in inside.items():  # one index look-up each, in the snapshot already made
        for pkg in rpmdb.owners(db, [path], errors):
            found.setdefault(exe, pkg)
    return found


def is_inside(root: str, exe: str) -> bool:
    """Whether the host path ``exe`` lies in ``root`` (always, for ``/``)."""
    prefix = os.path.realpath(root).rstrip("/") + "/"
    return prefix == "/" or exe.startswith(prefix)


def inside_root(root: str, exe: str) -> str:
    """A loader running from inside the root: its path there is what the root's database knows."""
    prefix = os.path.realpath(root).rstrip("/") + "/"
    return "/" + exe[len(prefix) :] if prefix != "/" and exe.startswith(prefix) else exe


def _by_loader(found: list[Source], exes: set[str], loader_pkgs: list[Package]) -> tuple[list[Source], str]:
    """The packaged programs the loader evidence points at among ``found``: those in the loader's own
    executable (an embedded skeleton), else those of the loader's package or source package; and how."""
    own = [s for s in found if s.path in exes]
    if own:
        return own, "the loader's executable"
    agree = [
        s
        for s in found
        if any(s.package.name == p.ref.name or (s.sourcerpm and s.sourcerpm == p.sourcerpm) for p in loader_pkgs)
    ]
    return agree, "the loader's package"


def _files(sources: list[Source]) -> int:
    return len({(s.package.nevra, s.path, s.offset) for s in sources})


def match(programs: list[Loaded], sources: list[Source], owners: dict[str, Package], root: str = "/") -> list[Match]:
    by_tag: dict[str, list[Source]] = {}
    by_name: dict[tuple[str, str], list[Source]] = {}
    for src in sources:
        by_tag.setdefault(src.tag, []).append(src)
        by_tag.setdefault(src.tag_sha1, []).append(src)
        # The kernel keeps 15 characters of a name; bpftool shows the whole one when BTF has it.
        by_name.setdefault((src.kernel_name, src.type), []).append(src)
        if src.name != src.kernel_name:
            by_name.setdefault((src.name, src.type), []).append(src)
    matches = []
    for prog in programs:
        loaders = tuple((pid, exe, owners[exe].ref.nevra if exe in owners else None) for pid, exe in prog.holders)
        # Loader evidence only from executables of this root: under --root, a host process's /usr/bin/tool
        # is not the root's /usr/bin/tool.
        held = [exe for _, exe in prog.holders if exe and is_inside(root, exe)]
        exes = {inside_root(root, exe) for exe in held}
        loader_pkgs = [owners[exe] for exe in held if exe in owners]
        found = list(dict.fromkeys(by_tag.get(prog.tag, [])))
        if found:
            chosen, how = _by_loader(found, exes, loader_pkgs)
            pool = chosen or found
            # One object holding the same code twice (tp_btf and raw_tp variants): the loaded name decides.
            named = [s for s in pool if prog.name in (s.kernel_name, s.name)]
            pool = sorted(named or pool, key=lambda s: (s.package.nevra, s.path))
            reason = None
            if chosen and _files(pool) < _files(found):
                reason = f"{_files(found)} packaged objects predict this tag; {how} decided"
            if chosen and _files(pool) > 1:
                reason = f"{_files(pool)} packaged objects of {how.removeprefix('the ')} predict this tag; all listed"
            if chosen:
                matches.append(Match(prog, tuple(pool), loaders, "certain", reason))
            else:
                why = "no loader of this package holds it" if prog.holders else "no process holds it"
                matches.append(Match(prog, tuple(pool), loaders, "tag", f"the tag matches; {why}"))
            continue
        weak = list(dict.fromkeys(by_name.get((prog.name, prog.type), [])))
        if not weak:
            why = "no packaged program has this tag, or this name and type"
            matches.append(Match(prog, (), loaders, "unknown", why))
            continue
        chosen, how = _by_loader(weak, exes, loader_pkgs)
        caveats = list(dict.fromkeys(c for s in (chosen or weak) for c in s.caveats))
        reason = "no packaged program has this tag; one of this name and type does" + (
            f" ({'; '.join(caveats)})" if caveats else " (changed code, or another build of it)"
        )
        if chosen and _files(chosen) < _files(weak):
            reason += f"; {how} decided among {_files(weak)} objects"
        matches.append(Match(prog, tuple(chosen or weak), loaders, "weak", reason))
    return matches


def unpackaged_findings(matches: Iterable[Match]) -> list[Finding]:
    """``bpf-program-unpackaged`` for every loaded program nothing packaged matches (before the policy)."""
    return [unpackaged_finding(m.program, m.loaders) for m in matches if m.confidence == "unknown"]


class WhichResult:
    """``rpm-bpf which``: every loaded program matched, the findings as the policy has them, what could not be read."""

    def __init__(
        self,
        matches: list[Match],
        findings: list[Finding],
        errors: list[InputError],
        cache: Cache,
        kernel: KernelBtf | None = None,
    ) -> None:
        self.kernel = kernel
        self.matches = matches
        self.findings = findings
        self.errors = errors
        self.cache = cache


def which(
    root: str,
    ids: Iterable[int] = (),
    strict: Policy | None = None,
    cache_directory: Path | None = None,
    kernel_btf: str = KERNEL_BTF,
) -> WhichResult:
    """The loaded programs (those of ``ids``, or all) traced to the packages of ``root``.

    ``strict``: the policy under which a program nothing packaged matches is
    ``bpf-program-unpackaged`` (None: no findings). Raises ``PrivilegeError`` or
    ``KernelError`` when the programs cannot be listed, ``RpmdbError`` when the
    database cannot be read.
    """
    from rpm_bpf.sources.loaded import loaded_programs

    programs = loaded_programs()
    errors: list[InputError] = []
    wanted = set(ids)
    if wanted:
        programs = [p for p in programs if p.id in wanted]
        errors += [
            InputError(f"program {i}", "no loaded BPF program with this id")
            for i in sorted(wanted - {p.id for p in programs})
        ]
    cache = Cache(cache_directory)
    kernel = KernelBtf(kernel_btf)
    matches = trace(root, programs, errors, cache, kernel)
    findings = strict.apply(unpackaged_findings(matches)) if strict is not None else []
    return WhichResult(matches, findings, errors, cache, kernel)


def loaded_findings(root: str, errors: list[InputError], cache_directory: Path | None = None) -> list[Finding]:
    """What ``verify --loaded`` adds (before the policy): ``bpf-program-unpackaged`` for loaded programs no
    package of ``root`` ships.

    Without the privilege to list them (or without bpftool) that is an input error, never silence.
    """
    from rpm_bpf.sources.loaded import KernelError, PrivilegeError, loaded_programs

    try:
        programs = loaded_programs()
    except (PrivilegeError, KernelError) as exc:
        errors.append(InputError("loaded BPF programs", str(exc)))
        return []
    return unpackaged_findings(trace(root, programs, errors, Cache(cache_directory)))
