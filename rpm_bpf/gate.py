"""The gate: new builds judged against whole repositories, and against their previous build.

``rpm-bpf scan --against REPO NEW...`` is what stands between a build system
(Koji) and the repositories: the new packages are scanned as ``scan`` always
does, and their BPF object names are compared with what the repositories
already ship, read from metadata only (repodata.py). A repository package
that the new build replaces (same name, or obsoleted by a new package) does
not count, and the repositories' own old problems are never the new build's:
only findings on new packages are reported.

``--baseline OLD...`` (rpminspect's before/after model): a finding the
previous build already had (same rule, package name and path) is reported as
existing and does not fail the gate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import rpm

from . import bpfdirs
from .bpfdirs import relative_name
from .findings import Finding, InputError, PackageRef
from .policy import Policy
from .repodata import RepoContents, RepoError, read_repository
from .scan import ScanResult, expand_inputs, scan


class _NewBuild:
    """The new packages' names, obsoletes and bpf(NAME) provides, from their (checked) headers."""

    def __init__(self, paths: Iterable[str]) -> None:
        from .rpmfile import RpmFileError, open_rpm

        self.names: set[str] = set()
        self.obsoletes: list[rpm.ds] = []
        self.provides: dict[PackageRef, set[str]] = {}
        for path in paths:
            try:
                opened = open_rpm(path, bpfdirs.for_arch)
            except RpmFileError:
                continue  # the scan reports it as an input error
            hdr, ref = opened.header, opened.package.ref
            self.names.add(ref.name)
            if hdr[rpm.RPMTAG_OBSOLETENAME]:
                self.obsoletes.append(rpm.ds(hdr, rpm.RPMTAG_OBSOLETENAME))
            names = {p[4:-1] for p in hdr[rpm.RPMTAG_PROVIDENAME] if p.startswith("bpf(") and p.endswith(")")}
            if names:
                self.provides[ref] = names

    def replaces(self, pkg: PackageRef) -> bool:
        """A repository package this build replaces: an older (or the same) build of a new package, or one
        a new package obsoletes (rpm's own range comparison)."""
        if pkg.name in self.names:
            return True
        if not self.obsoletes:
            return False
        evr = f"{pkg.epoch}:{pkg.version}-{pkg.release}" if pkg.epoch else f"{pkg.version}-{pkg.release}"
        provided = rpm.ds((pkg.name, rpm.RPMSENSE_EQUAL, evr), rpm.RPMTAG_PROVIDENAME)
        return any(obsoletes.Search(provided) >= 0 for obsoletes in self.obsoletes)


def _conflicts(result: ScanResult, build: _NewBuild, repos: list[RepoContents]) -> list[Finding]:
    """``bpf-name-conflict`` of new objects (and bpf(NAME) provides) with what the repositories ship."""
    ours: dict[str, list[tuple[PackageRef, str]]] = {}  # name relative to the BPF directory -> (package, path)
    for obj in result.shipped:
        if obj.relname is not None:
            ours.setdefault(obj.relname, []).append((obj.package.ref, obj.entry.path))
    for ref, names in build.provides.items():
        for name in names:
            if not any(r == ref for r, _ in ours.get(name, [])):
                ours.setdefault(name, []).append((ref, ""))
    clashes: dict[tuple[PackageRef, str], dict[str, str]] = {}  # (new package, path) -> {repo NEVRA: how}
    for repo in repos:
        shipped: dict[str, dict[PackageRef, str]] = {}
        for pkg, paths in repo.files.items():
            roots: tuple[str, ...] = bpfdirs.for_arch(pkg.arch).roots if bpfdirs.is_arch_name(pkg.arch) else ()
            for path in paths:
                rel = relative_name(path, roots)
                if rel is not None:
                    shipped.setdefault(rel, {})[pkg] = path
        for pkg, provided in repo.provides.items():
            for rel in provided:
                shipped.setdefault(rel, {}).setdefault(pkg, f"bpf({rel})")
        for name, holders in ours.items():
            for other, where in shipped.get(name, {}).items():
                if build.replaces(other):
                    continue
                for ref, path in holders:
                    clashes.setdefault((ref, path), {})[other.nevra] = f"{where} in {repo.label}"
    findings = []
    for (ref, path), others in sorted(clashes.items(), key=lambda item: (item[0][0].nevra, item[0][1])):
        name = next((n for n, holders in ours.items() if (ref, path) in holders), "")
        detail = f"{name} is also shipped by " + ", ".join(f"{nevra} ({how})" for nevra, how in sorted(others.items()))
        findings.append(
            Finding.of(
                "bpf-name-conflict", ref, path or None, detail + " (repository metadata)", related=tuple(sorted(others))
            )
        )
    return findings


def _read_repos(locations: Iterable[str], roots: set[str], errors: list[InputError]) -> list[RepoContents]:
    repos = []
    for location in locations:
        try:
            repos.append(read_repository(location, roots))
        except RepoError as exc:
            errors.append(InputError(location, str(exc).removeprefix(location + ": ")))
        except Exception as exc:  # our bug met on this repository: it stays unchecked, so the gate fails
            errors.append(InputError(location, f"internal error while reading it ({type(exc).__name__}: {exc})"))
    return repos


def _judge(paths: list[str], policy: Policy, repos: list[RepoContents], **scan_options: object) -> ScanResult:
    result = scan(paths, policy, **scan_options)  # type: ignore[arg-type]
    if repos:
        files = [item for item in expand_inputs(paths) if isinstance(item, str)]
        result.findings += policy.apply(_conflicts(result, _NewBuild(files), repos))
    return result


def gate(
    paths: list[str],
    policy: Policy,
    against: Iterable[str] = (),
    baseline: Iterable[str] = (),
    progress: Callable[[int, int], None] | None = None,
    **scan_options: object,
) -> ScanResult:
    """Scan ``paths`` (the new build), against the repositories ``against`` and the previous build ``baseline``."""
    errors: list[InputError] = []
    roots = {r for arch in ("noarch", bpfdirs.host_arch()) for r in bpfdirs.for_arch(arch).roots}
    repos = _read_repos(against, roots, errors)
    result = _judge(paths, policy, repos, progress=progress, **scan_options)
    baseline = list(baseline)
    if baseline:
        before = _judge(baseline, policy, repos, **scan_options)
        errors += before.errors
        seen = {(f.rule, f.package.name if f.package else "", f.path): f.package for f in before.findings}
        marked = []
        for finding in result.findings:
            key = (finding.rule, finding.package.name if finding.package else "", finding.path)
            if key in seen and not finding.waived:
                old = seen[key]
                finding = finding._replace(existing=old.nevra if old else "the baseline")
            marked.append(finding)
        result.findings = marked
    result.errors = errors + result.errors
    return result
