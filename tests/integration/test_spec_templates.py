"""`rpm-bpf spec new`: generated specs build with rpmbuild as they are and have no BPF finding."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.rpmlint import bpf_messages, rpmlint

pytestmark = pytest.mark.integration


def _generate_and_build(tmp_path: Path, name: str, *options: str) -> tuple[subprocess.CompletedProcess, list[Path]]:
    out = tmp_path / name
    gen = run_cli("spec", "new", name, "-o", out, *options)
    assert gen.returncode == 0, gen.stderr
    # Debian's rpm database does not know the BuildRequires (they are dpkg packages): --nodeps.
    proc = subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--nodeps",
            "--define",
            f"_topdir {out / 'top'}",
            "--define",
            f"_sourcedir {out}",
            str(out / f"{name}.spec"),
        ],
        capture_output=True,
        text=True,
    )
    return proc, sorted((out / "top" / "RPMS").rglob("*.rpm"))


@pytest.mark.parametrize(
    "name,options,expected",
    [
        ("xdp-counter", ("--kind", "prebuilt"), {"xdp-counter"}),
        ("xdp-counter-noarch", ("--kind", "prebuilt", "--noarch"), {"xdp-counter-noarch"}),
        ("xdpkit", ("--kind", "library-and-tools"), {"libxdpkit", "xdpkit-tools"}),
    ],
)
def test_generated_spec_builds_and_scans_clean(tmp_path, name, options, expected):
    proc, rpms = _generate_and_build(tmp_path, name, *options)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning" not in proc.stderr.lower(), proc.stderr
    assert {p.name.rsplit("-", 2)[0] for p in rpms} == expected
    report = run_cli("scan", "-f", "json", *rpms).json()
    assert report["findings"] == [] and report["exit_code"] == 0
    provides = subprocess.run(["rpm", "-qp", "--provides", *rpms], capture_output=True, text=True).stdout
    assert f"bpf({name}/" in provides
    # rpmlint's BPFCheck agrees, on the packages and on the spec itself.
    linted = rpmlint(*rpms, tmp_path / name / f"{name}.spec")
    assert "Traceback" not in linted.stderr
    assert bpf_messages(linted) == set(), linted.stdout


def test_spec_new_refuses_to_overwrite_and_bad_names(tmp_path):
    assert run_cli("spec", "new", "dup", "-o", tmp_path).returncode == 0
    again = run_cli("spec", "new", "dup", "-o", tmp_path)
    assert again.returncode == 2 and "exist (use --force)" in again.stderr
    assert run_cli("spec", "new", "dup", "-o", tmp_path, "--force").returncode == 0
    bad = run_cli("spec", "new", "../evil", "-o", tmp_path)
    assert bad.returncode == 2 and "not a valid package name" in bad.stderr
