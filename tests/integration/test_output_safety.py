"""Names from packages, disks and BPF objects never reach a terminal raw.

Escape sequences in file, package and symbol names would clear the screen,
set the window title or hide text; a newline would forge a finding line; a
name that is not UTF-8 would break output under a strict UTF-8 locale.
Text and JUnit escape them (``\\x1b``, ``\\n``, ``\\xff``); JSON keeps the
exact text, undecodable bytes as surrogate escapes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import rpm

from rpm_bpf.samples import build as samples
from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.support import craft
from tests.support.cli import run_cli
from tests.support.dnf import BPFDIR, Dnf
from tests.support.paths import REPO

pytestmark = pytest.mark.integration

HOSTILE = "\x1b[2J\x1b]0;owned\x07prog\nbystander.x86_64: E: forged-finding x.o"
ESCAPED = "\\x1b[2J\\x1b]0;owned\\aprog\\nbystander.x86_64: E: forged-finding x.o"


def _strict(*args: str) -> subprocess.CompletedProcess:
    """rpm-bpf with a strict UTF-8 output encoding: an unescaped surrogate would raise."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONIOENCODING="utf-8:strict", LC_ALL="C.UTF-8")
    proc = subprocess.run([sys.executable, "-m", "rpm_bpf", *args], capture_output=True, env=env, timeout=120)
    assert b"Traceback" not in proc.stderr, proc.stderr
    return proc


def _no_control_bytes(data: bytes) -> None:
    """Only printable text and line ends: no ESC, BEL, CR... and valid UTF-8."""
    text = data.decode("utf-8")  # raises on raw undecodable bytes
    assert all(ch == "\n" or ch.isprintable() for ch in text), repr(text)


@pytest.fixture(scope="module")
def hostile_names(rpms, objects, tmp_path_factory) -> Path:
    """A real package whose object's file name carries escapes and a newline (header rewritten, digests fixed)."""
    src = rpms.build(PkgSpec("bystander", files=[PkgFile("/opt/bystander/prog.o", objects.full)]))
    return craft.edit_header(
        src,
        tmp_path_factory.mktemp("names") / "names.rpm",
        lambda h: craft.set_tag(
            h, rpm.RPMTAG_BASENAMES, [HOSTILE if b == "prog.o" else b for b in h[rpm.RPMTAG_BASENAMES]]
        ),
    )


@pytest.fixture(scope="module")
def non_utf8_name(rpms, objects, tmp_path_factory) -> Path:
    """The object's name with a byte that is not UTF-8 (rpmbuild refuses such names: patched after).

    Built with an uncompressed payload, so the name is patched in the header and
    the payload alike; the payload digest and the header digests are recomputed.
    """
    # brp-strip mangles the non-ASCII name; nothing to strip in a BPF object anyway.
    src = rpms.build(
        PkgSpec("latin", files=[PkgFile("/opt/latin/caf\u00e9.o", objects.full)]),
        payload="w.ufdio",
        defines={"__os_install_post": "%{nil}"},
    )
    good, bad = "caf\u00e9.o".encode(), b"caf\xff\xa9.o"
    parts = craft.Parts.of(src)
    assert parts.header_bytes.count(good) == 1 and parts.payload.count(good) == 1
    parts.payload = parts.payload.replace(good, bad)
    parts.header_bytes = parts.header_bytes.replace(good, bad)
    hdr = parts.header()
    digest = hashlib.sha256(parts.payload).hexdigest()
    for tag in (5092, 5097):  # PAYLOADDIGEST, PAYLOADDIGESTALT (the same for an uncompressed payload)
        craft.set_tag(hdr, tag, [digest])
    parts.set_header(hdr)
    parts.fix_digests()
    out = tmp_path_factory.mktemp("latin") / "latin.rpm"
    out.write_bytes(parts.bytes())
    return out


def test_scan_text_escapes_file_names(hostile_names):
    proc = _strict("scan", "--no-system-policy", str(hostile_names))
    # (the payload still has the old name: that is an input error of its own, escaped as well)
    assert proc.returncode == 2
    _no_control_bytes(proc.stderr)
    _no_control_bytes(proc.stdout)
    lines = proc.stdout.decode().splitlines()
    assert not any(line.startswith("bystander.x86_64: E: forged-finding") for line in lines)
    assert f"bystander.x86_64: E: bpf-object-outside-bpfdir /opt/bystander/{ESCAPED}" in proc.stdout.decode()


def test_scan_json_keeps_the_exact_name(hostile_names):
    result = run_cli("scan", "--no-system-policy", "-f", "json", hostile_names)
    paths = {f["path"] for f in result.json()["findings"]}
    assert f"/opt/bystander/{HOSTILE}" in paths


def test_junit_is_valid_xml_with_escaped_names(hostile_names):
    proc = _strict("scan", "--no-system-policy", "-f", "junit", str(hostile_names))
    _no_control_bytes(proc.stdout)
    suites = ET.fromstring(proc.stdout)
    assert ESCAPED in "".join(suites.itertext())


def test_non_utf8_name_under_a_strict_locale(non_utf8_name):
    proc = _strict("scan", "--no-system-policy", str(non_utf8_name))
    assert proc.returncode == 1, proc.stderr
    _no_control_bytes(proc.stdout)
    assert "latin.x86_64: E: bpf-object-outside-bpfdir /opt/latin/caf\\xff\\xa9.o" in proc.stdout.decode()
    doc = json.loads(_strict("scan", "--no-system-policy", "-f", "json", str(non_utf8_name)).stdout)
    (path,) = {f["path"] for f in doc["findings"] if f["rule"] == "bpf-object-outside-bpfdir"}
    assert path.encode("utf-8", "surrogateescape") == b"/opt/latin/caf\xff\xa9.o"  # as documented


def test_error_messages_escape_input_names(tmp_path):
    bad = tmp_path / "x\x1b[2J\n.rpm"
    bad.write_bytes(b"not an rpm")
    proc = _strict("scan", str(bad))
    assert proc.returncode == 2
    _no_control_bytes(proc.stderr)
    assert f"rpm-bpf: error: {tmp_path}/x\\x1b[2J\\n.rpm: not an RPM package" in proc.stderr.decode()


HOSTILE_OBJECT_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp/\x1b]0;owned\x07\x1b[2J")
int xdp_pass(struct xdp_md *ctx)
{
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL\x1b[8m";
"""


def test_inspect_escapes_section_names_and_license(tmp_path):
    obj = samples.compile_bpf(HOSTILE_OBJECT_C, tmp_path / "hostile.bpf.o")
    proc = _strict("inspect", str(obj))
    assert proc.returncode == 0, proc.stderr
    _no_control_bytes(proc.stdout)
    out = proc.stdout.decode()
    assert "xdp/\\x1b]0;owned\\a\\x1b[2J  xdp_pass" in out and "license: GPL\\x1b[8m" in out
    doc = json.loads(_strict("inspect", "-f", "json", str(obj)).stdout)
    assert doc[0]["programs"][0]["section"] == "xdp/\x1b]0;owned\x07\x1b[2J" and doc[0]["license"] == "GPL\x1b[8m"


def test_verify_and_dnf_bpf_verify_escape_names_on_disk(dnf_repo, tmp_path):
    dnf = Dnf(dnf_repo, tmp_path / "root", tmp_path / "plugconf")
    assert dnf("install", "xdp-good-1.0").returncode == 0
    name = b"\x1b]0;owned\x07\n\xff.o"
    with open(os.path.join(bytes(dnf.root), BPFDIR.lstrip("/").encode(), name), "wb") as f:
        f.write(b"\x7fELF")
    expected = f"rpm-bpf: E: bpf-object-unowned {BPFDIR}/\\x1b]0;owned\\a\\n\\xff.o"
    proc = _strict("verify", "--no-system-policy", "--root", str(dnf.root))
    assert proc.returncode == 1
    _no_control_bytes(proc.stdout)
    assert expected in proc.stdout.decode()
    via_dnf = subprocess.run(
        [
            "dnf",
            "-y",
            *dnf.options(),
            f"--setopt=pluginpath={REPO / 'dnf_plugin'}",
            f"--setopt=pluginconfpath={dnf.confdir}",
            "bpf-verify",
        ],
        capture_output=True,
        timeout=120,
    )
    _no_control_bytes(via_dnf.stdout)
    assert expected in via_dnf.stdout.decode()


def test_non_utf8_names_reach_rpms_indexes_as_bytes(dnf_repo, non_utf8_name, tmp_path):
    """rpm's look-ups refuse str keys that are not UTF-8: they go as bytes, never as a crash of the check."""
    dnf = Dnf(dnf_repo, tmp_path / "root", tmp_path / "plugconf")
    assert dnf("install", "xdp-good-1.0").returncode == 0
    request = json.dumps({"incoming": [{"path": str(non_utf8_name), "nevra": "latin-1.0-1.x86_64"}]})
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "transaction-check", "--root", str(dnf.root), "--no-system-policy", "--json"],
        input=request,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    rules = {f["rule"] for f in json.loads(proc.stdout)["findings"]}
    assert rules == {"bpf-object-outside-bpfdir"}  # judged, not "internal error"
    named = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "verify", "--root", str(dnf.root), b"x\xff"],
        capture_output=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
    )
    assert named.returncode == 2 and b"Traceback" not in named.stderr
    assert b"rpm-bpf: error: x\\xff: package is not installed" in named.stderr
