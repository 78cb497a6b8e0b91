"""Predicted program tags against the real kernel: objects loaded with bpftool (libbpf), tags compared.

Needs root and a BPF filesystem; the objects are built by clang here (maps,
global data, static and global sub-programs, a bpf_loop callback) or taken
from the real-world corpus (libxdp's dispatcher, an xdp-filter program).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from rpm_bpf.bpf.progtag import kernel_tags, predict
from rpm_bpf.samples import build as samples
from tests.support.programs import CORE_C, SUBPROGRAMS_C

pytestmark = pytest.mark.integration


def _loaded(bpffs: Path, obj: Path) -> dict[str, dict]:
    """bpftool (libbpf) loads every program of ``obj``; what the kernel reports for each, by name."""
    pins = bpffs / f"rpm-bpf-test-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(["bpftool", "prog", "loadall", str(obj), str(pins)], capture_output=True, text=True)
    try:
        assert proc.returncode == 0, proc.stderr[-3000:]
        shown = {}
        for pin in sorted(pins.iterdir()):
            info = json.loads(
                subprocess.run(
                    ["bpftool", "-j", "prog", "show", "pinned", str(pin)], capture_output=True, text=True, check=True
                ).stdout
            )
            shown[info["name"]] = info
        return shown
    finally:
        shutil.rmtree(pins, ignore_errors=True)  # unpinned: the programs go away


def _assert_predicted(obj: Path, shown: dict[str, dict]) -> None:
    predicted = {p.kernel_name: p for p in predict(obj.read_bytes())}
    assert set(predicted) == set(shown)
    for name, info in shown.items():
        assert (predicted[name].tag, predicted[name].prog_type) == (info["tag"], info["type"]), name


def test_two_instruction_example_from_the_field_notes():
    # r0 = 2; exit: tag 614b434cd8324ecc on this kernel (SHA-256), 3b185187f1855c4c with SHA-1
    code = bytes.fromhex("b7000000020000009500000000000000")
    assert kernel_tags(code) == ("614b434cd8324ecc", "3b185187f1855c4c")


def test_maps_and_two_programs(bpffs, objects):
    _assert_predicted(objects.full, _loaded(bpffs, objects.full))


def test_global_data_subprograms_and_callbacks(bpffs, tmp_path):
    obj = samples.compile_bpf(SUBPROGRAMS_C, tmp_path / "sub.bpf.o")
    shown = _loaded(bpffs, obj)
    _assert_predicted(obj, shown)
    by_name = {p.kernel_name: p for p in predict(obj.read_bytes())}
    # The sub-programs were appended (more instructions than the program's own function), as libbpf does.
    assert by_name["xdp_sub"].insns > 12 and by_name["tc_sub"].insns > 5
    assert by_name["xdp_sub"].caveats == ()


def test_real_world_objects(bpffs, tmp_path):
    from rpm_bpf.sources import bpfdirs
    from rpm_bpf.sources.rpmfile import open_rpm
    from tests.support import realworld

    rpms = realworld.rpms()
    corpus = realworld.corpus
    (libxdp,) = rpms.glob("deb-libxdp1-*.rpm")
    opened = open_rpm(str(libxdp), bpfdirs.for_arch)
    wanted = {
        f"{corpus.MULTIARCH_BPF}/{name}"
        for name in ("xdp-dispatcher.o", "xdpfilt_alw_tcp.o", "xsk_def_xdp_prog.o", "xsk_def_xdp_prog_5.3.o")
    }
    for path, data in opened.read(wanted).items():
        assert isinstance(data, bytes), data
        obj = tmp_path / Path(path).name
        obj.write_bytes(data)
        _assert_predicted(obj, _loaded(bpffs, obj))


def test_inspect_shows_the_predictions_for_embedded_objects_too(objects):
    import sys

    from tests.support.paths import REPO

    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "inspect", "-f", "json", str(objects.loader)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.returncode == 0, proc.stderr
    (info,) = json.loads(proc.stdout)
    (embedded,) = info["embedded"]
    expected = {p.kernel_name: p.tag for p in predict(objects.full.read_bytes())}
    assert {k["kernel_name"]: k["tag"] for k in embedded["kernel"]} == expected
    assert {k["type"] for k in embedded["kernel"]} == {"xdp", "sched_cls"}


def test_core_program_is_predicted_with_a_caveat_and_the_kernel_disagrees(bpffs, tmp_path):
    """CO-RE: libbpf rewrites the field offset for this kernel, so the tag cannot be known from the file."""
    obj = samples.compile_bpf(CORE_C, tmp_path / "core.bpf.o")
    (prediction,) = predict(obj.read_bytes())
    assert prediction.kernel_name == "core_reader" and prediction.prog_type == "kprobe"
    assert any("CO-RE" in caveat for caveat in prediction.caveats)
    shown = _loaded(bpffs, obj)
    assert shown["core_reader"]["type"] == "kprobe"
    # tgid is far from offset 0 in this kernel's task_struct: the relocated code differs from the file's
    assert shown["core_reader"]["tag"] != prediction.tag
