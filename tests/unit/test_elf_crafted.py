"""The ELF objects of tests/support/bpfelf.py read by the engine as intended, in both byte orders.

The per-package rule tests rely on these bytes meaning what they say: if
``elf.inspect`` read them otherwise, those tests would prove nothing.
"""

from __future__ import annotations

import struct

import pytest

from rpm_bpf.bpf import elf
from rpm_bpf.bpf.progtag import predict
from tests.support.bpfelf import EM_X86_64, ET_EXEC, bpf_object, host_elf, instructions


@pytest.mark.parametrize("big_endian, order", [(False, "little"), (True, "big")])
def test_full_object_is_read_as_written(big_endian, order):
    data = bpf_object(
        (("xdp", "xdp_count"), ("tc", "tc_pass")), maps=("counters",), btf_ext=True, big_endian=big_endian
    )
    assert data[5] == (2 if big_endian else 1)  # EI_DATA
    info = elf.inspect(data, "full.o")
    assert info.endianness == order and info.elf_class == 64
    assert info.elf_type == "ET_REL" and info.is_relocatable
    assert {(p.section, p.name) for p in info.programs} == {("xdp", "xdp_count"), ("tc", "tc_pass")}
    assert info.program_sections == 2 and info.has_programs
    assert info.maps == ["counters"]
    assert info.license == "GPL"
    assert info.has_btf and info.has_btf_ext and not info.has_debug_info
    assert info.size == len(data)
    assert info.sections[0] == "" and info.sections[-1] == ".shstrtab"


def test_optional_sections_are_left_out():
    info = elf.inspect(bpf_object(license=None, btf=False))
    assert info.license is None and not info.has_btf and not info.has_btf_ext
    assert "license" not in info.sections and ".BTF" not in info.sections
    assert [p.name for p in info.programs] == ["xdp_prog"]


def test_other_license_text_is_kept():
    assert elf.inspect(bpf_object(license="Dual BSD/GPL")).license == "Dual BSD/GPL"


def test_text_alone_is_no_program():
    """.text holds sub-programs: an object with only .text has no program section."""
    sub_only = elf.inspect(bpf_object((), text=True))
    assert ".text" in sub_only.sections and sub_only.program_sections == 0 and not sub_only.has_programs
    nothing = elf.inspect(bpf_object((), text=False))
    assert ".text" not in nothing.sections and not nothing.has_programs
    both = elf.inspect(bpf_object(text=True))
    assert both.program_sections == 1 and [p.section for p in both.programs] == ["xdp"]


def test_header_fields_can_be_changed():
    assert elf.inspect(bpf_object(e_type=ET_EXEC)).elf_type == "ET_EXEC"
    other = bpf_object(machine=EM_X86_64)
    assert not elf.is_bpf_elf(other) and elf.elf_machine(other) == EM_X86_64
    with pytest.raises(elf.BpfElfError, match=r"o\.o: ELF file for machine 62, not BPF \(247\)"):
        elf.inspect(other, "o.o")


def test_instructions_follow_the_byte_order():
    little, big = instructions(False), instructions(True)
    assert little == bytes.fromhex("b7000000020000009500000000000000")
    assert big == bytes.fromhex("b7000000000000029500000000000000")


def test_the_program_tag_is_the_kernels():
    """r0 = 2; exit: the tag the kernel gave for these two instructions (tests/integration/test_progtag.py)."""
    (prediction,) = predict(bpf_object())
    assert (prediction.kernel_name, prediction.prog_type, prediction.insns) == ("xdp_prog", "xdp", 2)
    assert prediction.tag == "614b434cd8324ecc"


@pytest.mark.parametrize("big_endian", [False, True])
def test_object_embedded_in_a_host_elf_is_found_whole(big_endian):
    obj = bpf_object(big_endian=big_endian)
    host = host_elf(b"padding" + obj + b"trailer")
    assert elf.elf_machine(host) == EM_X86_64
    (found,) = elf.find_embedded(host)
    assert found.offset == 64 + len(b"padding")
    assert host[found.offset : found.offset + found.object.size] == obj
    assert found.object.endianness == ("big" if big_endian else "little")
    assert [p.name for p in found.object.programs] == ["xdp_prog"]


def test_host_elf_without_object_has_none():
    assert elf.find_embedded(host_elf(b"no object here")) == []


def test_damaged_objects_are_refused():
    data = bpf_object()
    with pytest.raises(elf.BpfElfError, match=r"t\.o: section header table .* runs past the end"):
        elf.inspect(data[: len(data) // 2], "t.o")
    huge = bytearray(data)
    struct.pack_into("<H", huge, 60, 0xFFFF)  # e_shnum
    with pytest.raises(elf.BpfElfError, match=r"h\.o: .*(section count|runs past the end)"):
        elf.inspect(bytes(huge), "h.o")
    with pytest.raises(elf.BpfElfError, match=r"x\.o: not an ELF file"):
        elf.inspect(b"not an ELF file at all", "x.o")
