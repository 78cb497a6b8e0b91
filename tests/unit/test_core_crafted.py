"""CO-RE matching on crafted BTF (no toolchain): work stays bounded whatever the types say.

The BTF here is written by hand on purpose: clang never emits a struct whose members repeat one name, a
crafted object can. Twelve nested structs of six members each named alike would cost 6**24 comparisons
without memoization.
"""

from __future__ import annotations

import struct

import pytest

from rpm_bpf.bpf import btf as B
from rpm_bpf.bpf.btf import Btf
from rpm_bpf.bpf.coretypes import Budget, Unresolved, types_match


def _crafted(depth: int = 12, width: int = 6) -> tuple[Btf, int]:
    strings = b"\0int\0m\0" + b"".join(f"s{k}\0".encode() for k in range(1, depth + 1))
    name = {"int": 1, "m": 5}
    at = 7
    for k in range(1, depth + 1):
        name[f"s{k}"] = at
        at += len(f"s{k}") + 1
    types = struct.pack("<III", name["int"], B.INT << 24, 4) + struct.pack("<I", 32)
    for k in range(1, depth + 1):  # type id k + 1: s_k, members of type id k
        types += struct.pack("<III", name[f"s{k}"], (B.STRUCT << 24) | width, 4 * width)
        types += b"".join(struct.pack("<III", name["m"], k, 32 * i) for i in range(width))
    header = struct.pack("<HBBIIIII", B.BTF_MAGIC, 1, 0, 24, 0, len(types), len(types), len(strings))
    return Btf(header + types + strings), depth + 1


def test_repeated_member_names_do_not_make_a_match_exponential():
    local, root = _crafted()
    target, troot = _crafted()
    budget = Budget()
    assert types_match(local, root, target, troot, budget=budget)
    assert budget.left > Budget().left - 10_000  # a few hundred steps, not 6**24


def test_the_budget_is_a_reason_not_a_hang():
    local, root = _crafted()
    with pytest.raises(Unresolved, match="more work than any real program"):
        types_match(local, root, local, root, budget=Budget(steps=20))


def test_crafted_btf_parses_and_sizes():
    local, root = _crafted()
    assert local.count == 14 and local.resolve_size(root) == 24 and local.by_essential_name("s3") == [4]
