"""Signatures of packages that ship or embed BPF code: ``bpf-package-unsigned``, ``-signature-untrusted``,
``-signature-invalid`` (installed headers), ``bpf-file-signature-invalid``, ``-missing`` (per-file
fs-verity and IMA signatures), and ``bpf-package-unsigned-build`` (RPM files, off by default).

The flows observe (sources/hdrsig.py, sources/filesig.py); the verdicts
become findings here, each naming the package, the key and what was expected.
"""

from __future__ import annotations

from rpm_bpf.findings import Finding
from rpm_bpf.model import Package, PackageRef
from rpm_bpf.sources.hdrsig import INVALID, UNSIGNED, UNTRUSTED, HeaderSignature

UNSIGNED_INSTALLED = "bpf-package-unsigned"
UNTRUSTED_KEY = "bpf-package-signature-untrusted"
INVALID_SIGNATURE = "bpf-package-signature-invalid"
FILE_INVALID = "bpf-file-signature-invalid"
FILE_MISSING = "bpf-file-signature-missing"
UNSIGNED_BUILD = "bpf-package-unsigned-build"

# Reinstalling from a repository whose packages verify puts the signed header back.
REPAIRABLE = frozenset({UNSIGNED_INSTALLED, UNTRUSTED_KEY, INVALID_SIGNATURE, FILE_INVALID})


def _expected(trusted: list[str]) -> str:
    return f"expected a signature by {', '.join(trusted)}"


def header(ref: PackageRef, sig: HeaderSignature, trusted: list[str]) -> Finding | None:
    """The header signature's verdict as a finding; None when it verified against a trusted key."""
    if sig.verdict == UNSIGNED:
        detail = f"no header signature in the rpm database; {_expected(trusted)}"
        return Finding.of(UNSIGNED_INSTALLED, ref, None, detail)
    if sig.verdict == UNTRUSTED:
        return Finding.of(
            UNTRUSTED_KEY, ref, None, f"signed by key {sig.keyid or '(unreadable id)'}; {_expected(trusted)}"
        )
    if sig.verdict == INVALID:
        by = f"key {sig.keyid}" if sig.keyid else "an unreadable key id"
        return Finding.of(INVALID_SIGNATURE, ref, None, f"signature by {by} does not verify: {sig.detail}")
    return None


def altered_after_signing(ref: PackageRef, keyid: str, paths: list[str]) -> Finding:
    """Entries the database holds outside the signed region, contradicting it: the signed ones are compared."""
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return Finding.of(
        INVALID_SIGNATURE,
        ref,
        None,
        f"header signed by key {keyid} verifies, but the database's entries for {shown} differ from the signed header",
    )


def file_signature(ref: PackageRef, path: str, kind: str, problem: str | None) -> Finding | None:
    """A BPF object's own signature (``problem`` None: it verified)."""
    if problem is None:
        return None
    return Finding.of(FILE_INVALID, ref, path, f"{kind}: {problem}")


def file_signatures_unreadable(ref: PackageRef, problem: str) -> Finding:
    return Finding.of(FILE_INVALID, ref, None, problem)


def file_signature_missing(ref: PackageRef, path: str) -> Finding:
    """Certificates are configured, so file signatures are expected, and this BPF object has none."""
    return Finding.of(FILE_MISSING, ref, path, "no fs-verity or IMA signature in the header for this BPF object")


def unsigned_build(pkg: Package, ships_bpf: bool, signed: bool | None) -> Finding | None:
    """An RPM file with BPF content and no header signature (for gates that only see signed builds)."""
    if not ships_bpf or signed is not False:
        return None
    return Finding.of(UNSIGNED_BUILD, pkg.ref, None, "the RPM's signature header has no OpenPGP signature")
