"""The signature a signed light skeleton carries (``bpftool gen skeleton -S``, bpftool 7.7 and later).

bpftool signs the loader program's instructions (``opts_insn``) with a detached CMS SignedData without
certificates or signed attributes, its signer named by the key's subject key identifier, and puts beside
it the SHA-256 of those instructions (``opts_excl_hash``, which the kernel matches exclusively against the
program it loads). The skeleton's arrays are adjacent in the executable, in an order the compiler picks,
and no length is stored with them. So a signature is recognised structurally: the SHA-256 of the loader's
bytes found near the loader, and a CMS SignedData starting within the signature's size of it, parsed by
asn1crypto (the CMS structures of RFC 5652, no home-made DER reading). Nothing is verified here: the key
is the kernel's business (its keyring); what can be told is that a signature is there and which key made it.
"""

from __future__ import annotations

import hashlib
from collections import namedtuple

# OID 1.2.840.113549.1.7.2 (pkcs7-signedData), right after the SEQUENCE header of a ContentInfo
_SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")
MAX_SIGNATURE = 4096  # bpftool's signature buffer
SEARCH = 1 << 20  # bytes around the loader searched for its instructions' hash


class SkeletonSignature(namedtuple("SkeletonSignature", ("offset", "size", "key_id", "key_id_kind", "digest"))):
    """Where the signature lies in the file, the signing key's identifier (hex; ``key_id_kind`` says which:
    "subject key identifier" or "issuer and serial number"), and its digest algorithm. ``key_id`` is None
    where the CMS structure could not be read (asn1crypto missing: then ``key_id_kind`` says so)."""

    __slots__ = ()
    offset: int
    size: int
    key_id: str | None
    key_id_kind: str
    digest: str

    def to_dict(self) -> dict[str, object]:
        return {
            "offset": self.offset,
            "size": self.size,
            "key_id": self.key_id,
            "key_id_kind": self.key_id_kind,
            "digest": self.digest,
        }


MAX_PARSES = 8  # CMS candidates parsed per loader, nearest the hash first: a crafted window costs little


def find(data: bytes, loader_offset: int, loader_size: int) -> SkeletonSignature | None:
    """The signature of the loader at ``loader_offset`` (``loader_size`` bytes), or None when unsigned."""
    digest = hashlib.sha256(data[loader_offset : loader_offset + loader_size]).digest()
    low, high = max(0, loader_offset - SEARCH), min(len(data), loader_offset + loader_size + SEARCH)
    at = data.find(digest, low, high)
    if at < 0:
        return None
    for head in _candidates(data, at):
        parsed = _parse(data[head : head + _der_size(data, head)])
        if parsed is not None:
            return SkeletonSignature(head, _der_size(data, head), *parsed)
    return None


def _der_size(data: bytes, head: int) -> int:
    """The size of the DER SEQUENCE at ``head`` (checked by ``_candidates``): short or long form."""
    if data[head + 1] == 0x81:
        return 3 + data[head + 2]
    return 4 + int.from_bytes(data[head + 2 : head + 4], "big")


def _candidates(data: bytes, hash_at: int) -> list[int]:
    """Where a CMS SignedData may start right before or right after the hash (each array 8-aligned and
    NUL-terminated): SEQUENCE with a one-byte (RSA under 2048 bits, ECDSA) or two-byte length, then the
    signedData OID; nearest the hash first, at most MAX_PARSES."""
    start = max(0, hash_at - MAX_SIGNATURE - 16)
    end = min(len(data), hash_at + 32 + 16 + MAX_SIGNATURE)
    heads = []
    oid = data.find(_SIGNED_DATA_OID, start, end)
    while oid >= 0:
        for head, form in ((oid - 3, 0x81), (oid - 4, 0x82)):
            if head >= 0 and data[head] == 0x30 and data[head + 1] == form:
                size = _der_size(data, head)
                if size <= MAX_SIGNATURE and head + size <= len(data):
                    heads.append(head)
        oid = data.find(_SIGNED_DATA_OID, oid + 1, end)
    heads.sort(key=lambda head: min(abs(head - hash_at), abs(head + _der_size(data, head) + 1 - hash_at)))
    return heads[:MAX_PARSES]


def _parse(der: bytes) -> tuple[str | None, str, str] | None:
    """(key id, its kind, digest algorithm) of a detached CMS SignedData with one signer, else None."""
    try:
        from asn1crypto import cms
    except ImportError:  # a broken install (asn1crypto is a dependency): reported, without its key
        return None, "not read (asn1crypto is not installed)", "unknown"
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            return None
        signed = info["content"]
        encapsulated = signed["encap_content_info"]
        if encapsulated["content_type"].native != "data" or encapsulated["content"].native is not None:
            return None  # bpftool's signatures are detached, over plain data: this is some other CMS blob
        (signer,) = signed["signer_infos"]
        sid = signer["sid"]
        digest = signer["digest_algorithm"]["algorithm"].native
        if sid.name == "subject_key_identifier":
            return sid.chosen.native.hex(), "subject key identifier", digest
        serial = sid.chosen["serial_number"].native
        return f"{serial:x}", f"issuer and serial number ({sid.chosen['issuer'].human_friendly})", digest
    except Exception:  # asn1crypto raises assorted types on crafted DER
        return None
