"""``rpm-bpf repo-report``: what a whole repository or compose ships under the BPF directories.

From metadata only (sources/repodata.py): which packages ship BPF objects
and where, which provide ``bpf(NAME)``, the name clashes among them (the one
``bpf-name-conflict`` rule, rules/clash.py), files that look like BPF objects
outside the BPF directories (by name: metadata carries no file types), and
packages that put files in a BPF directory without owning it or requiring
its owner (the one ``bpfdir-unowned`` rule, rules/ownership.py). Both rules'
findings go through the policy: a rule turned off leaves its section empty,
a waived finding is listed with its waiver and not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rpm_bpf import __version__
from rpm_bpf.findings import Finding
from rpm_bpf.flows import repositories
from rpm_bpf.rules import clash, ownership
from rpm_bpf.rules.policy import Policy
from rpm_bpf.sources import bpfdirs
from rpm_bpf.sources.repodata import RepoContents

SCHEMA = "rpm-bpf/repo-report/v1"


def _judged(policy: Policy, finding: Finding) -> Finding | None:
    """The finding as the policy has it; None when its rule is off."""
    judged = policy.apply([finding])
    return judged[0] if judged else None


def build(repos: Iterable[RepoContents], policy: Policy) -> tuple[dict[str, Any], list[Finding]]:
    """The inventory as a JSON-ready document (schema ``SCHEMA``), and its findings as the policy has them."""
    repos = list(repos)
    objects: list[dict[str, Any]] = []
    provides: list[dict[str, Any]] = []
    outside: list[dict[str, Any]] = []
    unowned: list[dict[str, Any]] = []
    claims: list[clash.Claim] = []
    findings: list[Finding] = []
    for repo in repos:
        for pkg, paths in sorted(repo.files.items()):
            roots = bpfdirs.package_roots(pkg.arch)
            for path in sorted(paths):
                rel = bpfdirs.relative_name(path, roots)
                objects.append(
                    {"package": pkg.nevra, "name": pkg.name, "path": path, "bpf_name": rel, "repository": repo.label}
                )
            missing = ownership.unowned_directories(
                paths, roots, repo.owned.get(pkg, set()), set(repo.requires.get(pkg, [])), policy.owner_provides
            )
            judged = [_judged(policy, _unowned(pkg, d, n)) for d, n in sorted(missing.items())]
            kept = [f for f in judged if f is not None]
            findings += kept
            directories = [f.path or "" for f in kept if not f.waived]
            if directories:
                unowned.append(
                    {
                        "package": pkg.nevra,
                        "directories": directories,
                        "repository": repo.label,
                        "requires_known": pkg in repo.requires,
                    }
                )
        for pkg, names in sorted(repo.provides.items()):
            provides += [
                {"package": pkg.nevra, "bpf_name": name, "repository": repo.label} for name in sorted(set(names))
            ]
        for pkg, paths in sorted(repo.outside.items()):
            outside.extend({"package": pkg.nevra, "path": path, "repository": repo.label} for path in sorted(paths))
        claims += repositories.claims(repo)
    clashes = _clashes(claims, policy, findings)
    shipping = {o["package"] for o in objects} | {p["package"] for p in provides}
    doc = {
        "schema": SCHEMA,
        "tool": {"name": "rpm-bpf", "version": __version__},
        "repositories": [{"location": r.label, "packages": r.packages} for r in repos],
        "counts": {
            "packages": sum(r.packages for r in repos),
            "packages_shipping_bpf": len(shipping),
            "objects": sum(1 for o in objects if o["bpf_name"] is not None),
            "bpf_provides": len(provides),
            "name_clashes": len(clashes),
            "objects_outside_bpfdir": len(outside),
            "packages_not_owning_bpfdir": len(unowned),
        },
        "objects": objects,
        "provides": provides,
        "clashes": clashes,
        "outside": outside,
        "unowned": unowned,
    }
    return doc, findings


def _unowned(pkg: Any, directory: str, count: int) -> Finding:
    return Finding.of(ownership.RULE, pkg, directory, ownership.detail(count) + " (repository metadata)")


def _clashes(claims: list[clash.Claim], policy: Policy, findings: list[Finding]) -> list[dict[str, Any]]:
    """One entry per name with a clash that the policy leaves standing (not off, not waived for everyone)."""
    by_name: dict[str, list[clash.Claim]] = {}
    for claim in claims:
        by_name.setdefault(claim.name, []).append(claim)
    standing: set[str] = set()
    for claim, others in clash.find_clashes(claims):
        finding = _judged(policy, clash.conflict_finding(claim, others, note="repository metadata"))
        if finding is not None:
            findings.append(finding)
            if not finding.waived:
                standing.add(claim.name)
    return [
        {
            "bpf_name": name,
            "packages": sorted(c.package.nevra for c in by_name[name]),
            "where": sorted({c.path or f"bpf({name})" for c in by_name[name]}),
        }
        for name in sorted(standing)
    ]
