"""Signed light skeletons (``bpftool gen skeleton -S``, bpftool 7.7 and later): the signature is found
beside the loader and its key named.

Two sources of truth, neither of them rpm-bpf:
  * Debian sid's bpftool (7.8) signs a real skeleton in a sid root (debootstrap, cached); its gcc builds
    the tool. The key id must be the certificate's subject key identifier as openssl prints it, and the
    signature rpm-bpf located must verify with ``openssl cms -verify`` over the loader bytes it located.
  * The host's openssl makes a signature of bpftool's shape (detached CMS, no certificates, no
    attributes, signer by key id) over a real loader, laid out in the orders compilers choose: found in
    each, whatever the order; crafted and truncated signatures are never reported.
Nothing is loaded into the kernel: the tools are built, not run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rpm_bpf.bpf import lightskel, lskelsig
from rpm_bpf.samples import build as samples
from rpm_bpf.samples.build import LIGHT_LOADER_C, PkgFile, PkgSpec
from tests.support import cmssign, debroot
from tests.support.paths import REPO
from tests.support.programs import LIGHT_SKELETON_C
from tests.support.toolchain import require

pytestmark = pytest.mark.integration
ENV = dict(os.environ, PYTHONPATH=str(REPO))
SID_PACKAGES = ["bpftool", "libbpf-dev", "gcc", "libc6-dev", "openssl", "linux-libc-dev"]
TYPES = {"count_xdp", "pass_tc", "filter_sock"}
SIGN = """set -e
cd /work
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj "/CN=rpm-bpf test BPF signing key" \
  -addext keyUsage=critical,digitalSignature -addext extendedKeyUsage=codeSigning \
  -keyout key.pem -out cert.pem 2>/dev/null
bpftool gen skeleton -S -k key.pem -i cert.pem prog.bpf.o name prog > prog.lskel.h
gcc -O2 -o light-signed light.c
bpftool gen skeleton -L prog.bpf.o name prog > prog.lskel.h
gcc -O2 -o light-unsigned light.c
openssl x509 -in cert.pem -noout -ext subjectKeyIdentifier > skid.txt
bpftool version > bpftool-version.txt
"""


@pytest.fixture(scope="module")
def sid_tools(tmp_path_factory) -> Path:
    require("clang")
    try:
        tree = debroot.base_tree("sid-bpftool", "sid", SID_PACKAGES)
    except debroot.RootUnavailable as exc:
        pytest.skip(f"no Debian sid root for bpftool 7.8 here: {exc}")
    root = debroot.fresh_copy(tree, tmp_path_factory.mktemp("sid-bpftool"))
    work = root / "work"
    work.mkdir()
    samples.compile_bpf(LIGHT_SKELETON_C, work / "prog.bpf.o")
    (work / "light.c").write_text(LIGHT_LOADER_C)
    done = debroot.run_in(root, "sh", "-c", SIGN)
    assert done.returncode == 0, done.stderr
    out = tmp_path_factory.mktemp("signed")
    for name in ("light-signed", "light-unsigned", "cert.pem", "skid.txt", "bpftool-version.txt"):
        shutil.copy(work / name, out / name)
    shutil.rmtree(root)
    return out


def _inspect(tool: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "inspect", "-f", "json", str(tool)], capture_output=True, text=True, env=ENV
    )
    assert proc.returncode == 0, proc.stderr
    (described,) = json.loads(proc.stdout)
    (emb,) = described["embedded"]
    return dict(emb)


def _verifies(signature: bytes, content: bytes, cert: Path, tmp: Path) -> bool:
    (tmp / "sig.der").write_bytes(signature)
    (tmp / "content.bin").write_bytes(content)
    proc = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp / "sig.der"),
         "-content", str(tmp / "content.bin"), "-certfile", str(cert), "-CAfile", str(cert),
         "-purpose", "any", "-out", os.devnull],
        capture_output=True,
        text=True,
    )  # fmt: skip
    return proc.returncode == 0


def test_bpftool_signed_skeleton_names_its_key(sid_tools, tmp_path):
    signed, unsigned = _inspect(sid_tools / "light-signed"), _inspect(sid_tools / "light-unsigned")
    assert signed["light_skeleton"] and {p["name"] for p in signed["programs"]} == TYPES
    assert {p["name"] for p in unsigned["programs"]} == TYPES and unsigned["signature"] is None
    sig = signed["signature"]
    assert sig["key_id"] == cmssign.skid_of((sid_tools / "skid.txt").read_text())
    assert (sig["key_id_kind"], sig["digest"]) == ("subject key identifier", "sha256")
    # What was located is the signature of the loader located: openssl verifies it with the certificate.
    data = (sid_tools / "light-signed").read_bytes()
    located = data[sig["offset"] : sig["offset"] + sig["size"]]
    loader = data[signed["offset"] : signed["offset"] + signed["size"]]
    assert _verifies(located, loader, sid_tools / "cert.pem", tmp_path)
    other = (sid_tools / "light-unsigned").read_bytes()[unsigned["offset"] : unsigned["offset"] + unsigned["size"]]
    assert other != loader and not _verifies(located, other, sid_tools / "cert.pem", tmp_path)


def test_default_scan_reports_the_signature(sid_tools, rpms):
    package = rpms.build(
        PkgSpec(
            "signed-light-tool",
            files=[
                PkgFile("/usr/bin/light-signed", sid_tools / "light-signed", mode=0o755),
                PkgFile("/usr/bin/light-unsigned", sid_tools / "light-unsigned", mode=0o755),
            ],
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "scan", "--no-system-policy", "-f", "json", str(package)],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert proc.returncode == 0, proc.stderr
    found = {f["path"]: f for f in json.loads(proc.stdout)["findings"] if f["rule"] == "bpf-object-embedded"}
    skid = cmssign.skid_of((sid_tools / "skid.txt").read_text())
    signed, unsigned = found["/usr/bin/light-signed"], found["/usr/bin/light-unsigned"]
    assert f"signed (sha256, key {skid}, subject key identifier)" in signed["detail"]
    assert signed["embedded"]["signature"]["key_id"] == skid
    assert "; unsigned;" in unsigned["detail"] and unsigned["embedded"]["signature"] is None
    assert {p["name"] for p in signed["embedded"]["programs"]} == TYPES


# --- the host's openssl, bpftool's signature shape, every layout ---


@pytest.fixture(scope="module")
def loader(tmp_path_factory) -> bytes:
    require("clang", "bpftool", "gcc", "openssl")
    work = tmp_path_factory.mktemp("lskel")
    obj = samples.compile_bpf(LIGHT_SKELETON_C, work / "multi.bpf.o")
    tool = samples.build_light_skeleton_loader(obj, work / "build" / "light-tool")
    data = tool.read_bytes()
    (skel,) = lightskel.find(data)
    return data[skel.offset : skel.offset + skel.size]


@pytest.fixture(scope="module", params=sorted(cmssign.KEYS))
def host_signature(request, loader, tmp_path_factory) -> tuple[bytes, str, Path]:
    """A detached CMS over ``loader`` as bpftool makes it (-nocerts -noattr -keyid, SHA-256), and the key id."""
    return cmssign.sign(loader, tmp_path_factory.mktemp(f"sign-{request.param}"), request.param)


def _aligned(*arrays: bytes) -> tuple[bytes, list[int]]:
    """The arrays as a compiler lays ``static const char x[]`` out: NUL-terminated, each 8-aligned."""
    out, offsets = bytearray(b"\x7fELF" + bytes(60)), []
    for array in arrays:
        out += bytes(-len(out) % 8)
        offsets.append(len(out))
        out += array + b"\0"
    return bytes(out), offsets


@pytest.mark.parametrize("order", ["insn,hash,sig", "sig,hash,insn", "insn,sig,hash", "hash,sig,insn"])
def test_signature_found_in_every_layout(loader, host_signature, order):
    signature, skid, _cert = host_signature
    parts = {"insn": loader, "hash": hashlib.sha256(loader).digest(), "sig": signature}
    names = order.split(",")
    data, offsets = _aligned(*(parts[n] for n in names))
    at = dict(zip(names, offsets, strict=True))
    found = lskelsig.find(data, at["insn"], len(loader))
    assert found == lskelsig.SkeletonSignature(at["sig"], len(signature), skid, "subject key identifier", "sha256")


def test_no_signature_without_the_loaders_hash(loader, host_signature):
    signature, _skid, _cert = host_signature
    data, (insn, _sig) = _aligned(loader, signature)  # a CMS blob nearby, but not bound to this loader
    assert lskelsig.find(data, insn, len(loader)) is None
    other = hashlib.sha256(loader + b"x").digest()
    data, (insn, _hash, _sig) = _aligned(loader, other, signature)
    assert lskelsig.find(data, insn, len(loader)) is None


def test_crafted_signatures_are_never_reported(loader, host_signature):
    """Truncated or otherwise not bpftool's: no signature. Damaged inside: whatever is reported lies in the file,
    starts as a CMS SignedData does, and was parsed (a damaged RSA value is not detected: nothing is verified)."""
    signature, _skid, _cert = host_signature
    digest = hashlib.sha256(loader).digest()
    for cut in (5, 20, len(signature) // 2):  # truncated DER: its length points past the end of the file
        data, (insn, _hash, _sig) = _aligned(loader, digest, signature[:cut])
        assert lskelsig.find(data, insn, len(loader)) is None
    for at in range(15, len(signature), 7):  # every 7th byte after the OID flipped: never raises
        mutated = bytearray(signature)
        mutated[at] ^= 0xFF
        data, (insn, _hash, sig_at) = _aligned(loader, digest, bytes(mutated))
        result = lskelsig.find(data, insn, len(loader))
        if result is not None:
            assert result.offset == sig_at and data[sig_at] == 0x30 and result.key_id_kind
    attached = signature.replace(bytes.fromhex("06092a864886f70d010701"), bytes.fromhex("06092a864886f70d010705"), 1)
    assert attached != signature
    data, (insn, _hash, _sig) = _aligned(loader, digest, attached)
    assert lskelsig.find(data, insn, len(loader)) is None  # not over pkcs7-data: not bpftool's shape


def test_decoy_signatures_cost_bounded_parses(loader, host_signature, monkeypatch):
    """A window full of SignedData headers: at most MAX_PARSES are parsed, nearest the hash first."""
    signature, skid, _cert = host_signature
    digest = hashlib.sha256(loader).digest()
    decoys = (bytes.fromhex("3082") + (200).to_bytes(2, "big") + bytes.fromhex("06092a864886f70d010702")) * 300
    data, (insn, _hash, sig_at, _decoys) = _aligned(loader, digest, signature, decoys)
    parsed = []
    real = lskelsig._parse
    monkeypatch.setattr(lskelsig, "_parse", lambda der: parsed.append(der) or real(der))
    found = lskelsig.find(data, insn, len(loader))
    assert found is not None and found.offset == sig_at and found.key_id == skid
    assert len(parsed) == 1  # the real one is the nearest
    parsed.clear()
    data, (insn, _hash, _decoys) = _aligned(loader, digest, decoys)
    assert lskelsig.find(data, insn, len(loader)) is None and len(parsed) <= lskelsig.MAX_PARSES
