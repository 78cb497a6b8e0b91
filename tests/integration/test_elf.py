"""BPF ELF inspection on objects compiled by clang, and on damaged copies of them.

Integration, not unit: the objects come from the session's clang build (the ``objects`` fixture);
tests/unit/test_elf_crafted.py checks the same code on objects written byte by byte.
"""

from __future__ import annotations

import struct

import pytest

from rpm_bpf.bpf import elf

pytestmark = pytest.mark.integration


def test_full_object_is_described(objects):
    info = elf.inspect(objects.full.read_bytes(), "full.bpf.o")
    assert info.endianness == "little"
    assert info.elf_type == "ET_REL" and info.is_relocatable
    assert {(p.section, p.name) for p in info.programs} == {("xdp", "xdp_count"), ("tc", "tc_pass")}
    assert info.maps == ["counters"]
    assert info.license == "GPL"
    assert info.has_btf and info.has_btf_ext and info.has_debug_info


@pytest.mark.parametrize("attr,order", [("full_el", "little"), ("full_eb", "big")])
def test_byte_order_follows_clang_target(objects, attr, order):
    info = elf.inspect(getattr(objects, attr).read_bytes())
    assert info.endianness == order
    assert len(info.programs) == 2


def test_object_without_btf_or_license(objects):
    no_btf = elf.inspect(objects.no_btf.read_bytes())
    assert not no_btf.has_btf and not no_btf.has_debug_info and no_btf.license == "GPL"
    bare = elf.inspect(objects.no_license.read_bytes())
    assert bare.license is None and [p.name for p in bare.programs] == ["xdp_drop"] and bare.maps == []


def test_non_elf_and_other_machine_are_rejected(objects):
    with pytest.raises(elf.BpfElfError, match=r"x\.o: not an ELF file"):
        elf.inspect(b"hello world, not elf at all", "x.o")
    with pytest.raises(elf.BpfElfError, match="loader: ELF file for machine 62, not BPF"):
        elf.inspect(objects.loader.read_bytes(), "loader")


def test_truncated_object(objects):
    data = objects.full.read_bytes()
    with pytest.raises(elf.BpfElfError, match=r"t\.o: section header table .* runs past the end"):
        elf.inspect(data[: len(data) // 2], "t.o")


def _patched(data: bytes, fmt: str, offset: int, value: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, value)
    return bytes(buf)


def test_huge_section_count_is_refused_quickly(objects):
    data = _patched(objects.full.read_bytes(), "<H", 60, 0xFFFF)  # e_shnum
    with pytest.raises(elf.BpfElfError, match=r"h\.o: .*(section count|runs past the end)"):
        elf.inspect(data, "h.o")


def test_garbage_sections_with_bpf_machine(objects):
    data = bytearray(objects.full.read_bytes())
    shoff = struct.unpack_from("<Q", data, 40)[0]
    # Overwrite every section header after the null one with garbage.
    for i in range(shoff + 64, len(data)):
        data[i] = (i * 131) & 0xFF
    with pytest.raises(elf.BpfElfError, match=r"g\.o: "):
        elf.inspect(bytes(data), "g.o")


def test_elf_header_only(objects):
    header = objects.full.read_bytes()[:64]
    assert elf.is_bpf_elf(header)
    with pytest.raises(elf.BpfElfError):
        elf.inspect(header, "hdr.o")


def test_embedded_object_in_skeleton_loader(objects):
    found = elf.find_embedded(objects.loader.read_bytes())
    assert len(found) == 1
    emb = found[0].object
    assert emb.license == "GPL" and {p.name for p in emb.programs} == {"xdp_count", "tc_pass"}
    # The skeleton carries the object byte for byte.
    original = objects.full.read_bytes()
    data = objects.loader.read_bytes()
    assert emb.size == len(original)
    assert data[found[0].offset : found[0].offset + emb.size] == original


def test_no_embedded_object_in_plain_elf():
    import sys

    with open(sys.executable, "rb") as f:
        assert elf.find_embedded(f.read()) == []
