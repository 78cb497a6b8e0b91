"""Which types CO-RE relocation takes as the same across two BTFs: libbpf's compatibility rules (for
field relocations, for type relocations) and its stricter "types match" (``bpf_core_type_matches``),
from ``relo_core.c``. Names compare by their essential part (``___flavor`` dropped)."""

from __future__ import annotations

from rpm_bpf.bpf import btf as B
from rpm_bpf.bpf.btf import Btf


class Unresolved(Exception):
    """This relocation's result is not known here (libbpf would fail, or needs what is not read)."""


class Budget:
    """The work one object's relocations may take: crafted types (struct members repeating names, nested
    function types with many parameters) cannot make a match exponential. Matches are memoized."""

    def __init__(self, steps: int = 2_000_000) -> None:
        self.left = steps
        self.matched: dict[tuple[int, int, bool], bool] = {}

    def spend(self, steps: int = 1) -> None:
        self.left -= steps
        if self.left < 0:
            raise Unresolved("the object's relocations take more work than any real program's (crafted types)")


def names_essential_equal(a: str, b: str) -> bool:
    la, lb = B.essential_len(a), B.essential_len(b)
    return la == lb and a[:la] == b[:lb]


def fields_compatible(local: Btf, lid: int, targ: Btf, tid: int, budget: Budget | None = None) -> bool:
    for _ in range(B.MAX_DEPTH):
        if budget is not None:
            budget.spend()
        lid, tid = local.skip_mods(lid), targ.skip_mods(tid)
        lk, tk = local.kind(lid), targ.kind(tid)
        if B.is_composite(lk) and B.is_composite(tk):
            return True
        if not B.core_compatible_kinds(lk, tk):
            return False
        if lk in (B.PTR, B.FLOAT):
            return True
        if lk in (B.FWD, B.ENUM, B.ENUM64):
            ln, tn = local.name(lid), targ.name(tid)
            return B.essential_len(ln) == 0 or B.essential_len(tn) == 0 or names_essential_equal(ln, tn)
        if lk == B.INT:
            return local.int_encoding(lid)[1] == 0 and targ.int_encoding(tid)[1] == 0
        if lk == B.ARRAY:
            lid, tid = local.array(lid)[0], targ.array(tid)[0]
            continue
        return False
    raise Unresolved("nested arrays too deep")


def types_compatible(local: Btf, lid: int, targ: Btf, tid: int, level: int = 32, budget: Budget | None = None) -> bool:
    """libbpf's __bpf_core_types_are_compat (type-based relocations)."""
    budget = budget if budget is not None else Budget()
    if not B.core_compatible_kinds(local.kind(lid), targ.kind(tid)):
        return False
    for _ in range(B.MAX_DEPTH):
        budget.spend()
        lid, tid = local.skip_mods(lid), targ.skip_mods(tid)
        lk, tk = local.kind(lid), targ.kind(tid)
        if not B.core_compatible_kinds(lk, tk):
            return False
        if lk in (B.UNKN, B.STRUCT, B.UNION, B.ENUM, B.FWD, B.ENUM64):
            return True
        if lk == B.INT:
            return local.int_encoding(lid)[1] == 0 and targ.int_encoding(tid)[1] == 0
        if lk == B.PTR:
            lid, tid = local.size_or_type(lid), targ.size_or_type(tid)
        elif lk == B.ARRAY:
            lid, tid = local.array(lid)[0], targ.array(tid)[0]
        elif lk == B.FUNC_PROTO:
            lp, tp = local.params(lid), targ.params(tid)
            if len(lp) != len(tp):
                return False
            for a, b in zip(lp, tp, strict=True):
                if level <= 0:
                    raise Unresolved("function types nested too deep")
                if not types_compatible(local, local.skip_mods(a), targ, targ.skip_mods(b), level - 1, budget):
                    return False
            lid, tid = local.size_or_type(lid), targ.size_or_type(tid)
        else:
            return False
    raise Unresolved("types nested too deep")


def _names_match(local: Btf, ln: str, targ: Btf, tn: str) -> bool:
    if not tn:
        return not ln
    return names_essential_equal(ln, tn)


def types_match(
    local: Btf,
    lid: int,
    targ: Btf,
    tid: int,
    behind_ptr: bool = False,
    level: int = 32,
    budget: Budget | None = None,
) -> bool:
    """libbpf's __bpf_core_types_match (``bpf_core_type_matches``), memoized in ``budget``."""
    budget = budget if budget is not None else Budget()
    key = (lid, tid, behind_ptr)
    if key not in budget.matched:
        budget.matched[key] = _types_match(local, lid, targ, tid, behind_ptr, level, budget)
    return budget.matched[key]


def _types_match(local: Btf, lid: int, targ: Btf, tid: int, behind_ptr: bool, level: int, budget: Budget) -> bool:
    if level <= 0:
        raise Unresolved("types nested too deep")
    for _ in range(B.MAX_DEPTH):
        budget.spend()
        lid, tid = local.skip_mods(lid), targ.skip_mods(tid)
        if not _names_match(local, local.name(lid), targ, targ.name(tid)):
            return False
        lk, tk = local.kind(lid), targ.kind(tid)
        if lk == B.UNKN:
            return lk == tk
        if lk == B.FWD:
            lf = local.kflag(lid)
            if behind_ptr:
                if lk == tk:
                    return lf == targ.kflag(tid)
                return (tk == B.STRUCT and not lf) or (tk == B.UNION and lf)
            return lk == tk and lf == targ.kflag(tid)
        if lk in (B.ENUM, B.ENUM64):
            if not B.is_enum(tk) or local.size_or_type(lid) != targ.size_or_type(tid):
                return False
            lnames, tnames = local.enumerators(lid), targ.enumerators(tid)
            if len(lnames) > len(tnames):
                return False
            return all(any(_names_match(local, ln, targ, tn) for tn, _ in tnames) for ln, _ in lnames)
        if lk in (B.STRUCT, B.UNION):
            if behind_ptr:
                if lk == tk:
                    return True
                return tk == B.FWD and (lk == B.UNION) == targ.kflag(tid)
            if lk != tk:
                return False
            lms, tms = local.members(lid), targ.members(tid)
            if len(lms) > len(tms):
                return False
            for lm in lms:
                budget.spend(len(tms))
                if not any(
                    _names_match(local, lm.name, targ, tm.name)
                    and types_match(local, lm.type, targ, tm.type, behind_ptr, level - 1, budget)
                    for tm in tms
                ):
                    return False
            return True
        if lk == B.INT:
            if lk != tk:
                return False
            ls, ts = local.int_encoding(lid)[0] & B.INT_SIGNED, targ.int_encoding(tid)[0] & B.INT_SIGNED
            return local.size_or_type(lid) == targ.size_or_type(tid) and ls == ts
        if lk == B.PTR:
            if lk != tk:
                return False
            behind_ptr = True
            lid, tid = local.size_or_type(lid), targ.size_or_type(tid)
        elif lk == B.ARRAY:
            if lk != tk:
                return False
            (le, ln_), (te, tn_) = local.array(lid), targ.array(tid)
            if ln_ != tn_:
                return False
            lid, tid = le, te
        elif lk == B.FUNC_PROTO:
            if lk != tk:
                return False
            lp, tp = local.params(lid), targ.params(tid)
            if len(lp) != len(tp):
                return False
            if not all(
                types_match(local, a, targ, b, behind_ptr, level - 1, budget) for a, b in zip(lp, tp, strict=True)
            ):
                return False
            lid, tid = local.size_or_type(lid), targ.size_or_type(tid)
        else:
            return False
    raise Unresolved("types nested too deep")
