"""Findings: what every rule produces, whatever front end shows it."""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from typing import Any

import rpm_bpf.rules.registry as rules
from rpm_bpf.model import PackageRef
from rpm_bpf.rules.registry import Severity

# Records are named tuples, not dataclasses: immutable and hashable all the
# same, and importing dataclasses would cost a short command (rpm-bpf verify,
# the DNF plugin) a fifth of its run time.


class Embedded(namedtuple("Embedded", ("offset", "size", "programs", "license", "signal", "signature"))):
    """A BPF object found inside another ELF file (the finding's path): where, what, and why it was looked for.

    ``programs``: (section, name) pairs; ``signal``: what had the file
    searched (libbpf-dynamic, libbpf-static, go, rust, payload, deep);
    ``signature``: a signed light skeleton's signature (``lskelsig.SkeletonSignature``), else None.
    """

    __slots__ = ()
    offset: int
    size: int
    programs: tuple[tuple[str, str], ...]
    license: str | None
    signal: str
    signature: Any  # rpm_bpf.bpf.lskelsig.SkeletonSignature | None (a higher layer: not imported here)


Embedded.__new__.__defaults__ = (None,)


class Finding(
    namedtuple(
        "Finding",
        (
            "rule",
            "severity",
            "package",
            "path",
            "detail",
            "waiver",
            "related",
            "embedded",
            "waiver_expires",
            "existing",
        ),
        defaults=("", None, (), None, None, None),
    )
):
    """What a rule found. ``waiver`` is the reason of the waiver that silences
    it (None: not waived) and ``waiver_expires`` its end date; ``related`` names
    the other packages involved (conflicts); ``embedded`` describes the object of
    a ``bpf-object-embedded`` finding; ``existing`` names the baseline package
    that already had this finding (a gate does not fail on it)."""

    __slots__ = ()
    rule: str
    severity: Severity
    package: PackageRef | None
    path: str | None
    detail: str
    waiver: str | None
    related: tuple[str, ...]
    embedded: Embedded | None
    waiver_expires: dt.date | None
    existing: str | None

    @classmethod
    def of(
        cls,
        rule_id: str,
        package: PackageRef | None,
        path: str | None,
        detail: str = "",
        related: tuple[str, ...] = (),
        embedded: Embedded | None = None,
    ) -> Finding:
        return cls(rule_id, rules.get(rule_id).severity, package, path, detail, None, related, embedded)

    @property
    def waived(self) -> bool:
        return self.waiver is not None

    @property
    def message(self) -> str:
        """The human sentence: the rule's summary, then what is specific."""
        summary = rules.get(self.rule).summary
        return f"{summary}: {self.detail}" if self.detail else summary

    def with_severity(self, severity: Severity) -> Finding:
        return self._replace(severity=severity)

    def with_detail_note(self, note: str) -> Finding:
        return self._replace(detail=f"{self.detail} ({note})" if self.detail else f"({note})")

    def with_waiver(self, reason: str, expires: dt.date | None = None) -> Finding:
        return self._replace(waiver=reason, waiver_expires=expires)

    @property
    def counts(self) -> bool:
        """Whether it counts for the exit status: not waived, not already in the baseline."""
        return self.waiver is None and self.existing is None


class InputError(namedtuple("InputError", ("input", "message"))):
    """An input that could not be read at all (exit code 2)."""

    __slots__ = ()
    input: str
    message: str


class SignatureStatus(namedtuple("SignatureStatus", ("package", "verdict", "keyid", "files_checked", "files_failed"))):
    """One installed package's signature check, for the reports: ``verdict`` is "verified", "unsigned",
    "untrusted" or "invalid"; ``keyid`` the signing key's id ("" when none); ``files_checked`` and
    ``files_failed`` count its BPF objects' fs-verity/IMA signatures."""

    __slots__ = ()
    package: PackageRef
    verdict: str
    keyid: str
    files_checked: int
    files_failed: int
