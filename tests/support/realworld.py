"""The real-world corpus (benchmarks/realworld_corpus.py) for the tests: the script as a module, and its
RPMs (built once, cached), or a skip that says why they cannot be made here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

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
