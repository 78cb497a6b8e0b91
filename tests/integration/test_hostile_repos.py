"""Hostile repositories for the gate: real createrepo_c repositories, damaged with their checksums made to match."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rpm_bpf.sources import bpfdirs
from rpm_bpf.sources.repodata import read_repository
from tests.support.paths import REPO
from tests.support.repodata import rewritten

pytestmark = pytest.mark.integration
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def _spaces_then_hits(bpfdir: str, spaces: int, hits: int) -> bytes:
    """What the pre-filter must not rescan: a long run of spaces, then many BPF-directory hits, all before
    the first ``<package `` (so no element holds them)."""
    return b" " * spaces + f"<file>{bpfdir}/x.o</file>".encode() * hits


def _crafted(gate_repo: Path, dest: Path, bpfdir: str, scale: int) -> Path:
    def edit(kind: str, xml: bytes) -> bytes:
        if kind != "filelists":
            return gzip.compress(xml)
        first = xml.index(b"<package ")
        return gzip.compress(xml[:first] + _spaces_then_hits(bpfdir, scale << 20, 4000 * scale) + xml[first:])

    return rewritten(gate_repo, dest, edit)


def _read_seconds(repo: Path) -> float:
    """The fastest of three reads of ``repo`` by the gate's reader, in this process."""
    roots = bpfdirs.repository_roots()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        contents = read_repository(str(repo), roots)
        best = min(best, time.perf_counter() - started)
        assert any(path.endswith("/shared.o") for paths in contents.files.values() for path in paths)
    return best


def test_prefilter_is_linear_in_the_input(built, gate_repo, bpfdir, tmp_path):
    """Hits with no element around them once cost a rescan each (1 MiB and 4,000 hits: seconds; 8 MiB and
    32,000: hours). Doubling the crafted part must about double the time, and the largest stays fast."""
    sizes = (1, 2, 4, 8)
    seconds = {scale: _read_seconds(_crafted(gate_repo, tmp_path / f"x{scale}", bpfdir, scale)) for scale in sizes}
    assert seconds[8] < 10, seconds
    # Linear: 8x the input, well under 8x8 = 64x the time (quadratic); the fixed cost only helps the ratio.
    assert seconds[8] / seconds[1] < 20, seconds
    # The gate still finds the clash behind the crafted part.
    gate = ["scan", "-q", "--no-system-policy", "--against", str(tmp_path / "x8"), str(built["new-clash"])]
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", *gate],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert proc.returncode == 1 and "other-tool-1.0-1" in proc.stdout, proc.stdout + proc.stderr
