"""CO-RE relocations (bpf/core.py) on objects and target BTF built by clang at test time.

The target BTF stands for a kernel: the same type names as the object's,
laid out differently (tests/fuzz/targets.py's CORE_TARGET_C), so every
value below is the target's layout, worked out from its C declaration. The
real kernel is the other half of the proof (test_which_core: the tags the
kernel computes).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from rpm_bpf.bpf import core
from rpm_bpf.bpf.btf import Btf
from rpm_bpf.bpf.progtag import predict
from rpm_bpf.samples import build as samples
from tests.fuzz.targets import CORE_TARGET_C, CoreTarget, btf_section
from tests.support.programs import CORE_RICH_C
from tests.support.toolchain import require

pytestmark = pytest.mark.integration


def _btf(obj: Path) -> bytes:
    data = obj.read_bytes()
    at, size = btf_section(data)
    return data[at : at + size]


def _ext(obj: Path) -> bytes:
    import io

    from elftools.elf.elffile import ELFFile

    return ELFFile(io.BytesIO(obj.read_bytes())).get_section_by_name(".BTF.ext").data()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    require("clang")
    work = tmp_path_factory.mktemp("core")
    return {
        "rich": samples.compile_bpf(CORE_RICH_C, work / "rich.bpf.o"),
        "target": samples.compile_bpf(CORE_TARGET_C, work / "target.bpf.o"),
        # two kernel flavors of one type that disagree on a field: libbpf refuses to choose
        "ambiguous": samples.compile_bpf(
            "struct task_struct___a { int tgid; };\nstruct task_struct___b { long pad; int tgid; };\n"
            "struct task_struct___a *a;\nstruct task_struct___b *b;\n",
            work / "ambiguous.bpf.o",
        ),
        # a kernel without the type at all: field reads poisoned, existence 0
        "without": samples.compile_bpf("enum pid_type { PIDTYPE_TGID = 1 };\nenum pid_type keep;\n", work / "w.bpf.o"),
    }


def _resolved(built: dict[str, Path], target: str) -> dict[tuple[str, str, str], core.Result | str]:
    """Every record of the rich object resolved against ``target``: (kind, type, member or enumerator)."""
    local = Btf(_btf(built["rich"]))
    relocator = core.Relocator(local, Btf(_btf(built[target])))
    out: dict[tuple[str, str, str], core.Result | str] = {}
    for rec in core.records(_ext(built["rich"]), local, "<"):
        spec = core.parse_spec(local, rec)
        what = spec.acc[-1].name or "" if spec.acc else ""
        try:
            result: core.Result | str = relocator.resolve(rec)
        except core.Unresolved as exc:
            result = str(exc)
        out[(core.KIND_NAMES[rec.kind], local.name(rec.type_id), what)] = result
    return out


def test_every_kind_resolves_to_the_target_layout(built):
    got = _resolved(built, "target")
    target = Btf(_btf(built["target"]))
    (task,) = target.by_essential_name("task_struct")

    def new(kind: str, typ: str, what: str) -> int:
        res = got[(kind, typ, what)]
        assert isinstance(res, core.Result) and not res.poison, (kind, typ, what, res)
        return res.new

    # field offsets: tgid at 24 here, 20 in the object; the flavored type's pid at 20 (8 in the object)
    assert new("byte_off", "task_struct", "tgid") == 24
    assert got[("byte_off", "task_struct", "tgid")].orig == 20
    assert new("byte_off", "task_struct___older", "pid") == 20
    assert new("field_exists", "task_struct", "no_such_field_in_any_kernel") == 0
    # bitfields, read as a 4-byte word at 28: sched_remote_wakeup is bits 0-2 of it, sched_reset_on_fork bit 3
    assert new("byte_off", "task_struct", "sched_reset_on_fork") == 28
    assert new("byte_sz", "task_struct", "sched_reset_on_fork") == 4
    assert new("lshift_u64", "task_struct", "sched_reset_on_fork") == 64 - (227 + 1 - 224)
    assert new("rshift_u64", "task_struct", "sched_reset_on_fork") == 63
    assert new("lshift_u64", "task_struct", "sched_remote_wakeup") == 64 - 3
    assert new("rshift_u64", "task_struct", "sched_remote_wakeup") == 61
    assert new("signed", "task_struct", "sched_remote_wakeup") == 0
    # types: the target's size and id; a type the target lacks does not exist
    assert new("type_size", "task_struct", "") == 48
    assert new("type_exists", "task_struct", "") == 1
    assert new("type_exists", "no_such_type_in_any_kernel", "") == 0
    assert new("target_type_id", "task_struct", "") == task
    # enumerators: the target's value, and existence by name
    assert new("enumval_value", "pid_type", "PIDTYPE_TGID") == 42
    assert new("enumval_exists", "pid_type", "PIDTYPE_SID") == 1
    assert new("enumval_exists", "pid_type", "PIDTYPE_NOT_IN_ANY_KERNEL") == 0


def test_patched_instructions_carry_the_target_values(built):
    """predict's tags change with the target; the patched instructions hold the target's values."""
    obj = built["rich"].read_bytes()
    target = CoreTarget(_btf(built["target"]))
    as_compiled, relocated = predict(obj), predict(obj, target)
    assert [p.name for p in relocated] == ["core_fields", "core_types"]
    assert all(p.caveats == () for p in relocated)
    assert all(any("CO-RE" in c for c in p.caveats) for p in as_compiled)
    assert [p.tag for p in relocated] != [p.tag for p in as_compiled]
    # The sub-program's bitfield reads, relocated record by record: at each relocated instruction, the
    # target's word offset (28), size (4) and shifts (64-4, 64-3), no longer the object's (16, 8, 62, 63).
    local = Btf(_btf(built["rich"]))
    relocator = core.Relocator(local, target.btf)
    compiled = _section(obj, ".text")
    text = bytearray(compiled)
    sites: dict[str, set[tuple[int, int]]] = {}
    for rec in core.records(_ext(built["rich"]), local, "<"):
        if rec.section == ".text":
            core.patch(text, rec.insn_off, relocator.resolve(rec))
            before, after = (struct.unpack_from("<i", code, rec.insn_off + 4)[0] for code in (compiled, text))
            sites.setdefault(core.KIND_NAMES[rec.kind], set()).add((before, after))
    assert sites["byte_off"] == {(16, 28)}
    assert sites["byte_sz"] == {(8, 4)}
    assert sites["lshift_u64"] == {(62, 60), (63, 61)}
    assert sites["rshift_u64"] == {(63, 63), (63, 61)}
    assert sites["signed"] == {(0, 0)}


def test_missing_type_poisons_field_reads_and_exists_is_zero(built):
    got = _resolved(built, "without")
    res = got[("byte_off", "task_struct", "tgid")]
    assert isinstance(res, core.Result) and res.poison
    assert got[("field_exists", "task_struct", "no_such_field_in_any_kernel")].new == 0
    assert got[("type_exists", "task_struct", "")].new == 0
    assert got[("enumval_value", "pid_type", "PIDTYPE_TGID")].new == 1
    # predict: the poisoned instruction is libbpf's call to helper 0xbad2310, and the tag is exact (no caveat)
    obj = built["rich"].read_bytes()
    progs = predict(obj, CoreTarget(_btf(built["without"])))
    assert all(p.caveats == () for p in progs)
    insns = bytearray(_section(obj, "kprobe/do_nanosleep"))
    local = Btf(_btf(built["rich"]))
    relocator = core.Relocator(local, Btf(_btf(built["without"])))
    rec = next(
        r
        for r in core.records(_ext(built["rich"]), local, "<")
        if r.section == "kprobe/do_nanosleep" and r.kind == core.FIELD_BYTE_OFFSET
    )
    core.patch(insns, rec.insn_off, relocator.resolve(rec))
    assert insns[rec.insn_off] == 0x85 and struct.unpack_from("<I", insns, rec.insn_off + 4)[0] == core.POISON_IMM


def _section(obj: bytes, name: str) -> bytes:
    import io

    from elftools.elf.elffile import ELFFile

    return ELFFile(io.BytesIO(obj)).get_section_by_name(name).data()


def test_ambiguous_candidates_are_unresolved_with_the_reason(built):
    got = _resolved(built, "ambiguous")
    assert "ambiguity" in got[("byte_off", "task_struct", "tgid")]
    progs = {p.name: p for p in predict(built["rich"].read_bytes(), CoreTarget(_btf(built["ambiguous"])))}
    assert any("not computed: byte_off: field offset ambiguity" in c for c in progs["core_fields"].caveats)


def test_unreadable_target_leaves_relocations_with_the_reason(built):
    progs = predict(built["rich"].read_bytes(), CoreTarget(b"not BTF at all" * 4))
    assert all(p.caveats == ("CO-RE relocations not applied: not BTF (bad magic)",) for p in progs), progs
