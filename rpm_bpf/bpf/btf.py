"""BTF, the BPF Type Format: the types of a BPF object (its ``.BTF`` section) and of the running kernel
(``/sys/kernel/btf/vmlinux``), read as far as CO-RE relocation needs (core.py).

The layout is the kernel's (``include/uapi/linux/btf.h``): a header, then
the type section (each type a 12-byte ``btf_type`` and a kind-specific
tail), then the string section. One pass records where each type starts;
everything else is read on demand, so the 5 MB of a kernel's BTF cost one
walk. Every offset read comes from the blob: each is bounds-checked, and a
blob that does not hold together is a ``BtfError``.
"""

from __future__ import annotations

import struct
from array import array
from typing import NamedTuple

from rpm_bpf.errors import RpmBpfError

BTF_MAGIC = 0xEB9F
MAX_BTF_BYTES = 256 << 20  # the kernel's BTF is ~5 MB; a crafted file is refused well before memory runs out
MAX_DEPTH = 32  # libbpf's bound on chains of modifiers, typedefs and arrays
FULL_INDEX_AFTER = 64  # names searched one by one before every name is indexed at once

(
    UNKN,
    INT,
    PTR,
    ARRAY,
    STRUCT,
    UNION,
    ENUM,
    FWD,
    TYPEDEF,
    VOLATILE,
    CONST,
    RESTRICT,
    FUNC,
    FUNC_PROTO,
    VAR,
    DATASEC,
    FLOAT,
    DECL_TAG,
    TYPE_TAG,
    ENUM64,
) = range(20)
_MODIFIERS = frozenset((TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG))
_COMPOSITE = frozenset((STRUCT, UNION))
_ENUMS = frozenset((ENUM, ENUM64))
# Bytes after the 12-byte btf_type: fixed per kind, or per member (vlen) for the lists.
_FIXED_TAIL = {INT: 4, ARRAY: 12, VAR: 4, DECL_TAG: 4}
_PER_MEMBER = {STRUCT: 12, UNION: 12, ENUM: 8, FUNC_PROTO: 8, DATASEC: 12, ENUM64: 12}
INT_SIGNED = 1


class BtfError(RpmBpfError, ValueError):
    """The bytes are not BTF that holds together."""


class Member(NamedTuple):
    name: str
    type: int
    bit_offset: int
    bitfield_size: int  # 0: not a bitfield


def essential_len(name: str) -> int:
    """The length of ``name`` before its last ``___flavor`` suffix (libbpf's bpf_core_essential_name_len)."""
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1 : i + 4] == "___" and name[i + 4] != "_":
            return i + 1
    return len(name)


def essential(name: str) -> str:
    return name[: essential_len(name)]


class Btf:
    """One BTF blob, types indexed by id (1..count); id 0 is void."""

    def __init__(self, data: bytes, ptr_size: int = 8) -> None:
        if len(data) > MAX_BTF_BYTES:
            raise BtfError(f"BTF of {len(data)} bytes, more than {MAX_BTF_BYTES}")
        if len(data) < 24:
            raise BtfError("BTF shorter than its header")
        magic = struct.unpack_from("<H", data, 0)[0]
        if magic == BTF_MAGIC:
            self.order = "<"
        elif struct.unpack_from(">H", data, 0)[0] == BTF_MAGIC:
            self.order = ">"
        else:
            raise BtfError("not BTF (bad magic)")
        _, _, _, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(self.order + "HBBIIIII", data, 0)
        if hdr_len < 24 or hdr_len > len(data):
            raise BtfError("BTF header length out of range")
        types_at, strings_at = hdr_len + type_off, hdr_len + str_off
        if types_at + type_len > len(data) or strings_at + str_len > len(data):
            raise BtfError("BTF sections reach past its end")
        self.data = bytes(data)
        self.ptr_size = ptr_size
        self.strings = self.data[strings_at : strings_at + str_len]
        self._types_end = types_at + type_len
        self._names: dict[int, str] = {}
        self._by_name_off: dict[int, list[int]] | None = None
        self._candidates: dict[str, list[int]] = {}
        self._full: dict[str, list[int]] | None = None
        self.offsets = array("L", [0])  # where btf_type of id starts (index 0: void)
        self.infos = array("L", [0])
        self.name_offs = array("L", [0])
        self._index(types_at)

    def _index(self, pos: int) -> None:
        unpack, end = struct.Struct(self.order + "III").unpack_from, self._types_end
        offsets, infos, names, fixed, per = self.offsets, self.infos, self.name_offs, _FIXED_TAIL, _PER_MEMBER
        while pos < end:
            if pos + 12 > end:
                raise BtfError("a BTF type cut short")
            name_off, info, _ = unpack(self.data, pos)
            kind = (info >> 24) & 0x1F
            if kind > ENUM64:
                raise BtfError(f"BTF type {len(offsets)} of unknown kind {kind}")
            offsets.append(pos)
            infos.append(info)
            names.append(name_off)
            pos += 12 + fixed.get(kind, 0) + per.get(kind, 0) * (info & 0xFFFF)
        if pos != end:
            raise BtfError("the last BTF type reaches past the type section")

    @property
    def count(self) -> int:
        """Type ids run from 1 to ``count - 1`` (libbpf's btf__type_cnt)."""
        return len(self.offsets)

    def _check(self, tid: int) -> None:
        if not 0 < tid < len(self.offsets):
            raise BtfError(f"BTF type id {tid} out of range")

    def kind(self, tid: int) -> int:
        if tid == 0:
            return UNKN
        self._check(tid)
        return (self.infos[tid] >> 24) & 0x1F

    def vlen(self, tid: int) -> int:
        return self.infos[tid] & 0xFFFF if tid else 0

    def kflag(self, tid: int) -> bool:
        return bool(self.infos[tid] >> 31) if tid else False

    def size_or_type(self, tid: int) -> int:
        """The ``size``/``type`` word: a size for INT, ENUM, STRUCT, UNION, DATASEC, FLOAT; a type id else."""
        self._check(tid)
        word: int = struct.unpack_from(self.order + "I", self.data, self.offsets[tid] + 8)[0]
        return word

    def string(self, offset: int) -> str:
        if offset in self._names:
            return self._names[offset]
        if offset >= len(self.strings):
            raise BtfError(f"BTF string offset {offset} out of range")
        end = self.strings.find(b"\0", offset)
        text = self.strings[offset : end if end >= 0 else len(self.strings)].decode("utf-8", "replace")
        self._names[offset] = text
        return text

    def name(self, tid: int) -> str:
        if tid == 0:
            return ""
        self._check(tid)
        return self.string(struct.unpack_from(self.order + "I", self.data, self.offsets[tid])[0])

    def _tail(self, tid: int, fmt: str, index: int = 0, size: int = 0) -> tuple[int, ...]:
        return struct.unpack_from(self.order + fmt, self.data, self.offsets[tid] + 12 + index * size)

    def int_encoding(self, tid: int) -> tuple[int, int, int]:
        """An INT's (encoding, bit offset, bits)."""
        word = self._tail(tid, "I")[0]
        return (word >> 24) & 0x0F, (word >> 16) & 0xFF, word & 0xFF

    def array(self, tid: int) -> tuple[int, int]:
        """An ARRAY's (element type, number of elements)."""
        elem, _, nelems = self._tail(tid, "III")
        return elem, nelems

    def members(self, tid: int) -> list[Member]:
        out, kflag = [], self.kflag(tid)
        for i in range(self.vlen(tid)):
            name_off, mtype, offset = self._tail(tid, "III", i, 12)
            if kflag:
                out.append(Member(self.string(name_off), mtype, offset & 0xFFFFFF, offset >> 24))
            else:
                out.append(Member(self.string(name_off), mtype, offset, 0))
        return out

    def member(self, tid: int, index: int) -> Member:
        name_off, mtype, offset = self._tail(tid, "III", index, 12)
        if self.kflag(tid):
            return Member(self.string(name_off), mtype, offset & 0xFFFFFF, offset >> 24)
        return Member(self.string(name_off), mtype, offset, 0)

    def enumerators(self, tid: int) -> list[tuple[str, int]]:
        """An ENUM's or ENUM64's (name, value): an ENUM's value read as libbpf reads it (``__s32``, so a
        negative one stays negative); an ENUM64's as its two 32-bit halves make it."""
        out = []
        if self.kind(tid) == ENUM:
            for i in range(self.vlen(tid)):
                name_off, value = self._tail(tid, "Ii", i, 8)
                out.append((self.string(name_off), value))
        else:
            for i in range(self.vlen(tid)):
                name_off, lo, hi = self._tail(tid, "III", i, 12)
                out.append((self.string(name_off), (hi << 32) | lo))
        return out

    def params(self, tid: int) -> list[int]:
        """A FUNC_PROTO's parameter types."""
        return [self._tail(tid, "II", i, 8)[1] for i in range(self.vlen(tid))]

    def datasec_vars(self, tid: int) -> list[int]:
        return [self._tail(tid, "III", i, 12)[0] for i in range(self.vlen(tid))]

    def skip_mods(self, tid: int) -> int:
        """The type behind typedefs and modifiers (libbpf's skip_mods_and_typedefs)."""
        for _ in range(MAX_DEPTH):
            if self.kind(tid) not in _MODIFIERS:
                return tid
            tid = self.size_or_type(tid)
        raise BtfError("a chain of typedefs and modifiers too long")

    def resolve_size(self, tid: int) -> int:
        """The size in bytes of a type (libbpf's btf__resolve_size)."""
        nelems = 1
        for _ in range(MAX_DEPTH):
            kind = self.kind(tid)
            if kind in (INT, ENUM, ENUM64, STRUCT, UNION, DATASEC, FLOAT):
                size = self.size_or_type(tid)
                break
            if kind == PTR:
                size = self.ptr_size
                break
            if kind in _MODIFIERS or kind == VAR:
                tid = self.size_or_type(tid)
            elif kind == ARRAY:
                elem, n = self.array(tid)
                nelems *= n
                tid = elem
            else:
                raise BtfError(f"BTF type {tid} has no size")
        else:
            raise BtfError("a chain of types too long to size")
        total = nelems * size
        if total > 0xFFFFFFFF:
            raise BtfError("a type larger than 4 GiB")
        return total

    def by_essential_name(self, name: str) -> list[int]:
        """Ids of the types whose essential name is ``name`` (libbpf's candidate search), in id order.

        The string section is searched for the name (alone, or before a ``___`` suffix), not every type's
        name decoded: a kernel has 126,000 types and a program asks for a dozen."""
        if name in self._candidates:
            return self._candidates[name]
        if len(self._candidates) >= FULL_INDEX_AFTER:
            if self._full is None:  # many names asked (a crafted object): one index of every name instead
                full: dict[str, list[int]] = {}
                for tid, off in enumerate(self.name_offs):
                    if off:
                        full.setdefault(essential(self.string(off)), []).append(tid)
                self._full = full
            return self._full.get(name, [])
        if self._by_name_off is None:
            by_off: dict[int, list[int]] = {}
            for tid, off in enumerate(self.name_offs):
                if off:
                    by_off.setdefault(off, []).append(tid)
            self._by_name_off = by_off
        found: list[int] = []
        raw = name.encode("utf-8", "surrogateescape")
        if raw and b"\0" not in raw:
            strings, needle, at = self.strings, b"\0" + raw, 0
            while True:
                at = strings.find(needle, at)
                if at < 0:
                    break
                start = at = at + 1
                if essential(self.string(start)) == name:
                    found += self._by_name_off.get(start, [])
        found.sort()
        self._candidates[name] = found
        return found


def is_composite(kind: int) -> bool:
    return kind in _COMPOSITE


def is_enum(kind: int) -> bool:
    return kind in _ENUMS


def core_compatible_kinds(a: int, b: int) -> bool:
    """libbpf's btf_kind_core_compat: the same kind, or both enums (ENUM and ENUM64 mix)."""
    return a == b or (a in _ENUMS and b in _ENUMS)
