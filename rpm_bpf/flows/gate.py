"""The gate: new builds judged against whole repositories, and against their previous build.

``rpm-bpf scan --against REPO NEW...`` is what stands between a build system
(Koji) and the repositories: the new packages are scanned as ``scan`` always
does, and their BPF object names are compared with what the repositories
already ship, read from metadata only (sources/repodata/). A repository package
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

from rpm_bpf.findings import Finding
from rpm_bpf.flows import repositories
from rpm_bpf.flows.scan import ScanResult, expand_inputs, scan
from rpm_bpf.model import PackageRef, bpf_provide_names
from rpm_bpf.rules import appdirs, clash
from rpm_bpf.rules.clash import Claim
from rpm_bpf.rules.policy import Policy
from rpm_bpf.sources import bpfdirs
from rpm_bpf.sources.repodata import RepoContents


class _NewBuild:
    """The new packages' names, obsoletes and bpf(NAME) provides, from their (checked) headers."""

    def __init__(self, paths: Iterable[str]) -> None:
        from rpm_bpf.sources.rpmfile import RpmFileError, open_rpm

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
            names = bpf_provide_names(hdr[rpm.RPMTAG_PROVIDENAME])
            if names:
                self.provides[ref] = names

    def replaces(self, pkg: PackageRef) -> bool:
        """A repository package this build replaces: an older (or the same) build of a new package, or one
        a new package obsoletes (rpm's own range comparison)."""
        if pkg.name in self.names:
            return True
        if not self.obsoletes:
            return False
        provided = rpm.ds((pkg.name, rpm.RPMSENSE_EQUAL, pkg.evr), rpm.RPMTAG_PROVIDENAME)
        return any(obsoletes.Search(provided) >= 0 for obsoletes in self.obsoletes)


def _in(label: str) -> Callable[[str], str]:
    """How a repository's claim is shown: its path (or provide) and the repository."""
    return lambda text: f"{text} in {label}"


def _conflicts(result: ScanResult, build: _NewBuild, repos: list[RepoContents]) -> list[Finding]:
    """``bpf-name-conflict`` of new objects (and bpf(NAME) provides) with what the repositories ship."""
    new: list[Claim] = [obj.claim for obj in result.shipped if obj.relname is not None]
    files = {(c.package, c.name) for c in new}
    new += [
        Claim(ref, name) for ref, names in build.provides.items() for name in sorted(names) if (ref, name) not in files
    ]
    theirs = [claim for repo in repos for claim in repositories.claims(repo, _in(repo.label))]
    ours = {c.package for c in new}
    counted = {c.package for c in theirs if not build.replaces(c.package)}
    found = clash.find_clashes(
        new + theirs, reported=lambda c: c.package in ours, counted=lambda c: c.package in counted
    )
    found.sort(key=lambda item: (item[0].package.nevra, item[0].path or ""))
    findings = [
        clash.conflict_finding(claim, _one_per_package(others), note="repository metadata") for claim, others in found
    ]
    # Application directories: the new build's claims against the repositories'.
    apps = list(result.apps)
    ours |= {c.package for c in apps}
    theirs_apps = [claim for repo in repos for claim in repositories.app_claims(repo, _in(repo.label))]
    counted |= {c.package for c in theirs_apps if not build.replaces(c.package)}
    found = clash.find_clashes(
        apps + theirs_apps, reported=lambda c: c.package in ours, counted=lambda c: c.package in counted
    )
    found.sort(key=lambda item: (item[0].package.nevra, item[0].name))
    findings += [
        clash.conflict_finding(
            claim, _one_per_package(others), verb="claimed", note="repository metadata", rule=appdirs.CONFLICT
        )
        for claim, others in found
    ]
    return findings


def _one_per_package(others: tuple[Claim, ...]) -> list[Claim]:
    """Each repository package once, by NEVRA, as the last claim of it (the last repository given) has it."""
    chosen = {other.package.nevra: other for other in others}
    return [chosen[nevra] for nevra in sorted(chosen)]


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
    repos, errors = repositories.read_all(against)
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
