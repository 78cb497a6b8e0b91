"""Per-file signatures of installed files, checked offline against trusted X.509 certificates.

fs-verity (``rpmsign --signverity``): the signature is a detached PKCS#7
over the kernel's ``fsverity_formatted_digest`` of the file (the "FSVerity"
magic, the hash algorithm, the digest size, the fs-verity digest: a Merkle
tree of 4 KiB blocks). The digest comes from the kernel when the file has
fs-verity on (``FS_IOC_MEASURE_VERITY``), otherwise ``fsverity digest``
(fsverity-utils) computes it from the file's bytes; openssl checks the
PKCS#7 with only the trusted certificates as possible signers.

IMA (``rpmsign --signfiles``, header tag FILESIGNATURES): a signature
(IMA digital signature v2) over the file's digest; the cryptography
library checks it with each trusted certificate's public key.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile

from rpm_bpf.sources.hdrsig import FileSignature
from rpm_bpf.sources.trust import Trust

_FS_IOC_MEASURE_VERITY = 0xC0046686  # _IOWR('f', 134, struct fsverity_digest)
_VERITY_ALGO_IDS = {"sha256": 1, "sha512": 2}
_IMA_HASHES = {2: "sha1", 4: "sha256", 5: "sha384", 6: "sha512", 7: "sha224"}  # HASH_ALGO_* of the kernel
_TIMEOUT = 60


def tools_missing(trust: Trust) -> list[str]:
    """The programs file signature checks need and this system lacks."""
    return [tool for tool in ("fsverity", "openssl") if trust.checks_files and shutil.which(tool) is None]


def _kernel_measurement(fd: int, algo: str) -> bytes | None:
    """The kernel's fs-verity digest of an fs-verity file; None when the file (or kernel) has none.

    Untested here: this project's test kernel has no CONFIG_FS_VERITY.
    """
    buf = bytearray(struct.pack("=HH", 0, 64) + bytes(64))
    try:
        fcntl.ioctl(fd, _FS_IOC_MEASURE_VERITY, buf)
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.ENODATA, errno.EINVAL, errno.ENOSYS):
            return None
        raise
    number, size = struct.unpack_from("=HH", buf, 0)
    if number != _VERITY_ALGO_IDS.get(algo) or size > 64:
        return None  # enabled with another algorithm than the signature's: compute instead
    return bytes(buf[4 : 4 + size])


def _formatted_digest(fd: int, algo: str) -> bytes:
    """``struct fsverity_formatted_digest`` of the file behind ``fd`` (raises OSError, ValueError)."""
    measured = _kernel_measurement(fd, algo)
    if measured is not None:
        return b"FSVerity" + struct.pack("<HH", _VERITY_ALGO_IDS[algo], len(measured)) + measured
    done = subprocess.run(
        ["fsverity", "digest", "--compact", "--for-builtin-sig", f"--hash-alg={algo}", f"/proc/self/fd/{fd}"],
        pass_fds=(fd,),
        capture_output=True,
        timeout=_TIMEOUT,
    )
    if done.returncode != 0:
        raise ValueError(f"fsverity digest failed: {done.stderr.decode('utf-8', 'replace').strip()}")
    return bytes.fromhex(done.stdout.decode("ascii", "replace").strip())


def _check_verity(fd: int, sig: FileSignature, trust: Trust) -> str | None:
    if sig.algo not in _VERITY_ALGO_IDS:
        return "fs-verity signature with an unknown hash algorithm"
    if not sig.value:
        return "fs-verity signature is not base64"
    content = _formatted_digest(fd, sig.algo)
    with tempfile.TemporaryDirectory(prefix="rpm-bpf-verity-") as tmp:
        sig_path, content_path = os.path.join(tmp, "sig.der"), os.path.join(tmp, "digest")
        with open(sig_path, "wb") as out:
            out.write(sig.value)
        with open(content_path, "wb") as out:
            out.write(content)
        # -nointern: only the trusted certificates may be the signer, never one the signature carries;
        # -noverify: they are the anchors themselves (as the kernel's .fs-verity keyring has them).
        done = subprocess.run(
            [
                *("openssl", "smime", "-verify", "-binary", "-inform", "DER", "-in", sig_path, "-content"),
                *(content_path, "-certfile", trust.certfile(), "-nointern", "-noverify", "-out", os.devnull),
            ],
            capture_output=True,
            timeout=_TIMEOUT,
        )
    if done.returncode == 0:
        return None
    said = done.stderr.decode("utf-8", "replace")
    if "signer certificate not found" in said:
        return "fs-verity signature by a certificate that is not trusted"
    return "fs-verity signature does not match the file's fs-verity digest"


def _check_ima(fd: int, sig: FileSignature, trust: Trust) -> str | None:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    raw = sig.value[1:] if sig.value[:1] == b"\x03" else sig.value  # with or without the xattr type byte
    if len(raw) < 8 or raw[0] != 2:
        return "IMA signature is not an IMA digital signature v2"
    algo = _IMA_HASHES.get(raw[1])
    size = struct.unpack_from(">H", raw, 6)[0]
    if algo is None or len(raw) != 8 + size:
        return "IMA signature header is damaged"
    h = hashlib.new(algo)
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
    digest, signature = h.digest(), raw[8:]
    chosen = utils.Prehashed(getattr(hashes, algo.upper())())
    for pem in trust.certs:
        key = x509.load_pem_x509_certificate(pem).public_key()
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, digest, padding.PKCS1v15(), chosen)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, digest, ec.ECDSA(chosen))
            else:
                continue
        except InvalidSignature:
            continue
        return None
    return "IMA signature verifies with no trusted certificate (file changed, or signed by another key)"


def check(fd: int, sig: FileSignature, trust: Trust) -> str | None:
    """None when ``sig`` verifies over the bytes behind ``fd``; otherwise why not, in words.

    Raises OSError when the file cannot be read, ``subprocess`` errors when a tool cannot run.
    """
    try:
        if sig.kind == "fsverity":
            return _check_verity(fd, sig, trust)
        return _check_ima(fd, sig, trust)
    except ValueError as exc:
        return str(exc)
