"""The real-world corpus (benchmarks/realworld_corpus.py) for the tests: the script as a module, and its
RPMs (built once, cached), or a skip that says why they cannot be made here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.support import bytesearch
from tests.support.paths import REPO

_spec = importlib.util.spec_from_file_location("realworld_corpus", REPO / "benchmarks" / "realworld_corpus.py")
assert _spec is not None and _spec.loader is not None
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)


def rpms() -> Path:
    """The directory of repacked RPMs; skips the test where apt cannot fetch the Debian packages."""
    try:
        return corpus.build()
    except corpus.CorpusUnavailable as exc:
        pytest.skip(f"the real-world corpus cannot be made here (apt cannot fetch the Debian packages): {exc}")


_sid_spec = importlib.util.spec_from_file_location(
    "realworld_sid_corpus", REPO / "benchmarks" / "realworld_sid_corpus.py"
)
assert _sid_spec is not None and _sid_spec.loader is not None
sid_corpus = importlib.util.module_from_spec(_sid_spec)
_sid_spec.loader.exec_module(sid_corpus)


def sid_rpms() -> Path:
    """The sid corpus's RPMs; skips the test where apt cannot reach Debian sid."""
    try:
        return sid_corpus.build()
    except sid_corpus.CorpusUnavailable as exc:
        pytest.skip(f"the sid corpus cannot be made here (apt cannot fetch Debian sid's packages): {exc}")


def truth(corpus_dir: Path) -> list[bytesearch.Hit]:
    """Every BPF object in a corpus's payloads, by the independent byte search, with the RPMs' names."""
    hits = []
    for rpm in sorted(corpus_dir.glob("*.rpm")):
        hits += bytesearch.search_rpm(rpm, rpm.name.split("-1.0-1.")[0])
    return hits


def found_at(findings: list[dict]) -> set[tuple[str, str, int]]:
    """(package, path, offset) of the embedded ELF objects a scan reported (light skeletons left out: the
    byte search does not see them)."""
    return {
        (f["package"]["name"], f["path"], f["embedded"]["offset"])
        for f in findings
        if f["rule"] == "bpf-object-embedded" and not f["detail"].startswith("light skeleton")
    }
