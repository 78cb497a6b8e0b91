"""Real-world fidelity II: newer Debian packages (sid, trixie's systemd library) repacked as RPMs
(benchmarks/realworld_sid_corpus.py), judged against an independent byte search.

The classes no header announces are here: systemd's libraries and daemons that dlopen() libbpf, Go built
with cgo and the external linker (pwru, delve). The default scan must find every object the byte search
finds, file by file and offset by offset; every verdict it gives is accounted for by an object the search
found, and every object has its verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import bytesearch, realworld
from tests.support.paths import REPO

pytestmark = pytest.mark.integration

# Standalone objects in these places are the package's own business (exempt by the default policy, or not
# a program); anywhere else outside the BPF directories they are errors.
STANDALONE_RULES = {"bpf-object-outside-bpfdir", "bpf-object-exempt-location", "bpf-object-no-programs"}
# The classes no header announces, as (package, path prefix): systemd's files that hold skeletons and
# dlopen() libbpf, and Go built with cgo and the external linker. sid may change any one of them (a new
# Requires, Go's internal linker): the test asks for at least one of each class, found only by the
# full search.
DLOPEN = {
    ("deb-libsystemd-shared", "/usr/lib/x86_64-linux-gnu/systemd/libsystemd-core-"),
    ("deb-libsystemd-shared-trixie", "/usr/lib/x86_64-linux-gnu/systemd/libsystemd-core-"),
    ("deb-systemd", "/usr/lib/systemd/systemd-networkd"),
    ("deb-systemd-container", "/usr/lib/systemd/systemd-nsresource"),  # -nsresourced, -nsresourcework
}
CGO = {("deb-pwru", "/usr/bin/pwru"), ("deb-delve", "/usr/bin/dlv")}


@pytest.fixture(scope="module")
def corpus() -> Path:
    return realworld.sid_rpms()


def _scan(corpus: Path, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "scan", "-q", "--no-system-policy", "-f", "json", *args, str(corpus)],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.returncode == 1, proc.stderr  # errors: the standalone objects outside the BPF directories
    assert "Traceback" not in proc.stderr
    doc: dict = json.loads(proc.stdout)
    assert doc["input_errors"] == [] and doc["summary"]["packages"] == len(list(corpus.glob("*.rpm")))
    return doc


@pytest.fixture(scope="module")
def scans(corpus) -> dict[str, list[dict]]:
    return {
        label: _scan(corpus, *args)["findings"]
        for label, args in (("default", []), ("signals", ["--embedded=signals"]))
    }


@pytest.fixture(scope="module")
def truth(corpus) -> list[bytesearch.Hit]:
    return realworld.truth(corpus)


def test_every_embedded_object_found_by_default(scans, truth):
    embedded = {(h.package, h.path, h.offset) for h in truth if h.kind == "embedded"}
    assert len(embedded) >= 150, "the byte search found too few objects: the corpus is not what it should be"
    assert realworld.found_at(scans["default"]) == embedded  # 100 %, and nothing it does not find


def test_the_classes_no_header_announces_are_found_by_the_full_search_only(scans):
    def objects(findings: list[dict]) -> dict[tuple[str, str, int], str]:
        return {
            (f["package"]["name"], f["path"], f["embedded"]["offset"]): f["embedded"]["signal"]
            for f in findings
            if f["rule"] == "bpf-object-embedded"
        }

    default, triaged = objects(scans["default"]), objects(scans["signals"])
    assert set(triaged) < set(default)
    missed = set(default) - set(triaged)
    # What header triage misses is exactly what the full search found without a signal...
    assert missed == {key for key, signal in default.items() if signal == "payload"}
    # ...and what it finds keeps its signal's name in the full search.
    assert all(default[key] == signal for key, signal in triaged.items())

    def of(keys: set[tuple[str, str, int]], kind: set[tuple[str, str]]) -> set[tuple[str, str, int]]:
        return {k for k in keys if any(k[0] == pkg and k[1].startswith(prefix) for pkg, prefix in kind)}

    assert of(missed, DLOPEN), "no dlopen() case found by the full search only"
    assert of(missed, CGO), "no cgo case found by the full search only"


def test_every_verdict_is_accounted_for(scans, truth):
    """Each finding belongs to an object the byte search found (or to a file beside one), and each
    standalone object has its verdict; errors only where an object lies outside the BPF directories."""
    standalone = {(h.package, h.path) for h in truth if h.kind == "standalone"}
    embedded = {(h.package, h.path) for h in truth if h.kind == "embedded"}
    judged: dict[tuple[str, str], set[str]] = {}
    for f in scans["default"]:
        key = (f["package"]["name"], f["path"])
        judged.setdefault(key, set()).add(f["rule"])
        if f["rule"] == "bpf-object-embedded":
            assert key in embedded and f["severity"] == "info"
        elif f["rule"] == "bpf-object-executable":
            assert key in standalone and f["severity"] == "warning"
        else:
            assert f["rule"] in STANDALONE_RULES and key in standalone, (f["rule"], key)
            assert f["severity"] == ("error" if f["rule"] == "bpf-object-outside-bpfdir" else "info")
    for key in standalone:
        assert judged.get(key, set()) & STANDALONE_RULES, key
    suricata = [k for k in standalone if k[0] == "deb-suricata"]
    assert suricata and all(k[1].endswith(".bpf") for k in suricata)  # found by content, not by name


def test_embedded_objects_carry_programs_and_license(scans):
    for f in scans["default"]:
        if f["rule"] == "bpf-object-embedded":
            emb = f["embedded"]
            assert emb["size"] > 0 and emb["offset"] > 0
            # bpfilter's objects have only .text (no program section); every other one has programs
            assert emb["programs"] or f["package"]["name"] == "deb-bpfilter", f["path"]
