"""The flow behind rpmlint's BPFCheck: one package at a time, then name conflicts across the run.

rpmlint hands over headers it has already read and payloads it has already
extracted; this flow judges them with the same rules as ``scan`` and applies
the policy, so that BPFCheck only words the findings as rpmlint messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rpm_bpf.findings import Finding
from rpm_bpf.rules import clash
from rpm_bpf.rules.package import ShippedObject, check_package
from rpm_bpf.rules.policy import Policy
from rpm_bpf.rules.spec import check_spec_text
from rpm_bpf.rules.unreadable import unreadable
from rpm_bpf.sources import bpfdirs
from rpm_bpf.sources.diskfiles import DiskReader
from rpm_bpf.sources.rpmheader import FULL_RECALL, HeaderError, package_from_header


class Linted:
    """One package's findings as the policy has them, and the objects it ships (for ``conflicts``)."""

    def __init__(self, findings: list[Finding], objects: list[ShippedObject], files: int) -> None:
        self.findings = findings
        self.objects = objects
        self.files = files


def lint_header(header: Any, origin: str, extracted: str, policy: Policy) -> Linted:
    """A binary package given as its librpm header and the directory its payload was extracted to."""
    try:
        # Every ELF file searched and ar archives read, as scan does: rpmlint has extracted them already.
        package = package_from_header(header, bpfdirs.for_arch, origin=origin, embedded=FULL_RECALL, archives=True)
    except HeaderError as exc:  # crafted or corrupt: nothing about its BPF objects can be said
        return Linted(policy.apply([unreadable(None, f"corrupt RPM header ({exc})")]), [], 0)
    dirs = bpfdirs.for_arch(package.ref.arch)
    result = check_package(package, dirs, policy.owner_provides, DiskReader(extracted), policy.exempt_paths)
    return Linted(policy.apply(result.findings), result.objects, len(package.files))


def lint_spec(text: str, policy: Policy) -> list[tuple[int, Finding]]:
    """The spec file rules, each finding with its line number."""
    found = []
    for spec in check_spec_text(text):
        judged = policy.apply([Finding.of(spec.rule, None, None, spec.text)])
        found += [(spec.line, finding) for finding in judged]
    return found


def conflicts(objects: Iterable[ShippedObject], policy: Policy) -> list[Finding]:
    """``bpf-name-conflict`` among every package of the run."""
    return policy.apply(clash.conflicts(obj.claim for obj in objects))
