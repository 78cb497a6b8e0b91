"""Scanning RPM files: per-package rules plus name conflicts across them all."""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable, Iterator

from . import bpfdirs
from .checks import ShippedObject, check_package
from .conflicts import find_conflicts
from .findings import Finding, InputError, PackageRef
from .policy import Policy
from .rpmfile import RpmFileError, open_rpm


@dataclass
class ScanResult:
    packages: list[PackageRef] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)


def expand_inputs(paths: Iterable[str]) -> Iterator[str | InputError]:
    """RPM files named directly, and ``*.rpm`` found below directories.

    Directory symlinks are not followed (no loops); file symlinks are.
    """
    for path in paths:
        if os.path.isdir(path):
            found: list[str] = []
            unreadable: list[InputError] = []

            def note(exc: OSError) -> None:
                unreadable.append(InputError(exc.filename or path, f"cannot list directory: {exc.strerror}"))

            for top, dirs, files in os.walk(path, onerror=note):
                dirs.sort()
                found.extend(os.path.join(top, f) for f in files if f.endswith(".rpm"))
            yield from unreadable
            if not found and not unreadable:
                yield InputError(path, "directory contains no .rpm files")
            yield from sorted(found)
        elif os.path.lexists(path) and not os.path.exists(path):
            yield InputError(path, "broken symbolic link")
        elif not os.path.exists(path):
            yield InputError(path, "no such file or directory")
        else:
            yield path


@dataclass
class _Chunk:
    """What one worker found in its share of the inputs."""

    packages: list[PackageRef] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    shipped: list[ShippedObject] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)


def _scan_chunk(args: tuple[list[str | InputError], tuple[str, ...], bool]) -> _Chunk:
    items, owner_provides, deep = args
    chunk = _Chunk()
    for item in items:
        if isinstance(item, InputError):
            chunk.errors.append(item)
            continue
        try:
            rpmfile = open_rpm(item, bpfdirs.for_arch, deep=deep)
        except RpmFileError as exc:
            chunk.errors.append(InputError(item, exc.reason))
            continue
        pkg = rpmfile.package
        chunk.packages.append(pkg.ref)
        checked = check_package(pkg, bpfdirs.for_arch(pkg.ref.arch), owner_provides, rpmfile)
        if checked.content_error:
            chunk.errors.append(InputError(item, checked.content_error.removeprefix(item + ": ")))
        chunk.findings.extend(checked.findings)
        chunk.shipped.extend(checked.objects)
    return chunk


_CHUNK = 64  # inputs per task: small enough for a smooth progress bar
_PARALLEL_FROM = 512  # below this, starting workers costs more than it saves


def scan(paths: Iterable[str], policy: Policy, progress: Callable[[int, int], None] | None = None,
         deep: bool = False, jobs: int | None = None) -> ScanResult:
    """Check every package, then conflicts across all of them.

    ``deep`` skips header triage and reads every payload in full: slow, and
    meant to prove that the fast path misses nothing.  ``jobs``: worker
    processes (default: one per CPU for large scans).
    """
    inputs = list(expand_inputs(paths))
    total = len(inputs)
    if jobs is None:
        jobs = (os.cpu_count() or 1) if total >= _PARALLEL_FROM else 1
    bpfdirs.for_arch(bpfdirs.host_arch())  # warm the cache before any fork
    tasks = [(inputs[i:i + _CHUNK], policy.owner_provides, deep) for i in range(0, total, _CHUNK)]
    merged = _Chunk()
    done = 0
    pool = multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 else None
    try:
        for chunk in (pool.imap(_scan_chunk, tasks) if pool else map(_scan_chunk, tasks)):
            merged.packages += chunk.packages
            merged.findings += chunk.findings
            merged.shipped += chunk.shipped
            merged.errors += chunk.errors
            done += len(chunk.packages) + len(chunk.errors)
            if progress is not None:
                progress(done, total)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    merged.findings += find_conflicts(merged.shipped)
    return ScanResult(packages=merged.packages, findings=policy.apply(merged.findings), errors=merged.errors)
