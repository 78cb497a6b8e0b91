"""The real-world corpus (benchmarks/realworld_corpus.py) for the tests: the script as a module, and its
RPMs (built once, cached), or a skip that says why they cannot be made here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tests.support import bytesearch
from tests.support.paths import REPO


def _script(name: str) -> Any:
    """A corpus script of benchmarks/ as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _script("realworld_corpus")
sid_corpus = _script("realworld_sid_corpus")


def _built(script: Any, what: str) -> Path:
    try:
        built: Path = script.build()
        return built
    except script.CorpusUnavailable as exc:
        pytest.skip(f"the {what} cannot be made here (apt cannot fetch its Debian packages): {exc}")


def rpms() -> Path:
    """The directory of repacked Debian 12 RPMs; skips the test where apt cannot fetch the packages."""
    return _built(corpus, "real-world corpus")


def sid_rpms() -> Path:
    """The sid corpus's RPMs; skips the test where apt cannot reach Debian sid."""
    return _built(sid_corpus, "sid corpus")


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
