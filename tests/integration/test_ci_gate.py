"""The shipped CI integrations run for real: the tmt plan (plans/gate.fmf, what Fedora CI's Testing Farm
runs) through tmt with local provisioning, and the CI job script (ci/gate/gate.sh) by itself, both against
createrepo_c repositories of rpmbuild-built packages (the gate tests' own)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from tests.support.paths import REPO

pytestmark = pytest.mark.integration
RPM_BPF = str(REPO / ".venv" / "bin" / "rpm-bpf")
TMT = REPO / ".venv" / "bin" / "tmt"


def _new(built, tmp_path: Path, key: str) -> Path:
    folder = tmp_path / f"new-{key}"
    folder.mkdir()
    shutil.copy(built[key], folder)
    return folder


def _tmt(tmp_path: Path, new: Path, repos: str) -> tuple[str, Path]:
    """Run the plan with tmt (its prepare step installs Fedora packages: skipped, rpm-bpf is this checkout's)."""
    if not TMT.exists():
        pytest.skip("tmt is not installed in .venv (./setup.sh installs it)")
    tree = tmp_path / "tree"
    tree.mkdir(exist_ok=True)
    for part in (".fmf", "plans", "ci"):
        shutil.copytree(REPO / part, tree / part, dirs_exist_ok=True)
    run = tmp_path / f"run-{new.name}"
    proc = subprocess.run(
        [
            str(TMT),
            "--feeling-safe",
            "--root",
            str(tree),
            "run",
            "--id",
            str(run),
            "--scratch",
            "-e",
            f"BPF_GATE_NEW={new}",
            "-e",
            f"BPF_GATE_REPOS={repos}",
            "-e",
            f"RPM_BPF={RPM_BPF}",
            "discover",
            "provision",
            "--how",
            "local",
            "execute",
            "report",
            "finish",
            "plan",
            "--name",
            "/plans/gate",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    results = run / "plans" / "gate" / "execute" / "results.yaml"
    assert results.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    (result,) = yaml.safe_load(results.read_text())
    return result["result"], run / "plans" / "gate" / "execute" / result["data-path"]


def test_tmt_plan_fails_a_clashing_build_and_passes_a_clean_one(built, gate_repo, tmp_path):
    verdict, data = _tmt(tmp_path, _new(built, tmp_path, "new-clash"), str(gate_repo))
    assert verdict == "fail"
    report = json.loads((data / "rpm-bpf.json").read_text())
    assert [f["related"] for f in report["findings"] if f["rule"] == "bpf-name-conflict"] == [
        ["other-tool-1.0-1.x86_64"]
    ]
    junit = ElementTree.parse(data / "rpm-bpf.junit.xml").getroot()
    assert any(case.find("failure") is not None for case in junit.iter("testcase"))
    assert json.loads((data / "rpm-bpf.sarif").read_text())["runs"][0]["results"]
    verdict, _ = _tmt(tmp_path, _new(built, tmp_path, "new-upgrade"), str(gate_repo))
    assert verdict == "pass"


def _job(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    out = tmp_path / "job-out"
    return subprocess.run(
        [str(REPO / "ci" / "gate" / "gate.sh")],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(REPO), RPM_BPF=RPM_BPF, BPF_GATE_OUT=str(out), **env),
    )


def test_ci_job_script(built, gate_repo, tmp_path):
    clash = _job(tmp_path, BPF_GATE_NEW=str(built["new-clash"]), BPF_GATE_REPOS=str(gate_repo))
    assert clash.returncode == 1 and "E: bpf-name-conflict" in clash.stdout
    for name in ("rpm-bpf.junit.xml", "rpm-bpf.sarif", "rpm-bpf.json"):
        assert (tmp_path / "job-out" / name).stat().st_size > 0
    passing = _job(
        tmp_path,
        BPF_GATE_NEW=str(built["new-clash-1.1"]),
        BPF_GATE_REPOS=str(gate_repo),
        BPF_GATE_BASELINE=str(built["new-clash"]),
    )
    assert passing.returncode == 0 and "existing" in passing.stdout
    broken = _job(tmp_path, BPF_GATE_NEW=str(built["new-clean"]), BPF_GATE_REPOS=str(tmp_path / "no-repo"))
    assert broken.returncode == 2 and "rpm-bpf: error:" in broken.stderr
