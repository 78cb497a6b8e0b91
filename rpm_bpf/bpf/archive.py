"""BPF objects that are members of ``ar`` archives (static libraries ``.a``, Rust's ``.rlib``).

Only the member headers of the archive format are read (System V/GNU, with
its ``//`` table of long names, and BSD's ``#1/N`` names): where each
member's bytes are and what it is called. The members themselves are left to
elf.py. Every size is checked against the bytes there are, and the walk is
bounded by ``MAX_MEMBERS``: a crafted archive costs a bounded time.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator

from rpm_bpf.bpf import elf

MAGIC = b"!<arch>\n"
_HEADER = 60
MAX_MEMBERS = 65536
MAX_PARSED_MEMBERS = 1024  # BPF members parsed per archive (gcc-bpf's libgcc.a has 74)
_INDEXES = frozenset({"__.SYMDEF", "__.SYMDEF SORTED", "__.SYMDEF_64", "__.SYMDEF_64 SORTED"})  # BSD symbol indexes


class Member(namedtuple("Member", ("name", "offset", "size"))):
    """A member: its name, where its bytes start in the archive, how many there are."""

    __slots__ = ()
    name: str
    offset: int
    size: int


def is_archive(data: bytes) -> bool:
    return data.startswith(MAGIC)


def members(data: bytes) -> Iterator[Member]:
    """The members of an ar archive, in order; stops at the first header that does not hold together."""
    at = len(MAGIC)
    long_names = b""
    for _ in range(MAX_MEMBERS):
        header = data[at : at + _HEADER]
        if len(header) < _HEADER or header[58:60] != b"`\n":
            return
        try:
            size = int(header[48:58].decode("ascii").strip() or "-1")
        except (UnicodeDecodeError, ValueError):
            return
        start = at + _HEADER
        if size < 0 or start + size > len(data):
            return
        raw = header[:16].rstrip(b" ")
        name_len = 0
        if raw == b"//":
            long_names = data[start : start + size]
            name = ""
        elif raw in (b"/", b"/SYM64/"):
            name = ""  # the symbol index
        elif raw.startswith(b"#1/") and raw[3:].isdigit():  # BSD: the name precedes the member's bytes
            name_len = min(int(raw[3:]), size)
            name = data[start : start + name_len].rstrip(b"\0").decode("utf-8", "surrogateescape")
        elif raw.startswith(b"/") and raw[1:].isdigit():  # GNU: an offset into the // table
            index = int(raw[1:])
            end = long_names.find(b"/\n", index)
            name = long_names[index : end if end >= 0 else len(long_names)].decode("utf-8", "surrogateescape")
        else:
            name = raw.removesuffix(b"/").decode("utf-8", "surrogateescape")
        if name and name not in _INDEXES:
            yield Member(name, start + name_len, size - name_len)
        at = start + size + (size & 1)  # members are aligned on two bytes


def bpf_members(data: bytes) -> list[tuple[Member, elf.BpfObject]]:
    """The members that are BPF objects, with their facts; members that do not parse are left out.

    Parsing is bounded as the embedded search bounds it: at most ``MAX_PARSED_MEMBERS`` members declaring
    ``elf.MAX_PARSED_SECTIONS`` sections in all, per archive."""
    found = []
    parsed, sections = 0, elf.MAX_PARSED_SECTIONS
    for member in members(data):
        body = data[member.offset : member.offset + member.size]
        if not elf.is_bpf_elf(body):
            continue
        declared = elf.declared_sections(body)
        if declared is None:
            continue
        if parsed >= MAX_PARSED_MEMBERS or declared > sections:
            break
        parsed += 1
        sections -= declared
        try:
            found.append((member, elf.inspect(body, member.name)))
        except elf.BpfElfError:
            continue
    return found
