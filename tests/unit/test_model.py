"""model.py: the package records every source fills, and the bpf(NAME) provides."""

from __future__ import annotations

import stat

import pytest

from rpm_bpf.model import (
    RPMFILE_CONFIG,
    RPMFILE_GHOST,
    FileEntry,
    Package,
    PackageRef,
    bpf_provide,
    bpf_provide_name,
    bpf_provide_names,
)


def entry(path="/usr/lib64/bpf/p.o", mode=stat.S_IFREG | 0o644, flags=0, fileclass="", linkto=""):
    return FileEntry(path, mode, 1, "root", "root", flags, fileclass, "", linkto)


@pytest.mark.parametrize(
    "epoch, evr",
    [(None, "1.0-2"), (0, "1.0-2"), (3, "3:1.0-2")],
)
def test_evr_and_nevra_as_dnf_writes_them(epoch, evr):
    ref = PackageRef("tool", epoch, "1.0", "2", "aarch64", "x.rpm")
    assert ref.evr == evr and ref.nevra == f"tool-{evr}.aarch64" and ref.label == "tool.aarch64"
    assert PackageRef("tool", epoch, "1.0", "2", "aarch64").source == ""


def test_file_kinds_and_flags():
    assert entry().is_regular and not entry().is_dir and not entry().is_symlink
    assert entry(mode=stat.S_IFDIR | 0o755).is_dir
    assert entry(mode=stat.S_IFLNK | 0o777).is_symlink
    assert entry(flags=RPMFILE_GHOST).is_ghost and not entry().is_ghost
    assert entry(flags=RPMFILE_CONFIG).is_config and not entry(flags=RPMFILE_GHOST).is_config


@pytest.mark.parametrize(
    "fileclass, bpf, elf",
    [
        ("ELF 64-bit LSB relocatable, eBPF, version 1 (SYSV), not stripped", True, True),
        ("ELF 64-bit MSB relocatable, unknown arch 0xf7 version 1 (SYSV)", True, True),
        ("ELF 64-bit LSB pie executable, x86-64, version 1 (SYSV)", False, True),
        ("ASCII text", False, False),
        ("", False, False),
    ],
)
def test_what_libmagic_says(fileclass, bpf, elf):
    assert (entry(fileclass=fileclass).class_says_bpf, entry(fileclass=fileclass).class_says_elf) == (bpf, elf)


def test_file_entry_keeps_its_link_target():
    link = entry(mode=stat.S_IFLNK | 0o777, linkto="prog.o")
    assert link[8] == "prog.o"  # stored...
    assert link.linkto == "prog.o"  # ...and read back


def test_why_a_file_is_searched_for_embedded_objects():
    elf = entry("/usr/bin/tool", stat.S_IFREG | 0o755, fileclass="ELF 64-bit LSB pie executable, x86-64")
    go = entry("/usr/bin/agent", stat.S_IFREG | 0o755, fileclass="ELF 64-bit LSB executable, Go BuildID=x")
    text = entry("/usr/share/doc/README", fileclass="ASCII text")
    ref = PackageRef("tool", None, "1", "1", "x86_64")
    plain = Package(ref, "tool-1-1.src.rpm", ())
    assert [plain.search_signal(e) for e in (elf, go, text)] == [None, "go", None]
    linked = Package(ref, "tool-1-1.src.rpm", ("libbpf.so.1()(64bit)",), embedded_signal="libbpf-dynamic")
    assert [linked.search_signal(e) for e in (elf, go, text)] == ["libbpf-dynamic", "libbpf-dynamic", None]
    plain.file_signals[elf.path] = "libbpf-static"
    assert plain.search_signal(elf) == "libbpf-static"
    deep = Package(ref, "", (), deep=True)
    assert deep.search_signal(text) == "deep"
    assert not plain.is_noarch and Package(ref._replace(arch="noarch"), "", ()).is_noarch


@pytest.mark.parametrize(
    "capability, name",
    [
        ("bpf(tool/prog.o)", "tool/prog.o"),
        ("bpf(prog.o)", "prog.o"),
        ("bpf()", None),
        ("bpf(two words)", None),
        ("bpf(x", None),
        ("libbpf.so.1()(64bit)", None),
        ("bpf(x) = 1.0", None),
    ],
)
def test_bpf_provide_names(capability, name):
    assert bpf_provide_name(capability) == name


def test_bpf_provide_round_trip():
    assert bpf_provide("tool/prog.o") == "bpf(tool/prog.o)"
    assert bpf_provide_name(bpf_provide("tool/prog.o")) == "tool/prog.o"
    assert bpf_provide_names(["bpf(a.o)", "tool = 1", "bpf(b.o)", "bpf(a.o)", "bpf( )"]) == {"a.o", "b.o"}
