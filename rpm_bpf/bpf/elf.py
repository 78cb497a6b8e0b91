"""BPF ELF inspection with pyelftools.

A BPF object is an ELF file with e_machine EM_BPF (247), normally ET_REL.
Everything here works on bytes (from disk or from an RPM payload) and turns
any parsing failure into ``BpfElfError`` with a sentence a packager can read.
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections import namedtuple
from typing import TYPE_CHECKING, Any

from rpm_bpf.errors import RpmBpfError

if TYPE_CHECKING:
    from rpm_bpf.bpf.lskelsig import SkeletonSignature

EM_BPF = 247
ELF_MAGIC = b"\x7fELF"
_SHF_EXECINSTR = 0x4
_MAX_SECTIONS = 65535  # more than any real object; guards against crafted headers


class BpfElfError(RpmBpfError, ValueError):
    """The bytes are not a usable BPF ELF object."""


# Named tuples and a plain class, not dataclasses: see findings.py.
class Program(namedtuple("Program", ("section", "name"))):
    __slots__ = ()
    section: str
    name: str


class BpfObject:
    """What a BPF ELF object holds, as far as the rules care."""

    __slots__ = (
        "elf_class",
        "elf_type",
        "endianness",
        "has_btf",
        "has_btf_ext",
        "has_debug_info",
        "license",
        "maps",
        "program_sections",
        "programs",
        "sections",
        "signature",
        "size",
    )

    def __init__(self, endianness: str, elf_class: int, elf_type: str, size: int) -> None:
        self.endianness = endianness  # "little" or "big"
        self.elf_class = elf_class  # 32 or 64
        self.elf_type = elf_type  # "ET_REL" expected
        self.size = size
        self.programs: list[Program] = []
        self.maps: list[str] = []
        self.license: str | None = None
        self.has_btf = False
        self.has_btf_ext = False
        self.has_debug_info = False
        self.sections: list[str] = []
        self.signature: SkeletonSignature | None = None  # a signed light skeleton's (lskelsig.py)
        # Executable sections with instructions other than .text (which holds
        # sub-programs): none means nothing in the object can be loaded as a
        # program (a toolchain's crt*.o, a library of BPF functions).
        self.program_sections = 0

    def __repr__(self) -> str:
        return f"BpfObject({self.to_dict()!r})"

    @property
    def has_programs(self) -> bool:
        return self.program_sections > 0

    @property
    def is_relocatable(self) -> bool:
        return self.elf_type == "ET_REL"

    def to_dict(self) -> dict[str, Any]:
        return {
            "endianness": self.endianness,
            "elf_class": self.elf_class,
            "elf_type": self.elf_type,
            "size": self.size,
            "programs": [{"section": p.section, "name": p.name} for p in self.programs],
            "maps": list(self.maps),
            "license": self.license,
            "btf": self.has_btf,
            "btf_ext": self.has_btf_ext,
            "debug_info": self.has_debug_info,
            "program_sections": self.program_sections,
            "signature": None if self.signature is None else self.signature.to_dict(),
        }


STT_OBJECT, STT_FUNC, STT_SECTION = 1, 2, 3
STB_LOCAL, STB_GLOBAL = 0, 1
_SHN_LORESERVE = 0xFF00
_SHN_XINDEX = 0xFFFF


class Symbol(namedtuple("Symbol", ("name", "value", "size", "type", "bind", "shndx"))):
    """A symbol table entry: ``type``/``bind`` as numbers (STT_*, STB_*), ``shndx`` the section it is defined
    in, None when it is in none (undefined, absolute, common)."""

    __slots__ = ()
    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int | None


def symbols(elf: Any, symtab: Any) -> list[Symbol]:
    """Every entry of the symbol table section ``symtab``, read in one pass over its bytes.

    pyelftools parses entries one at a time (and again on every ``get_symbol``): with thousands of
    relocations that was most of a prediction's time. The entry layouts are the ELF specification's;
    names are decoded as UTF-8, undecodable bytes kept (surrogateescape). Raises ``ValueError`` on a
    name outside the string table, and on a section index kept in SHT_SYMTAB_SHNDX (SHN_XINDEX: no BPF
    object needs one; taking it for "no section" would give a wrong tag).
    """
    order = "<" if elf.little_endian else ">"
    data = symtab.data()
    strings = elf.get_section(symtab["sh_link"]).data()
    wide = elf.elfclass == 64
    entry = struct.Struct(order + ("IBBHQQ" if wide else "IIIBBH"))
    found = []
    for fields in entry.iter_unpack(data[: len(data) - len(data) % entry.size]):
        if wide:
            name_at, info, _, shndx, value, size = fields
        else:
            name_at, value, size, info, _, shndx = fields
        if name_at >= len(strings) and name_at:
            raise ValueError(f"symbol name at {name_at}, outside the string table")
        end = strings.find(b"\0", name_at)
        name = strings[name_at : end if end >= 0 else len(strings)].decode("utf-8", "surrogateescape")
        if shndx == _SHN_XINDEX:
            raise ValueError("a symbol whose section index is in SHT_SYMTAB_SHNDX (not read)")
        section = shndx if 0 < shndx < _SHN_LORESERVE else None
        found.append(Symbol(name, value, size, info & 0xF, info >> 4, section))
    return found


def relocations(elf: Any, section: Any) -> list[tuple[int, int]]:
    """(offset, symbol index) of each entry of a SHT_REL section, read in one pass over its bytes."""
    order = "<" if elf.little_endian else ">"
    data = section.data()
    wide = elf.elfclass == 64
    entry = struct.Struct(order + ("QQ" if wide else "II"))
    shift = 32 if wide else 8
    return [(offset, info >> shift) for offset, info in entry.iter_unpack(data[: len(data) - len(data) % entry.size])]


class EmbeddedObject(namedtuple("EmbeddedObject", ("offset", "object"))):
    __slots__ = ()
    offset: int
    object: BpfObject


def elf_machine(data: bytes, offset: int = 0) -> int | None:
    """e_machine of an ELF header at ``offset``, or None if there is none.

    A cheap sniff used before handing bytes to pyelftools.
    """
    if len(data) < offset + 20 or data[offset : offset + 4] != ELF_MAGIC:
        return None
    order = {1: "<", 2: ">"}.get(data[offset + 5])
    if order is None:
        return None
    machine: int = struct.unpack_from(order + "H", data, offset + 18)[0]
    return machine


def is_bpf_elf(data: bytes) -> bool:
    return elf_machine(data) == EM_BPF


# Described objects by the SHA-256 of their bytes: the same object is often embedded in several files
# (xdp-tests' binaries, systemd's nsresourced and nsresourcework), and parsing is the dearest part of a
# scan of packages that ship BPF. Only ordinary objects are kept (a crafted one with millions of symbols
# is described again rather than held), at most _DESCRIBED_BYTES of them in all, oldest out first. A
# BpfObject is never changed once described.
_DESCRIBED: dict[bytes, BpfObject] = {}
_DESCRIBED_SIZE = [0]
_DESCRIBED_BYTES = 64 << 20  # of object bytes described
_MEMO_OBJECT = 1 << 20  # largest object kept
_MEMO_ITEMS = 4096  # most programs, maps and sections an object kept may have


def inspect(data: bytes, name: str = "<bytes>") -> BpfObject:
    """Parse a BPF object; raise ``BpfElfError`` naming ``name`` on any defect."""
    if len(data) > _MEMO_OBJECT:
        return _inspect(data, name)
    key = hashlib.sha256(data).digest()
    known = _DESCRIBED.get(key)
    if known is not None:
        return known
    described = _inspect(data, name)
    if len(described.programs) + len(described.maps) + len(described.sections) <= _MEMO_ITEMS:
        while _DESCRIBED and _DESCRIBED_SIZE[0] + len(data) > _DESCRIBED_BYTES:
            _DESCRIBED_SIZE[0] -= _DESCRIBED.pop(next(iter(_DESCRIBED))).size  # the oldest
        _DESCRIBED[key] = described
        _DESCRIBED_SIZE[0] += len(data)
    return described


def _inspect(data: bytes, name: str) -> BpfObject:
    machine = elf_machine(data)
    if machine is None:
        raise BpfElfError(f"{name}: not an ELF file")
    if machine != EM_BPF:
        raise BpfElfError(f"{name}: ELF file for machine {machine}, not BPF ({EM_BPF})")
    # Imported here: most scans never parse an object, and pyelftools costs
    # a noticeable share of start-up time.
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(data))
        check_section_table(elf, len(data), name)
        return _describe(elf, len(data), name)
    except BpfElfError:
        raise
    except (ELFError, struct.error, ValueError, IndexError, KeyError, OverflowError, UnicodeDecodeError) as exc:
        raise BpfElfError(f"{name}: malformed BPF ELF object ({exc or type(exc).__name__})") from None
    except Exception as exc:  # pyelftools raises assorted types on crafted input
        raise BpfElfError(f"{name}: malformed BPF ELF object ({type(exc).__name__}: {exc})") from None


def check_section_table(elf: Any, size: int, name: str) -> None:
    """The section header table a pyelftools ``ELFFile`` will walk: a plausible count, inside the file (else
    pyelftools walks what e_shnum, or section 0 under extended numbering, says: billions)."""
    header = elf.header
    shnum, shoff, shentsize = header["e_shnum"], header["e_shoff"], header["e_shentsize"]
    if shnum == 0 or shnum > _MAX_SECTIONS:
        raise BpfElfError(f"{name}: implausible section count {shnum}")
    if shoff + shnum * shentsize > size:
        raise BpfElfError(
            f"{name}: section header table ({shnum} entries at offset {shoff}) "
            f"runs past the end of the file ({size} bytes)"
        )


def _text(latin1: str) -> str:
    """pyelftools decodes ELF strings as latin-1: give them back as UTF-8, undecodable bytes kept
    (surrogateescape, as every other name rpm-bpf reads)."""
    if latin1.isascii():
        return latin1
    try:
        return latin1.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # pyelftools already decoded it (as UTF-8, U+FFFD for what is not)
        return latin1


def _describe(elf: Any, size: int, name: str) -> BpfObject:
    """One pass over the sections (pyelftools parses each header once), then the symbols."""
    obj = BpfObject(
        endianness="little" if elf.little_endian else "big",
        elf_class=elf.elfclass,
        elf_type=elf.header["e_type"],
        size=size,
    )
    exec_sections: dict[int, str] = {}
    map_sections: set[int] = set()
    symtab = None
    for index, section in enumerate(elf.iter_sections()):
        if section["sh_type"] != "SHT_NOBITS" and section["sh_offset"] + section["sh_size"] > size:
            raise BpfElfError(f"{name}: section {index} ({section.name or '?'}) runs past the end of the file")
        sname = _text(section.name)
        obj.sections.append(sname)
        if sname == ".BTF":
            obj.has_btf = True
        elif sname == ".BTF.ext":
            obj.has_btf_ext = True
        elif sname.startswith(".debug_"):
            obj.has_debug_info = True
        elif sname == "license":
            obj.license = section.data().split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        elif sname in (".maps", "maps"):
            map_sections.add(index)
        elif section["sh_type"] == "SHT_SYMTAB":
            symtab = section
        if section["sh_flags"] & _SHF_EXECINSTR and section["sh_size"] > 0 and sname != ".text":
            # .text holds subprograms; every other code section is a program
            exec_sections[index] = sname
    obj.program_sections = len(exec_sections)
    if symtab is not None:
        for sym in symbols(elf, symtab):
            if sym.shndx is None:
                continue
            if sym.type == STT_FUNC and sym.shndx in exec_sections and sym.bind == STB_GLOBAL:
                obj.programs.append(Program(exec_sections[sym.shndx], sym.name))
            elif sym.type == STT_OBJECT and sym.shndx in map_sections:
                obj.maps.append(sym.name)
    return obj


def declared_sections(data: bytes) -> int | None:
    """e_shnum of the relocatable ELF header at the start of ``data`` whose section table lies inside it;
    None when there is no such header. What a parse of ``data`` may cost, told before parsing."""
    return _section_count(data) if _embedded_bytes(data, 0) is not None else None


MAX_PARSED_CANDIDATES = 256  # candidates handed to pyelftools per file, found or not
MAX_PARSED_SECTIONS = 65536  # sections those candidates may declare in all, per file


def find_embedded(data: bytes, limit: int = 64) -> list[EmbeddedObject]:
    """BPF objects carried inside another ELF file (libbpf skeletons).

    Skeletons keep the whole object as one byte array, so every ELF header
    with e_machine EM_BPF past offset 0 that parses as a BPF object counts.
    The header fields are checked with ``struct`` first (relocatable, a
    section table of the right entry size inside the file); at most
    ``MAX_PARSED_CANDIDATES`` candidates declaring ``MAX_PARSED_SECTIONS``
    sections in all are parsed: a file made of fake headers costs a bounded time.
    """
    found: list[EmbeddedObject] = []
    parsed = 0
    sections = MAX_PARSED_SECTIONS
    start = 1
    while len(found) < limit and parsed < MAX_PARSED_CANDIDATES:
        offset = data.find(ELF_MAGIC, start)
        if offset < 0:
            break
        start = offset + 1
        if elf_machine(data, offset) != EM_BPF:
            continue
        span = _embedded_bytes(data, offset)
        if span is None:
            continue
        declared = _section_count(span)
        if declared > sections:
            break  # the file declares more sections than any real set of skeletons: stop searching it
        sections -= declared
        parsed += 1
        try:
            obj = inspect(span, "embedded")
        except BpfElfError:
            continue
        found.append(EmbeddedObject(offset, obj))
    return found


def _section_count(span: bytes) -> int:
    """e_shnum of the (pre-checked) ELF header at the start of ``span``."""
    layout = _LAYOUT[span[4]]
    count: int = struct.unpack_from("<H" if span[5] == 1 else ">H", span, layout[4] + 2)[0]
    return count


# ELFCLASS32, ELFCLASS64: (header size, section header entry size, e_shoff/e_ehsize/e_shentsize offsets)
_LAYOUT = {1: (52, 40, 32, 40, 46), 2: (64, 64, 40, 52, 58)}
_ET_REL = 1


def _embedded_bytes(data: bytes, offset: int) -> bytes | None:
    """The slice an embedded object spans: up to the end of its section table.

    None unless the bytes at ``offset`` can be a relocatable BPF object's
    header whose section table lies inside ``data`` (a crafted binary may
    end in the first bytes of one, or repeat fake ones).
    """
    elf_class, data_order = data[offset + 4], data[offset + 5]
    layout = _LAYOUT.get(elf_class)
    if layout is None or data_order not in (1, 2) or len(data) < offset + layout[0]:
        return None
    ehdr_size, shdr_size, shoff_at, ehsize_at, shentsize_at = layout
    order = "<" if data_order == 1 else ">"
    e_type = struct.unpack_from(order + "H", data, offset + 16)[0]
    shoff = struct.unpack_from(order + ("Q" if elf_class == 2 else "I"), data, offset + shoff_at)[0]
    ehsize = struct.unpack_from(order + "H", data, offset + ehsize_at)[0]
    shentsize, shnum = struct.unpack_from(order + "HH", data, offset + shentsize_at)
    end = offset + shoff + shentsize * shnum
    if (
        e_type != _ET_REL
        or ehsize != ehdr_size
        or shentsize != shdr_size
        or shnum == 0
        or shoff < ehdr_size
        or end > len(data)
    ):
        return None
    return data[offset:end]
