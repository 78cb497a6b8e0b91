"""report/transaction.py: the answer a host (the DNF plugins) acts on, for each mode and each kind of finding."""

from __future__ import annotations

import json

import jsonschema
import pytest

from rpm_bpf import data_text
from rpm_bpf.findings import Finding, InputError
from rpm_bpf.flows.transaction import TransactionResult
from rpm_bpf.model import PackageRef
from rpm_bpf.report.formats import finding_line, input_error_line
from rpm_bpf.report.transaction import MSG_REFUSED, MSG_WARNING, RESPONSE_SCHEMA, response

INCOMING = PackageRef("xdp-clash", None, "1.0", "1", "x86_64", "/var/cache/dnf/xdp-clash-1.0-1.x86_64.rpm")
CLASH = Finding.of(
    "bpf-name-conflict",
    INCOMING,
    "/usr/lib64/bpf/xdp-good/counter.bpf.o",
    "xdp-good/counter.bpf.o is also shipped by xdp-good-1.0-1.x86_64",
    related=("xdp-good-1.0-1.x86_64",),
)
NO_BTF = Finding.of("bpf-object-no-btf", INCOMING, "/usr/lib64/bpf/xdp-good/counter.bpf.o")
EMBEDDED = Finding.of("bpf-object-embedded", INCOMING, "/usr/bin/loader", "at offset 1")
INSTALLED_BROKEN = InputError("rpmdb: broken-1-1.x86_64", "header cannot be read")
SCHEMA = json.loads(data_text("transaction-check.schema.json"))


def result(*findings: Finding, errors=(), names=("xdp-clash",)) -> TransactionResult:
    out = TransactionResult()
    out.findings = list(findings)
    out.errors = list(errors)
    out.bpf_names = set(names)
    return out


def test_an_error_refuses_under_enforce():
    answer = response(result(CLASH, NO_BTF), "enforce")
    assert answer["schema"] == RESPONSE_SCHEMA == "rpm-bpf/transaction-check/v1"
    assert (answer["verdict"], answer["mode"]) == ("refuse", "enforce")
    assert answer["message"] == f"{MSG_REFUSED}:\n  {finding_line(CLASH)}"
    assert answer["notes"] == [finding_line(NO_BTF)]
    jsonschema.validate(answer, SCHEMA)


def test_an_error_only_warns_under_warn():
    answer = response(result(CLASH), "warn")
    assert answer["verdict"] == "warn"
    assert answer["message"].startswith(MSG_WARNING + ":\n") and finding_line(CLASH) in answer["message"]
    jsonschema.validate(answer, SCHEMA)


@pytest.mark.parametrize("mode", ["enforce", "warn", "off"])
def test_warnings_and_info_are_accepted_and_shown(mode):
    answer = response(result(NO_BTF, EMBEDDED), mode)
    assert answer["verdict"] == "accept" and answer["message"] == ""
    assert answer["notes"] == [finding_line(NO_BTF), finding_line(EMBEDDED)]


def test_mode_off_accepts_even_errors():
    answer = response(result(CLASH), "off")
    assert answer["verdict"] == "accept" and answer["message"] == ""
    assert [f["rule"] for f in answer["findings"]] == ["bpf-name-conflict"]  # still reported
    jsonschema.validate(answer, SCHEMA)


def test_a_waived_error_does_not_refuse_and_is_not_a_note():
    waived = CLASH.with_waiver("transition, bug 7")
    answer = response(result(waived), "enforce")
    assert answer["verdict"] == "accept" and answer["notes"] == []
    (finding,) = answer["findings"]
    assert finding["waived"] and finding["waiver_reason"] == "transition, bug 7"


def test_fields_for_the_host():
    answer = response(result(CLASH, errors=[INSTALLED_BROKEN], names=("zeta", "alpha")), "enforce")
    assert answer["bpf_packages"] == ["alpha", "zeta"]
    assert answer["input_errors"] == [{"input": INSTALLED_BROKEN.input, "message": INSTALLED_BROKEN.message}]
    assert answer["notes"] == [input_error_line(INSTALLED_BROKEN)]
    (finding,) = answer["findings"]
    assert finding["related"] == ["xdp-good-1.0-1.x86_64"] and finding["package"]["name"] == "xdp-clash"
    jsonschema.validate(answer, SCHEMA)


def test_nothing_bpf_related():
    answer = response(TransactionResult(), "enforce")
    assert (answer["verdict"], answer["findings"], answer["bpf_packages"], answer["notes"]) == ("accept", [], [], [])
    jsonschema.validate(answer, SCHEMA)


def test_refused_message_lists_every_refusing_finding_escaped():
    hostile = CLASH._replace(path="/usr/lib64/bpf/\x1b[2J.o")
    answer = response(result(CLASH, hostile), "enforce")
    lines = answer["message"].splitlines()
    assert lines[0] == MSG_REFUSED + ":" and len(lines) == 3
    assert all(line.startswith("  xdp-clash.x86_64: E: bpf-name-conflict ") for line in lines[1:])
    assert "\x1b" not in answer["message"]
