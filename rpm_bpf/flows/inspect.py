"""``rpm-bpf inspect``: what one file holds, as a JSON-ready description.

A BPF object (its ELF facts, programs and the kernel's view of each), or an
ELF file embedding objects (each described the same way). The file is never
followed through a symbolic link and never opened if it is not a regular file.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from rpm_bpf.bpf import elf
from rpm_bpf.bpf import embedded as embedded_search
from rpm_bpf.bpf.progtag import PredictionError, predict
from rpm_bpf.model import MAX_CONTENT
from rpm_bpf.sources.rootfs import describe_mode, read_user_file


def kernel_view(data: bytes) -> list[dict[str, Any]]:
    """What the kernel will report for each program once libbpf loaded the object (progtag.py)."""
    try:
        return [p.to_dict() for p in predict(data)]
    except PredictionError:
        return []


def describe_file(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """(description, error) for one file, never following symlinks, never blocking."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            return None, f"{path}: is a symbolic link (to {os.readlink(path)}); name the object itself"
        if not stat.S_ISREG(mode):
            return None, f"{path}: is {describe_mode(mode)}, not a regular file"
        data = read_user_file(path, MAX_CONTENT)
    except OSError as exc:
        return None, f"{path}: {exc.strerror}"
    if not data:
        return None, f"{path}: empty file, not a BPF object"
    if elf.is_bpf_elf(data):
        try:
            return {
                "path": path,
                "kind": "object",
                **elf.inspect(data, path).to_dict(),
                "kernel": kernel_view(data),
            }, None
        except elf.BpfElfError as exc:
            return None, str(exc)
    if elf.elf_machine(data) is None:
        return None, f"{path}: not an ELF file"
    embedded = embedded_search.find_all(data)
    if not embedded:
        return None, f"{path}: ELF file without BPF code (no embedded BPF object found)"
    return {
        "path": path,
        "kind": "embedded",
        "embedded": [
            {
                "offset": e.offset,
                "light_skeleton": embedded_search.is_light_skeleton(e),
                **e.object.to_dict(),
                "kernel": kernel_view(data[e.offset : e.offset + e.object.size]),
            }
            for e in embedded
        ],
    }, None
