"""Report formats shared by ``scan`` and ``verify``: text, JSON, JUnit XML, SARIF.

The JSON layout is a public, versioned interface (``SCHEMA``); it is
described in docs/report-formats.md and in ``data/report.schema.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rpm_bpf import __version__
from rpm_bpf.findings import Embedded, Finding, InputError, SignatureStatus
from rpm_bpf.model import PackageRef
from rpm_bpf.report.safetext import escape
from rpm_bpf.rules import registry as rules
from rpm_bpf.rules.registry import Severity

SCHEMA = "rpm-bpf/report/v1"
FORMATS = ("text", "json", "junit", "sarif")


class Report:
    def __init__(
        self,
        command: str,
        packages: list[PackageRef],
        findings: list[Finding],
        errors: list[InputError] | None = None,
        signatures: list[SignatureStatus] | None = None,
    ) -> None:
        self.command = command  # "scan" or "verify"
        self.packages = packages
        self.findings = findings
        self.errors: list[InputError] = errors if errors is not None else []
        self.signatures = signatures  # verify with trusted keys: one per package with BPF code; None: not checked

    def signature_of(self, nevra: str) -> SignatureStatus | None:
        return next((s for s in self.signatures or () if s.package.nevra == nevra), None)

    def _sorted(self) -> list[Finding]:
        return sorted(
            self.findings, key=lambda f: (f.package.nevra if f.package else "", f.path or "", -f.severity, f.rule)
        )

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity and f.counts)

    @property
    def exit_code(self) -> int:
        """2: an input could not be read; 1: errors found; 0: clean or warnings."""
        if self.errors:
            return 2
        return 1 if self.count(Severity.ERROR) else 0

    def summary(self) -> dict[str, int]:
        return {
            "packages": len(self.packages),
            "errors": self.count(Severity.ERROR),
            "warnings": self.count(Severity.WARNING),
            "info": self.count(Severity.INFO),
            "waived": sum(1 for f in self.findings if f.waived),
            "existing": sum(1 for f in self.findings if f.existing is not None and not f.waived),
            "input_errors": len(self.errors),
        }


# rpmlint's colours for the level and the message id: errors red, warnings yellow, info blue.
_COLORS = {Severity.ERROR: "\033[1;31m", Severity.WARNING: "\033[1;33m", Severity.INFO: "\033[1;34m"}
_RESET = "\033[0m"


def finding_line(f: Finding, label: bool = True, color: bool = False) -> str:
    """One finding as rpmlint writes a message line, terminal-safe.

    Shared by every human-readable output: text reports, JUnit, the DNF
    plugins' messages. Names from packages are escaped (see safetext), so
    the only escape sequences in a line are the colours asked for here.
    """
    parts = [f"{escape(f.package.label) if f.package else 'rpm-bpf'}: " if label else ""]
    level = f"{f.severity.letter}: {f.rule}"
    parts.append(f"{_COLORS[f.severity]}{level}{_RESET}" if color else level)
    if f.path:
        parts.append(" " + escape(f.path))
    if f.detail:
        parts.append(" " + escape(f.detail))
    if f.waived:
        until = f"; until {f.waiver_expires}" if f.waiver_expires else ""
        parts.append(f" [waived: {escape(f.waiver or '')}{until}]")
    elif f.existing is not None:
        parts.append(f" [existing: also in {escape(f.existing)}]")
    return "".join(parts)


def input_error_line(err: InputError) -> str:
    """How every front end reports an input that could not be read."""
    return f"rpm-bpf: error: {escape(err.input)}: {escape(err.message)}"


def render_text(report: Report, show_waived: bool = False, color: bool = False) -> str:
    lines = [finding_line(f, color=color) for f in report._sorted() if show_waived or not f.waived]
    s = report.summary()
    line = f"{s['packages']} packages checked; {s['errors']} errors, {s['warnings']} warnings, {s['info']} info"
    if s["waived"]:
        line += f", {s['waived']} waived"
    if s["existing"]:
        line += f", {s['existing']} existing in the baseline"
    if s["input_errors"]:
        line += f"; {s['input_errors']} inputs could not be read"
    lines.append(line + ".")
    if report.signatures is not None:
        verified = sum(1 for sig in report.signatures if sig.verdict == "verified")
        lines.append(f"{len(report.signatures)} package signatures checked; {verified} verified.")
    return "\n".join(lines) + "\n"


def finding_dict(f: Finding) -> dict[str, Any]:
    pkg = f.package
    return {
        "rule": f.rule,
        "severity": f.severity.label,
        "package": None
        if pkg is None
        else {
            "name": pkg.name,
            "epoch": pkg.epoch,
            "version": pkg.version,
            "release": pkg.release,
            "arch": pkg.arch,
            "nevra": pkg.nevra,
            "source": pkg.source,
        },
        "path": f.path,
        "message": f.message,
        "detail": f.detail,
        "waived": f.waived,
        "waiver_reason": f.waiver,
        "waiver_expires": f.waiver_expires.isoformat() if f.waiver_expires else None,
        "existing": f.existing,
        "related": list(f.related),
        "embedded": None if f.embedded is None else embedded_dict(f.embedded),
    }


def embedded_dict(e: Embedded) -> dict[str, Any]:
    return {
        "offset": e.offset,
        "size": e.size,
        "license": e.license,
        "signal": e.signal,
        "programs": [{"section": section, "name": name} for section, name in e.programs],
        "signature": None if e.signature is None else e.signature.to_dict(),
    }


def signature_dict(sig: SignatureStatus) -> dict[str, Any]:
    return {
        "package": sig.package.nevra,
        "verdict": sig.verdict,
        "key_id": sig.keyid or None,
        "file_signatures": {"checked": sig.files_checked, "failed": sig.files_failed},
    }


def render_json(report: Report, show_waived: bool = True) -> str:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": {"name": "rpm-bpf", "version": __version__},
        "command": report.command,
        "findings": [finding_dict(f) for f in report._sorted() if show_waived or not f.waived],
        "input_errors": [{"input": e.input, "message": e.message} for e in report.errors],
        "summary": report.summary(),
        "exit_code": report.exit_code,
    }
    if report.command == "verify":
        doc["signatures"] = None if report.signatures is None else [signature_dict(s) for s in report.signatures]
    import json

    return json.dumps(doc, indent=2) + "\n"


def render_junit(report: Report, show_waived: bool = False) -> str:
    """One test case per package (and per unreadable input); errors fail it."""
    import xml.etree.ElementTree as ET  # only this format needs it

    suites = ET.Element("testsuites", name=f"rpm-bpf {report.command}")
    suite = ET.SubElement(suites, "testsuite", name=f"rpm-bpf.{report.command}")
    by_pkg: dict[str, list[Finding]] = {}
    for f in report._sorted():
        if f.waived and not show_waived:
            continue
        by_pkg.setdefault(f.package.nevra if f.package else "", []).append(f)
    failures = errors = 0
    cases: list[tuple[str, str, list[Finding]]] = [
        (pkg.nevra, pkg.source, by_pkg.get(pkg.nevra, [])) for pkg in sorted(report.packages, key=lambda p: p.nevra)
    ]
    if by_pkg.get(""):  # findings of no package: unowned files, loaded programs no package ships
        cases.append(("(no package)", "", by_pkg[""]))
    for name, source, found in cases:
        case = ET.SubElement(
            suite, "testcase", classname=f"rpm-bpf.{report.command}", name=escape(name), file=escape(source)
        )
        sig = report.signature_of(name)
        if sig is not None:
            props = ET.SubElement(case, "properties")
            ET.SubElement(props, "property", name="signature", value=sig.verdict)
            ET.SubElement(props, "property", name="signature-key-id", value=sig.keyid or "")
        bad = [f for f in found if f.severity == Severity.ERROR and f.counts]
        if bad:
            failures += 1
            failure = ET.SubElement(case, "failure", type=bad[0].rule, message=f"{len(bad)} BPF policy error(s)")
            failure.text = "\n".join(finding_line(f, label=False) for f in bad)
        rest = [f for f in found if f not in bad]
        if rest:
            ET.SubElement(case, "system-out").text = "\n".join(finding_line(f, label=False) for f in rest)
    for err in report.errors:
        errors += 1
        case = ET.SubElement(suite, "testcase", classname=f"rpm-bpf.{report.command}", name=escape(err.input))
        ET.SubElement(
            case, "error", type="input-error", message=escape(err.message)
        ).text = f"{escape(err.input)}: {escape(err.message)}"
    total = len(cases) + len(report.errors)
    for element in (suites, suite):
        element.set("tests", str(total))
        element.set("failures", str(failures))
        element.set("errors", str(errors))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render_sarif(report: Report, show_waived: bool = True) -> str:
    registry = rules.registry()
    rule_ids = list(registry)
    driver_rules = [
        {
            "id": r.id,
            "name": "".join(part.capitalize() for part in r.id.split("-")),
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": r.description},
            "defaultConfiguration": {"level": _SARIF_LEVEL[r.severity]},
            "properties": {"scope": r.scope},
        }
        for r in registry.values()
    ]
    results = []
    for f in report._sorted():
        if f.waived and not show_waived:
            continue
        location: dict[str, Any] = {}
        if f.package is not None:
            location["physicalLocation"] = {"artifactLocation": {"uri": f.package.source or f.package.nevra}}
            location["logicalLocations"] = [
                {"fullyQualifiedName": f"{f.package.nevra}:{f.path}" if f.path else f.package.nevra, "kind": "resource"}
            ]
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": rule_ids.index(f.rule),
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f"{f.path}: {f.message}" if f.path else f.message},
            "locations": [location] if location else [],
            "properties": {"package": f.package.nevra if f.package else None, "path": f.path},
        }
        if f.embedded is not None:
            result["properties"]["embedded"] = embedded_dict(f.embedded)
        if f.waived:
            result["suppressions"] = [{"kind": "external", "justification": f.waiver}]
            if f.waiver_expires:
                result["properties"]["waiverExpires"] = f.waiver_expires.isoformat()
        if f.existing is not None:
            result["baselineState"] = "unchanged"
        results.append(result)
    notifications = [
        {
            "level": "error",
            "message": {"text": f"{e.input}: {e.message}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": e.input}}}],
        }
        for e in report.errors
    ]
    run_properties = {}
    if report.signatures is not None:
        run_properties["signatures"] = [signature_dict(sig) for sig in report.signatures]
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "rpm-bpf", "version": __version__, "rules": driver_rules}},
                "invocations": [
                    {"executionSuccessful": not report.errors, "toolExecutionNotifications": notifications}
                ],
                "results": results,
                **({"properties": run_properties} if run_properties else {}),
            }
        ],
    }
    import json

    return json.dumps(doc, indent=2) + "\n"


RENDERERS: dict[str, Callable[..., str]] = {
    "text": render_text,
    "json": render_json,
    "junit": render_junit,
    "sarif": render_sarif,
}
