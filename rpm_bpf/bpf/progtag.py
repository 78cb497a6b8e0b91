"""What the kernel will report for each program of a BPF object: name, type and program tag.

The kernel's program tag is a hash of the instructions as the loader handed
them over, with the immediates of 64-bit loads that reference maps (map fd,
map value) zeroed: SHA-256 on this kernel (6.18), SHA-1 on older ones; the
first 8 bytes, in hex (``bpftool prog show``). Predicting it means redoing
what libbpf does to an object's code before loading, where that is
deterministic:

* map and global-data references (``ld_imm64`` with a relocation): marked as
  map fd (src 1) or map value (src 2); their immediates do not count;
* sub-programs (``.text`` functions and static functions called with
  ``call``, or referenced as function pointers): appended after the program
  in the order libbpf meets them, the call offsets rewritten;

and saying so where it is not: CO-RE relocations (``.BTF.ext``) are resolved
against the running kernel's BTF and may change instructions; kfunc calls
and ksym references carry BTF ids of the running kernel. Such programs get a
``caveat``; their tag is still the one a kernel gives when the relocations
change nothing.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import struct
from collections import namedtuple
from typing import Any

from rpm_bpf.bpf import btf, core
from rpm_bpf.bpf.btf import Btf, BtfError
from rpm_bpf.bpf.elf import STB_LOCAL, STT_FUNC, STT_SECTION, BpfElfError, Symbol, check_section_table, relocations
from rpm_bpf.bpf.elf import symbols as elf_symbols
from rpm_bpf.errors import RpmBpfError

_LD_IMM64, _CALL = 0x18, 0x85
_PSEUDO_MAP_FD, _PSEUDO_MAP_VALUE, _PSEUDO_CALL, _PSEUDO_FUNC = 1, 2, 1, 4
_MAP_SECTIONS = (".maps", "maps")
KERNEL_NAME_LEN = 15  # BPF_OBJ_NAME_LEN - 1
# Bounds on crafted objects: no program the kernel takes is longer (BPF_COMPLEXITY_LIMIT_INSNS), and an
# object's programs together (each with its sub-programs appended) get a few times that.
MAX_PROGRAM_INSNS = 1_000_000
MAX_OBJECT_INSNS = 4_000_000

# libbpf's section_defs (libbpf.c), in its order, as (section, program type by bpftool's name). As libbpf
# matches them: "NAME+" is NAME exactly or NAME/anything; "NAME/" any section starting so; else exactly.
_KPROBES = (
    "kprobe+", "uprobe+", "uprobe.s+", "kretprobe+", "uretprobe+", "uretprobe.s+", "kprobe.multi+",
    "kretprobe.multi+", "kprobe.session+", "uprobe.multi+", "uretprobe.multi+", "uprobe.multi.s+",
    "uretprobe.multi.s+", "uprobe.session+", "uprobe.session.s+", "ksyscall+", "kretsyscall+", "usdt+", "usdt.s+",
)  # fmt: skip
_TRACING = (
    "tp_btf+", "tp_btf.s+", "fentry+", "fmod_ret+", "fexit+", "fsession+", "fentry.s+", "fmod_ret.s+", "fexit.s+",
    "fsession.s+", "fentry.multi+", "fexit.multi+", "fsession.multi+", "fentry.multi.s+", "fexit.multi.s+",
    "fsession.multi.s+",
)  # fmt: skip
_SOCK_ADDR = tuple(
    f"cgroup/{hook}{family}"
    for hook in ("bind", "connect", "sendmsg", "recvmsg", "getpeername", "getsockname")
    for family in ("4", "6", "_unix")
    if (hook, family) != ("bind", "_unix")
)
_SECTION_DEFS: tuple[tuple[str, str], ...] = (
    ("socket", "socket_filter"),
    ("sk_reuseport/migrate", "sk_reuseport"),
    ("sk_reuseport", "sk_reuseport"),
    *((name, "kprobe") for name in _KPROBES),
    *((name, "sched_cls") for name in ("tc/ingress", "tc/egress", "tcx/ingress", "tcx/egress", "tc", "classifier")),
    ("action", "sched_act"),
    ("netkit/primary", "sched_cls"),
    ("netkit/peer", "sched_cls"),
    *((name, "tracepoint") for name in ("tracepoint+", "tp+", "tracepoint.s+", "tp.s+")),
    *((name, "raw_tracepoint") for name in ("raw_tracepoint+", "raw_tp+", "raw_tracepoint.s+", "raw_tp.s+")),
    ("raw_tracepoint.w+", "raw_tracepoint_writable"),
    ("raw_tp.w+", "raw_tracepoint_writable"),
    *((name, "tracing") for name in _TRACING),
    ("freplace+", "ext"),
    ("lsm+", "lsm"),
    ("lsm.s+", "lsm"),
    ("lsm_cgroup+", "lsm"),
    ("iter+", "tracing"),
    ("iter.s+", "tracing"),
    ("syscall", "syscall"),
    *((name, "xdp") for name in ("xdp.frags/devmap", "xdp/devmap", "xdp.frags/cpumap", "xdp/cpumap")),
    ("xdp.frags", "xdp"),
    ("xdp", "xdp"),
    ("perf_event", "perf_event"),
    *((name, name) for name in ("lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local")),
    ("sockops", "sock_ops"),
    *((name, "sk_skb") for name in ("sk_skb/stream_parser", "sk_skb/stream_verdict", "sk_skb/verdict", "sk_skb")),
    ("sk_msg", "sk_msg"),
    ("lirc_mode2", "lirc_mode2"),
    ("flow_dissector", "flow_dissector"),
    *((name, "cgroup_skb") for name in ("cgroup_skb/ingress", "cgroup_skb/egress", "cgroup/skb")),
    *((f"cgroup/{name}", "cgroup_sock") for name in ("sock_create", "sock_release", "sock")),
    ("cgroup/post_bind4", "cgroup_sock"),
    ("cgroup/post_bind6", "cgroup_sock"),
    *((name, "cgroup_sock_addr") for name in _SOCK_ADDR),
    ("cgroup/sysctl", "cgroup_sysctl"),
    ("cgroup/getsockopt", "cgroup_sockopt"),
    ("cgroup/setsockopt", "cgroup_sockopt"),
    ("cgroup/dev", "cgroup_device"),
    ("struct_ops+", "struct_ops"),
    ("struct_ops.s+", "struct_ops"),
    ("sk_lookup", "sk_lookup"),
    ("netfilter", "netfilter"),
)


class Prediction(
    namedtuple("Prediction", ("section", "name", "kernel_name", "prog_type", "insns", "tag", "tag_sha1", "caveats"))
):
    """One program as the kernel will show it once libbpf loaded it."""

    __slots__ = ()
    section: str
    name: str
    kernel_name: str  # the name truncated as the kernel keeps it
    prog_type: str  # bpftool's name of the program type ("unknown" if the section says nothing)
    insns: int  # instructions handed to the kernel (sub-programs appended)
    tag: str  # SHA-256 tag (kernels since 6.18)
    tag_sha1: str  # SHA-1 tag (older kernels)
    caveats: tuple[str, ...]  # why the kernel might report another tag; () for an exact prediction

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as ``inspect`` shows it and the ``which`` cache stores it (``prog_type`` as ``type``)."""
        return {("type" if key == "prog_type" else key): value for key, value in self._asdict().items()} | {
            "caveats": list(self.caveats)
        }


class PredictionError(RpmBpfError, ValueError):
    """The object cannot be parsed far enough to predict anything."""


def _prog_type(section: str) -> str:
    """The program type libbpf loads ``section`` as; objects for libbpf before 1.0, which took any section
    starting with a known name (SEC_SLOPPY_PFX: "xdp_prog"), get the longest such name's type."""
    for name, kind in _SECTION_DEFS:
        if name.endswith("+"):
            stem = name[:-1]
            if section == stem or section.startswith(stem + "/"):
                return kind
        elif section == name or (name.endswith("/") and section.startswith(name)):
            return kind
    prefixes = [(name.rstrip("+"), kind) for name, kind in _SECTION_DEFS if section.startswith(name.rstrip("+"))]
    return max(prefixes, key=lambda item: len(item[0]))[1] if prefixes else "unknown"  # the longest


def kernel_tags(code: bytes) -> tuple[str, str]:
    """The tags of instructions as the kernel computes them (bpf_prog_calc_tag): SHA-256 and SHA-1."""
    out = bytearray(code)
    was_ld_map = False
    for i in range(0, len(out) - len(out) % 8, 8):
        opcode, regs = out[i], out[i + 1]
        src = regs >> 4
        if not was_ld_map and opcode == _LD_IMM64 and src in (_PSEUDO_MAP_FD, _PSEUDO_MAP_VALUE):
            was_ld_map = True
            out[i + 4 : i + 8] = b"\0\0\0\0"
        elif was_ld_map and opcode == 0 and regs == 0 and out[i + 2 : i + 4] == b"\0\0":
            was_ld_map = False
            out[i + 4 : i + 8] = b"\0\0\0\0"
        else:
            was_ld_map = False
    return hashlib.sha256(out).hexdigest()[:16], hashlib.sha1(out).hexdigest()[:16]


class _Core:
    """An object's CO-RE relocations: the instructions they patch, the patched section bytes, and why a
    relocation is not known (per instruction, as (section index, byte offset))."""

    def __init__(self) -> None:
        self.sites: set[tuple[int, int]] = set()
        self.patched: dict[int, bytes] = {}
        self.failed: dict[tuple[int, int], str] = {}
        self.not_applied: str | None = None  # all relocations left as compiled, and why
        self.kconfig: set[str] = set()  # __kconfig externs: libbpf's .kconfig map, a map value like .data

    def caveats(self, origins: list[tuple[int, int]]) -> list[str]:
        sites = [o for o in origins if o in self.sites]
        if not sites:
            return []
        if self.not_applied is not None:
            return [self.not_applied]
        return [
            f"CO-RE relocation at instruction {k} not computed: {self.failed[o]}"
            for k, o in enumerate(origins)
            if o in self.failed
        ]


def _kconfig_externs(local: Btf) -> set[str]:
    names: set[str] = set()
    for tid in range(1, local.count):
        if local.kind(tid) == btf.DATASEC and local.name(tid) == ".kconfig":
            names.update(local.name(var) for var in local.datasec_vars(tid))
    return names


NO_TARGET = "CO-RE relocations: resolved against the running kernel's BTF"


def _core(elf: Any, sections: dict[int, Any], funcs: dict[int, list[tuple[int, int, str, bool]]], target: Any) -> _Core:
    """The CO-RE relocations of ``elf`` applied against ``target`` (a ``core.Target``; None: not applied)."""
    out = _Core()
    ext, local_sec = elf.get_section_by_name(".BTF.ext"), elf.get_section_by_name(".BTF")
    if local_sec is not None and ext is None:
        with contextlib.suppress(BtfError):  # then an extern stays a caveat
            out.kconfig = _kconfig_externs(Btf(local_sec.data()))
    if ext is None or local_sec is None:
        return out
    order = "<" if elf.little_endian else ">"
    local: Btf | None = None
    problem: str | None = None
    try:
        local = Btf(local_sec.data())
        out.kconfig = _kconfig_externs(local)
        recs = core.records(ext.data(), local, order)
    except BtfError as exc:
        recs, local = [], None
        problem = f"CO-RE relocations not applied: the object's BTF is unreadable ({exc})"
    by_name = {sec.name: index for index, sec in sections.items()}
    todo = []
    for rec in recs:
        index = by_name.get(rec.section)
        if index is None or rec.insn_off % 8 or rec.section.startswith("?"):
            continue  # "?sec": not autoloaded, libbpf does not relocate it (nor narrow candidates with it)
        try:
            _function_at(funcs, index, rec.insn_off)
        except PredictionError:
            continue  # in no function (an eliminated weak sub-program): libbpf skips it too
        out.sites.add((index, rec.insn_off))
        todo.append((index, rec))
    if not out.sites and problem is None:
        return out
    if problem is None and target is None:
        problem = NO_TARGET
    kernel = target.types() if target is not None and problem is None else None
    if problem is None and kernel is None:
        problem = f"CO-RE relocations not applied: {target.problem}"
    if problem is None and order != "<":
        problem = "CO-RE relocations not applied: a big-endian object"
    if problem is not None or local is None or kernel is None:
        out.not_applied = problem or NO_TARGET
        return out
    relocator = core.Relocator(local, kernel, target.modules)
    patched: dict[int, bytearray] = {}
    for index, rec in todo:
        code = patched.setdefault(index, bytearray(sections[index].data()))
        try:
            core.patch(code, rec.insn_off, relocator.resolve(rec))
        except core.Unresolved as exc:
            out.failed[(index, rec.insn_off)] = f"{core.KIND_NAMES[rec.kind] if rec.kind < 13 else rec.kind}: {exc}"
    out.patched = {index: bytes(code) for index, code in patched.items()}
    return out


def predict(data: bytes, target: Any = None) -> list[Prediction]:
    """A prediction for every program of a relocatable BPF object (``PredictionError`` if it cannot be read).

    ``target``: the BTF CO-RE relocations are resolved against (``sources.kernelbtf.KernelBtf``: its
    ``types()``, ``problem`` and ``modules``); None leaves them as compiled, with a caveat."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(data))
        check_section_table(elf, len(data), "object")  # as elf.inspect does: a crafted count is not walked
        return _predict(elf, target)
    except PredictionError:
        raise
    except BpfElfError as exc:
        raise PredictionError(str(exc).removeprefix("object: ")) from None
    except (ELFError, struct.error, ValueError, IndexError, KeyError) as exc:
        raise PredictionError(f"malformed BPF object ({exc})") from None
    except Exception as exc:  # pyelftools raises assorted types on crafted input (as elf.inspect knows)
        raise PredictionError(f"malformed BPF object ({type(exc).__name__}: {exc})") from None


class _Code:
    """One program's instructions as libbpf builds them: its own, then the sub-programs it reaches."""

    def __init__(self, patched: dict[int, bytes]) -> None:
        self.insns = bytearray()
        self.origin: list[tuple[int, int]] = []  # per instruction: (section index, offset in the section)
        self.placed: dict[tuple[int, int], int] = {}  # (section, function start) -> instruction index here
        self.bytes: dict[int, bytes] = dict(patched)  # sections read so far (pyelftools reads them again each
        # time), those with CO-RE relocations as libbpf patched them

    def section_bytes(self, sections: dict[int, Any], index: int) -> bytes:
        if index not in self.bytes:
            self.bytes[index] = bytes(sections[index].data())
        return self.bytes[index]

    def append(self, section: int, start: int, body: bytes) -> int:
        at = len(self.insns) // 8
        if at + len(body) // 8 > MAX_PROGRAM_INSNS:
            raise PredictionError(f"a program longer than {MAX_PROGRAM_INSNS} instructions with its sub-programs")
        self.placed[(section, start)] = at
        self.insns += body
        self.origin += [(section, start + k) for k in range(0, len(body), 8)]
        return at


def _predict(elf: Any, kernel_btf: Any = None) -> list[Prediction]:
    if elf["e_machine"] != "EM_BPF" or elf["e_type"] != "ET_REL":
        raise PredictionError("not a relocatable BPF object")
    order = "<" if elf.little_endian else ">"
    symtab = elf.get_section_by_name(".symtab")
    if symtab is None:
        raise PredictionError("no symbol table")
    sections = dict(enumerate(elf.iter_sections()))
    # Every symbol read once (elf.symbols): relocations name the same few (maps, sub-programs) thousands of times.
    symbols = elf_symbols(elf, symtab)
    relocs: dict[int, dict[int, Symbol]] = {}  # section index -> offset -> symbol
    for sec in sections.values():
        if sec["sh_type"] == "SHT_REL":
            target = relocs.setdefault(sec["sh_info"], {})
            for offset, index in relocations(elf, sec):
                target[offset] = symbols[index]
    funcs: dict[int, list[tuple[int, int, str, bool]]] = {}  # section -> (start, size, name, global)
    for sym in symbols:
        if sym.type == STT_FUNC and sym.shndx is not None:
            funcs.setdefault(sym.shndx, []).append((sym.value, sym.size, sym.name, sym.bind != STB_LOCAL))
    for listed in funcs.values():
        listed.sort()
    relocated = _core(elf, sections, funcs, kernel_btf)
    results = []
    for index, sec in sections.items():
        if not (sec["sh_flags"] & 0x4) or sec["sh_size"] == 0 or sec.name == ".text":
            continue
        body = relocated.patched.get(index) or sec.data()
        for start, size, name, is_global in sorted(funcs.get(index, [])):
            if not is_global or size == 0:
                continue  # static functions in a program section are sub-programs
            results.append(_program(elf, sections, relocs, funcs, relocated, order, index, start, size, name, body))
            work = sum(p.insns for p in results)
            if work > MAX_OBJECT_INSNS:
                raise PredictionError(f"programs longer than {MAX_OBJECT_INSNS} instructions in all")
    return results


def _function_at(funcs: dict[int, list[tuple[int, int, str, bool]]], section: int, offset: int) -> tuple[int, int]:
    """The function (start, size) containing ``offset``: a binary search, the lists being sorted by start."""
    listed = funcs.get(section, [])
    at = bisect.bisect_right(listed, offset, key=lambda f: f[0]) - 1
    if at >= 0:
        start, size, _, _ = listed[at]
        if start <= offset < start + max(size, 1):
            return start, size
    raise PredictionError(f"a call into section {section} at {offset} reaches no function")


def _program(
    elf: Any,
    sections: dict[int, Any],
    relocs: dict[int, dict[int, Symbol]],
    funcs: dict[int, list[tuple[int, int, str, bool]]],
    relocated: _Core,
    order: str,
    index: int,
    start: int,
    size: int,
    name: str,
    body: bytes,
) -> Prediction:
    code = _Code(relocated.patched)
    code.append(index, start, body[start : start + size])
    caveats: list[str] = []
    sec_name = sections[index].name
    # libbpf walks each function's own instructions; a sub-program met for the first time is appended and
    # walked at once (depth first), before the rest of its caller: an explicit stack, not recursion.
    stack = [[0, size // 8]]
    while stack:
        frame = stack[-1]
        i, end = frame
        if i >= end:
            stack.pop()
            continue
        frame[0] = i + 1
        at = i * 8
        opcode, regs = code.insns[at], code.insns[at + 1]
        src = regs >> 4
        section, offset = code.origin[i]
        sym = relocs.get(section, {}).get(offset)
        if opcode == _LD_IMM64:
            frame[0] = i + 2
            if sym is None:
                continue
            shndx = sym.shndx
            if shndx is None and sym.name in relocated.kconfig:
                code.insns[at + 1] = (regs & 0x0F) | (_PSEUDO_MAP_VALUE << 4)  # libbpf's .kconfig map
                continue
            if shndx is None:
                caveats.append(f"ksym or extern {sym.name}: resolved against the running kernel")
                continue
            target = sections[shndx]
            if target["sh_flags"] & 0x4:  # a function pointer (a callback): its function is a sub-program
                imm = struct.unpack_from(order + "i", code.insns, at + 4)[0]
                dest = sym.value + imm if sym.type == STT_SECTION else sym.value
                placed = _place(code, sections, funcs, shndx, dest, stack)
                code.insns[at + 1] = (regs & 0x0F) | (_PSEUDO_FUNC << 4)
                struct.pack_into(order + "i", code.insns, at + 4, placed - (i + 1))
            else:
                kind = _PSEUDO_MAP_FD if target.name in _MAP_SECTIONS else _PSEUDO_MAP_VALUE
                code.insns[at + 1] = (regs & 0x0F) | (kind << 4)
            continue
        if opcode == _CALL and (src == _PSEUDO_CALL or sym is not None):
            imm = struct.unpack_from(order + "i", code.insns, at + 4)[0]
            if sym is not None and sym.shndx is None:
                caveats.append(f"kfunc {sym.name}: its BTF id is the running kernel's")
                code.insns[at + 1] = (regs & 0x0F) | (2 << 4)  # BPF_PSEUDO_KFUNC_CALL; the imm stays unknown
                continue
            if sym is not None and sym.shndx is not None:  # libbpf: the symbol's offset plus the displacement
                shndx, dest = sym.shndx, sym.value + (imm + 1) * 8
            else:  # a static function of the same section: no relocation, the displacement alone
                shndx, dest = section, offset + (imm + 1) * 8
            placed = _place(code, sections, funcs, shndx, dest, stack)
            struct.pack_into(order + "i", code.insns, at + 4, placed - (i + 1))
    caveats = relocated.caveats(code.origin) + caveats
    tag, tag_sha1 = kernel_tags(bytes(code.insns))
    return Prediction(
        sec_name,
        name,
        name[:KERNEL_NAME_LEN],
        _prog_type(sec_name),
        len(code.insns) // 8,
        tag,
        tag_sha1,
        tuple(dict.fromkeys(caveats)),
    )


def _place(
    code: _Code,
    sections: dict[int, Any],
    funcs: dict[int, list[tuple[int, int, str, bool]]],
    shndx: int,
    dest: int,
    stack: list[list[int]],
) -> int:
    """The instruction index of ``dest`` (section, offset) in ``code``; its function is appended (and pushed
    on ``stack`` to be walked next) the first time."""
    fstart, fsize = _function_at(funcs, shndx, dest)
    if (shndx, fstart) not in code.placed:
        at = code.append(shndx, fstart, code.section_bytes(sections, shndx)[fstart : fstart + fsize])
        stack.append([at, at + fsize // 8])
    return code.placed[(shndx, fstart)] + (dest - fstart) // 8
