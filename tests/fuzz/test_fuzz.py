"""Each fuzz target of tests/fuzz/targets.py, run briefly in a child process.

A child process because the ``rpm`` target drives librpm, whose crashes are
signals: a SIGSEGV there must fail one test and name the signal, not kill
pytest. The cases are derandomized (the same every run) and few enough for
CI: all four targets take well under a minute on two cores. To run more:

    RPM_BPF_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q tests/fuzz

and for long random runs, see the docstring of tests/fuzz/targets.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Cases per target in CI, sized by each target's cost per case: about 6 s each (measured on two cores,
# fixtures included), so that the four stay under a minute on a slower runner.
CI_EXAMPLES = {
    "rpm": 1500,
    "elf": 2000,
    "policy": 1500,
    "rootfs": 800,
    "repodata": 600,
    "prefilter": 1500,
    "rpmdb": 300,
    "hdrsig": 1000,
    "archive": 2000,
    "lightskel": 1500,
    "lskelsig": 1000,
    "core": 1500,
}
TIMEOUT = 600


def examples(target: str) -> int:
    """CI's number of cases, or RPM_BPF_FUZZ_EXAMPLES (for every target) when set."""
    override = os.environ.get("RPM_BPF_FUZZ_EXAMPLES", "").strip()
    return int(override) if override else CI_EXAMPLES[target]


def _tail(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def run_target(target: str) -> None:
    """Run ``target`` in a child process; fail naming the signal, the falsifying example, or the hang."""
    n = examples(target)
    cmd = [sys.executable, "-m", "tests.fuzz.targets", target, "--examples", str(n)]
    again = f"cd {REPO} && PYTHONPATH=. {sys.executable} -m tests.fuzz.targets {target} --examples {n}"
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"fuzz target {target!r} did not finish in {TIMEOUT} s (a hang?)\nreproduce: {again}\n"
            f"stderr:\n{_tail(exc.stderr.decode(errors='replace') if exc.stderr else '')}"
        )
    output = f"stdout:\n{_tail(proc.stdout)}\nstderr:\n{_tail(proc.stderr)}\nreproduce: {again}"
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        pytest.fail(
            f"fuzz target {target!r} was killed by {name} (a crash in native code; the last case is "
            f"in the work dir named on stderr)\n{output}",
            pytrace=False,
        )
    assert proc.returncode == 0, (
        f"fuzz target {target!r} found a property violation (exit status {proc.returncode})\n{output}"
    )
    match = re.search(rf"^{re.escape(target)}: (\d+) cases, 0 failures$", proc.stdout, re.MULTILINE)
    assert match, f"fuzz target {target!r} did not print its case count\n{output}"
    # Hypothesis stops early only when it has run out of distinct cases: that would mean a broken strategy.
    assert int(match.group(1)) >= n * 9 // 10, f"only {match.group(1)} of {n} cases ran\n{output}"


def test_fuzz_rpm_reader():
    """Damaged, re-tagged and truncated packages: RpmFileError/ContentError only, no crash, no macro run."""
    run_target("rpm")


def test_fuzz_elf_inspection():
    """Damaged and embedded BPF objects: inspect raises only BpfElfError, find_embedded never raises."""
    run_target("elf")


def test_fuzz_policy_loading():
    """Generated, mistyped and deeply nested policy files: PolicyError only; apply() never raises."""
    run_target("policy")


def test_fuzz_rootfs_reads():
    """Hostile trees: OSError only, no blocking, nothing read from outside the root."""
    run_target("rootfs")


def test_fuzz_repository_metadata():
    """Damaged primary/filelists with matching checksums: RepoContents or RepoError only, no hang."""
    run_target("repodata")


def test_fuzz_repository_prefilter():
    run_target("prefilter")


def test_fuzz_rpm_database():
    run_target("rpmdb")
