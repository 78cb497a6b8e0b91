"""The rule registry and the policy layer (severities, waivers, expiry)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from rpm_bpf import rules
from rpm_bpf.findings import Finding, PackageRef
from rpm_bpf.policy import Policy, PolicyError
from rpm_bpf.rules import Severity

REQUIRED = {
    "bpf-object-outside-bpfdir": "error", "bpf-name-conflict": "error", "bpf-object-invalid": "error",
    "bpf-object-writable": "error", "bpf-object-not-root-owned": "error", "bpf-object-config": "error",
    "bpf-endianness-mismatch": "error", "bpf-object-executable": "warning", "bpf-object-no-license": "warning",
    "bpf-object-no-btf": "warning", "bpf-noarch-single-endian": "warning", "bpfdir-non-bpf-file": "warning",
    "bpfdir-unowned": "warning", "bpf-object-embedded": "info",
}
ENGINE = Path(__file__).resolve().parents[2] / "rpm_bpf"


def test_registry_has_the_public_rule_ids_with_their_severities():
    registry = rules.registry()
    for rule_id, level in REQUIRED.items():
        assert registry[rule_id].severity.label == level, rule_id
        assert len(registry[rule_id].description) > 80, rule_id


def test_every_rule_the_engine_emits_is_registered():
    used = set()
    for source in ENGINE.rglob("*.py"):
        used |= set(re.findall(r"""(?:Finding\.of\(|self\.add\()\s*["']([a-z0-9-]+)["']""", source.read_text()))
    assert used, "the pattern found no rule ids: the test would prove nothing"
    assert used - set(rules.registry()) == set()


def test_unknown_rule_is_a_clear_error():
    with pytest.raises(KeyError, match="no-such-rule"):
        rules.get("no-such-rule")


PKG = PackageRef("legacy-tracer", None, "1.0", "1", "x86_64", "legacy.rpm")


def _finding(rule="bpf-object-outside-bpfdir", path="/usr/share/legacy/x.o"):
    return Finding.of(rule, PKG, path)


def _policy(tmp_path, text: str) -> Policy:
    f = tmp_path / "policy.toml"
    f.write_text(text)
    return Policy.load([f], system=None)


def test_severity_change_and_off(tmp_path):
    policy = _policy(tmp_path, '[severity]\nbpf-object-outside-bpfdir = "warning"\nbpf-object-no-btf = "off"\n')
    out = policy.apply([_finding(), _finding("bpf-object-no-btf")])
    assert [(f.rule, f.severity) for f in out] == [("bpf-object-outside-bpfdir", Severity.WARNING)]


def test_waiver_matches_package_path_and_rule(tmp_path):
    policy = _policy(tmp_path, """
[[waiver]]
rule = "bpf-object-outside-bpfdir"
package = "legacy-*"
path = "/usr/share/legacy/*"
reason = "migration tracked in bug 42"
""")
    waived, other_path, other_rule = policy.apply(
        [_finding(), _finding(path="/opt/x.o"), _finding("bpf-object-config")])
    assert waived.waived and waived.waiver == "migration tracked in bug 42"
    assert not other_path.waived and not other_rule.waived


def test_expired_waiver_no_longer_applies(tmp_path):
    policy = _policy(tmp_path, """
[[waiver]]
rule = "bpf-object-outside-bpfdir"
reason = "temporary"
expires = 2026-01-31
""")
    (before,) = policy.apply([_finding()], today=dt.date(2026, 1, 31))
    (after,) = policy.apply([_finding()], today=dt.date(2026, 2, 1))
    assert before.waived
    assert not after.waived and "waiver expired on 2026-01-31" in after.detail


@pytest.mark.parametrize("text,message", [
    ("[severity\n", "invalid TOML"),
    ('[severity]\nno-such-rule = "error"\n', "unknown rule id 'no-such-rule'"),
    ('[severity]\nbpf-object-config = "fatal"\n', "unknown severity"),
    ('[[waiver]]\nrule = "bpf-object-config"\n', "'rule' and 'reason' are required"),
    ('[[waiver]]\nrule = "bpf-object-config"\nreason = "x"\nexpires = "soon"\n', "expires must be a date"),
    ('[whatever]\n', "unknown section"),
])
def test_bad_policy_files_name_the_file(tmp_path, text, message):
    with pytest.raises(PolicyError, match=re.escape(message)) as exc:
        _policy(tmp_path, text)
    assert str(tmp_path / "policy.toml") in str(exc.value)


def test_unreadable_policy_file(tmp_path):
    with pytest.raises(PolicyError, match="cannot read policy file"):
        Policy.load([tmp_path / "missing.toml"], system=None)
