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
from typing import Any

from rpm_bpf import data_text
from rpm_bpf.errors import RpmBpfError
from rpm_bpf.findings import Finding
from rpm_bpf.rules import registry as rules
from rpm_bpf.rules.registry import Severity

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "a table",
    dt.date: "a date",
    dt.datetime: "a date-time",
    dt.time: "a time",
}


def _type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _expect(value: Any, kind: type, where: str, key: str, expected: str) -> Any:
    """``value`` if it is a ``kind``; otherwise the one message naming file, key and what was expected."""
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise PolicyError(f"{where}: {key}: expected {expected}, got {_type_name(value)}")
    return value


def _rule_ids(pattern: str, where: str, key: str) -> list[str]:
    """The registered rule ids ``pattern`` (an id or a glob) names; none is an error."""
    registry = rules.registry()
    if pattern in registry:
        return [pattern]
    matched = [rule_id for rule_id in registry if fnmatch.fnmatchcase(rule_id, pattern)]
    if not matched:
        what = "glob matches no rule id" if any(c in pattern for c in "*?[") else "unknown rule id"
        raise PolicyError(f"{where}: {key}: {what} {pattern!r} (see rpm-bpf rules)")
    return matched


def _read_policy_file(path: os.PathLike[str] | str) -> str:
    """A policy file's text: a regular file of bounded size, never a FIFO or a device."""
    from rpm_bpf.sources.rootfs import read_user_file

    name = os.fspath(path)
    try:
        data = read_user_file(path, MAX_POLICY_SIZE)
    except OSError as exc:
        raise PolicyError(f"{name}: cannot read policy file: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(
            f"{name}: cannot read policy file: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


SYSTEM_POLICY = "/etc/rpm-bpf/policy.toml"
MAX_POLICY_SIZE = 1 << 20  # a policy file is a few kB; /dev/zero is not one
DEFAULT_OWNER_PROVIDES = ("bpf-filesystem",)


class PolicyError(RpmBpfError, ValueError):
    """A policy file that cannot be used; the message names the file."""


class Waiver(
    namedtuple("Waiver", ("rule", "package", "path", "reason", "expires", "origin"), defaults=("*", "*", "", None, ""))
):
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
        if pkg is None:
            # A finding of no package (an unowned file, an unreadable package) is waived
            # only by a waiver that names no package.
            if self.package != "*":
                return False
        elif not (fnmatch.fnmatchcase(pkg.name, self.package) or fnmatch.fnmatchcase(pkg.nevra, self.package)):
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
        self.exempt_paths: tuple[str, ...] = ()  # globs: BPF ELF files there are not deployed programs
        # [trust]: files of trust anchors for verify (sources/trust.py reads them); later files add.
        self.trust_keys: tuple[str, ...] = ()
        self.trust_certs: tuple[str, ...] = ()
        # [admission]: more loaders for rpm-bpf admission (packages whose executables, executables); later add.
        self.admission_packages: tuple[str, ...] = ()
        self.admission_executables: tuple[str, ...] = ()
        self.sources: list[str] = []
        # Where each value in force came from ("severity.RULE", "bpfdir.owner-provides",
        # "exempt.paths"): what `rpm-bpf policy show` prints beside it.
        self.origins: dict[str, str] = {}

    @classmethod
    def load(
        cls, paths: Iterable[os.PathLike[str] | str] = (), system: os.PathLike[str] | str | None = SYSTEM_POLICY
    ) -> Policy:
        policy = cls()
        policy._merge(data_text("policy.toml"), "built-in default policy")
        candidates = ([system] if system is not None and os.path.lexists(system) else []) + list(paths)
        for path in candidates:
            policy._merge(_read_policy_file(path), os.fspath(path))
        return policy

    def _merge(self, text: str, origin: str) -> None:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{origin}: invalid TOML: {exc}") from None
        except RecursionError:
            raise PolicyError(f"{origin}: invalid TOML: arrays or tables nested too deeply") from None
        unknown = set(data) - {"severity", "waiver", "bpfdir", "exempt", "trust", "admission"}
        if unknown:
            raise PolicyError(f"{origin}: unknown section(s): {', '.join(sorted(unknown))}")
        severity = _expect(data.get("severity", {}), dict, origin, "[severity]", "a table of rule = level")
        # Globs first, exact ids last: within one file "bpf-object-no-btf" beats "bpf-object-*".
        for key in sorted(severity, key=lambda k: "*" not in k and "?" not in k and "[" not in k):
            level = _expect(severity[key], str, origin, f"[severity] {key}", "a string (error, warning, info or off)")
            try:
                parsed = None if level.strip().lower() == "off" else Severity.parse(level)
            except ValueError as exc:
                raise PolicyError(f"{origin}: [severity] {key}: {exc} or off") from None
            for rule_id in _rule_ids(key, origin, f"[severity] {key}"):
                self.severities[rule_id] = parsed
                self.origins[f"severity.{rule_id}"] = origin
        waivers = _expect(data.get("waiver", []), list, origin, "waiver", "an array of tables ([[waiver]])")
        for index, entry in enumerate(waivers, 1):
            self.waivers.append(self._waiver(entry, f"{origin}: waiver #{index}", origin))
        bpfdir = _expect(data.get("bpfdir", {}), dict, origin, "[bpfdir]", "a table")
        unknown = set(bpfdir) - {"owner-provides"}
        if unknown:
            raise PolicyError(f"{origin}: [bpfdir]: unknown key(s): {', '.join(sorted(unknown))}")
        owners = bpfdir.get("owner-provides")
        if owners is not None:
            if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
                raise PolicyError(
                    f"{origin}: [bpfdir] owner-provides: expected a list of strings, got {_type_name(owners)}"
                )
            self.owner_provides = tuple(owners)
            self.origins["bpfdir.owner-provides"] = origin
        exempt = _expect(data.get("exempt", {}), dict, origin, "[exempt]", "a table")
        unknown = set(exempt) - {"paths"}
        if unknown:
            raise PolicyError(f"{origin}: [exempt]: unknown key(s): {', '.join(sorted(unknown))}")
        paths = exempt.get("paths")
        if paths is not None:
            if not isinstance(paths, list) or not all(isinstance(p, str) and p.startswith("/") for p in paths):
                raise PolicyError(
                    f"{origin}: [exempt] paths: expected a list of absolute path globs, "
                    f"got {_type_name(paths) if not isinstance(paths, list) else 'other items'}"
                )
            self.exempt_paths = tuple(paths)  # a later file replaces the list: it can also empty it
            self.origins["exempt.paths"] = origin
        self._merge_trust(_expect(data.get("trust", {}), dict, origin, "[trust]", "a table"), origin)
        self._merge_admission(_expect(data.get("admission", {}), dict, origin, "[admission]", "a table"), origin)
        self.sources.append(origin)

    def _merge_admission(self, admission: dict[str, Any], origin: str) -> None:
        unknown = set(admission) - {"packages", "executables"}
        if unknown:
            raise PolicyError(f"{origin}: [admission]: unknown key(s): {', '.join(sorted(unknown))}")
        for key, attr, absolute in (
            ("packages", "admission_packages", False),
            ("executables", "admission_executables", True),
        ):
            items = admission.get(key)
            if items is None:
                continue
            if not isinstance(items, list) or not all(
                isinstance(i, str) and i and (i.startswith("/") or not absolute) for i in items
            ):
                what = "absolute file paths" if absolute else "package names"
                raise PolicyError(
                    f"{origin}: [admission] {key}: expected a list of {what}, "
                    f"got {_type_name(items) if not isinstance(items, list) else 'other items'}"
                )
            setattr(self, attr, tuple(dict.fromkeys([*getattr(self, attr), *items])))
            self.origins[f"admission.{key}"] = origin

    def _merge_trust(self, trust: dict[str, Any], origin: str) -> None:
        unknown = set(trust) - {"keys", "certificates"}
        if unknown:
            raise PolicyError(f"{origin}: [trust]: unknown key(s): {', '.join(sorted(unknown))}")
        for key, attr in (("keys", "trust_keys"), ("certificates", "trust_certs")):
            files = trust.get(key)
            if files is None:
                continue
            if not isinstance(files, list) or not all(isinstance(f, str) and f.startswith("/") for f in files):
                raise PolicyError(
                    f"{origin}: [trust] {key}: expected a list of absolute file paths, "
                    f"got {_type_name(files) if not isinstance(files, list) else 'other items'}"
                )
            setattr(self, attr, tuple(dict.fromkeys([*getattr(self, attr), *files])))
            self.origins[f"trust.{key}"] = origin

    def _waiver(self, entry: object, where: str, origin: str) -> Waiver:
        if not isinstance(entry, dict):
            raise PolicyError(f"{where}: expected a table, got {_type_name(entry)}")
        unknown = set(entry) - {"rule", "package", "path", "reason", "expires"}
        if unknown:
            raise PolicyError(f"{where}: unknown key(s): {', '.join(sorted(unknown))}")
        if "rule" not in entry or "reason" not in entry:
            raise PolicyError(f"{where}: 'rule' and 'reason' are required")
        texts = {}
        for key in ("rule", "package", "path", "reason"):
            if key in entry:
                texts[key] = _expect(entry[key], str, where, key, "a string")
        _rule_ids(texts["rule"], where, "rule")
        if not texts["reason"].strip():
            raise PolicyError(f"{where}: reason: must say why (empty)")
        expires = entry.get("expires")
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                raise PolicyError(f"{where}: expires must be a date (YYYY-MM-DD)") from None
        elif isinstance(expires, dt.datetime):
            expires = expires.date()
        elif expires is not None and not isinstance(expires, dt.date):
            raise PolicyError(f"{where}: expires must be a date (YYYY-MM-DD), got {_type_name(expires)}")
        return Waiver(
            rule=texts["rule"],
            package=texts.get("package", "*"),
            path=texts.get("path", "*"),
            reason=texts["reason"],
            expires=expires,
            origin=origin,
        )

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
                    finding = finding.with_waiver(waiver.reason, waiver.expires)
                    break
            result.append(finding)
        return result


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, and every control character is escaped)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def render_effective(policy: Policy) -> str:
    """The merged policy as TOML, each value with the file it came from (``rpm-bpf policy show``).

    The output is itself a valid policy file (every rule's severity written out).
    """
    builtin = "built-in rule registry"
    lines = ["# rpm-bpf effective policy, merged in this order:"]
    lines += [f"#   {i}. {source}" for i, source in enumerate(policy.sources, 1)]
    lines += ["", "[severity]"]
    for rule_id in rules.registry():
        level = policy.severity(rule_id)
        text = "off" if level is None else level.label
        lines.append(f"{rule_id} = {_toml_string(text)}  # {policy.origins.get(f'severity.{rule_id}', builtin)}")
    lines += [
        "",
        "[bpfdir]",
        f"owner-provides = [{', '.join(map(_toml_string, policy.owner_provides))}]"
        f"  # {policy.origins.get('bpfdir.owner-provides', 'built-in default')}",
        "",
        "[exempt]",
        f"# {policy.origins.get('exempt.paths', 'built-in default')}",
        "paths = [",
    ]
    lines += [f"    {_toml_string(path)}," for path in policy.exempt_paths]
    lines.append("]")
    lines += ["", "[trust]"]
    for key, files in (("keys", policy.trust_keys), ("certificates", policy.trust_certs)):
        lines.append(f"{key} = [{', '.join(map(_toml_string, files))}]  # {policy.origins.get(f'trust.{key}', 'none')}")
    lines += ["", "[admission]"]
    for key, items in (("packages", policy.admission_packages), ("executables", policy.admission_executables)):
        lines.append(
            f"{key} = [{', '.join(map(_toml_string, items))}]  # {policy.origins.get(f'admission.{key}', 'none')}"
        )
    for waiver in policy.waivers:
        lines += [
            "",
            f"[[waiver]]  # {waiver.origin}",
            f"rule = {_toml_string(waiver.rule)}",
            f"package = {_toml_string(waiver.package)}",
            f"path = {_toml_string(waiver.path)}",
            f"reason = {_toml_string(waiver.reason)}",
        ]
        if waiver.expires is not None:
            lines.append(f"expires = {waiver.expires.isoformat()}")
    return "\n".join(lines) + "\n"
