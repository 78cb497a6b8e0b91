"""The rule registry: ids, severities and texts, loaded from ``data/rules.toml``.

Descriptions live in a data file, not in code, so that every front end
(rpmlint's ``-e``, SARIF rule metadata, ``rpm-bpf explain``) shows the one text.
"""

from __future__ import annotations

import enum
from collections import namedtuple
from functools import cache


class Severity(enum.IntEnum):
    """Ordered so that ``max()`` gives the worst severity."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def letter(self) -> str:
        return self.name[0]

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (expected error, warning or info)") from None


class Rule(namedtuple("Rule", ("id", "severity", "scope", "summary", "description"))):
    """One registry entry (an immutable record, see findings.py)."""

    __slots__ = ()
    id: str
    severity: Severity
    scope: str
    summary: str
    description: str


@cache
def registry() -> dict[str, Rule]:
    # Imported on first use only: most DNF transactions never need the registry.
    import tomllib

    from rpm_bpf import data_text

    text = data_text("rules.toml")
    rules = {}
    for rule_id, entry in tomllib.loads(text).items():
        rules[rule_id] = Rule(
            id=rule_id,
            severity=Severity.parse(entry["severity"]),
            scope=entry["scope"],
            summary=entry["summary"],
            description=" ".join(entry["description"].split()),
        )
    return rules


def get(rule_id: str) -> Rule:
    try:
        return registry()[rule_id]
    except KeyError:
        raise KeyError(f"rule {rule_id!r} is not in the registry") from None
