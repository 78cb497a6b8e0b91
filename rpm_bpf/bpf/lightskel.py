"""Light skeletons (``bpftool gen skeleton -L``): BPF code an executable carries without an ELF image of it.

A light skeleton holds two byte arrays: the *loader*, a BPF_PROG_TYPE_SYSCALL
program that libbpf's gen_loader.c wrote, and its *data* blob (BTF, map and
program attributes, the programs' instructions, the license). The loader does
everything through the ``bpf_sys_bpf`` helper, each command emitted the same
way (gen_loader.c's ``emit_sys_bpf``): ``r1 = CMD``, ``r2 = `` the address of
the command's ``union bpf_attr`` in the data blob (a 64-bit load of a map
value, ``BPF_PSEUDO_MAP_IDX_VALUE``), ``r3 = `` its size, ``call bpf_sys_bpf``.
Its first instruction saves its context (``r6 = r1``, ``bpf_gen__init``).

So the search is structural: a run of valid BPF instructions that starts
with that prologue and issues at least one BPF_PROG_LOAD that way. The
attribute offsets it names locate the data blob: the one place in the file
where every BPF_PROG_LOAD attribute has a program type, an instruction count
and a NUL-padded name (``prog_name``) where ``union bpf_attr`` puts them.
From there: each program's name and type, each map's name, and the license
(which the loader stores into the attribute from the blob: gen_loader.c's
``emit_rel_store``); and the signature, when bpftool signed the loader (lskelsig.py).
Everything is bounded: at most ``MAX_LOADERS`` loaders
per file, ``MAX_INSNS`` instructions walked and ``2 * WINDOW`` bytes searched
for names in all, the blob looked for within ``WINDOW`` bytes of its loader.
"""

from __future__ import annotations

import re
import struct
from collections import namedtuple

from rpm_bpf.bpf import lskelsig
from rpm_bpf.bpf.elf import BpfObject, Program

PROLOGUE = bytes([0xBF, 0x16, 0, 0, 0, 0, 0, 0])  # r6 = r1
# bytes.find is 2-3x faster for a needle that does not end in a byte as common as 0: the prologue's first
# two bytes are searched, the rest compared; after MAX_FALSE_ANCHORS misses the full needle is searched.
_ANCHOR = PROLOGUE[:2]
MAX_FALSE_ANCHORS = 4096
MAX_LOADERS = 64
MAX_CANDIDATES = 1 << 16  # prologues walked per file, loaders or not
# gen_loader.c's loader issues its first bpf_sys_bpf call (BTF_LOAD) after bpf_gen__init's prologue:
# 15 + 3 per program + 6 per map (12 with a log level) instructions, about 21 of load_btf's own, and 28
# more for a signed loader's data hash check: about 930 at bpftool's limits (32 programs, 64 maps, -d);
# 46 to 70 in the tools tested. A walk that meets no such call in this many is ordinary BPF code (a
# skeleton's own program that starts with r6 = r1): given up without walking the rest of it.
FIRST_CALL_WITHIN = 2048
MAX_INSNS = 1 << 20
WINDOW = 16 << 20

_LD_IMM64, _MOV64_IMM, _CALL, _EXIT, _STX_DW = 0x18, 0xB7, 0x85, 0x95, 0x7B
_PSEUDO_MAP_IDX_VALUE = 6
_SYS_BPF = 166  # BPF_FUNC_sys_bpf
_MAP_CREATE, _PROG_LOAD = 0, 5
# union bpf_attr: BPF_PROG_LOAD's prog_type, insn_cnt at 0, license at 16, prog_name[16] at 48;
# BPF_MAP_CREATE's map_type at 0, map_name[16] at 28.
_PROG_NAME, _LICENSE, _MAP_NAME = 48, 16, 28
_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_.]{0,14}\x00")
_PADDED_NAME = re.compile(rb"([A-Za-z_][A-Za-z0-9_.]{0,14})\x00+")

# enum bpf_prog_type, as bpftool names the types
PROG_TYPES = (
    "unspec", "socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp", "perf_event",
    "cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out", "lwt_xmit", "sock_ops", "sk_skb", "cgroup_device",
    "sk_msg", "raw_tracepoint", "cgroup_sock_addr", "lwt_seg6local", "lirc_mode2", "sk_reuseport",
    "flow_dissector", "cgroup_sysctl", "raw_tracepoint_writable", "cgroup_sockopt", "tracing", "struct_ops",
    "ext", "lsm", "sk_lookup", "syscall", "netfilter",
)  # fmt: skip


class LightSkeleton(namedtuple("LightSkeleton", ("offset", "size", "data_offset", "object"))):
    """A light skeleton: its loader's bytes (``offset``, ``size``), where its data blob starts, and what it
    loads as a ``BpfObject`` (``elf_type`` "light skeleton"; each program's section is its type)."""

    __slots__ = ()
    offset: int
    size: int
    data_offset: int
    object: BpfObject


class _Loader(namedtuple("_Loader", ("offset", "size", "progs", "maps", "stores"))):
    __slots__ = ()
    offset: int
    size: int
    progs: list[int]  # BPF_PROG_LOAD attribute offsets in the data blob
    maps: list[int]  # BPF_MAP_CREATE attribute offsets
    stores: dict[int, int]  # data offset -> data offset stored there (emit_rel_store)


def _loader(data: bytes, start: int, budget: list[int]) -> _Loader | None:
    """The loader program starting at ``start`` (its prologue), or None when it issues no BPF_PROG_LOAD.

    ``budget``: [instructions left to walk in this file]; each one walked is taken from it."""
    regs: dict[int, tuple[str, int]] = {}
    progs: list[int] = []
    maps: list[int] = []
    stores: dict[int, int] = {}
    end = at = start
    limit = min(len(data), start + budget[0] * 8)
    calls = False
    while at + 8 <= limit:
        if not calls and at - start >= FIRST_CALL_WITHIN * 8:
            break
        op, reg_byte, _, imm = struct.unpack_from("<BBhi", data, at)
        dst, src = reg_byte & 0x0F, reg_byte >> 4
        if dst > 10 or src > 10:
            break
        if op == _LD_IMM64:
            if at + 16 > limit or data[at + 8] != 0 or data[at + 9] != 0:
                break
            value = struct.unpack_from("<i", data, at + 12)[0]
            regs[dst] = ("map_value", value) if src == _PSEUDO_MAP_IDX_VALUE and imm == 0 else ("?", 0)
            at += 16
            continue
        if op == _MOV64_IMM:
            regs[dst] = ("imm", imm)
        elif op == _CALL and src == 0:
            calls = calls or imm == _SYS_BPF
            if imm == _SYS_BPF and regs.get(1, ("", -1))[0] == "imm" and regs.get(2, ("",))[0] == "map_value":
                cmd, attr = regs[1][1], regs[2][1]
                if cmd == _PROG_LOAD:
                    progs.append(attr)
                elif cmd == _MAP_CREATE:
                    maps.append(attr)
            for clobbered in range(6):
                regs.pop(clobbered, None)
        elif (
            op == _STX_DW and dst == 1 and src == 0 and regs.get(0, ("",))[0] == regs.get(1, ("",))[0] == ("map_value")
        ):
            stores[regs[1][1]] = regs[0][1]
        elif op == _EXIT:
            end = at + 8
        if op != _LD_IMM64 and op != _MOV64_IMM and op != _CALL and dst in regs and (op & 0x07) in (1, 4, 7):
            regs.pop(dst, None)  # a load or ALU into a tracked register: no longer what was set
        at += 8
    budget[0] -= (at - start) // 8
    if not progs or end <= start:
        return None
    return _Loader(start, end - start, progs, maps, stores)


def _u32(data: bytes, at: int) -> int | None:
    return struct.unpack_from("<I", data, at)[0] if at >= 0 and at + 4 <= len(data) else None


def _name(data: bytes, at: int) -> str | None:
    match = _PADDED_NAME.fullmatch(data, at, at + 16) if at >= 0 and at + 16 <= len(data) else None
    return match.group(1).decode("ascii") if match else None


def _blob(data: bytes, loader: _Loader, budget: list[int]) -> int | None:
    """Where the data blob starts: the one offset at which every BPF_PROG_LOAD attribute reads as one.

    ``budget``: [bytes left to search for names in this file]; the window searched is taken from it."""
    first = loader.progs[0]
    low, high = max(0, loader.offset - WINDOW), min(len(data), loader.offset + WINDOW)
    high = min(high, low + budget[0])
    budget[0] -= high - low
    found = set()
    for match in _NAME.finditer(data, low, high):
        base = match.start() - first - _PROG_NAME
        if base < 0 or base in found:
            continue
        if all(_plausible(data, base + attr) for attr in loader.progs):
            found.add(base)
            if len(found) > 1:
                return None  # ambiguous: say nothing rather than a wrong blob
    return found.pop() if found else None


def _string(data: bytes, at: int, limit: int = 128) -> str | None:
    end = data.find(b"\0", at, at + limit)
    return data[at:end].decode("utf-8", "surrogateescape") if end > at else None


def _plausible(data: bytes, attr: int) -> bool:
    prog_type, insn_cnt = _u32(data, attr), _u32(data, attr + 4)
    return (
        prog_type is not None
        and 0 < prog_type < len(PROG_TYPES)
        and insn_cnt is not None
        and 0 < insn_cnt <= MAX_INSNS
        and _name(data, attr + _PROG_NAME) is not None
    )


def find(data: bytes) -> list[LightSkeleton]:
    """Every light skeleton in ``data`` (an executable or library), in file order."""
    found: list[LightSkeleton] = []
    start = 0
    insns, window = [MAX_INSNS], [2 * WINDOW]  # per file, whatever it holds: a crafted file costs a bounded time
    misses = 0
    # MAX_LOADERS counts loaders found, not candidates: prologue copies placed before a real loader must not
    # hide it. Candidates are bounded apart (each walk also takes from the instruction budget).
    for _ in range(MAX_CANDIDATES):
        if len(found) >= MAX_LOADERS:
            break
        at = -1
        while misses < MAX_FALSE_ANCHORS:
            at = data.find(_ANCHOR, start)
            if at < 0 or data.startswith(PROLOGUE, at):
                break
            misses += 1
            start = at + 1
        else:
            at = data.find(PROLOGUE, start)
        if at < 0 or insns[0] <= 0 or window[0] <= 0:
            break
        start = at + 8
        loader = _loader(data, at, insns)
        if loader is None:
            continue
        start = at + loader.size
        base = _blob(data, loader, window)
        if base is None:
            continue
        obj = BpfObject("little", 64, "light skeleton", loader.size)  # embedded.LIGHT_SKELETON
        for attr in loader.progs:
            prog_type = _u32(data, base + attr) or 0
            obj.programs.append(Program(PROG_TYPES[prog_type], _name(data, base + attr + _PROG_NAME) or "?"))
        obj.maps = [name for attr in loader.maps if (name := _name(data, base + attr + _MAP_NAME))]
        stored = [loader.stores.get(attr + _LICENSE) for attr in loader.progs]
        licenses = {text for lic in stored if lic is not None and (text := _string(data, base + lic)) is not None}
        if len(licenses) == 1:  # one license for the object, as libbpf takes it from its license section
            obj.license = licenses.pop()
        obj.program_sections = len(obj.programs)
        obj.signature = lskelsig.find(data, at, loader.size)  # bpftool gen skeleton -S
        found.append(LightSkeleton(at, loader.size, base, obj))
    return found
