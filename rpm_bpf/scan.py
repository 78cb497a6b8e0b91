"""Scanning RPM files: per-package rules plus name conflicts across them all."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

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
            found = []
            for top, dirs, files in os.walk(path, onerror=None):
                dirs.sort()
                found.extend(os.path.join(top, f) for f in files if f.endswith(".rpm"))
            if not found:
                yield InputError(path, "directory contains no .rpm files")
            yield from sorted(found)
        elif os.path.lexists(path) and not os.path.exists(path):
            yield InputError(path, "broken symbolic link")
        elif not os.path.exists(path):
            yield InputError(path, "no such file or directory")
        else:
            yield path


def scan(paths: Iterable[str], policy: Policy,
         progress: Callable[[int, int], None] | None = None) -> ScanResult:
    inputs = list(expand_inputs(paths))
    result = ScanResult()
    shipped: list[ShippedObject] = []
    raw: list[Finding] = []
    total = len(inputs)
    for done, item in enumerate(inputs, 1):
        if progress is not None:
            progress(done, total)
        if isinstance(item, InputError):
            result.errors.append(item)
            continue
        try:
            rpmfile = open_rpm(item, bpfdirs.for_arch)
        except RpmFileError as exc:
            result.errors.append(InputError(item, exc.reason))
            continue
        pkg = rpmfile.package
        result.packages.append(pkg.ref)
        checked = check_package(pkg, bpfdirs.for_arch(pkg.ref.arch), policy.owner_provides, rpmfile)
        if checked.content_error:
            result.errors.append(InputError(item, checked.content_error.removeprefix(item + ": ")))
        raw.extend(checked.findings)
        shipped.extend(checked.objects)
    raw.extend(find_conflicts(shipped))
    result.findings = policy.apply(raw)
    return result
