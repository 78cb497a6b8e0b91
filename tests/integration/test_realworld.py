"""Real-world fidelity: Debian 12 packages that ship eBPF, repacked file for file as RPMs.

The corpus (benchmarks/realworld_corpus.py) is downloaded with apt-get and
built with rpmbuild once, then cached under /var/cache/rpm-bpf-realworld.
Its EXPECTED table was counted independently of rpm-bpf (a byte search for
EM_BPF ELF headers that pyelftools parses); these tests hold every verdict of
the default scan (every ELF file searched), of --embedded=signals and of --deep against it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.support import bytesearch, realworld
from tests.support.paths import REPO

pytestmark = pytest.mark.integration

EXPECTED = realworld.corpus.EXPECTED


@pytest.fixture(scope="module")
def corpus() -> Path:
    return realworld.rpms()


def _scan(corpus: Path, *args: str, fmt: str = "json") -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "scan", "-q", "--no-system-policy", "-f", fmt, *args, str(corpus)],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture(scope="module")
def scans(corpus) -> dict[str, list[dict]]:
    runs = {"default": [], "signals": ["--embedded=signals"], "deep": ["--deep"]}
    found = {}
    for label, args in runs.items():
        doc = json.loads(_scan(corpus, *args).stdout)
        assert doc["summary"]["packages"] == len(EXPECTED) and doc["input_errors"] == []
        found[label] = doc["findings"]
    return found


def _embedded(findings: list[dict]) -> Counter:
    return Counter(
        (f["package"]["name"].removeprefix("deb-"), f["path"]) for f in findings if f["rule"] == "bpf-object-embedded"
    )


def test_every_embedded_object_counted_in_every_file(scans):
    deep, triaged, default = (_embedded(scans[k]) for k in ("deep", "signals", "default"))
    for name, expected in EXPECTED.items():
        for path, count in expected.get("embedded", {}).items():
            assert deep[(name, path)] == count, (name, path)
            assert default[(name, path)] == count, (name, path)
            # Header triage searches where a signal says so (delve has none: the default finds it).
            assert triaged[(name, path)] == (count if expected["signal"] else 0), (name, path)
    wanted = {(n, p) for n, e in EXPECTED.items() for p in e.get("embedded", {})}
    assert set(deep) == wanted and set(default) == wanted  # nothing anywhere else either


@pytest.fixture(scope="module")
def truth(corpus) -> list[bytesearch.Hit]:
    """Every BPF object in the corpus's payloads, by the independent byte search (tests/support/bytesearch.py)."""
    return [h._replace(package=h.package.removeprefix("deb-")) for h in realworld.truth(corpus)]


def test_default_scan_finds_every_object_the_byte_search_finds(scans, truth):
    """100 % recall by default, object by object (file and offset), against a search that shares no code with
    rpm-bpf; and nothing it does not find. Archive members and standalone objects are counted per file."""
    embedded = {(h.package, h.path, h.offset) for h in truth if h.kind == "embedded"}
    assert embedded, "the byte search found no embedded object: the corpus is not what it should be"
    short = {(name.removeprefix("deb-"), path, offset) for name, path, offset in realworld.found_at(scans["default"])}
    assert short == embedded
    deep = {(name.removeprefix("deb-"), path, offset) for name, path, offset in realworld.found_at(scans["deep"])}
    assert deep == embedded
    members = Counter((h.package, h.path) for h in truth if h.kind == "member")
    reported = Counter(
        (f["package"]["name"].removeprefix("deb-"), f["path"])
        for f in scans["default"]
        if f["rule"] == "bpf-archive-member"
    )
    assert reported == members
    standalone = {(h.package, h.path) for h in truth if h.kind == "standalone"}
    judged = {
        (f["package"]["name"].removeprefix("deb-"), f["path"])
        for f in scans["default"]
        if f["rule"] in ("bpf-object-outside-bpfdir", "bpf-object-exempt-location")
    }
    assert judged == standalone


def test_each_embedded_object_says_which_signal_found_it(scans):
    for f in scans["default"]:
        if f["rule"] == "bpf-object-embedded":
            expected = EXPECTED[f["package"]["name"].removeprefix("deb-")]
            assert f["embedded"]["signal"] == (expected["signal"] or "payload")
            assert f["embedded"]["programs"] and f["embedded"]["size"] > 0 and f["embedded"]["offset"] > 0
            assert f["embedded"]["license"]  # every real skeleton here declares one
    delve = [f for f in scans["default"] if f["package"]["name"] == "deb-delve" and f["rule"] == "bpf-object-embedded"]
    assert [f["embedded"]["signal"] for f in delve] == ["payload"]
    assert [p["section"] for p in delve[0]["embedded"]["programs"]] == ["uprobe/dlv_trace"]


def test_errors_land_only_where_expected(scans):
    for label in ("default", "signals", "deep"):
        errors = [
            (f["package"]["name"].removeprefix("deb-"), f["rule"], f["path"])
            for f in scans[label]
            if f["severity"] == "error"
        ]
        for name, rule, path in errors:
            allowed = EXPECTED[name].get("errors", [])
            assert any(rule == r and fnmatch.fnmatchcase(path, glob) for r, glob in allowed), (label, name, rule, path)
        for name, expected in EXPECTED.items():
            for rule, glob in expected.get("errors", []):
                hits = [e for e in errors if e[0] == name and e[1] == rule and fnmatch.fnmatchcase(e[2], glob)]
                assert len(hits) == expected["standalone"], (label, name, rule, glob)


def test_bpf_files_that_are_not_programs_are_information(scans):
    for name, expected in EXPECTED.items():
        info = expected.get("info", [])
        if not info:
            continue
        found = [f for f in scans["default"] if f["package"]["name"] == f"deb-{name}"]
        assert {f["rule"] for f in found} == {rule for rule, _, _ in info}, name  # no other rule fires on them
        for rule, glob, count in info:
            hits = [f for f in found if f["rule"] == rule]
            assert len(hits) == count and all(fnmatch.fnmatchcase(f["path"], glob) for f in hits), (name, rule)
            assert all(f["severity"] == "info" for f in hits)


def test_packages_without_bpf_have_no_finding(scans):
    for name, expected in EXPECTED.items():
        if not expected:
            assert [f for f in scans["deep"] if f["package"]["name"] == f"deb-{name}"] == [], name


def test_embedded_detail_in_text_junit_and_sarif(corpus):
    path = "/usr/lib/x86_64-linux-gnu/libknot.so.13.0.0"
    text = _scan(corpus, fmt="text").stdout
    (line,) = [line for line in text.splitlines() if path in line]
    assert "I: bpf-object-embedded" in line and "found by libbpf-dynamic" in line and "at offset " in line
    sarif = json.loads(_scan(corpus, fmt="sarif").stdout)
    (result,) = [r for r in sarif["runs"][0]["results"] if r["properties"]["path"] == path]
    assert result["properties"]["embedded"]["signal"] == "libbpf-dynamic"
    assert result["properties"]["embedded"]["programs"][0]["section"] == "xdp"
    junit = ElementTree.fromstring(_scan(corpus, fmt="junit").stdout)
    texts = [ElementTree.tostring(case, encoding="unicode") for case in junit.iter("testcase")]
    assert any(path in t and "found by libbpf-dynamic" in t for t in texts)
