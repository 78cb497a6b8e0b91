"""Header signatures of installed packages, checked on the header as the rpm database stores it.

librpm verifies a header's OpenPGP signature over the header's immutable
region (``hdrCheck``), with a keyring given here that holds only the trusted
keys. Two things librpm does not do are done here (both checked with rpm
4.18 on 2026-12-02):

* a header with no signature tag passes ``hdrCheck`` (rpm issue #811), so
  the presence of a signature tag is tested first;
* tags stored after the region (the "dribble" rpm adds at install time)
  are not covered by the signature, and one with a region tag's number
  replaces it when librpm loads the header: a FILEDIGESTS entry appended
  after the region passes ``hdrCheck`` and is what ``hdr[FILEDIGESTS]``
  gives. So the file list used afterwards is read from the region alone.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
from collections import namedtuple
from collections.abc import Callable

import rpm

from rpm_bpf.model import FileEntry, Package
from rpm_bpf.sources.bpfdirs import BpfDirs
from rpm_bpf.sources.rpmheader import HeaderError, file_names, package_from_header

VERIFIED, UNSIGNED, UNTRUSTED, INVALID = "verified", "unsigned", "untrusted", "invalid"

# Header signature tags rpm merges from the signature header at install time
# (RPMSIGTAG_DSA/RSA, rpm 6's OPENPGP); any of them makes a header "signed".
_SIG_TAGS = {267: "DSAHEADER", 268: "RSAHEADER", 278: "OPENPGP"}
_REGION_TAG, _BIN, _ENTRY = 63, 7, 16  # RPMTAG_HEADERIMMUTABLE, RPM_BIN_TYPE, bytes per index entry
_KEY_ID = re.compile(r"Key ID ([0-9a-fA-F]{8,40})")
_VERITY_ALGOS = {1: "sha256", 2: "sha512"}  # FS_VERITY_HASH_ALG_*


class HeaderSignature(namedtuple("HeaderSignature", ("verdict", "keyid", "detail"))):
    """What the signature check found: ``verdict`` (VERIFIED, UNSIGNED, UNTRUSTED, INVALID), the signing
    key's id as the signature packet names it ("" when none or unreadable), and what librpm said."""

    __slots__ = ()
    verdict: str
    keyid: str
    detail: str


class FileSignature(namedtuple("FileSignature", ("kind", "value", "algo"))):
    """A per-file signature from the header: ``kind`` "fsverity" (PKCS#7, DER) or "ima" (IMA v2 bytes)."""

    __slots__ = ()
    kind: str
    value: bytes
    algo: str


def signed_region(blob: bytes) -> bytes:
    """The header blob cut down to its immutable region: what the signature covers, nothing added after.

    ``blob`` starts at the index count, as ``hdr.unload()`` gives it. The
    region's layout is rpm's (``hdrblobVerifyRegion``): the first index
    entry is the region tag, whose data, a 16-byte trailer at the region's
    end, holds minus the region's index size.
    """
    if len(blob) < 8:
        raise HeaderError("header shorter than its index counts")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il < 1 or 8 + _ENTRY * il + dl > len(blob):
        raise HeaderError("header index or data larger than the header")
    tag, kind, offset, count = struct.unpack_from(">iIiI", blob, 8)
    if tag != _REGION_TAG or kind != _BIN or count != _ENTRY or not 0 <= offset <= dl - _ENTRY:
        raise HeaderError("header has no immutable region (nothing a signature could cover)")
    data = 8 + _ENTRY * il
    rtag, rkind, roffset, rcount = struct.unpack_from(">iIiI", blob, data + offset)
    if rtag != _REGION_TAG or rkind != _BIN or rcount != _ENTRY or roffset >= 0 or -roffset % _ENTRY:
        raise HeaderError("header's immutable region trailer is damaged")
    ril, rdl = -roffset // _ENTRY, offset + _ENTRY
    if ril > il:
        raise HeaderError("header's immutable region claims more entries than the header has")
    return struct.pack(">II", ril, rdl) + blob[8 : 8 + _ENTRY * ril] + blob[data : data + rdl]


class Checker:
    """Checks header blobs against a keyring of trusted keys only.

    The transaction set's root is an empty private directory: were librpm
    ever to fall back to a database's keys, there would be none.
    """

    def __init__(self, keyring: rpm.keyring) -> None:
        self._empty = tempfile.mkdtemp(prefix="rpm-bpf-keyring-")
        self._ts = rpm.TransactionSet(self._empty)
        self._ts.setKeyring(keyring)
        self._ts.setVSFlags(0)  # every digest and signature librpm knows, whatever the host's macros say

    def close(self) -> None:
        self._ts.closeDB()
        os.rmdir(self._empty)

    def check(self, blob: bytes, hdr: rpm.hdr) -> HeaderSignature:
        present = [name for tag, name in _SIG_TAGS.items() if _has(hdr, tag)]
        if not present:
            return HeaderSignature(UNSIGNED, "", "the header carries no OpenPGP signature")
        keyid = _key_id(hdr, present)
        try:
            signed_region(blob)
            rc, msg = rpm.TransactionSetCore.hdrCheck(self._ts, blob)
        except (HeaderError, rpm.error, TypeError, ValueError) as exc:
            return HeaderSignature(INVALID, keyid, str(exc))
        lines = [line.strip() for line in str(msg or "").splitlines() if line.strip()]
        said = "; ".join(lines) or "no result"
        if rc in (rpm.RPMRC_NOKEY, rpm.RPMRC_NOTTRUSTED):
            return HeaderSignature(UNTRUSTED, keyid, said)
        if rc != rpm.RPMRC_OK:
            return HeaderSignature(INVALID, keyid, said)
        # rpm 4.18: "Header V4 RSA/SHA512 Signature, key ID ...: OK"; rpm 6: "Header OpenPGP V4 RSA/SHA512
        # signature, key fingerprint: ...: OK".
        if not any("signature" in line.lower() and line.endswith(": OK") for line in lines):
            # A signature tag librpm did not check (unknown kind): never taken for a good one.
            return HeaderSignature(INVALID, keyid, f"librpm did not check the signature ({said})")
        return HeaderSignature(VERIFIED, keyid, said)


def _has(hdr: rpm.hdr, tag: int) -> bool:
    try:
        return bool(hdr[tag])
    except (KeyError, ValueError, TypeError, rpm.error):
        return False


def _key_id(hdr: rpm.hdr, present: list[str]) -> str:
    for name in present:
        if name == "OPENPGP" and not hasattr(rpm, "RPMTAG_OPENPGP"):
            continue
        try:
            shown = hdr.format(f"%{{{name}:pgpsig}}")
        except (rpm.error, ValueError, TypeError):
            continue
        found = _KEY_ID.search(str(shown))
        if found:
            return found.group(1).lower()
    return ""


def signed_package(blob: bytes, dirs_for: Callable[[str], BpfDirs]) -> Package:
    """The package as its signed region describes it (raises ``HeaderError``)."""
    try:
        hdr = rpm.hdr(signed_region(blob))
    except (rpm.error, TypeError, ValueError) as exc:
        raise HeaderError(f"the signed region cannot be read ({exc})") from None
    return package_from_header(hdr, dirs_for, origin="rpmdb")


def changed_entries(stored: list[FileEntry], signed: list[FileEntry]) -> list[str]:
    """Paths whose database entry differs from the signed one (or exists only on one side)."""
    by_path = {e.path: e for e in signed}
    changed = {e.path for e in stored if by_path.get(e.path) != e}
    changed |= set(by_path) - {e.path for e in stored}
    return sorted(changed)


def file_signatures(hdr: rpm.hdr) -> tuple[dict[str, list[FileSignature]], str]:
    """Per-file fs-verity and IMA signatures by path, and what is wrong with them ("" when nothing).

    They come from the signature header, merged after the region at install
    time: not covered by the header signature, but each is itself signed.
    """
    try:
        names = file_names(hdr)
        verity = hdr[rpm.RPMTAG_VERITYSIGNATURES] or []
        ima = hdr[rpm.RPMTAG_FILESIGNATURES] or []
        algo_number = hdr[rpm.RPMTAG_VERITYSIGNATUREALGO] or 1
    except (HeaderError, rpm.error, ValueError, TypeError) as exc:
        return {}, f"file signatures cannot be read ({exc})"
    found: dict[str, list[FileSignature]] = {}
    problem = ""
    algo = _VERITY_ALGOS.get(algo_number if isinstance(algo_number, int) else -1, "")
    for kind, values in (("ima", ima), ("fsverity", verity)):
        if not values:
            continue
        if len(values) != len(names):
            problem = f"{len(values)} {kind} file signatures for {len(names)} files"
            continue
        for path, value in zip(names, values, strict=True):
            if not value:
                continue
            try:
                raw = bytes.fromhex(value) if kind == "ima" else _base64(value)
            except ValueError:
                raw = b""
            found.setdefault(path, []).append(FileSignature(kind, raw, algo if kind == "fsverity" else ""))
    return found, problem


def _base64(text: str) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None
