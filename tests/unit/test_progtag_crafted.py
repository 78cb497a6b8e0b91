"""progtag.predict on crafted section tables: refused at once, never walked (found by the elf fuzz target
with --seed 7 on 2026-12-03: extended section numbering made pyelftools walk billions of headers)."""

from __future__ import annotations

import struct
import time

import pytest

from rpm_bpf.bpf import progtag


def _object(shnum: int, first_size: int) -> bytes:
    """An ELF64 little-endian relocatable BPF header, its section table right after it: one null section
    whose sh_size is ``first_size`` (what e_shnum == 0 defers the count to)."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 1, 247, 1, 0, 0, 64, 0, 64, 0, 0, 64, shnum, 0)
    null_section = struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, first_size, 0, 0, 0, 0)
    return header + null_section


@pytest.mark.parametrize("shnum, first_size", [(0, 0xFFFFFFFF), (0, 1 << 40), (65535, 0), (40000, 0)])
def test_crafted_section_counts_are_refused_at_once(shnum, first_size):
    started = time.monotonic()
    with pytest.raises(progtag.PredictionError, match="section"):
        progtag.predict(_object(shnum, first_size))
    assert time.monotonic() - started < 1
