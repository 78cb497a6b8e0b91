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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rpmlint.checks.AbstractCheck import AbstractCheck

from rpm_bpf.errors import RpmBpfError
from rpm_bpf.findings import Finding
from rpm_bpf.flows import lint
from rpm_bpf.report.safetext import escape
from rpm_bpf.rules import registry
from rpm_bpf.rules.package import ShippedObject
from rpm_bpf.rules.policy import SYSTEM_POLICY, Policy

POLICY_ERROR = "(none): W: rpm-bpf policy cannot be used: {error}; BPFCheck uses the built-in default"


class BPFCheck(AbstractCheck):  # type: ignore[misc]  # rpmlint ships no type information
    def __init__(self, config: Any, output: Any) -> None:
        super().__init__(config, output)
        self.checked_files = 0
        # `rpmlint -e RULE` reads these: one text, from the registry.
        output.error_details.update({r.id: f"{r.summary}. {r.description}" for r in registry.registry().values()})
        # Extra policy files can be named in any rpmlint config: BPFPolicy = ["FILE", ...]
        extra = config.configuration.get("BPFPolicy", [])
        try:
            self.policy = Policy.load(extra, system=SYSTEM_POLICY)
        except RpmBpfError as exc:
            print(POLICY_ERROR.format(error=exc), file=sys.stderr)
            self.policy = Policy.load(system=None)
        # Kept across packages (rpmlint resets checks after each one): conflicts
        # are judged in after_checks() over every package of the run.
        self._shipped: list[tuple[ShippedObject, Any]] = []

    def _report(self, findings: Iterable[Finding], pkg_of: Callable[[Finding], Any]) -> None:
        """Findings the policy left standing, in rpmlint's words; ``pkg_of(finding)`` names the package."""
        for finding in findings:
            if finding.waived:
                continue
            # Names from the package are escaped: rpmlint prints details raw to the terminal.
            details = [escape(d) for d in (finding.path, finding.detail) if d]
            self.output.add_info(finding.severity.letter, pkg_of(finding), finding.rule, *details)

    def check_binary(self, pkg: Any) -> None:
        linted = lint.lint_header(pkg.header, str(pkg.filename), pkg.dir_name(), self.policy)
        self.checked_files += linted.files
        self._report(linted.findings, lambda _: pkg)
        self._shipped.extend((obj, pkg) for obj in linted.objects)

    def check_source(self, pkg: Any) -> None:
        for path, pkgfile in pkg.files.items():
            if path.endswith(".spec"):
                self._check_spec_file(pkg, Path(pkgfile.path))

    def check_spec(self, pkg: Any) -> None:
        self._check_spec_file(pkg, Path(pkg.name))

    def _check_spec_file(self, pkg: Any, spec: Path) -> None:
        try:
            text = spec.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return  # rpmlint's SpecCheck reports unreadable spec files
        self.checked_files += 1
        for line, finding in lint.lint_spec(text, self.policy):
            pkg.current_linenum = line
            try:
                self._report([finding], lambda _: pkg)
            finally:
                pkg.current_linenum = None

    def after_checks(self) -> None:
        """Name conflicts among all packages of this rpmlint run."""
        by_nevra = {obj.package.ref.nevra: pkg for obj, pkg in self._shipped}
        found = lint.conflicts((obj for obj, _ in self._shipped), self.policy)
        self._report(found, lambda finding: by_nevra[finding.package.nevra if finding.package else ""])
