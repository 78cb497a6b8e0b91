"""Terminal-safe text: names from packages and disks are data, never terminal commands.

File names, package names and BPF symbol names come from untrusted packages
and installroots. Printed raw, an escape sequence clears the screen or sets
the window title, and a newline forges a finding line. Every human-readable
output (text, JUnit, stderr messages, the DNF and rpmlint front ends) goes
through ``escape``, which writes what is not printable the way ``ls -b`` does:

* ``\\n``, ``\\t``, ``\\r`` and the other C escapes for their control characters;
* ``\\xNN`` for the other C0/C1 controls and DEL, and for every byte that is
  not valid UTF-8 (Python keeps such bytes as the surrogates U+DC80..U+DCFF,
  ``os.fsdecode``'s "surrogateescape");
* ``\\uNNNN`` for other non-printable code points (format characters such as
  bidirectional overrides, unassigned ones);
* ``\\\\`` for a backslash, so that the escaping cannot be forged.

JSON and SARIF keep the exact text instead: undecodable bytes appear as the
escapes ``\\udc80``..``\\udcff``, from which ``str.encode("utf-8", "surrogateescape")``
gives the original bytes back.
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v", "\\": "\\\\"}


def _escape_char(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str) -> str:
    """``text`` with every non-printable character (and backslash) escaped."""
    if text.isprintable() and "\\" not in text:
        return text  # the common case: one C-level scan
    return "".join(ch if ch.isprintable() and ch != "\\" else _escape_char(ch) for ch in text)
