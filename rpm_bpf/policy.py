"""Policy: severity changes and waivers, read from TOML files.

Files are layered: the vendor default shipped with rpm-bpf, then the system
file (``/etc/rpm-bpf/policy.toml``), then any given with ``--policy``.  Later
files change severities; waivers from all files add up.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
from collections import namedtuple
from collections.abc import Iterable

from . import data_text, rules
from .findings import Finding
from .rules import Severity

SYSTEM_POLICY = "/etc/rpm-bpf/policy.toml"
DEFAULT_OWNER_PROVIDES = ("bpf-filesystem",)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file."""


class Waiver(namedtuple("Waiver", ("rule", "package", "path", "reason", "expires", "origin"),
                        defaults=("*", "*", "", None, ""))):
    """``rule``, ``package`` (name or NEVRA) and ``path`` are globs; ``origin``
    is the policy file it came from."""

    __slots__ = ()
    rule: str
    package: str
    path: str
    reason: str
    expires: dt.date | None
    origin: str

    def matches(self, finding: Finding) -> bool:
        if not fnmatch.fnmatchcase(finding.rule, self.rule):
            return False
        pkg = finding.package
        if pkg is not None and not (fnmatch.fnmatchcase(pkg.name, self.package)
                                    or fnmatch.fnmatchcase(pkg.nevra, self.package)):
            return False
        return fnmatch.fnmatchcase(finding.path or "", self.path)

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and today > self.expires


class Policy:
    """Severity changes and waivers in force, and where they came from."""

    def __init__(self) -> None:
        self.severities: dict[str, Severity | None] = {}  # None: rule off
        self.waivers: list[Waiver] = []
        self.owner_provides: tuple[str, ...] = DEFAULT_OWNER_PROVIDES
        self.sources: list[str] = []

    @classmethod
    def load(cls, paths: Iterable[os.PathLike | str] = (), system: os.PathLike | str | None = SYSTEM_POLICY
             ) -> "Policy":
        policy = cls()
        policy._merge(data_text("policy.toml"), "built-in default policy")
        candidates = ([system] if system is not None and os.path.exists(system) else []) + list(paths)
        for path in candidates:
            try:
                with open(path, encoding="utf-8") as stream:
                    text = stream.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise PolicyError(f"{path}: cannot read policy file: {getattr(exc, 'strerror', None) or exc}") from None
            policy._merge(text, str(path))
        return policy

    def _merge(self, text: str, origin: str) -> None:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{origin}: invalid TOML: {exc}") from None
        unknown = set(data) - {"severity", "waiver", "bpfdir"}
        if unknown:
            raise PolicyError(f"{origin}: unknown section(s): {', '.join(sorted(unknown))}")
        for rule_id, level in data.get("severity", {}).items():
            self._known_rule(rule_id, origin)
            if not isinstance(level, str):
                raise PolicyError(f"{origin}: severity of {rule_id} must be a string")
            try:
                self.severities[rule_id] = None if level == "off" else Severity.parse(level)
            except ValueError as exc:
                raise PolicyError(f"{origin}: {rule_id}: {exc} or off") from None
        for index, entry in enumerate(data.get("waiver", []), 1):
            self.waivers.append(self._waiver(entry, f"{origin}: waiver #{index}", origin))
        owners = data.get("bpfdir", {}).get("owner-provides")
        if owners is not None:
            if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
                raise PolicyError(f"{origin}: bpfdir.owner-provides must be a list of strings")
            self.owner_provides = tuple(owners)
        self.sources.append(origin)

    @staticmethod
    def _known_rule(rule_id: str, origin: str) -> None:
        if "*" not in rule_id and rule_id not in rules.registry():
            raise PolicyError(f"{origin}: unknown rule id {rule_id!r}")

    def _waiver(self, entry: object, where: str, origin: str) -> Waiver:
        if not isinstance(entry, dict):
            raise PolicyError(f"{where}: must be a table")
        unknown = set(entry) - {"rule", "package", "path", "reason", "expires"}
        if unknown:
            raise PolicyError(f"{where}: unknown key(s): {', '.join(sorted(unknown))}")
        if "rule" not in entry or "reason" not in entry:
            raise PolicyError(f"{where}: 'rule' and 'reason' are required")
        self._known_rule(entry["rule"], where)
        expires = entry.get("expires")
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                raise PolicyError(f"{where}: expires must be a date (YYYY-MM-DD)") from None
        elif isinstance(expires, dt.datetime):
            expires = expires.date()
        elif expires is not None and not isinstance(expires, dt.date):
            raise PolicyError(f"{where}: expires must be a date (YYYY-MM-DD)")
        return Waiver(rule=entry["rule"], package=entry.get("package", "*"), path=entry.get("path", "*"),
                      reason=entry["reason"], expires=expires, origin=origin)

    def severity(self, rule_id: str) -> Severity | None:
        """The severity in force for a rule; None when the policy turns it off."""
        if rule_id in self.severities:
            return self.severities[rule_id]
        return rules.get(rule_id).severity

    def apply(self, findings: Iterable[Finding], today: dt.date | None = None) -> list[Finding]:
        """Findings as the policy has them: re-graded, dropped when off, waived."""
        today = today or dt.date.today()
        result = []
        for finding in findings:
            severity = self.severity(finding.rule)
            if severity is None:
                continue
            if severity != finding.severity:
                finding = finding.with_severity(severity)
            for waiver in self.waivers:
                if waiver.matches(finding):
                    if waiver.expired(today):
                        finding = finding.with_detail_note(f"waiver expired on {waiver.expires}")
                        continue
                    finding = finding.with_waiver(waiver.reason)
                    break
            result.append(finding)
        return result
