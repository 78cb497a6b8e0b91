"""which's matching on in-memory records (no kernel, no rpm database): what the loader evidence may decide."""

from __future__ import annotations

from rpm_bpf.flows.which import Source, match
from rpm_bpf.model import PackageRef
from rpm_bpf.sources.loaded import Loaded

ROOT = "/srv/root"
TAG = "0123456789abcdef"


def _source(name: str, path: str, section: str = "xdp", prog: str = "xdp_prog") -> Source:
    return Source(PackageRef(name, None, "1.0", "1", "x86_64", "rpmdb"), f"{name}-1.0-1.src.rpm", path, None,
                  section, prog, prog, "xdp", TAG, "f" * 16, ())  # fmt: skip


SOURCES = [_source("tool", "/usr/bin/tool"), _source("objs", "/usr/lib64/bpf/objs/prog.o")]


def test_the_loaders_own_file_decides_and_says_so():
    (m,) = match([Loaded(1, "xdp", "xdp_prog", TAG, (), ((10, f"{ROOT}/usr/bin/tool"),))], SOURCES, {}, ROOT)
    assert m.confidence == "certain" and [s.path for s in m.sources] == ["/usr/bin/tool"]
    assert m.reason == "2 packaged objects predict this tag; the loader's executable decided"


def test_a_host_process_is_no_evidence_about_the_roots_file_of_the_same_name():
    (m,) = match([Loaded(1, "xdp", "xdp_prog", TAG, (), ((10, "/usr/bin/tool"),))], SOURCES, {}, ROOT)
    assert m.confidence == "tag" and {s.path for s in m.sources} == {"/usr/bin/tool", "/usr/lib64/bpf/objs/prog.o"}


def test_same_code_twice_in_one_object_is_told_apart_by_the_loaded_name():
    sources = [_source("tool", "/usr/bin/tool", "tp_btf/x", "x_btf"), _source("tool", "/usr/bin/tool", "raw_tp/x", "x")]
    (m,) = match([Loaded(1, "xdp", "x_btf", TAG, (), ((10, "/usr/bin/tool"),))], sources, {}, "/")
    assert m.confidence == "certain" and [s.name for s in m.sources] == ["x_btf"] and m.reason is None


def test_weak_and_unknown_say_why():
    other = "fedcba9876543210"
    (weak,) = match([Loaded(1, "xdp", "xdp_prog", other, (), ())], SOURCES, {}, "/")
    assert weak.confidence == "weak" and weak.reason.startswith("no packaged program has this tag")
    (unknown,) = match([Loaded(2, "xdp", "nobody", other, (), ())], SOURCES, {}, "/")
    assert unknown.confidence == "unknown" and unknown.sources == ()
