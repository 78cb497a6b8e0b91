"""BPF ELF objects written byte by byte with ``struct``: what the unit tests give the rules instead of clang's.

``bpf_object`` writes a minimal relocatable ELF64 (e_machine 247, EM_BPF) in
either byte order: the null section, one executable section per program
(two instructions each: ``r0 = 2; exit``), optionally ``.text`` (sub-programs),
``license``, ``.maps``, ``.BTF`` and ``.BTF.ext``, then ``.symtab``, ``.strtab``
and ``.shstrtab``. Section data comes first and the section header table
last, as clang lays it out, so that the whole object is also what a search
for an embedded object finds (the span ends with the section table).
``host_elf`` wraps bytes in an ELF file of another machine (x86-64), the way
a libbpf skeleton carries its object.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EM_BPF = 247
EM_X86_64 = 62
ET_REL, ET_EXEC, ET_DYN = 1, 2, 3

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 1, 2, 3
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
STB_LOCAL, STB_GLOBAL = 0, 1
STT_OBJECT, STT_FUNC = 1, 2

EHDR_SIZE, SHDR_SIZE, SYM_SIZE = 64, 64, 24


@dataclass
class _Section:
    name: str
    data: bytes
    type: int = SHT_PROGBITS
    flags: int = 0
    link: int = 0
    info: int = 0
    entsize: int = 0
    align: int = 8


def _order(big_endian: bool) -> str:
    return ">" if big_endian else "<"


def instructions(big_endian: bool = False) -> bytes:
    """``r0 = 2; exit`` (BPF_ALU64 | BPF_MOV | BPF_K, then BPF_JMP | BPF_EXIT): 16 bytes.

    The immediate and offset follow the byte order; the register nibbles are both 0 here, so their order
    (which also flips on big-endian) does not show.
    """
    o = _order(big_endian)
    return struct.pack(o + "BBhi", 0xB7, 0, 0, 2) + struct.pack(o + "BBhi", 0x95, 0, 0, 0)


def _strtab(names: list[str]) -> tuple[bytes, dict[str, int]]:
    blob, offsets = b"\0", {"": 0}
    for name in names:
        if name not in offsets:
            offsets[name] = len(blob)
            blob += name.encode() + b"\0"
    return blob, offsets


def _btf(big_endian: bool) -> bytes:
    """A BTF header with no types and an empty string section (magic 0xeb9f, version 1)."""
    o = _order(big_endian)
    return struct.pack(o + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, 1) + b"\0"


def _write(sections: list[_Section], big_endian: bool, e_type: int, machine: int) -> bytes:
    """An ELF64 file: header, section data (aligned), section header table; ``sections`` lacks the null
    section and the section name table, which are added here."""
    names, shstr_offsets = _strtab([s.name for s in sections] + [".shstrtab"])
    every = [_Section("", b"", type=0, align=0), *sections, _Section(".shstrtab", names, type=SHT_STRTAB, align=1)]
    o = _order(big_endian)
    body = bytearray(EHDR_SIZE)
    offsets = []
    for section in every:
        if section.align > 1:
            body += bytes(-len(body) % section.align)
        offsets.append(len(body) if section.data else 0)
        body += section.data
    body += bytes(-len(body) % 8)
    shoff = len(body)
    for section, offset in zip(every, offsets, strict=True):
        body += struct.pack(
            o + "IIQQQQIIQQ",
            shstr_offsets[section.name],
            section.type,
            section.flags,
            0,
            offset,
            len(section.data),
            section.link,
            section.info,
            section.align,
            section.entsize,
        )
    ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        o + "HHIQQQIHHHHHH", e_type, machine, 1, 0, 0, shoff, 0, EHDR_SIZE, 0, 0, SHDR_SIZE, len(every), len(every) - 1
    )
    body[:EHDR_SIZE] = header
    return bytes(body)


def bpf_object(
    programs: tuple[tuple[str, str], ...] = (("xdp", "xdp_prog"),),
    *,
    license: str | None = "GPL",
    btf: bool = True,
    btf_ext: bool = False,
    text: bool = False,
    maps: tuple[str, ...] = (),
    big_endian: bool = False,
    e_type: int = ET_REL,
    machine: int = EM_BPF,
) -> bytes:
    """A BPF object: ``programs`` are (section, function name) pairs, one section each, each function global."""
    code = instructions(big_endian)
    sections: list[_Section] = []
    symbols: list[tuple[str, int, int, int]] = []  # (name, info, section index, size)
    for section, name in programs:
        sections.append(_Section(section, code, flags=SHF_ALLOC | SHF_EXECINSTR))
        symbols.append((name, (STB_GLOBAL << 4) | STT_FUNC, len(sections), len(code)))
    if text:
        sections.append(_Section(".text", code, flags=SHF_ALLOC | SHF_EXECINSTR))
        symbols.append(("helper", (STB_GLOBAL << 4) | STT_FUNC, len(sections), len(code)))
    if license is not None:
        sections.append(_Section("license", license.encode() + b"\0", flags=SHF_ALLOC | SHF_WRITE, align=1))
    if maps:
        sections.append(_Section(".maps", bytes(32 * len(maps)), flags=SHF_ALLOC | SHF_WRITE))
        index = len(sections)
        symbols += [(name, (STB_GLOBAL << 4) | STT_OBJECT, index, 32) for name in maps]
    if btf:
        sections.append(_Section(".BTF", _btf(big_endian), align=4))
    if btf_ext:
        sections.append(_Section(".BTF.ext", _btf(big_endian), align=4))
    strtab, str_offsets = _strtab([name for name, *_ in symbols])
    o = _order(big_endian)
    symtab = bytes(SYM_SIZE) + b"".join(
        struct.pack(o + "IBBHQQ", str_offsets[name], info, 0, shndx, 0, size) for name, info, shndx, size in symbols
    )
    symtab_index = len(sections) + 1  # after the null section
    sections.append(
        _Section(".symtab", symtab, type=SHT_SYMTAB, link=symtab_index + 1, info=1, entsize=SYM_SIZE, align=8)
    )
    sections.append(_Section(".strtab", strtab, type=SHT_STRTAB, align=1))
    return _write(sections, big_endian, e_type, machine)


def host_elf(payload: bytes = b"", big_endian: bool = False) -> bytes:
    """An x86-64 shared object whose ``.rodata`` holds ``payload`` (an embedded BPF object, say) at offset 64."""
    return _write([_Section(".rodata", payload, flags=SHF_ALLOC, align=1)], big_endian, ET_DYN, EM_X86_64)


# What libmagic (through rpmbuild) records for such files.
BPF_CLASS = "ELF 64-bit LSB relocatable, eBPF, version 1 (SYSV), not stripped"
BPF_CLASS_BE = "ELF 64-bit MSB relocatable, eBPF, version 1 (SYSV), not stripped"
HOST_CLASS = "ELF 64-bit LSB shared object, x86-64, version 1 (SYSV), dynamically linked, stripped"
GO_CLASS = "ELF 64-bit LSB executable, x86-64, version 1 (SYSV), statically linked, Go BuildID=abc, stripped"
