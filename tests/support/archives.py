"""ar archives in memory, laid out as GNU ar and BSD ar (llvm-ar --format=bsd) write them, for the rule tests."""

from __future__ import annotations

from rpm_bpf.bpf import archive

ARCHIVE_CLASS = "current ar archive"  # libmagic's words


def header(name: bytes, size: int) -> bytes:
    return (
        name.ljust(16)
        + b"0".ljust(12)
        + b"0".ljust(6)
        + b"0".ljust(6)
        + b"644".ljust(8)
        + str(size).encode().ljust(10)
        + b"`\n"
    )


def gnu_archive(members: list[tuple[str, bytes]]) -> bytes:
    """As GNU ar writes it: a // table for names longer than 15 bytes, members padded to two bytes."""
    table = b"".join(name.encode("utf-8", "surrogateescape") + b"/\n" for name, _ in members if len(name) > 15)
    out = archive.MAGIC
    if table:
        out += header(b"//", len(table)) + table + (b"\n" if len(table) % 2 else b"")
    offset = 0
    for name, data in members:
        if len(name) > 15:
            label = f"/{offset}".encode()
            offset += len(name) + 2
        else:
            label = name.encode("utf-8", "surrogateescape") + b"/"
        out += header(label, len(data)) + data + (b"\n" if len(data) % 2 else b"")
    return out


def bsd_archive(members: list[tuple[str, bytes]]) -> bytes:
    """As BSD ar (and llvm-ar --format=bsd) writes it: #1/N, the name first in the member's bytes."""
    out = archive.MAGIC
    for name, data in members:
        raw = name.encode("utf-8", "surrogateescape")
        body = raw + data
        out += header(f"#1/{len(raw)}".encode(), len(body)) + body + (b"\n" if len(body) % 2 else b"")
    return out
