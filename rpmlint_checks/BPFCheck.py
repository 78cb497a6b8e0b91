"""rpmlint check for the BPF object convention: a thin adapter over the rpm-bpf engine.

Installed as rpmlint/checks/BPFCheck.py (rpmlint loads checks only from its
own package) and enabled by a drop-in adding "BPFCheck" to ``Checks``
(/etc/xdg/rpmlint/bpf.toml). Every rule, its level and its description come
from the rpm-bpf registry and policy (/etc/rpm-bpf/policy.toml, waivers
included, plus files named by ``BPFPolicy = [...]`` in an rpmlint config);
rpmlintrc filters apply on top, as for any rpmlint message.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rpmlint.checks.AbstractCheck import AbstractCheck

from rpm_bpf import bpfdirs, rules
from rpm_bpf.checks import ShippedObject, check_package
from rpm_bpf.conflicts import find_conflicts
from rpm_bpf.diskfiles import DiskReader
from rpm_bpf.findings import Finding
from rpm_bpf.policy import SYSTEM_POLICY, Policy, PolicyError
from rpm_bpf.rpmfile import HeaderError, package_from_header
from rpm_bpf.safetext import escape
from rpm_bpf.specfile import check_spec_text

POLICY_ERROR = "(none): W: rpm-bpf policy cannot be used: {error}; BPFCheck uses the built-in default"


class BPFCheck(AbstractCheck):
    def __init__(self, config, output):
        super().__init__(config, output)
        self.checked_files = 0
        # `rpmlint -e RULE` reads these: one text, from the registry.
        output.error_details.update({r.id: f"{r.summary}. {r.description}" for r in rules.registry().values()})
        # Extra policy files can be named in any rpmlint config: BPFPolicy = ["FILE", ...]
        extra = config.configuration.get("BPFPolicy", [])
        try:
            self.policy = Policy.load(extra, system=SYSTEM_POLICY)
        except PolicyError as exc:
            print(POLICY_ERROR.format(error=exc), file=sys.stderr)
            self.policy = Policy.load(system=None)
        # Kept across packages (rpmlint resets checks after each one): conflicts
        # are judged in after_checks() over every package of the run.
        self._shipped: list[tuple[ShippedObject, object]] = []

    def _report(self, findings, pkg_of) -> None:
        """Findings as the policy has them, in rpmlint's words; ``pkg_of(finding)`` names the package."""
        for finding in self.policy.apply(findings):
            if finding.waived:
                continue
            # Names from the package are escaped: rpmlint prints details raw to the terminal.
            details = [escape(d) for d in (finding.path, finding.detail) if d]
            self.output.add_info(finding.severity.letter, pkg_of(finding), finding.rule, *details)

    def check_binary(self, pkg) -> None:
        try:
            package = package_from_header(pkg.header, bpfdirs.for_arch, origin=str(pkg.filename))
        except HeaderError as exc:  # crafted or corrupt: nothing about its BPF objects can be said
            self._report(
                [Finding.of("bpf-package-unreadable", None, None, f"corrupt RPM header ({exc})")], lambda _: pkg
            )
            return
        dirs = bpfdirs.for_arch(package.ref.arch)
        result = check_package(
            package, dirs, self.policy.owner_provides, DiskReader(pkg.dir_name()), self.policy.exempt_paths
        )
        self.checked_files += len(package.files)
        self._report(result.findings, lambda _: pkg)
        self._shipped.extend((obj, pkg) for obj in result.objects)

    def check_source(self, pkg) -> None:
        for path, pkgfile in pkg.files.items():
            if path.endswith(".spec"):
                self._check_spec_file(pkg, Path(pkgfile.path))

    def check_spec(self, pkg) -> None:
        self._check_spec_file(pkg, Path(pkg.name))

    def _check_spec_file(self, pkg, spec: Path) -> None:
        try:
            text = spec.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return  # rpmlint's SpecCheck reports unreadable spec files
        self.checked_files += 1
        for spec_finding in check_spec_text(text):
            # Through the policy like every finding: severities and waivers apply.
            finding = Finding.of(spec_finding.rule, None, None, spec_finding.text)
            pkg.current_linenum = spec_finding.line
            try:
                self._report([finding], lambda _: pkg)
            finally:
                pkg.current_linenum = None

    def after_checks(self) -> None:
        """Name conflicts among all packages of this rpmlint run."""
        by_nevra = {obj.package.ref.nevra: pkg for obj, pkg in self._shipped}
        conflicts = find_conflicts([obj for obj, _ in self._shipped])
        self._report(conflicts, lambda finding: by_nevra[finding.package.nevra])
