"""Signatures of bpftool's shape made with the host's openssl (for tests and the fuzz target): a detached
CMS SignedData over a light skeleton's loader, without certificates or signed attributes, the signer named
by its subject key identifier, SHA-256 (``bpftool gen skeleton -S``, bpftool 7.7 and later)."""

from __future__ import annotations

import subprocess
from pathlib import Path

# RSA gives a signature of more than 255 bytes (DER length in two bytes), ECDSA P-256 one under 256 (one byte).
KEYS = {"rsa": ["-newkey", "rsa:2048"], "ecdsa": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]}


def skid_of(openssl_ext_text: str) -> str:
    """The hex key id in ``openssl x509 -noout -ext subjectKeyIdentifier``'s output."""
    return openssl_ext_text.strip().splitlines()[-1].strip().replace(":", "").lower()


def sign(content: bytes, work: Path, key: str = "rsa") -> tuple[bytes, str, Path]:
    """(DER signature over ``content``, the key's subject key identifier in hex, the certificate's path)."""
    work.mkdir(parents=True, exist_ok=True)
    key_pem, cert, data, sig = (work / name for name in ("key.pem", "cert.pem", "content.bin", "sig.der"))
    subprocess.run(
        ["openssl", "req", "-x509", *KEYS[key], "-nodes", "-sha256", "-days", "30", "-subj", "/CN=rpm-bpf test",
         "-keyout", str(key_pem), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    data.write_bytes(content)
    subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-nocerts", "-noattr", "-keyid", "-md", "sha256", "-outform", "DER",
         "-in", str(data), "-signer", str(cert), "-inkey", str(key_pem), "-out", str(sig)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    ext = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectKeyIdentifier"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sig.read_bytes(), skid_of(ext), cert
