"""Verification that survives a rewritten rpm database: header signatures against pinned keys, file signatures.

Keys are made with gpg, packages signed with rpmsign (fs-verity signatures
with ``rpmsign --signverity`` and a test certificate), installed with rpm
into roots; the attacks are what root can do: install an unsigned or
self-signed package of the same NEVRA over a signed one, or rewrite a
header in the rpm database.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import pytest
import rpm

from rpm_bpf.sources import trust
from tests.support.cli import run_cli
from tests.support.signing import SIGNED_OBJ as OBJ
from tests.support.signing import (
    append_dribble,
    edit_stored_header,
    flip_tag_byte,
    import_key,
    install,
    replace_digest,
    retag,
    rpm_root,
)

BASE = ("--no-system-policy",)


def _require(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (./run-tests.sh installs it)")


def _root(kit, tmp_path: Path, *pkgs: str) -> Path:
    root = tmp_path / "root"
    import_key(root, kit["distro_key"])
    for name in pkgs:
        install(root, kit["pkgs"][name])
    return root


def _verify(root: Path, *args: str):
    return run_cli("verify", "--root", root, *BASE, *args)


def _trusted(kit, root: Path, *args: str):
    return _verify(root, "--trusted-keys", kit["distro_key"], *args)


def _rules(result) -> list[str]:
    return [f["rule"] for f in result.json()["findings"]]


def _host_has_repo_keys() -> bool:
    return bool(trust.repo_key_files()[0])


def _flip_byte(path: Path) -> None:
    """One byte changed, size and mtime kept (as an attacker would, so that rpm -V only has the digest)."""
    import os

    before = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_signed_root_passes_and_unsigned_package_without_bpf_is_not_required(kit, tmp_path):
    root = _root(kit, tmp_path, "good", "nobpf")
    done = _trusted(kit, root, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    doc = done.json()
    schema = json.loads(resources.files("rpm_bpf").joinpath("data/report.schema.json").read_text())
    import jsonschema

    jsonschema.validate(doc, schema)
    assert doc["findings"] == []
    # One record, for P only: Q ships no BPF code and is not required to be signed.
    assert doc["signatures"] == [
        {
            "package": "P-1.0-1.x86_64",
            "verdict": "verified",
            "key_id": kit["distro_id"],
            "file_signatures": {"checked": 0, "failed": 0},
        }
    ]


def test_unsigned_rewrite_is_caught_while_rpm_V_passes(kit, tmp_path):
    root = _root(kit, tmp_path, "good")
    install(root, kit["pkgs"]["unsigned"], "--replacepkgs", "--nosignature")
    assert rpm_root(root, "-V", "--nodeps", "P").returncode == 0  # the attack: rpm -V sees nothing
    if not _host_has_repo_keys():
        plain = _verify(root)
        assert plain.returncode == 0 and "header signatures were not checked" in plain.stderr
        assert plain.stderr.count("signatures were not checked") == 1
    caught = _trusted(kit, root)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    expected = f"no header signature in the rpm database; expected a signature by {kit['distro_id']}"
    assert f"P.x86_64: E: bpf-package-unsigned {expected}" in caught.stdout


def test_attacker_signed_rewrite_is_caught_although_its_key_is_in_the_root(kit, tmp_path):
    root = _root(kit, tmp_path, "good")
    import_key(root, kit["evil_key"])
    install(root, kit["pkgs"]["evilsigned"], "--replacepkgs")
    assert rpm_root(root, "-V", "--nodeps", "P").returncode == 0
    assert kit["evil_id"][-8:] in rpm_root(root, "-q", "--qf", "%{RSAHEADER:pgpsig}", "P").stdout
    caught = _trusted(kit, root, "--format", "json")
    assert caught.returncode == 1
    [finding] = caught.json()["findings"]
    assert finding["rule"] == "bpf-package-signature-untrusted"
    assert kit["evil_id"] in finding["detail"] and kit["distro_id"] in finding["detail"]
    assert caught.json()["signatures"][0]["verdict"] == "untrusted"


def _corrupt_signature(blob: bytes) -> bytes:
    return flip_tag_byte(blob, rpm.RPMTAG_RSAHEADER)


def test_corrupted_signature_is_invalid(kit, tmp_path):
    root = _root(kit, tmp_path, "good")
    edit_stored_header(root, "P", _corrupt_signature)
    caught = _trusted(kit, root, "--format", "json")
    assert caught.returncode == 1
    assert _rules(caught) == ["bpf-package-signature-invalid"]
    assert "BAD" in caught.json()["findings"][0]["detail"]


def test_rewriting_file_and_database_digest_is_caught_by_the_signed_digests(kit, tmp_path):
    root = _root(kit, tmp_path, "good")
    obj = root / OBJ.lstrip("/")
    _flip_byte(obj)
    replace_digest(root, "P", hashlib.sha256(obj.read_bytes()).hexdigest())
    assert rpm_root(root, "-V", "--nodeps", "P").returncode == 0  # the database agrees with the new bytes
    assert _verify(root, "--format", "json").json()["findings"] == []
    caught = _trusted(kit, root, "--format", "json")
    assert caught.returncode == 1
    assert sorted(_rules(caught)) == ["bpf-object-modified", "bpf-package-signature-invalid"]


def _huge_signature(blob: bytes) -> bytes:
    packet = b"\x89\x02" + b"\xff" * (8 << 20)  # an 8 MiB "signature packet"
    return append_dribble(retag(blob, rpm.RPMTAG_RSAHEADER, 1999), rpm.RPMTAG_RSAHEADER, 7, packet, len(packet))


def _no_region(blob: bytes) -> bytes:
    # The region tag's entry renumbered: librpm loads the header, nothing in it is signed.
    return blob[:8] + struct.pack(">i", 1999) + blob[12:]


@pytest.mark.parametrize(
    ("edit", "code", "said"),
    [
        (_huge_signature, 1, "E: bpf-package-signature-invalid signature by an unreadable key id does not verify"),
        (_no_region, 2, "header cannot be read (damaged); its package is not checked"),
    ],
    ids=["huge-signature-packet", "no-region"],
)
def test_hostile_signature_tags_are_findings_not_crashes(kit, tmp_path, edit, code, said):
    root = _root(kit, tmp_path, "good")
    edit_stored_header(root, "P", edit)
    caught = _trusted(kit, root)
    assert caught.returncode == code, caught.stdout + caught.stderr
    assert "Traceback" not in caught.stderr and said in caught.stdout + caught.stderr


def test_all_formats_show_signer_and_verdict(kit, tmp_path):
    root = _root(kit, tmp_path, "good", "nobpf")
    sarif = json.loads(_trusted(kit, root, "--format", "sarif").stdout)
    [record] = sarif["runs"][0]["properties"]["signatures"]
    assert record["verdict"] == "verified" and record["key_id"] == kit["distro_id"]
    junit = ET.fromstring(_trusted(kit, root, "--format", "junit").stdout)
    props = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert props == {"signature": "verified", "signature-key-id": kit["distro_id"]}
    text = _trusted(kit, root).stdout
    assert "1 package signatures checked; 1 verified." in text


def test_policy_trust_keys_count_like_the_option(kit, tmp_path):
    root = _root(kit, tmp_path, "good")
    install(root, kit["pkgs"]["unsigned"], "--replacepkgs", "--nosignature")
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[trust]\nkeys = ["{kit["distro_key"]}"]\n')
    caught = _verify(root, "--policy", policy)
    assert caught.returncode == 1 and "bpf-package-unsigned" in caught.stdout


@pytest.mark.parametrize("kind", ["not-a-key", "fifo", "missing"])
def test_bad_key_file_is_one_clear_error(kit, tmp_path, kind):
    root = _root(kit, tmp_path, "good")
    bad = tmp_path / "bad.asc"
    if kind == "not-a-key":
        bad.write_text("hello\n")
    elif kind == "fifo":
        import os

        os.mkfifo(bad)
    done = _verify(root, "--trusted-keys", bad)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert str(bad) in done.stderr and done.stderr.count("\n") == 1


def test_fs_verity_signature_catches_a_flipped_byte_with_a_restored_digest(kit, tmp_path):
    _require("fsverity")
    root = _root(kit, tmp_path, "verity")
    cert = ("--trusted-cert", kit["verity_cert"])
    clean = _trusted(kit, root, *cert, "--format", "json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.json()["signatures"][0]["file_signatures"] == {"checked": 1, "failed": 0}
    other = _verify(root, "--trusted-cert", kit["other_cert"], "--format", "json")
    assert _rules(other) == ["bpf-file-signature-invalid"] and "not trusted" in other.stdout
    obj = root / OBJ.lstrip("/")
    _flip_byte(obj)
    replace_digest(root, "P", hashlib.sha256(obj.read_bytes()).hexdigest())
    assert rpm_root(root, "-V", "--nodeps", "P").returncode == 0
    caught = _verify(root, *cert, "--format", "json")
    assert caught.returncode == 1
    assert _rules(caught) == ["bpf-file-signature-invalid"]
    assert "does not match the file's fs-verity digest" in caught.json()["findings"][0]["detail"]


def test_certificate_configured_and_no_file_signature_is_reported(kit, tmp_path):
    root = _root(kit, tmp_path, "good")
    done = _verify(root, "--trusted-cert", kit["verity_cert"], "--format", "json")
    assert done.returncode == 1 and _rules(done) == ["bpf-file-signature-missing"]


def test_ima_signature_made_by_evmctl_is_checked(kit, tmp_path):
    """Debian's rpmsign has no --signfiles: evmctl signs the object, and its signature is put in the installed
    header's FILESIGNATURES the way rpm merges the signature header's (after the signed region)."""
    _require("evmctl")
    root = _root(kit, tmp_path, "good")
    obj = root / OBJ.lstrip("/")
    copy = tmp_path / "prog.o"
    shutil.copy(obj, copy)
    subprocess.run(
        ["evmctl", "ima_sign", "--sigfile", "--hashalgo", "sha256", "--key", str(kit["verity_key"]), str(copy)],
        check=True,
        capture_output=True,
    )
    signature = (tmp_path / "prog.o.sig").read_bytes()

    def add(blob: bytes) -> bytes:
        value = signature.hex().encode() + b"\0"
        return append_dribble(blob, rpm.RPMTAG_FILESIGNATURES, 8, value, 1)

    edit_stored_header(root, "P", add)
    cert = ("--trusted-cert", kit["verity_cert"])
    clean = _trusted(kit, root, *cert, "--format", "json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.json()["signatures"][0]["file_signatures"] == {"checked": 1, "failed": 0}
    _flip_byte(obj)
    replace_digest(root, "P", hashlib.sha256(obj.read_bytes()).hexdigest())
    caught = _verify(root, *cert, "--format", "json")
    assert _rules(caught) == ["bpf-file-signature-invalid"] and "IMA" in caught.stdout


def test_scan_rule_for_unsigned_builds_is_off_by_default_and_on_by_policy(kit, tmp_path):
    unsigned, signed = kit["pkgs"]["unsigned"], kit["pkgs"]["good"]
    assert "bpf-package-unsigned-build" not in run_cli("scan", *BASE, unsigned).stdout
    policy = tmp_path / "gate.toml"
    policy.write_text('[severity]\nbpf-package-unsigned-build = "error"\n')
    on = run_cli("scan", *BASE, "--policy", policy, "--format", "json", unsigned, signed, kit["pkgs"]["nobpf"])
    flagged = [f["package"]["name"] for f in on.json()["findings"] if f["rule"] == "bpf-package-unsigned-build"]
    assert flagged == ["P"] and on.json()["findings"][0]["package"]["source"].endswith("unsigned.rpm")


def test_repair_reinstalls_the_signed_package(kit, tmp_path):
    _require("dnf", "createrepo_c")
    root = _root(kit, tmp_path, "filesystem", "good")
    install(root, kit["pkgs"]["unsigned"], "--replacepkgs", "--nosignature")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(kit["pkgs"]["good"], repo)
    subprocess.run(["createrepo_c", "-q", str(repo)], check=True)
    said = _trusted(kit, root, "--repair")
    assert said.returncode == 1 and "dnf reinstall -y" in said.stderr and "P-1.0-1.x86_64" in said.stderr
    dnf_args = [
        "--setopt=reposdir=/nonexistent",
        f"--repofrompath=signed,{repo}",
        "--setopt=signed.gpgcheck=0",
        "--releasever=1",
        "--setopt=pluginpath=/nonexistent",
    ]
    done = _trusted(kit, root, "--repair", "--yes", *[f"--dnf-arg={a}" for a in dnf_args])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "repaired 1 package(s); 0 finding(s) left" in done.stderr
    assert _trusted(kit, root).returncode == 0


def _dnf(root: Path, confdir: Path, *args: str) -> subprocess.CompletedProcess:
    from tests.support.paths import REPO

    cmd = ["dnf", "-y", f"--installroot={root}", "--setopt=reposdir=/nonexistent", "--releasever=1"]
    cmd += [f"--setopt=pluginpath={REPO / 'dnf_plugin'}", f"--setopt=pluginconfpath={confdir}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_dnf_bpf_verify_and_the_post_transaction_check_use_trusted_keys(kit, tmp_path):
    _require("dnf", "createrepo_c")
    root = _root(kit, tmp_path, "filesystem", "good")
    confdir = tmp_path / "plugins"
    confdir.mkdir()
    conf = confdir / "bpf.conf"
    conf.write_text("[main]\nenabled = 1\nmode = enforce\nverify_after = 1\n")
    clean = _dnf(root, confdir, "bpf-verify", "--trusted-keys", str(kit["distro_key"]))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "1 package signatures checked; 1 verified." in clean.stdout
    # An unsigned P-1.0-1 reinstalled from a repository without gpgcheck: the check after the transaction
    # (with the key from bpf.conf) says so, and dnf bpf-verify fails on it.
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(kit["pkgs"]["unsigned"], repo)
    subprocess.run(["createrepo_c", "-q", str(repo)], check=True)
    conf.write_text(conf.read_text() + f"trusted_keys = {kit['distro_key']}\n")
    done = _dnf(root, confdir, f"--repofrompath=r,{repo}", "--setopt=r.gpgcheck=0", "reinstall", "P")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rpm-bpf: after the transaction: P.x86_64: E: bpf-package-unsigned" in done.stdout + done.stderr
    caught = _dnf(root, confdir, "bpf-verify", "--json", "--trusted-keys", str(kit["distro_key"]))
    assert caught.returncode == 1 and json.loads(caught.stdout)["signatures"][0]["verdict"] == "unsigned"


@pytest.fixture
def host_repo(kit):
    """A dnf repository file on the host naming the distribution key; removed afterwards, whatever happens."""
    import os

    folder = Path("/etc/yum.repos.d")
    if not os.access("/etc", os.W_OK):
        pytest.skip("writing the host's /etc/yum.repos.d needs root")
    made = not folder.exists()
    folder.mkdir(exist_ok=True)
    conf = folder / "zz-rpm-bpf-test.repo"
    conf.write_text(f"[rpm-bpf-test]\nname=test\nbaseurl=file:///nonexistent\ngpgkey=file://{kit['distro_key']}\n")
    try:
        yield conf
    finally:
        conf.unlink()
        if made:
            folder.rmdir()


def test_default_keys_are_the_hosts_repository_keys_never_the_roots(kit, tmp_path, host_repo):
    root = _root(kit, tmp_path, "good")
    import_key(root, kit["evil_key"])
    install(root, kit["pkgs"]["evilsigned"], "--replacepkgs")
    # The verified root names the attacker's key in its own repository configuration: never read.
    (root / "etc/yum.repos.d").mkdir(parents=True)
    (root / "etc/yum.repos.d/evil.repo").write_text(f"[evil]\ngpgkey=file://{kit['evil_key']}\n")
    caught = _verify(root, "--format", "json")
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert _rules(caught) == ["bpf-package-signature-untrusted"]
    assert kit["distro_id"] in caught.json()["findings"][0]["detail"]
    # A repository key file that is no key is a note, and the other keys still count.
    (tmp_path / "junk.asc").write_text("not a key\n")
    host_repo.write_text(host_repo.read_text() + f"[junk]\ngpgkey=file://{tmp_path / 'junk.asc'}\n")
    again = _verify(root)
    assert again.returncode == 1 and "junk.asc: no ASCII-armored OpenPGP public key block" in again.stderr
