"""Hostile RPMs for the tests: packages written by rpmbuild, then changed as an attacker would.

Tags are changed with rpm's own header API (``del hdr[tag]``, ``hdr[tag] =``,
``hdr.unload()``); ``fix_digests`` then recomputes the signature header's
SHA-1/SHA-256 header digests, MD5 and sizes, so the result passes every check
``rpm -K --nosignature`` makes: what a crafted package in a repository would
look like. Byte-level damage (a flipped byte, a huge count) is written raw.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import rpm

LEAD = 96
MAGIC = b"\x8e\xad\xe8\x01\0\0\0\0"


class Parts:
    """An RPM file cut at its structure: lead, signature header, main header, payload."""

    def __init__(self, data: bytes):
        self.lead = data[:LEAD]
        il, dl = struct.unpack_from(">II", data, LEAD + 8)
        sig_size = 16 + 16 * il + dl
        self.sig_bytes = bytearray(data[LEAD : LEAD + sig_size])
        self.header_offset = LEAD + sig_size + (-sig_size % 8)
        il, dl = struct.unpack_from(">II", data, self.header_offset + 8)
        header_size = 16 + 16 * il + dl
        self.header_bytes = data[self.header_offset : self.header_offset + header_size]
        self.payload = data[self.header_offset + header_size :]

    @classmethod
    def of(cls, path: Path) -> Parts:
        return cls(Path(path).read_bytes())

    @property
    def sig(self) -> rpm.hdr:
        return rpm.hdr(bytes(self.sig_bytes[8:]))

    def header(self) -> rpm.hdr:
        return rpm.hdr(self.header_bytes[8:])

    def set_header(self, hdr: rpm.hdr) -> None:
        self.header_bytes = MAGIC + hdr.unload()

    def _sig_entry(self, tag: int) -> tuple[int, int, int] | None:
        """(type, data offset in sig_bytes, count) of a signature tag."""
        il = struct.unpack_from(">I", self.sig_bytes, 8)[0]
        data_start = 16 + 16 * il
        for i in range(il):
            t, kind, offset, count = struct.unpack_from(">iIiI", self.sig_bytes, 16 + 16 * i)
            if t == tag:
                return kind, data_start + offset, count
        return None

    def patch_sig(self, tag: int, value: bytes | str | int) -> None:
        """Overwrite a signature tag's data in place (same length: digests, MD5, sizes)."""
        found = self._sig_entry(tag)
        if found is None:
            return
        kind, offset, _ = found
        if isinstance(value, int):
            raw = struct.pack(">Q" if kind == 5 else ">I", value)
        elif isinstance(value, str):
            raw = value.encode() + b"\0"
        else:
            raw = value
        self.sig_bytes[offset : offset + len(raw)] = raw

    def drop_sig(self, tag: int) -> None:
        """Make a signature tag unknown to rpm (renumbered into the reserved range): as if absent."""
        il = struct.unpack_from(">I", self.sig_bytes, 8)[0]
        for i in range(il):
            if struct.unpack_from(">i", self.sig_bytes, 16 + 16 * i)[0] == tag:
                struct.pack_into(">i", self.sig_bytes, 16 + 16 * i, 999)

    def fix_digests(self) -> None:
        """Signature header as rpmbuild would write it for the current header and payload."""
        whole = self.header_bytes + self.payload
        self.patch_sig(269, hashlib.sha1(self.header_bytes).hexdigest())
        self.patch_sig(273, hashlib.sha256(self.header_bytes).hexdigest())
        self.patch_sig(1004, hashlib.md5(whole).digest())
        self.patch_sig(1000, len(whole))
        self.patch_sig(270, len(whole))

    def bytes(self) -> bytes:
        sig = bytes(self.sig_bytes)
        return self.lead + sig + b"\0" * (-len(sig) % 8) + self.header_bytes + self.payload


def set_tag(hdr: rpm.hdr, tag: int, value) -> None:
    if tag in hdr:
        del hdr[tag]
    hdr[tag] = value


def edit_header(src: Path, dest: Path, edit: Callable[[rpm.hdr], None], fix_digests: bool = True) -> Path:
    """``dest``: ``src`` with its main header changed by ``edit`` (digests made to match)."""
    parts = Parts.of(src)
    hdr = parts.header()
    edit(hdr)
    parts.set_header(hdr)
    if fix_digests:
        parts.fix_digests()
    Path(dest).write_bytes(parts.bytes())
    return Path(dest)


def patch_header_bytes(src: Path, dest: Path, offset: int, data: bytes, fix_digests: bool = False) -> Path:
    """``dest``: ``src`` with ``data`` written at ``offset`` within the main header (raw damage)."""
    parts = Parts.of(src)
    raw = bytearray(parts.header_bytes)
    raw[offset : offset + len(data)] = data
    parts.header_bytes = bytes(raw)
    if fix_digests:
        parts.fix_digests()
    Path(dest).write_bytes(parts.bytes())
    return Path(dest)


def retype_tag(src: Path, dest: Path, tag: int, new_type: int, fix_digests: bool = True) -> Path:
    """``dest``: ``src`` with ``tag``'s index entry claiming another type (its data unchanged).

    rpm's header API would normalise the type, so this is done on the bytes:
    e.g. a string array declared I18NSTRING (9) is still well-formed.
    """
    parts = Parts.of(src)
    raw = bytearray(parts.header_bytes)
    il = struct.unpack_from(">I", raw, 8)[0]
    for i in range(il):
        entry = 16 + 16 * i
        if struct.unpack_from(">i", raw, entry)[0] == tag:
            struct.pack_into(">I", raw, entry + 4, new_type)
            break
    else:
        raise KeyError(f"tag {tag} is not in the header")
    parts.header_bytes = bytes(raw)
    if fix_digests:
        parts.fix_digests()
    Path(dest).write_bytes(parts.bytes())
    return Path(dest)


def retype_sig_tag(src: Path, dest: Path, tag: int, new_type: int) -> Path:
    """``dest``: ``src`` with a signature header tag's index entry claiming another type."""
    parts = Parts.of(src)
    il = struct.unpack_from(">I", parts.sig_bytes, 8)[0]
    for i in range(il):
        if struct.unpack_from(">i", parts.sig_bytes, 16 + 16 * i)[0] == tag:
            struct.pack_into(">I", parts.sig_bytes, 16 + 16 * i + 4, new_type)
            break
    else:
        raise KeyError(f"tag {tag} is not in the signature header")
    Path(dest).write_bytes(parts.bytes())
    return Path(dest)


def strip_digests(src: Path, dest: Path, keep_md5: bool = False) -> Path:
    """``dest``: ``src`` without header digests (and MD5) in its signature header.

    ``rpm -qp`` still reads it; with ``keep_md5`` rpm even installs it (MD5
    and the payload digests are enough for its digest-level verification).
    """
    parts = Parts.of(src)
    for tag in (269, 273) if keep_md5 else (269, 273, 1004):
        parts.drop_sig(tag)
    Path(dest).write_bytes(parts.bytes())
    return Path(dest)


def copy(src: Path, dest: Path) -> Path:
    shutil.copy(src, dest)
    return Path(dest)
