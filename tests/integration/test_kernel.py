"""The ELF inspection against the real kernel: what rpm-bpf calls loadable loads with bpftool,
and what it flags as the wrong byte order is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from rpm_bpf.bpf import elf

pytestmark = pytest.mark.integration
BPFFS = Path("/sys/fs/bpf")


@pytest.fixture(scope="module")
def bpffs() -> Path:
    if os.geteuid() != 0:
        pytest.skip("loading BPF programs needs root")
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool is not installed (./setup.sh installs it)")
    mounted = subprocess.run(["findmnt", "-t", "bpf", str(BPFFS)], capture_output=True).returncode == 0
    if not mounted:
        proc = subprocess.run(["mount", "-t", "bpf", "bpf", str(BPFFS)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount the BPF file system here: {proc.stderr.strip()}")
    pin = BPFFS / f"rpm-bpf-test-{uuid.uuid4().hex[:8]}"
    pin.mkdir()
    yield pin
    shutil.rmtree(pin, ignore_errors=True)


def _load(obj: Path, pin: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bpftool", "prog", "loadall", str(obj), str(pin)], capture_output=True, text=True)


def test_loadable_object_loads_with_the_programs_inspection_found(objects, bpffs):
    info = elf.inspect(objects.full.read_bytes())
    proc = _load(objects.full, bpffs / "full")
    assert proc.returncode == 0, proc.stderr
    try:
        loaded = {}
        for pinned in (bpffs / "full").iterdir():
            show = subprocess.run(
                ["bpftool", "-j", "prog", "show", "pinned", str(pinned)], capture_output=True, text=True, check=True
            )
            data = json.loads(show.stdout)
            loaded[data["name"]] = data
        # The kernel keeps 15 characters of a program name.
        assert set(loaded) == {p.name[:15] for p in info.programs}
        assert loaded["xdp_count"]["type"] == "xdp" and loaded["xdp_count"]["gpl_compatible"] is True
        assert info.license == "GPL"
    finally:
        shutil.rmtree(bpffs / "full", ignore_errors=True)


def test_other_byte_order_is_refused_as_the_rule_says(objects, bpffs):
    assert elf.inspect(objects.full_eb.read_bytes()).endianness == "big"  # bpf-endianness-mismatch on x86_64
    proc = _load(objects.full_eb, bpffs / "eb")
    shutil.rmtree(bpffs / "eb", ignore_errors=True)
    assert proc.returncode != 0
    assert "endianness mismatch" in proc.stderr
