"""Findings: what every rule produces, whatever front end shows it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from . import rules
from .rules import Severity


@dataclass(frozen=True)
class PackageRef:
    """Enough of a package to name it in a report."""

    name: str
    epoch: int | None
    version: str
    release: str
    arch: str
    source: str = ""  # the RPM file or "rpmdb"

    @property
    def nevra(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch else ""
        return f"{self.name}-{epoch}{self.version}-{self.release}.{self.arch}"

    @property
    def label(self) -> str:
        """rpmlint's way of naming a package in a message line."""
        return f"{self.name}.{self.arch}"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    package: PackageRef | None
    path: str | None
    detail: str = ""
    waiver: str | None = None  # reason of the waiver that silences it
    related: tuple[str, ...] = field(default=())  # other packages involved (conflicts)

    @classmethod
    def of(cls, rule_id: str, package: PackageRef | None, path: str | None, detail: str = "",
           related: tuple[str, ...] = ()) -> "Finding":
        return cls(rule_id, rules.get(rule_id).severity, package, path, detail, None, related)

    @property
    def waived(self) -> bool:
        return self.waiver is not None

    @property
    def message(self) -> str:
        """The human sentence: the rule's summary, then what is specific."""
        summary = rules.get(self.rule).summary
        return f"{summary}: {self.detail}" if self.detail else summary

    def with_severity(self, severity: Severity) -> "Finding":
        return replace(self, severity=severity)

    def with_detail_note(self, note: str) -> "Finding":
        return replace(self, detail=f"{self.detail} ({note})" if self.detail else f"({note})")

    def with_waiver(self, reason: str) -> "Finding":
        return replace(self, waiver=reason)


@dataclass(frozen=True)
class InputError:
    """An input that could not be read at all (exit code 2)."""

    input: str
    message: str
