"""CO-RE relocations: what libbpf rewrites in a program's instructions at load time, computed here.

A CO-RE object (compiled once, run on any kernel) records in ``.BTF.ext``
which instructions hold a field offset, a field size or existence, a type's
size, id or existence, or an enumerator's value, as the compiler saw them in
the object's own BTF. libbpf resolves each against the running kernel's BTF
and patches the instruction (``bpf_core_calc_relo_insn`` and
``bpf_core_patch_insn`` in libbpf's ``relo_core.c``, candidate search in
``libbpf.c``): this module follows those rules, kind for kind — candidates
by essential name (``___flavor`` suffixes dropped), field matching through
anonymous members, bitfields, the load size adjusted for narrower fields,
poisoned instructions where nothing matches — so that the program tag can
be predicted for this kernel (progtag.py).

Where libbpf would refuse to load (an ambiguous relocation, a malformed
record), or the answer would need what is not read here (module BTF), the
relocation is ``Unresolved`` with a reason: the caller says the tag is not
known, never guesses one.
"""

from __future__ import annotations

import re
import struct
import sys
from typing import NamedTuple

from rpm_bpf.bpf import btf as B
from rpm_bpf.bpf.btf import Btf, BtfError
from rpm_bpf.bpf.coretypes import (
    Budget,
    Unresolved,
    fields_compatible,
    names_essential_equal,
    types_compatible,
    types_match,
)

__all__ = ["Record", "Relocator", "Result", "Unresolved", "patch", "records"]

# enum bpf_core_relo_kind
(
    FIELD_BYTE_OFFSET,
    FIELD_BYTE_SIZE,
    FIELD_EXISTS,
    FIELD_SIGNED,
    FIELD_LSHIFT_U64,
    FIELD_RSHIFT_U64,
    TYPE_ID_LOCAL,
    TYPE_ID_TARGET,
    TYPE_EXISTS,
    TYPE_SIZE,
    ENUMVAL_EXISTS,
    ENUMVAL_VALUE,
    TYPE_MATCHES,
) = range(13)
KIND_NAMES = (
    "byte_off",
    "byte_sz",
    "field_exists",
    "signed",
    "lshift_u64",
    "rshift_u64",
    "local_type_id",
    "target_type_id",
    "type_exists",
    "type_size",
    "enumval_exists",
    "enumval_value",
    "type_matches",
)
_FIELD = frozenset(range(FIELD_BYTE_OFFSET, FIELD_RSHIFT_U64 + 1))
_TYPE = frozenset((TYPE_ID_LOCAL, TYPE_ID_TARGET, TYPE_EXISTS, TYPE_SIZE, TYPE_MATCHES))
_ENUMVAL = frozenset((ENUMVAL_EXISTS, ENUMVAL_VALUE))
SPEC_MAX_LEN = 64  # BPF_CORE_SPEC_MAX_LEN
POISON_IMM = 0xBAD2310  # libbpf's "bad relo" helper id
U64 = (1 << 64) - 1
U32 = 0xFFFFFFFF
MAX_RECORDS = 1_000_000


class Record(NamedTuple):
    """One ``bpf_core_relo`` of ``.BTF.ext``: in section ``section``, the instruction at byte ``insn_off``."""

    section: str
    insn_off: int
    type_id: int
    access: str
    kind: int


def records(ext: bytes, local: Btf, order: str) -> list[Record]:
    """The CO-RE records of a ``.BTF.ext`` section (names read from the object's BTF ``local``)."""
    try:
        magic, _, _, hdr_len = struct.unpack_from(order + "HBBI", ext, 0)
        if magic != B.BTF_MAGIC or hdr_len < 32:
            return []
        core_off, core_len = struct.unpack_from(order + "II", ext, 24)
    except struct.error:
        return []
    pos, end = hdr_len + core_off, hdr_len + core_off + core_len
    if core_len < 4 or end > len(ext):
        raise BtfError(".BTF.ext CO-RE records reach past its end")
    rec_size = struct.unpack_from(order + "I", ext, pos)[0]
    if rec_size < 16:
        raise BtfError(f".BTF.ext CO-RE record size {rec_size} too small")
    pos += 4
    out: list[Record] = []
    while pos + 8 <= end:
        name_off, count = struct.unpack_from(order + "II", ext, pos)
        pos += 8
        if pos + count * rec_size > end or len(out) + count > MAX_RECORDS:
            raise BtfError(".BTF.ext CO-RE records reach past its end")
        section = local.string(name_off)
        for i in range(count):
            insn_off, type_id, access_off, kind = struct.unpack_from(order + "IIII", ext, pos + i * rec_size)
            out.append(Record(section, insn_off, type_id, local.string(access_off), kind))
        pos += count * rec_size
    return out


class _Acc(NamedTuple):
    type_id: int
    idx: int
    name: str | None


class _Spec:
    """libbpf's bpf_core_spec: the high-level accessors, the raw access indices and the bit offset."""

    __slots__ = ("acc", "bit_offset", "btf", "raw", "root")

    def __init__(self, btf: Btf, root: int) -> None:
        self.btf = btf
        self.root = root
        self.acc: list[_Acc] = []
        self.raw: list[int] = []
        self.bit_offset = 0


class Result(NamedTuple):
    poison: bool
    orig: int
    new: int
    validate: bool
    orig_sz: int
    new_sz: int
    fail_memsz: bool
    bit_offset: int


def _is_flex(btf: Btf, acc: _Acc | None, nelems: int) -> bool:
    if acc is None or acc.name is None or nelems > 0:
        return False
    return acc.idx == btf.vlen(acc.type_id) - 1


def parse_spec(local: Btf, rec: Record) -> _Spec:
    spec = _Spec(local, rec.type_id)
    text = rec.access
    if not text or text.startswith(":"):
        raise Unresolved(f"bad access string {text!r}")
    if rec.kind in _TYPE:
        if text != "0":
            raise Unresolved(f"bad access string {text!r} for a type relocation")
        return spec
    if not re.fullmatch(r"[0-9]+(:[0-9]+)*:?", text, re.ASCII):  # what libbpf's sscanf("%d") loop takes
        raise Unresolved(f"bad access string {text!r}")
    raw = [int(part) for part in text.rstrip(":").split(":")]
    if any(i > 0x7FFFFFFF for i in raw) or len(raw) > SPEC_MAX_LEN:
        raise Unresolved(f"bad access string {text!r}")
    spec.raw = raw
    tid = local.skip_mods(rec.type_id)
    kind = local.kind(tid)
    if rec.kind in _ENUMVAL:
        if not B.is_enum(kind) or len(raw) > 1 or raw[0] >= local.vlen(tid):
            raise Unresolved("an enumerator relocation on what is not an enum")
        spec.acc.append(_Acc(tid, raw[0], local.enumerators(tid)[raw[0]][0]))
        return spec
    if rec.kind not in _FIELD:
        raise Unresolved(f"unknown CO-RE relocation kind {rec.kind}")
    spec.acc.append(_Acc(tid, raw[0], None))
    spec.bit_offset = raw[0] * local.resolve_size(tid) * 8 & U32  # libbpf's __u32
    for idx in raw[1:]:
        tid = local.skip_mods(tid)
        kind = local.kind(tid)
        if B.is_composite(kind):
            if idx >= local.vlen(tid):
                raise Unresolved("an access index past a struct's members")
            member = local.member(tid, idx)
            spec.bit_offset = (spec.bit_offset + member.bit_offset) & U32
            if member.name:
                spec.acc.append(_Acc(tid, idx, member.name))
            tid = member.type
        elif kind == B.ARRAY:
            elem, nelems = local.array(tid)
            tid = local.skip_mods(elem)
            if not _is_flex(local, spec.acc[-1], nelems) and idx >= nelems:
                raise Unresolved("an array index past its end")
            spec.acc.append(_Acc(tid, idx, None))
            spec.bit_offset = (spec.bit_offset + idx * local.resolve_size(tid) * 8) & U32
        else:
            raise Unresolved(f"an access into BTF type {tid}, neither struct, union nor array")
    return spec


def _match_member(
    local: Btf, lacc: _Acc, targ: Btf, tid: int, spec: _Spec, budget: Budget, depth: int = 0
) -> tuple[int, int]:
    """(1, next target type) when the named member ``lacc`` is found in ``tid`` (through anonymous members),
    (0, 0) when not."""
    if depth > B.MAX_DEPTH:
        raise Unresolved("anonymous members nested too deep")
    tid = targ.skip_mods(tid)
    if not B.is_composite(targ.kind(tid)):
        return 0, 0
    lmember = local.member(lacc.type_id, lacc.idx)
    members = targ.members(tid)
    budget.spend(len(members))
    for i, m in enumerate(members):
        if len(spec.raw) == SPEC_MAX_LEN:
            raise Unresolved("struct nesting too deep")
        spec.bit_offset = (spec.bit_offset + m.bit_offset) & U32
        spec.raw.append(i)
        if not m.name:
            found, nxt = _match_member(local, lacc, targ, m.type, spec, budget, depth + 1)
            if found:
                return found, nxt
        elif m.name == lmember.name:
            spec.acc.append(_Acc(tid, i, m.name))
            if fields_compatible(local, lmember.type, targ, m.type, budget):
                return 1, m.type
            spec.acc.pop()
            return 0, 0
        spec.bit_offset = (spec.bit_offset - m.bit_offset) & U32
        spec.raw.pop()
    return 0, 0


def spec_match(lspec: _Spec, kind: int, targ: Btf, tid: int, budget: Budget | None = None) -> _Spec | None:
    """The target spec of candidate ``tid``, or None when it does not match."""
    tspec = _Spec(targ, tid)
    local = lspec.btf
    budget = budget if budget is not None else Budget()
    if kind in _TYPE:
        if kind == TYPE_MATCHES:
            ok = types_match(local, lspec.root, targ, tid, budget=budget)
        else:
            ok = types_compatible(local, lspec.root, targ, tid, budget=budget)
        return tspec if ok else None
    if kind in _ENUMVAL:
        tid = targ.skip_mods(tid)
        if not B.is_enum(targ.kind(tid)):
            return None
        name = lspec.acc[0].name or ""
        for i, (tname, _) in enumerate(targ.enumerators(tid)):
            if names_essential_equal(name, tname):
                tspec.acc.append(_Acc(tid, i, tname))
                tspec.raw.append(i)
                return tspec
        return None
    for i, lacc in enumerate(lspec.acc):
        tid = targ.skip_mods(tid)
        if lacc.name is not None:
            found, tid = _match_member(local, lacc, targ, tid, tspec, budget)
            if not found:
                return None
            continue
        if i > 0:
            if targ.kind(tid) != B.ARRAY:
                return None
            elem, nelems = targ.array(tid)
            if not _is_flex(targ, tspec.acc[i - 1], nelems) and lacc.idx >= nelems:
                return None
            tid = targ.skip_mods(elem)
        if len(tspec.raw) == SPEC_MAX_LEN:
            raise Unresolved("struct nesting too deep")
        tspec.acc.append(_Acc(tid, lacc.idx, None))
        tspec.raw.append(lacc.idx)
        tspec.bit_offset = (tspec.bit_offset + lacc.idx * targ.resolve_size(tid) * 8) & U32
    return tspec


class _Poison(Exception):
    """libbpf's -EUCLEAN: the instruction is to be poisoned."""


def _elem_size(btf: Btf, tid: int) -> int:
    tid = btf.skip_mods(tid)
    for _ in range(B.MAX_DEPTH):
        if btf.kind(tid) != B.ARRAY:
            return btf.resolve_size(tid)
        tid = btf.skip_mods(btf.array(tid)[0])
    raise Unresolved("nested arrays too deep")


def _field_value(kind: int, spec: _Spec | None) -> tuple[int, int, int, bool]:
    """(value, field size, field type id, validate) of a field relocation (bpf_core_calc_field_relo)."""
    if kind == FIELD_EXISTS:
        return (1 if spec else 0), 0, 0, True
    if spec is None:
        raise _Poison()
    btf, acc = spec.btf, spec.acc[-1]
    if acc.name is None:
        if kind == FIELD_BYTE_OFFSET:
            return (spec.bit_offset // 8) & U32, _elem_size(btf, acc.type_id), acc.type_id, True
        if kind == FIELD_BYTE_SIZE:
            return btf.resolve_size(acc.type_id) & U32, 0, 0, True
        raise Unresolved(f"relocation {KIND_NAMES[kind]} on an array element")
    member = btf.member(acc.type_id, acc.idx)
    ftid = btf.skip_mods(member.type)
    bit_off, bit_sz = spec.bit_offset, member.bitfield_size
    bitfield = bit_sz > 0
    if bitfield:
        byte_sz = btf.size_or_type(ftid)
        if byte_sz <= 0:
            raise Unresolved("a bitfield of a type without size")
        byte_off = bit_off // 8 // byte_sz * byte_sz
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise Unresolved("a bitfield that a 64-bit load cannot read")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = btf.resolve_size(ftid)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    validate = not bitfield
    field_sz = type_id = 0
    if kind == FIELD_BYTE_OFFSET:
        value = byte_off
        if not bitfield:
            field_sz, type_id = _elem_size(btf, ftid), ftid
    elif kind == FIELD_BYTE_SIZE:
        value = byte_sz
    elif kind == FIELD_SIGNED:
        fkind = btf.kind(ftid)
        value = int(
            (B.is_enum(fkind) and btf.kflag(ftid))
            or (fkind == B.INT and bool(btf.int_encoding(ftid)[0] & B.INT_SIGNED))
        )
        validate = True
    elif kind == FIELD_LSHIFT_U64:
        if sys.byteorder == "little":
            value = 64 - (bit_off + bit_sz - byte_off * 8)
        else:
            value = (8 - byte_sz) * 8 + (bit_off - byte_off * 8)
    else:  # FIELD_RSHIFT_U64
        value = 64 - bit_sz
        validate = True
    return value & U32, field_sz, type_id, validate  # libbpf computes them in __u32


def _type_value(kind: int, spec: _Spec | None) -> tuple[int, bool]:
    if spec is None:
        return 0, True
    if kind == TYPE_ID_TARGET:
        return spec.root, False
    if kind in (TYPE_EXISTS, TYPE_MATCHES):
        return 1, True
    return spec.btf.resolve_size(spec.root), True  # TYPE_SIZE


def _enum_value(kind: int, spec: _Spec | None) -> int:
    if kind == ENUMVAL_EXISTS:
        return 1 if spec else 0
    if spec is None:
        raise _Poison()
    acc = spec.acc[0]
    return spec.btf.enumerators(acc.type_id)[acc.idx][1] & U64


def calc(kind: int, lspec: _Spec, tspec: _Spec | None) -> Result:
    """bpf_core_calc_relo: the original and new values for one candidate (or none)."""
    bit_offset = tspec.bit_offset if tspec else 0
    try:
        if kind in _FIELD:
            orig, orig_sz, orig_tid, validate = _field_value(kind, lspec)
            new, new_sz, new_tid, _ = _field_value(kind, tspec)
            fail = False
            if orig_sz != new_sz and tspec is not None:
                local, targ = lspec.btf, tspec.btf
                lk, tk = local.kind(orig_tid), targ.kind(new_tid)
                unsigned = (
                    lk == B.INT
                    and tk == B.INT
                    and local.int_encoding(orig_tid)[0] != B.INT_SIGNED
                    and targ.int_encoding(new_tid)[0] != B.INT_SIGNED
                )
                fail = not ((lk == B.PTR and tk == B.PTR) or unsigned)
            return Result(False, orig, new, validate, orig_sz, new_sz, fail, bit_offset)
        if kind in _TYPE:
            orig, validate = _type_value(kind, lspec)
            new, _ = _type_value(kind, tspec)
            return Result(False, orig, new, validate, 0, 0, False, bit_offset)
        orig = _enum_value(kind, lspec)
        new = _enum_value(kind, tspec)
        return Result(False, orig, new, True, 0, 0, False, bit_offset)
    except _Poison:
        return Result(True, 0, 0, True, 0, 0, False, bit_offset)


class Relocator:
    """Resolves an object's CO-RE records against one target BTF, as libbpf does for one object: the
    candidate lists are kept per local type and narrowed by each relocation that used them."""

    def __init__(self, local: Btf, target: Btf, modules: bool = False) -> None:
        self.local = local
        self.target = target
        self.modules = modules  # module BTFs exist: libbpf looks there when vmlinux has no candidate
        self._cands: dict[int, list[int]] = {}
        self.budget = Budget()  # for the whole object, as crafted records may repeat

    def _candidates(self, local_id: int) -> list[int]:
        if local_id not in self._cands:
            name = self.local.name(local_id)
            if not name:
                raise Unresolved("a relocation of an anonymous type")
            lkind = self.local.kind(local_id)
            found = [
                tid
                for tid in self.target.by_essential_name(B.essential(name))
                if B.core_compatible_kinds(self.target.kind(tid), lkind)
            ]
            if not found and self.modules:
                raise Unresolved(f"no type {name} in vmlinux BTF; module BTF is not read")
            self._cands[local_id] = found
        return self._cands[local_id]

    def resolve(self, rec: Record) -> Result:
        local = self.local
        try:
            local.name(rec.type_id)
            lspec = parse_spec(local, rec)
            if rec.kind == TYPE_ID_LOCAL:
                return Result(False, rec.type_id, rec.type_id, False, 0, 0, False, 0)
            if not local.name(rec.type_id):
                raise Unresolved("a relocation of an anonymous type")
            cands = self._candidates(rec.type_id)
            kept: list[int] = []
            chosen: Result | None = None
            for tid in cands:
                tspec = spec_match(lspec, rec.kind, self.target, tid, self.budget)
                if tspec is None:
                    continue
                res = calc(rec.kind, lspec, tspec)
                if chosen is None:
                    chosen = res
                elif res.bit_offset != chosen.bit_offset:
                    raise Unresolved("field offset ambiguity (libbpf refuses to load)")
                elif res.poison != chosen.poison or res.new != chosen.new:
                    raise Unresolved("relocation decision ambiguity (libbpf refuses to load)")
                kept.append(tid)
            if kept:
                self._cands[rec.type_id] = kept
                assert chosen is not None
                return chosen
            return calc(rec.kind, lspec, None)
        except BtfError as exc:
            raise Unresolved(f"BTF: {exc}") from None
        except (IndexError, struct.error) as exc:
            raise Unresolved(f"BTF out of range ({exc})") from None


_SIZES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}
_SIZE_CODES = {8: 0x18, 4: 0x00, 2: 0x08, 1: 0x10}


def _poison(insns: bytearray, at: int) -> None:
    insns[at : at + 8] = struct.pack("<BBhI", 0x85, 0, 0, POISON_IMM)


def patch(insns: bytearray, at: int, res: Result) -> None:
    """bpf_core_patch_insn on the instruction at byte ``at`` of ``insns`` (little-endian objects)."""
    if at + 8 > len(insns):
        raise Unresolved("a relocation past the section's end")
    code = insns[at]
    cls = code & 0x07
    ldimm64 = code == 0x18
    if res.poison:
        if ldimm64 and at + 16 <= len(insns):
            _poison(insns, at + 8)
        _poison(insns, at)
        return
    off, imm = struct.unpack_from("<hi", insns, at + 2)
    if cls in (4, 7):  # ALU, ALU64
        if code & 0x08:
            raise Unresolved("a relocated ALU instruction with a register operand")
        if res.validate and imm & U64 != res.orig:
            raise Unresolved(f"instruction value {imm} is not the expected {res.orig}")
        struct.pack_into("<I", insns, at + 4, res.new & 0xFFFFFFFF)
    elif cls in (1, 2, 3):  # LDX, ST, STX
        if res.validate and off & U64 != res.orig:
            raise Unresolved(f"instruction offset {off} is not the expected {res.orig}")
        if res.new > 0x7FFF:
            raise Unresolved(f"field offset {res.new} too large for an instruction")
        if res.fail_memsz:
            _poison(insns, at)
            return
        struct.pack_into("<h", insns, at + 2, res.new)
        if res.new_sz != res.orig_sz:
            if _SIZES.get(code & 0x18) != res.orig_sz:
                raise Unresolved("a relocated load of an unexpected size")
            if res.new_sz not in _SIZE_CODES:
                raise Unresolved(f"a field of {res.new_sz} bytes no load reads")
            insns[at] = (code & 0xE0) | _SIZE_CODES[res.new_sz] | cls
    elif cls == 0:  # LD: only ld_imm64
        if not ldimm64 or at + 16 > len(insns) or insns[at + 1] >> 4 or off or insns[at + 8 : at + 12] != b"\0\0\0\0":
            raise Unresolved("a relocated 64-bit load of an unexpected form")
        hi = struct.unpack_from("<I", insns, at + 12)[0]
        value = (imm & 0xFFFFFFFF) | (hi << 32)
        if res.validate and value != res.orig:
            raise Unresolved(f"instruction value {value} is not the expected {res.orig}")
        struct.pack_into("<I", insns, at + 4, res.new & 0xFFFFFFFF)
        struct.pack_into("<I", insns, at + 12, (res.new >> 32) & 0xFFFFFFFF)
    else:
        raise Unresolved(f"a relocation on instruction code {code:#x}")
