"""report/formats.py: the text, JSON, JUnit and SARIF reports of scan and verify, on findings made in memory."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from rpm_bpf import __version__, data_text
from rpm_bpf.findings import Embedded, Finding, InputError
from rpm_bpf.model import PackageRef
from rpm_bpf.report import formats
from rpm_bpf.report.formats import Report, finding_line, input_error_line, render_json, render_junit, render_sarif
from rpm_bpf.rules import registry
from rpm_bpf.rules.registry import Severity

GOOD = PackageRef("xdp-good", None, "1.0", "1", "x86_64", "/srv/xdp-good-1.0-1.x86_64.rpm")
LEGACY = PackageRef("legacy", 2, "0.9", "3", "x86_64", "/srv/legacy-0.9-3.x86_64.rpm")
HOSTILE_PATH = "/usr/lib64/bpf/\x1b]0;owned\a\n\udcff.o"

MISPLACED = Finding.of("bpf-object-outside-bpfdir", LEGACY, "/usr/share/legacy/prog.o", "expected under /usr/lib64/bpf")
NO_BTF = Finding.of("bpf-object-no-btf", LEGACY, "/usr/share/legacy/prog.o")
WAIVED = Finding.of("bpf-object-writable", GOOD, "/usr/lib64/bpf/good/p.o", "mode 0664").with_waiver(
    "bug 7", dt.date(2099, 12, 31)
)
EXISTING = Finding.of("bpf-object-no-license", GOOD, "/usr/lib64/bpf/good/p.o")._replace(
    existing="xdp-good-0.9-1.x86_64"
)
EMBEDDED = Finding.of(
    "bpf-object-embedded",
    GOOD,
    "/usr/bin/good",
    "at offset 4096: 664 bytes, xdp/xdp_prog, license GPL; found by libbpf-dynamic",
    embedded=Embedded(4096, 664, (("xdp", "xdp_prog"),), "GPL", "libbpf-dynamic"),
)
UNOWNED = Finding.of("bpf-object-unowned", None, HOSTILE_PATH, "written at run time or copied by hand")
BROKEN = InputError("/srv/broken.rpm", "corrupt RPM: main header announces 4294967295 entries")


def full_report(errors=(BROKEN,)) -> Report:
    return Report("scan", [GOOD, LEGACY], [MISPLACED, NO_BTF, WAIVED, EXISTING, EMBEDDED, UNOWNED], list(errors))


SCHEMA = json.loads(data_text("report.schema.json"))


# --- counts and exit status ------------------------------------------------------


def test_summary_counts_what_counts():
    assert full_report().summary() == {
        "packages": 2,
        "errors": 2,  # misplaced, unowned (the writable one is waived)
        "warnings": 1,  # no-btf (no-license is existing in the baseline)
        "info": 1,
        "waived": 1,
        "existing": 1,
        "input_errors": 1,
    }


@pytest.mark.parametrize(
    "findings, errors, code",
    [
        ([MISPLACED], [BROKEN], 2),
        ([MISPLACED], [], 1),
        ([NO_BTF, EMBEDDED], [], 0),
        ([MISPLACED.with_waiver("ok")], [], 0),
        ([MISPLACED._replace(existing="legacy-0.8-1.x86_64")], [], 0),
        ([], [], 0),
    ],
)
def test_exit_code(findings, errors, code):
    assert Report("scan", [LEGACY], findings, errors).exit_code == code


# --- text ----------------------------------------------------------------------------


def test_finding_line_as_rpmlint_writes_it():
    assert finding_line(MISPLACED) == (
        "legacy.x86_64: E: bpf-object-outside-bpfdir /usr/share/legacy/prog.o expected under /usr/lib64/bpf"
    )
    assert finding_line(MISPLACED, label=False) == (
        "E: bpf-object-outside-bpfdir /usr/share/legacy/prog.o expected under /usr/lib64/bpf"
    )
    assert finding_line(WAIVED).endswith(" mode 0664 [waived: bug 7; until 2099-12-31]")
    assert finding_line(EXISTING).endswith(" [existing: also in xdp-good-0.9-1.x86_64]")
    assert finding_line(Finding.of("bpf-package-unreadable", None, None, "why")) == (
        "rpm-bpf: E: bpf-package-unreadable why"
    )


def test_finding_line_escapes_names_from_packages():
    line = finding_line(UNOWNED)
    assert line == (
        "rpm-bpf: E: bpf-object-unowned /usr/lib64/bpf/\\x1b]0;owned\\a\\n\\xff.o written at run time or copied by hand"
    )
    assert line.isprintable()


def test_colour_only_where_asked():
    coloured = finding_line(NO_BTF, color=True)
    assert coloured == "legacy.x86_64: \033[1;33mW: bpf-object-no-btf\033[0m /usr/share/legacy/prog.o"
    assert "\033" not in finding_line(NO_BTF)


def test_text_report():
    text = formats.render_text(full_report())
    assert text.splitlines() == [
        finding_line(UNOWNED),  # no package first
        "legacy.x86_64: E: bpf-object-outside-bpfdir /usr/share/legacy/prog.o expected under /usr/lib64/bpf",
        "legacy.x86_64: W: bpf-object-no-btf /usr/share/legacy/prog.o",
        finding_line(EMBEDDED),
        finding_line(EXISTING),
        "2 packages checked; 2 errors, 1 warnings, 1 info, 1 waived, 1 existing in the baseline; "
        "1 inputs could not be read.",
    ]
    assert finding_line(WAIVED) in formats.render_text(full_report(), show_waived=True)


def test_text_report_of_a_clean_run():
    assert formats.render_text(Report("verify", [GOOD], [])) == "1 packages checked; 0 errors, 0 warnings, 0 info.\n"


def test_input_error_line():
    assert input_error_line(InputError("/x\n.rpm", "bad")) == "rpm-bpf: error: /x\\n.rpm: bad"


# --- JSON ----------------------------------------------------------------------------


def test_json_report_follows_its_schema():
    doc = json.loads(render_json(full_report()))
    jsonschema.validate(doc, SCHEMA)
    assert doc["schema"] == formats.SCHEMA == "rpm-bpf/report/v1"
    assert doc["tool"] == {"name": "rpm-bpf", "version": __version__}
    assert doc["command"] == "scan" and doc["exit_code"] == 2
    assert doc["summary"] == full_report().summary()
    assert doc["input_errors"] == [{"input": BROKEN.input, "message": BROKEN.message}]
    assert len(doc["findings"]) == 6  # waived ones included by default
    assert len(json.loads(render_json(full_report(), show_waived=False))["findings"]) == 5


def test_json_finding_fields():
    by_rule = {f["rule"]: f for f in json.loads(render_json(full_report()))["findings"]}
    misplaced = by_rule["bpf-object-outside-bpfdir"]
    assert misplaced["package"] == {
        "name": "legacy",
        "epoch": 2,
        "version": "0.9",
        "release": "3",
        "arch": "x86_64",
        "nevra": "legacy-2:0.9-3.x86_64",
        "source": "/srv/legacy-0.9-3.x86_64.rpm",
    }
    assert misplaced["severity"] == "error"
    assert misplaced["message"] == f"{registry.get('bpf-object-outside-bpfdir').summary}: expected under /usr/lib64/bpf"
    waived = by_rule["bpf-object-writable"]
    assert (waived["waived"], waived["waiver_reason"], waived["waiver_expires"]) == (True, "bug 7", "2099-12-31")
    assert by_rule["bpf-object-no-license"]["existing"] == "xdp-good-0.9-1.x86_64"
    assert by_rule["bpf-object-embedded"]["embedded"] == {
        "offset": 4096,
        "size": 664,
        "license": "GPL",
        "signal": "libbpf-dynamic",
        "programs": [{"section": "xdp", "name": "xdp_prog"}],
        "signature": None,
    }
    unowned = by_rule["bpf-object-unowned"]
    assert unowned["package"] is None and unowned["path"] == HOSTILE_PATH  # exact text, not escaped


def test_json_keeps_undecodable_bytes_recoverable():
    text = render_json(Report("verify", [], [UNOWNED]))
    assert "\\udcff" in text
    path = json.loads(text)["findings"][0]["path"]
    assert path.encode("utf-8", "surrogateescape").endswith(b"\n\xff.o")


def test_schema_refuses_what_is_not_a_report():
    doc = json.loads(render_json(full_report()))
    doc["findings"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


# --- JUnit ---------------------------------------------------------------------------


def _junit(report: Report, **kwargs) -> ET.Element:
    text = render_junit(report, **kwargs)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.split("\n", 1)[1])


def test_junit_parses_and_has_one_case_per_package():
    suites = _junit(full_report())
    (suite,) = suites.findall("testsuite")
    assert suites.get("name") == "rpm-bpf scan" and suite.get("name") == "rpm-bpf.scan"
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {"legacy-2:0.9-3.x86_64", "xdp-good-1.0-1.x86_64", "(no package)", BROKEN.input}
    for element in (suites, suite):
        assert (element.get("tests"), element.get("failures"), element.get("errors")) == ("4", "2", "1")
    legacy = cases["legacy-2:0.9-3.x86_64"]
    assert legacy.get("file") == LEGACY.source
    failure = legacy.find("failure")
    assert failure.get("type") == "bpf-object-outside-bpfdir" and failure.get("message") == "1 BPF policy error(s)"
    assert failure.text == "E: bpf-object-outside-bpfdir /usr/share/legacy/prog.o expected under /usr/lib64/bpf"
    assert legacy.find("system-out").text == "W: bpf-object-no-btf /usr/share/legacy/prog.o"
    good = cases["xdp-good-1.0-1.x86_64"]
    assert good.find("failure") is None  # its error is waived, its warning existing
    assert "bpf-object-writable" not in good.find("system-out").text
    assert cases[BROKEN.input].find("error").get("type") == "input-error"


def test_junit_shows_waived_findings_when_asked_without_failing_on_them():
    good = {c.get("name"): c for c in _junit(full_report(), show_waived=True).iter("testcase")}["xdp-good-1.0-1.x86_64"]
    assert good.find("failure") is None
    assert "[waived: bug 7; until 2099-12-31]" in good.find("system-out").text


def test_junit_escapes_control_characters():
    """XML 1.0 cannot carry most control characters at all: they are written as escapes."""
    text = render_junit(Report("verify", [], [UNOWNED]))
    assert "\x1b" not in text and "\\x1b]0;owned\\a\\n\\xff.o" in text
    ET.fromstring(text.split("\n", 1)[1])


def test_junit_of_a_clean_run():
    suites = _junit(Report("verify", [GOOD], []))
    (case,) = suites.iter("testcase")
    assert list(case) == [] and suites.get("failures") == "0"


# --- SARIF ---------------------------------------------------------------------------


def test_sarif_carries_the_rule_metadata():
    doc = json.loads(render_sarif(full_report()))
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("rpm-bpf", __version__)
    rules = {r["id"]: r for r in driver["rules"]}
    assert set(rules) == set(registry.registry())
    misplaced = rules["bpf-object-outside-bpfdir"]
    rule = registry.get("bpf-object-outside-bpfdir")
    assert misplaced["name"] == "BpfObjectOutsideBpfdir"
    assert misplaced["shortDescription"] == {"text": rule.summary}
    assert misplaced["fullDescription"] == {"text": rule.description}
    assert misplaced["defaultConfiguration"] == {"level": "error"}
    assert misplaced["properties"] == {"scope": rule.scope}
    assert rules["bpf-object-no-btf"]["defaultConfiguration"] == {"level": "warning"}
    assert rules["bpf-object-embedded"]["defaultConfiguration"] == {"level": "note"}
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_results():
    (run,) = json.loads(render_sarif(full_report()))["runs"]
    results = {r["ruleId"]: r for r in run["results"]}
    assert len(run["results"]) == 6
    misplaced = results["bpf-object-outside-bpfdir"]
    assert misplaced["level"] == "error"
    assert misplaced["message"]["text"] == f"/usr/share/legacy/prog.o: {MISPLACED.message}"
    (location,) = misplaced["locations"]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == LEGACY.source
    assert location["logicalLocations"][0]["fullyQualifiedName"] == "legacy-2:0.9-3.x86_64:/usr/share/legacy/prog.o"
    assert misplaced["properties"] == {"package": "legacy-2:0.9-3.x86_64", "path": "/usr/share/legacy/prog.o"}
    waived = results["bpf-object-writable"]
    assert waived["suppressions"] == [{"kind": "external", "justification": "bug 7"}]
    assert waived["properties"]["waiverExpires"] == "2099-12-31"
    assert results["bpf-object-no-license"]["baselineState"] == "unchanged"
    assert results["bpf-object-embedded"]["properties"]["embedded"]["offset"] == 4096
    assert results["bpf-object-unowned"]["locations"] == []
    assert "suppressions" not in misplaced and "baselineState" not in misplaced


def test_sarif_invocation_reports_unreadable_inputs():
    (run,) = json.loads(render_sarif(full_report()))["runs"]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and note["message"]["text"] == f"{BROKEN.input}: {BROKEN.message}"
    (clean,) = json.loads(render_sarif(full_report(errors=())))["runs"]
    assert clean["invocations"][0]["executionSuccessful"] is True
    assert len(json.loads(render_sarif(full_report(), show_waived=False))["runs"][0]["results"]) == 5


def test_every_format_is_registered():
    assert set(formats.RENDERERS) == set(formats.FORMATS) == {"text", "json", "junit", "sarif"}
    for name, render in formats.RENDERERS.items():
        assert render(Report("scan", [GOOD], [NO_BTF])).endswith("\n"), name
    assert {f.severity for f in full_report().findings} == {Severity.ERROR, Severity.WARNING, Severity.INFO}
