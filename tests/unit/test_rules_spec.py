"""rules/spec.py: the spec file rules, on spec text (and on a source package's spec, through check_package)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rpm_bpf.rules import registry
from rpm_bpf.rules.registry import Severity
from rpm_bpf.rules.spec import check_spec_text
from tests.support.fakepkg import FakePkg, file

ENGINE_SPEC = Path(__file__).resolve().parents[2] / "rpm_bpf" / "rules" / "spec.py"

HEAD = "Name: tool\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\n\n%description\nA tool.\n\n"


def spec(*sections: str) -> str:
    return HEAD + "\n".join(sections) + "\n"


def rules_of(text: str) -> list[tuple[str, int, str]]:
    return [(f.rule, f.line, f.text) for f in check_spec_text(text)]


# rule -> (spec that triggers it, near miss that does not)
CASES = {
    "bpf-hardcoded-bpfdir": (
        spec("%files", "/usr/lib64/bpf/tool/prog.o"),
        spec("%files", "%{_bpfdir}/tool/prog.o"),
    ),
    "bpf-install-by-hand": (
        spec("%install", "install -m 0644 prog.o %{buildroot}%{_bpfdir}/tool/prog.o"),
        spec("%install", "%bpf_install -d tool prog.o"),
    ),
    "bpf-object-config": (
        spec("%files", "%config(noreplace) %{_bpfdir}/tool/prog.o"),
        spec("%files", "%config(noreplace) %{_sysconfdir}/tool.conf"),
    ),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_is_triggered(rule):
    triggering, _ = CASES[rule]
    assert rule in {r for r, _, _ in rules_of(triggering)}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_near_miss_does_not_trigger_it(rule):
    _, near_miss = CASES[rule]
    assert rules_of(near_miss) == []


def test_every_spec_rule_has_cases():
    """The ids rules/spec.py spells (bpf-object-config may be spelled in attributes.py: the same rule)."""
    ids = set(re.findall(r"""["']([a-z0-9-]+)["']""", ENGINE_SPEC.read_text())) & set(registry.registry())
    assert {"bpf-hardcoded-bpfdir", "bpf-install-by-hand"} <= ids <= set(CASES)


def test_spec_findings_carry_the_registry_severity():
    text = spec("%install", "install -m 0644 p.o %{buildroot}/usr/lib64/bpf/p.o", "%files", "%config /usr/lib/bpf/p.o")
    severities = {f.rule: registry.get(f.rule).severity for f in check_spec_text(text)}
    assert severities == {
        "bpf-hardcoded-bpfdir": Severity.WARNING,
        "bpf-install-by-hand": Severity.INFO,
        "bpf-object-config": Severity.ERROR,
    }


def test_lines_are_numbered_from_one_and_stripped():
    text = spec("%install", "   cp prog.o $RPM_BUILD_ROOT/usr/lib/bpf/prog.o   ")
    line = HEAD.count("\n") + 2
    assert rules_of(text) == [
        ("bpf-hardcoded-bpfdir", line, "cp prog.o $RPM_BUILD_ROOT/usr/lib/bpf/prog.o"),
        ("bpf-install-by-hand", line, "cp prog.o $RPM_BUILD_ROOT/usr/lib/bpf/prog.o"),
    ]


@pytest.mark.parametrize(
    "line, hardcoded",
    [
        ("/usr/lib64/bpf/prog.o", True),
        ("/usr/lib/bpf", True),
        ('BPFDIR="/usr/lib64/bpf"', True),
        ("%dir /usr/lib64/bpf/tool", True),
        ("/usr/lib64/bpfilter/prog.o", False),
        ("/usr/lib64/bpf.so", False),
        ("%{_libdir}/bpf/prog.o", False),
        ("%{_bpfdir_noarch}/prog.o", False),
    ],
)
def test_hardcoded_directory(line, hardcoded):
    assert (rules_of(spec("%files", line)) != []) is hardcoded


def test_changelog_and_comments_are_not_judged():
    text = spec(
        "%files",
        "# was /usr/lib64/bpf/prog.o",
        "%{_bpfdir}/prog.o",
        "%changelog",
        "* Mon Nov 23 2026 P <p@example.org> - 1-1",
        "- moved out of /usr/lib64/bpf; install -m 0644 x %{buildroot}/usr/lib64/bpf/x",
    )
    assert rules_of(text) == []


@pytest.mark.parametrize(
    "line",
    [
        "install -D -m 0644 prog.o %{buildroot}%{_bpfdir}/prog.o",
        "cp -a obj/*.o %buildroot%_bpfdir_noarch/",
        "mv prog.o $RPM_BUILD_ROOT%{_bpfdir}/tool/",
        "ln -s prog.o %{buildroot}%{_bpfdir}/current.o",
    ],
)
def test_install_by_hand(line):
    found = rules_of(spec("%install", line))
    assert [(r, t) for r, _, t in found if r == "bpf-install-by-hand"] == [("bpf-install-by-hand", line)]


@pytest.mark.parametrize(
    "section, line",
    [
        ("%build", "install -m 0644 prog.o %{buildroot}%{_bpfdir}/prog.o"),  # not %install
        ("%install", "install -m 0644 prog.o %{buildroot}%{_datadir}/tool/prog.o"),  # not the BPF directory
        ("%install", "install -m 0644 prog.o %{_bpfdir}/prog.o"),  # not into the build root
        ("%install", "mkdir -p %{buildroot}%{_bpfdir}"),  # not a copy
    ],
)
def test_not_install_by_hand(section, line):
    assert "bpf-install-by-hand" not in {r for r, _, _ in rules_of(spec(section, line))}


@pytest.mark.parametrize(
    "line, flagged",
    [
        ("%config %{_bpfdir}/prog.o", True),
        ("%config(noreplace) /usr/lib64/bpf/tool/prog.o", True),
        ("%config /etc/tool/filter.o", True),
        ("%config(noreplace) %{_sysconfdir}/tool/tool.conf", False),
        ("%{_bpfdir}/prog.o", False),
    ],
)
def test_config_objects(line, flagged):
    assert ("bpf-object-config" in {r for r, _, _ in rules_of(spec("%files", line))}) is flagged


def test_config_outside_files_is_not_judged():
    assert "bpf-object-config" not in {r for r, _, _ in rules_of(spec("%install", "echo %config %{_bpfdir}/x.o"))}


def test_source_package_spec_is_checked_through_check_package():
    text = spec("%install", "install -m 0644 prog.o %{buildroot}/usr/lib64/bpf/prog.o")
    line = HEAD.count("\n") + 2
    pkg = FakePkg([file("tool.spec", text.encode()), file("prog.c", b"int x;\n")], is_source=True)
    result = pkg.check()
    assert {(f.rule, f.path, f.detail) for f in result.findings} == {
        (
            "bpf-hardcoded-bpfdir",
            "tool.spec",
            f"line {line}: install -m 0644 prog.o %{{buildroot}}/usr/lib64/bpf/prog.o",
        ),
        (
            "bpf-install-by-hand",
            "tool.spec",
            f"line {line}: install -m 0644 prog.o %{{buildroot}}/usr/lib64/bpf/prog.o",
        ),
    }
    assert {f.severity for f in result.findings} == {Severity.WARNING, Severity.INFO}
    assert pkg.reader.asked == {"tool.spec"}
    assert result.objects == []


def test_source_package_whose_payload_cannot_be_read():
    pkg = FakePkg([file("tool.spec", spec("%files", "/usr/lib/bpf/x.o").encode())], is_source=True, broken="bad cpio")
    result = pkg.check()
    assert result.content_error == "bad cpio" and result.findings == []
    assert pkg.check(header_only=True).findings == []  # no reader: nothing to judge


@pytest.mark.parametrize(
    "line",
    ["cp prog.o %{buildroot}/usr/lib64/bpf; chmod 0644 x", "%{!?_bpfdir:%global _bpfdir /usr/lib64/bpf}"],
    ids=["semicolon", "brace"],
)
def test_hardcoded_directory_before_punctuation(line):
    assert "bpf-hardcoded-bpfdir" in {r for r, _, _ in rules_of(spec("%install", line))}


def test_config_file_whose_name_contains_dot_o_is_not_an_object():
    assert rules_of(spec("%files", "%config(noreplace) %{_sysconfdir}/tool.o.conf")) == []
