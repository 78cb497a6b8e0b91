"""``bpf-archive-member``: BPF objects inside ar archives (static libraries), on in-memory packages and archives
laid out as GNU and BSD ar write them; and the archive reader (rpm_bpf/bpf/archive.py) on both layouts."""

from __future__ import annotations

from rpm_bpf.bpf import archive
from tests.support.archives import ARCHIVE_CLASS, bsd_archive, gnu_archive, header
from tests.support.bpfelf import bpf_object
from tests.support.fakepkg import FakePkg, bpf, file

OBJ = bpf_object((("xdp", "xdp_prog"), ("tc", "tc_prog")))


def test_members_of_both_layouts_are_read():
    members = [("odd.txt", b"x" * 7), ("a_name_longer_than_fifteen.o", OBJ), ("short.o", OBJ)]
    for layout in (gnu_archive, bsd_archive):
        data = layout(members)
        read = list(archive.members(data))
        assert [m.name for m in read] == [n for n, _ in members]
        assert [data[m.offset : m.offset + m.size] for m in read] == [d for _, d in members]
        assert [m.name for m, _ in archive.bpf_members(data)] == ["a_name_longer_than_fifteen.o", "short.o"]


def test_bpf_members_are_information_never_errors():
    data = gnu_archive([("helpers.o", OBJ), ("readme.txt", b"text\n")])
    pkg = FakePkg(
        [bpf("/usr/lib64/bpf/tool/prog.o", OBJ), file("/usr/lib64/libtool_bpf.a", data, fileclass=ARCHIVE_CLASS)],
        requires=["bpf-filesystem"],
    )
    result = pkg.check()
    (member,) = [f for f in result.findings if f.rule == "bpf-archive-member"]
    assert member.severity.letter == "I" and member.path == "/usr/lib64/libtool_bpf.a"
    assert member.detail.startswith("member helpers.o at offset ") and "xdp/xdp_prog" in member.detail
    assert not [f for f in result.findings if f.severity.letter == "E"]


def test_archive_without_bpf_members_and_crafted_archives_say_nothing():
    for data in (
        gnu_archive([("x86.o", b"\x7fELF\x02\x01\x01" + bytes(60))]),
        archive.MAGIC + header(b"huge.o/", 1 << 40) + OBJ,  # a size past the end: the walk stops
        archive.MAGIC + b"garbage",
    ):
        pkg = FakePkg([bpf("/usr/lib64/bpf/tool/p.o", OBJ), file("/usr/lib64/libx.a", data, fileclass=ARCHIVE_CLASS)])
        assert "bpf-archive-member" not in pkg.rules(pkg.check())


def test_members_are_parsed_within_a_budget(monkeypatch):
    monkeypatch.setattr(archive, "MAX_PARSED_MEMBERS", 3)
    data = gnu_archive([(f"m{i}.o", OBJ) for i in range(10)])
    assert len(list(archive.members(data))) == 10
    assert [m.name for m, _ in archive.bpf_members(data)] == ["m0.o", "m1.o", "m2.o"]


def test_symbol_with_an_extended_section_index_is_refused():
    """SHN_XINDEX (0xffff) means "look in SHT_SYMTAB_SHNDX", which no BPF object needs: reading it as
    "no section" would make a defined function look like a kfunc and give a wrong tag."""
    import io
    import struct

    import pytest
    from elftools.elf.elffile import ELFFile

    from rpm_bpf.bpf import elf
    from rpm_bpf.bpf.progtag import PredictionError, predict

    symtab = ELFFile(io.BytesIO(OBJ)).get_section_by_name(".symtab")
    patched = bytearray(OBJ)
    struct.pack_into("<H", patched, symtab["sh_offset"] + 24 + 6, 0xFFFF)  # the second symbol's st_shndx
    with pytest.raises(elf.BpfElfError, match="SHT_SYMTAB_SHNDX"):
        elf.inspect(bytes(patched))
    with pytest.raises(PredictionError):
        predict(bytes(patched))
