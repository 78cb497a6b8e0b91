"""Trust anchors for verification, read from outside the verified root.

OpenPGP public keys (ASCII-armored, as distributions ship them in
``/etc/pki/rpm-gpg/``) check header signatures; X.509 certificates (PEM)
check per-file fs-verity and IMA signatures. They come from files the user
names (``--trusted-keys``, ``--trusted-cert``), from the policy's ``[trust]``
table, or by default from the host's dnf repository configuration
(``gpgkey=file://...``). Nothing is ever read from a ``--root`` being
verified, and the keys in any rpm database (``gpg-pubkey`` headers) never
count: whoever can rewrite the database can import a key into it.
"""

from __future__ import annotations

import configparser
import os
import platform
import re
import subprocess
import tempfile
from collections import namedtuple
from collections.abc import Iterable, Sequence
from urllib.parse import unquote, urlsplit

import rpm

from rpm_bpf.errors import RpmBpfError
from rpm_bpf.sources.rootfs import read_user_file

MAX_KEY_FILE = 1 << 20  # a key file is a few kB
_KEY_BLOCK = re.compile(rb"-----BEGIN PGP PUBLIC KEY BLOCK-----.*?-----END PGP PUBLIC KEY BLOCK-----", re.S)
_CERT_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
# Where dnf 4 and dnf 5 read repository files on the host.
REPO_DIRS = ("/etc/yum.repos.d", "/etc/distro.repos.d", "/usr/share/dnf5/repos.d")
_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


class TrustError(RpmBpfError, ValueError):
    """A trust anchor that cannot be used; the message names the file."""


class Key(namedtuple("Key", ("origin", "armored", "pubkey"))):
    """One OpenPGP public key: the file it came from, its armored block, librpm's parse of it."""

    __slots__ = ()
    origin: str
    armored: bytes
    pubkey: rpm.pubkey


class Trust:
    """The trust anchors in force, and where they came from (for the report and the one-line note)."""

    def __init__(self, keys: Sequence[Key] = (), certs: Sequence[bytes] = (), origin: str = "") -> None:
        self.keys = list(keys)
        self.certs = list(certs)  # PEM blocks
        self.origin = origin
        self._certfile: str | None = None
        self._ids: list[str] | None = None

    @property
    def checks_headers(self) -> bool:
        return bool(self.keys)

    @property
    def checks_files(self) -> bool:
        return bool(self.certs)

    def keyring(self) -> rpm.keyring:
        """A librpm keyring with only these keys (never the database's)."""
        ring = rpm.keyring()
        for key in self.keys:
            ring.addKey(key.pubkey)
        return ring

    def key_ids(self) -> list[str]:
        """The keys' 16-hex-digit ids (gpg reads them; only asked for when a finding names them)."""
        if self._ids is None:
            self._ids = sorted({(_key_ids(key.armored) or [f"(a key in {key.origin})"])[0] for key in self.keys})
        return self._ids

    def certfile(self) -> str:
        """One PEM file holding every trusted certificate (for openssl), written once."""
        if self._certfile is None:
            fd, path = tempfile.mkstemp(prefix="rpm-bpf-certs-", suffix=".pem")
            with os.fdopen(fd, "wb") as out:
                out.write(b"\n".join(self.certs) + b"\n")
            self._certfile = path
        return self._certfile

    def close(self) -> None:
        if self._certfile is not None:
            os.unlink(self._certfile)
            self._certfile = None


def _read(path: str, what: str) -> bytes:
    try:
        return read_user_file(path, MAX_KEY_FILE)
    except OSError as exc:
        raise TrustError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None


def _key_ids(block: bytes) -> list[str]:
    """Primary key id(s) of an armored key, as gpg reads it without importing it; [] without gpg."""
    with tempfile.TemporaryDirectory(prefix="rpm-bpf-gpg-") as home:
        try:
            done = subprocess.run(
                [
                    *("gpg", "--homedir", home, "--batch", "--no-tty", "--with-colons"),
                    *("--import-options", "show-only", "--import"),
                ],
                input=block,
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            return []
    return [
        line.split(b":")[4].decode("ascii", "replace").lower()
        for line in done.stdout.splitlines()
        if line.startswith(b"pub:") and len(line.split(b":")) > 4
    ]


def load_keys(path: str) -> list[Key]:
    """Every public key in an armored key file; a file with none, or one librpm rejects, is an error."""
    data = _read(path, "trusted keys")
    blocks = _KEY_BLOCK.findall(data)
    if not blocks:
        raise TrustError(f"{path}: no ASCII-armored OpenPGP public key block in it")
    keys = []
    for index, block in enumerate(blocks, 1):
        try:
            pubkey = rpm.pubkey(block)
        except (ValueError, TypeError, rpm.error) as exc:
            raise TrustError(f"{path}: key #{index}: librpm cannot use it ({exc})") from None
        keys.append(Key(path, block, pubkey))
    return keys


def load_certs(path: str) -> list[bytes]:
    """Every PEM certificate in a file, each parsed once (by the cryptography library) so a bad one fails here."""
    from cryptography import x509

    data = _read(path, "trusted certificates")
    blocks = _CERT_BLOCK.findall(data)
    if not blocks:
        raise TrustError(f"{path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it")
    for index, block in enumerate(blocks, 1):
        try:
            x509.load_pem_x509_certificate(block)
        except ValueError as exc:
            raise TrustError(f"{path}: certificate #{index} cannot be read ({exc})") from None
    return blocks


def _repo_vars(etc: str) -> dict[str, str]:
    """dnf's substitution variables as the host has them: $basearch, $arch, $releasever, /etc/dnf/vars."""
    arch = platform.machine()
    found = {"arch": arch, "basearch": {"i686": "i386", "armv7l": "armhfp"}.get(arch, arch)}
    try:
        text = read_user_file(os.path.join(etc, "os-release"), MAX_KEY_FILE).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.startswith("VERSION_ID="):
                found["releasever"] = line.split("=", 1)[1].strip().strip("\"'")
    except OSError:
        pass
    for folder in (os.path.join(etc, "dnf", "vars"), os.path.join(etc, "yum", "vars")):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            try:
                found[name] = read_user_file(os.path.join(folder, name), 4096).decode("utf-8", "replace").strip()
            except OSError:
                continue
    return found


def repo_key_files(etc: str = "/etc", repo_dirs: Iterable[str] = REPO_DIRS) -> tuple[list[str], list[str]]:
    """The ``gpgkey=file://`` paths of the host's enabled dnf repositories, and notes on what was skipped.

    Remote keys (https://) are not fetched: verification stays offline, and
    dnf imports them into the database, which never counts.
    """
    values = _repo_vars(etc)
    paths: list[str] = []
    notes: list[str] = []
    for folder in repo_dirs:
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".repo"))
        except OSError:
            continue
        for name in names:
            where = os.path.join(folder, name)
            parser = configparser.ConfigParser(interpolation=None, strict=False)
            try:
                parser.read_string(read_user_file(where, MAX_KEY_FILE).decode("utf-8", "replace"), where)
            except (OSError, configparser.Error) as exc:
                notes.append(f"{where}: not read ({exc})")
                continue
            for section in parser.sections():
                repo = parser[section]
                if repo.get("enabled", "1").strip().lower() in ("0", "false", "no", "off"):
                    continue
                for url in re.split(r"[\s,]+", repo.get("gpgkey", "").strip()):
                    if not url:
                        continue
                    path = _file_url(url, values)
                    if path is None:
                        notes.append(f"{where} [{section}]: gpgkey {url} is not a local file:// key; not used")
                    elif path not in paths:
                        paths.append(path)
    return paths, notes


def _file_url(url: str, values: dict[str, str]) -> str | None:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    url = _VAR.sub(substitute, url)
    parts = urlsplit(url)
    if parts.scheme != "file" or "$" in url:
        return None
    return unquote(parts.path)


def resolve(
    keys: Sequence[str] = (),
    certs: Sequence[str] = (),
    policy_keys: Sequence[str] = (),
    policy_certs: Sequence[str] = (),
    host_default: bool = True,
) -> tuple[Trust, list[str]]:
    """The trust anchors in force, and notes for stderr.

    Keys named on the command line and in the policy add up; only when there
    are none is the host's dnf repository configuration used.
    """
    notes: list[str] = []
    paths, origin = list(dict.fromkeys([*keys, *policy_keys])), "configured keys"
    if paths:
        loaded = [key for path in paths for key in load_keys(path)]
    elif host_default:
        # The host's repositories name their keys in passing: one that cannot be used is a note, not the end.
        origin, loaded = "the host's dnf repository keys", []
        found, notes = repo_key_files()
        for path in found:
            try:
                loaded += load_keys(path)
            except TrustError as exc:
                notes.append(f"{exc}; named by a dnf repository as its key, not used")
    else:
        loaded = []
    pems = [pem for path in dict.fromkeys([*certs, *policy_certs]) for pem in load_certs(path)]
    return Trust(loaded, pems, origin), notes
