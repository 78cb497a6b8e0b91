"""Ground truth for embedded-object recall, independent of rpm-bpf's code: every BPF ELF object in the files
of an RPM, found by a plain byte search.

Each RPM's payload is unpacked with rpm2cpio and cpio (rpm's and GNU's tools); in every regular file,
each ``\\x7fELF`` whose ``e_machine`` is EM_BPF (247) and from which pyelftools parses a relocatable ELF
file with a readable section table counts. Where it counts depends on the file it is in: at offset 0 the
file is a standalone object; inside an ``ar`` archive it is a member; anywhere else it is embedded.
Nothing here imports ``rpm_bpf``: the search shares no code with what it checks.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from collections import namedtuple
from pathlib import Path

from elftools.elf.elffile import ELFFile

EM_BPF = 247
MAGIC = b"\x7fELF"


class Hit(namedtuple("Hit", ("package", "path", "offset", "kind"))):
    """One BPF ELF object: its package's name, the file's path, the offset in that file, and the kind
    ("standalone", "embedded" in another ELF file or any other file, "member" of an ar archive)."""

    __slots__ = ()


def _is_bpf_object(data: bytes, offset: int) -> bool:
    if len(data) < offset + 20 or data[offset + 5] not in (1, 2):
        return False
    order = "little" if data[offset + 5] == 1 else "big"
    if int.from_bytes(data[offset + 18 : offset + 20], order) != EM_BPF:
        return False
    try:
        elf = ELFFile(io.BytesIO(data[offset:]))
        if elf.header["e_type"] != "ET_REL":
            return False
        return sum(1 for _ in elf.iter_sections()) > 0
    except Exception:  # pyelftools raises assorted types on what is not an object
        return False


def search_file(data: bytes) -> tuple[str, list[int]]:
    """The file's own kind ("standalone", "archive" or "other") and the offsets of the BPF objects in it."""
    offsets = []
    start = 0
    while (at := data.find(MAGIC, start)) >= 0:
        start = at + 1
        if _is_bpf_object(data, at):
            offsets.append(at)
    if offsets[:1] == [0]:
        return "standalone", offsets
    return ("archive" if data.startswith(b"!<arch>\n") else "other"), offsets


def search_rpm(rpm: Path, package: str) -> list[Hit]:
    """Every BPF object in ``rpm``'s payload (``package``: the name the hits carry)."""
    hits: list[Hit] = []
    with tempfile.TemporaryDirectory(prefix="rpm-bpf-truth-", dir="/var/tmp") as tmp:
        # rpm2cpio | cpio, without a shell: the path is an argument, never command text.
        payload = subprocess.Popen(["rpm2cpio", str(rpm)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        unpack = subprocess.run(
            ["cpio", "-idm", "--quiet", "--no-absolute-filenames"],
            stdin=payload.stdout,
            cwd=tmp,
            capture_output=True,
            text=True,
        )
        assert payload.stdout is not None and payload.stderr is not None
        payload.stdout.close()
        problem = payload.stderr.read().decode(errors="replace").strip()
        if payload.wait() != 0 or unpack.returncode != 0:
            raise RuntimeError(f"cannot unpack {rpm}: {problem or unpack.stderr.strip()}")
        for top, _dirs, names in os.walk(tmp):
            for name in names:
                host = Path(top) / name
                if host.is_symlink() or not host.is_file():
                    continue
                path = "/" + str(host.relative_to(tmp))
                kind, offsets = search_file(host.read_bytes())
                for offset in offsets:
                    if kind == "standalone":
                        what = "standalone" if offset == 0 else "embedded"
                    else:
                        what = "member" if kind == "archive" else "embedded"
                    hits.append(Hit(package, path, offset, what))
    return sorted(hits)
