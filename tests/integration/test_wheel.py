"""The wheel: installed with pip into a fresh virtualenv (no system site packages: the rpm
bindings come through the PyPI `rpm` shim), BPFCheck lands where rpmlint loads checks from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.support.paths import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (work / "dist").glob("rpm_bpf-*.whl")
    venv = work / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel), "rpmlint>=2.10"],
        capture_output=True,
        text=True,
    )
    if installed.returncode != 0 and "No matching distribution" in installed.stderr + installed.stdout:
        pytest.skip(f"the package index cannot serve the wheel's dependencies: {installed.stderr[-500:]}")
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


def test_wheel_installs_the_check_into_rpmlint(wheel_venv, rpms, objects, tmp_path):
    (checks,) = wheel_venv.glob("lib/python3*/site-packages/rpmlint/checks")
    assert (checks / "BPFCheck.py").read_bytes() == (REPO / "rpmlint_checks" / "BPFCheck.py").read_bytes()
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CONFIG_DIRS=str(tmp_path / "none"))
    env.pop("PYTHONPATH", None)
    enabled = subprocess.run(
        [str(wheel_venv / "bin" / "rpm-bpf"), "rpmlint-enable", "--user"], capture_output=True, text=True, env=env
    )
    assert enabled.returncode == 0, enabled.stderr
    assert (tmp_path / "config" / "rpmlint" / "bpf.toml").read_text().count('"BPFCheck"') == 1
    bad = rpms.build(PkgSpec("wheel-misplaced", files=[PkgFile("/opt/wheel/x.o", objects.full)]))
    linted = subprocess.run([str(wheel_venv / "bin" / "rpmlint"), str(bad)], capture_output=True, text=True, env=env)
    assert "wheel-misplaced.x86_64: E: bpf-object-outside-bpfdir /opt/wheel/x.o" in linted.stdout, (
        linted.stdout + linted.stderr
    )
    # Without the drop-in, plain rpmlint does not run the check: the drop-in is what enables it.
    (tmp_path / "config" / "rpmlint" / "bpf.toml").unlink()
    plain = subprocess.run([str(wheel_venv / "bin" / "rpmlint"), str(bad)], capture_output=True, text=True, env=env)
    assert "bpf-object-outside-bpfdir" not in plain.stdout


def test_wheel_rpm_bpf_command_and_templates(wheel_venv, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    version = subprocess.run(
        [str(wheel_venv / "bin" / "rpm-bpf"), "--version"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert version.returncode == 0 and version.stdout.startswith("rpm-bpf "), version.stderr
    spec = subprocess.run(
        [str(wheel_venv / "bin" / "rpm-bpf"), "spec", "new", "fromwheel", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert spec.returncode == 0, spec.stderr
    assert "%bpf_install -d fromwheel" in (tmp_path / "fromwheel.spec").read_text()
