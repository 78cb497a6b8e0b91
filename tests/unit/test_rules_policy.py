"""The rule registry and the policy layer (severities, waivers, expiry)."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest

from rpm_bpf.findings import Finding
from rpm_bpf.model import PackageRef
from rpm_bpf.rules import registry as rules
from rpm_bpf.rules.policy import Policy, PolicyError, render_effective
from rpm_bpf.rules.registry import Severity

REQUIRED = {
    "bpf-object-outside-bpfdir": "error",
    "bpf-name-conflict": "error",
    "bpf-object-invalid": "error",
    "bpf-object-writable": "error",
    "bpf-object-not-root-owned": "error",
    "bpf-object-config": "error",
    "bpf-endianness-mismatch": "error",
    "bpf-object-executable": "warning",
    "bpf-object-no-license": "warning",
    "bpf-object-no-btf": "warning",
    "bpf-noarch-single-endian": "warning",
    "bpfdir-non-bpf-file": "warning",
    "bpfdir-unowned": "warning",
    "bpf-object-embedded": "info",
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
    policy = _policy(
        tmp_path,
        """
[[waiver]]
rule = "bpf-object-outside-bpfdir"
package = "legacy-*"
path = "/usr/share/legacy/*"
reason = "migration tracked in bug 42"
""",
    )
    waived, other_path, other_rule = policy.apply(
        [_finding(), _finding(path="/opt/x.o"), _finding("bpf-object-config")]
    )
    assert waived.waived and waived.waiver == "migration tracked in bug 42"
    assert not other_path.waived and not other_rule.waived


def test_expired_waiver_no_longer_applies(tmp_path):
    policy = _policy(
        tmp_path,
        """
[[waiver]]
rule = "bpf-object-outside-bpfdir"
reason = "temporary"
expires = 2026-01-31
""",
    )
    (before,) = policy.apply([_finding()], today=dt.date(2026, 1, 31))
    (after,) = policy.apply([_finding()], today=dt.date(2026, 2, 1))
    assert before.waived
    assert not after.waived and "waiver expired on 2026-01-31" in after.detail


@pytest.mark.parametrize(
    "text,message",
    [
        ("[severity\n", "invalid TOML"),
        ('[severity]\nno-such-rule = "error"\n', "unknown rule id 'no-such-rule'"),
        ('[severity]\nbpf-object-config = "fatal"\n', "unknown severity"),
        ('[[waiver]]\nrule = "bpf-object-config"\n', "'rule' and 'reason' are required"),
        ('[[waiver]]\nrule = "bpf-object-config"\nreason = "x"\nexpires = "soon"\n', "expires must be a date"),
        ("[whatever]\n", "unknown section"),
    ],
)
def test_bad_policy_files_name_the_file(tmp_path, text, message):
    with pytest.raises(PolicyError, match=re.escape(message)) as exc:
        _policy(tmp_path, text)
    assert str(tmp_path / "policy.toml") in str(exc.value)


def test_unreadable_policy_file(tmp_path):
    with pytest.raises(PolicyError, match="cannot read policy file"):
        Policy.load([tmp_path / "missing.toml"], system=None)


# --- hostile policy files: the schema is checked when loading -----------------


@pytest.mark.parametrize(
    "text,message",
    [
        ("severity = 1\n", "severity]: expected a table of rule = level, got an integer"),
        ("[severity]\nbpf-object-no-btf = 1\n", "[severity] bpf-object-no-btf: expected a string"),
        ("[severity]\nbpf-object-no-btf = true\n", "[severity] bpf-object-no-btf: expected a string"),
        ('bpfdir = "x"\n', "[bpfdir]: expected a table, got a string"),
        ('[bpfdir]\nowner-provides = "bpf-filesystem"\n', "owner-provides: expected a list of strings"),
        ('[bpfdir]\nowners = ["x"]\n', "[bpfdir]: unknown key(s): owners"),
        ("waiver = 5\n", "waiver: expected an array of tables ([[waiver]]), got an integer"),
        ("waiver = [5]\n", "waiver #1: expected a table, got an integer"),
        ('[[waiver]]\nrule = 5\nreason = "x"\n', "waiver #1: rule: expected a string, got an integer"),
        (
            '[[waiver]]\nrule = "bpf-object-config"\npackage = ["a"]\nreason = "x"\n',
            "waiver #1: package: expected a string, got an array",
        ),
        ('[[waiver]]\nrule = "bpf-object-config"\npath = 3\nreason = "x"\n', "waiver #1: path: expected a string"),
        (
            '[[waiver]]\nrule = "bpf-object-config"\nreason = 7\n',
            "waiver #1: reason: expected a string, got an integer",
        ),
        ('[[waiver]]\nrule = "bpf-object-config"\nreason = " "\n', "waiver #1: reason: must say why"),
        ('[[waiver]]\nrule = "bpf-object-config"\nreason = "x"\nexpires = 3\n', "expires must be a date"),
        ('[severity]\n"bpf-nothing-*" = "off"\n', "glob matches no rule id 'bpf-nothing-*'"),
        ('[[waiver]]\nrule = "bpf-nothing-*"\nreason = "x"\n', "waiver #1: rule: glob matches no rule id"),
        ("x = " + "[" * 2000 + "]" * 2000 + "\n", "nested too deeply"),
    ],
)
def test_wrong_types_are_one_message_naming_file_and_key(tmp_path, text, message):
    with pytest.raises(PolicyError) as exc:
        _policy(tmp_path, text)
    assert str(exc.value).startswith(str(tmp_path / "policy.toml") + ": ")
    assert message in str(exc.value), str(exc.value)
    assert "\n" not in str(exc.value)


def test_severity_globs_take_effect_and_exact_ids_win(tmp_path):
    policy = _policy(tmp_path, '[severity]\nbpf-object-writable = "warning"\n"bpf-object-*" = "off"\n')
    findings = [_finding("bpf-object-no-btf"), _finding("bpf-object-writable"), _finding("bpf-name-conflict")]
    out = {f.rule: f.severity for f in policy.apply(findings)}
    assert out == {"bpf-object-writable": Severity.WARNING, "bpf-name-conflict": Severity.ERROR}


@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_special_policy_files_are_refused_without_blocking(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "policy.toml"
        os.mkfifo(path)
        expected = "is a FIFO, not a regular file"
    elif kind == "device":
        path, expected = Path("/dev/zero"), "is a character device, not a regular file"
    else:
        path = tmp_path / "policy.toml"
        path.write_text("# padding\n" * 200_000)
        expected = "larger than 1048576 bytes"
    with pytest.raises(PolicyError, match=re.escape(f"{path}: cannot read policy file: {expected}")):
        Policy.load([path], system=None)


def test_waiver_naming_a_package_does_not_waive_findings_of_no_package(tmp_path):
    """A waiver for one vendor's package must not silence an unreadable package or an unowned file."""
    policy = _policy(tmp_path, '[[waiver]]\nrule = "bpf-*"\npackage = "vendor-agent"\nreason = "vendor"\n')
    unreadable = Finding.of("bpf-package-unreadable", None, "/var/cache/x.rpm", "no header digest")
    unowned = Finding.of("bpf-object-unowned", None, "/usr/lib64/bpf/x.o")
    vendor = Finding.of("bpf-object-no-btf", PackageRef("vendor-agent", None, "1", "1", "x86_64"), "/x.o")
    out = policy.apply([unreadable, unowned, vendor])
    assert [f.waived for f in out] == [False, False, True]
    anywhere = _policy(tmp_path, '[[waiver]]\nrule = "bpf-object-unowned"\nreason = "lab machine"\n')
    assert anywhere.apply([unowned])[0].waived


def test_admission_section_adds_up_and_rejects_bad_values(tmp_path):
    first, second, bad = tmp_path / "a.toml", tmp_path / "b.toml", tmp_path / "bad.toml"
    first.write_text('[admission]\npackages = ["bpfman"]\nexecutables = ["/usr/local/sbin/agent"]\n')
    second.write_text('[admission]\npackages = ["bpfman", "xdp-tools"]\n')
    policy = Policy.load([first, second], system=None)
    assert policy.admission_packages == ("bpfman", "xdp-tools")
    assert policy.admission_executables == ("/usr/local/sbin/agent",)
    assert "[admission]" in render_effective(policy) and "xdp-tools" in render_effective(policy)
    for text in ('[admission]\nexecutables = ["relative/path"]\n', '[admission]\npackages = "one"\n',
                 '[admission]\nusers = []\n'):  # fmt: skip
        bad.write_text(text)
        with pytest.raises(PolicyError, match=r"\[admission\]"):
            Policy.load([bad], system=None)
