"""Real signing for the trust tests: gpg keys, rpmsign, X.509 certificates, rpm roots.

Everything is made with the distribution's own tools at test time (gpg,
rpmsign, openssl, rpm); the only hand edit is ``append_dribble``, which
plays the attacker rewriting a header in the rpm database (as root can).
"""

from __future__ import annotations

import sqlite3
import struct
import subprocess
from pathlib import Path

import rpm

from rpm_bpf.sources.rpmdb import dbpath

SIGNED_OBJ = "/usr/lib64/bpf/p/prog.o"  # the object of the trust tests' package P


def make_gpg_key(home: Path, name: str) -> tuple[str, Path]:
    """A new RSA signing key in its own GNUPGHOME: (16-hex key id, armored public key file)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    batch = home / "batch"
    batch.write_text(
        f"%no-protection\nKey-Type: RSA\nKey-Length: 2048\nName-Real: {name}\nName-Email: {name}@example.org\n"
        "Expire-Date: 0\n%commit\n"
    )
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run(["gpg", "--batch", "--gen-key", str(batch)], env=env, check=True, capture_output=True)
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-keys", f"{name}@example.org"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    keyid = next(line.split(":")[4] for line in out.splitlines() if line.startswith("pub:")).lower()
    armored = home / f"{name}.asc"
    armored.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--armor", "--export", f"{name}@example.org"], env=env, check=True, capture_output=True
        ).stdout
    )
    return keyid, armored


def make_cert(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed X.509 key and certificate (PEM) for fs-verity/IMA file signatures."""
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)),
            *("-days", "3650", "-subj", f"/CN={name}"),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def rpmsign(package: Path, home: Path, name: str, verity: tuple[Path, Path] | None = None) -> Path:
    """Sign ``package`` in place with rpmsign (and fs-verity file signatures when ``verity`` is (key, cert))."""
    cmd = ["rpmsign", "--addsign", "--define", f"_gpg_name {name}@example.org", "--define", "__gpg /usr/bin/gpg"]
    if verity is not None:
        cmd += ["--signverity", f"--fskpath={verity[0]}", f"--certpath={verity[1]}"]
    subprocess.run(
        [*cmd, str(package)],
        env={"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
        check=True,
        capture_output=True,
    )
    return package


def rpm_root(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rpm", "--root", str(root), *args], capture_output=True, text=True)


def install(root: Path, package: Path, *extra: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    done = rpm_root(root, "-U", "--nodeps", *extra, str(package))
    assert done.returncode == 0, done.stderr


def import_key(root: Path, key: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    done = rpm_root(root, "--import", str(key))
    assert done.returncode == 0, done.stderr


def _database(root: Path) -> Path:
    return root / dbpath().lstrip("/") / "rpmdb.sqlite"


def edit_stored_header(root: Path, name: str, edit) -> None:
    """Replace package ``name``'s stored header blob with ``edit(blob)`` (what an attacker with root can do)."""
    with sqlite3.connect(_database(root)) as db:
        for hnum, blob in db.execute("SELECT hnum, blob FROM Packages").fetchall():
            if rpm.hdr(blob)[rpm.RPMTAG_NAME] == name:
                db.execute("UPDATE Packages SET blob = ? WHERE hnum = ?", (edit(bytes(blob)), hnum))
                return
    raise AssertionError(f"{name} is not installed in {root}")


def append_dribble(blob: bytes, tag: int, kind: int, data: bytes, count: int) -> bytes:
    """The header with one more index entry after everything (outside the signed region), as rpm's own
    install-time tags are stored."""
    il, _ = struct.unpack_from(">II", blob, 0)
    index, store = blob[8 : 8 + 16 * il], blob[8 + 16 * il :]
    pad = -len(store) % 4 if kind in (4, 5) else 0
    store += b"\0" * pad
    entry = struct.pack(">iIiI", tag, kind, len(store), count)
    return struct.pack(">II", il + 1, len(store) + len(data)) + index + entry + store + data


def replace_digest(root: Path, name: str, digest_hex: str) -> None:
    """Rewrite package ``name``'s FILEDIGESTS the librpm way (the new value lands after the signed region)."""

    def edit(blob: bytes) -> bytes:
        hdr = rpm.hdr(blob)
        digests = list(hdr[rpm.RPMTAG_FILEDIGESTS])
        digests = [digest_hex if d else d for d in digests]
        del hdr[rpm.RPMTAG_FILEDIGESTS]
        hdr[rpm.RPMTAG_FILEDIGESTS] = digests
        return bytes(hdr.unload())

    edit_stored_header(root, name, edit)


def _entry(blob: bytes, tag: int) -> tuple[int, int, int, int]:
    """(index position, type, data offset, count) of ``tag`` in a header blob."""
    il = struct.unpack_from(">I", blob, 0)[0]
    for i in range(il):
        t, kind, offset, count = struct.unpack_from(">iIiI", blob, 8 + 16 * i)
        if t == tag:
            return i, kind, offset, count
    raise AssertionError(f"tag {tag} is not in the header")


def flip_tag_byte(blob: bytes, tag: int, back: int = 3) -> bytes:
    """The header with one byte of ``tag``'s (binary) data flipped, ``back`` bytes from its end."""
    il = struct.unpack_from(">I", blob, 0)[0]
    _, _, offset, count = _entry(blob, tag)
    where = 8 + 16 * il + offset + count - back
    return blob[:where] + bytes([blob[where] ^ 0xFF]) + blob[where + 1 :]


def retag(blob: bytes, tag: int, new: int) -> bytes:
    """The header with ``tag``'s index entry renumbered (its data stays where it is)."""
    i = _entry(blob, tag)[0]
    at = 8 + 16 * i
    return blob[:at] + struct.pack(">i", new) + blob[at + 4 :]
