"""rules/signature.py and the observations it judges (sources/hdrsig.py's region cut, sources/trust.py's
repository keys, the policy's [trust]): fast tests on in-memory packages and hand-made header blobs.

The same behaviour on real gpg keys, rpmsign and rpm roots: tests/integration/test_trust.py.
"""

from __future__ import annotations

import struct

import pytest

from rpm_bpf.model import FileEntry, PackageRef
from rpm_bpf.rules import signature
from rpm_bpf.rules.policy import Policy, PolicyError
from rpm_bpf.rules.registry import Severity
from rpm_bpf.sources import hdrsig, trust
from rpm_bpf.sources.rpmheader import HeaderError
from tests.support.bpfelf import bpf_object
from tests.support.fakepkg import FakePkg, bpf, text

REF = PackageRef("tool", None, "1.0", "1", "x86_64", "rpmdb")
KEYS = ["55c510cc714155c9"]


def test_verified_header_is_no_finding():
    assert signature.header(REF, hdrsig.HeaderSignature(hdrsig.VERIFIED, KEYS[0], "OK"), KEYS) is None


@pytest.mark.parametrize(
    ("verdict", "keyid", "rule", "words"),
    [
        (hdrsig.UNSIGNED, "", "bpf-package-unsigned", "no header signature in the rpm database"),
        (hdrsig.UNTRUSTED, "a4351d9a01ffd286", "bpf-package-signature-untrusted", "signed by key a4351d9a01ffd286"),
        (hdrsig.INVALID, "55c510cc714155c9", "bpf-package-signature-invalid", "does not verify: BAD"),
    ],
)
def test_header_verdicts_name_package_key_and_expectation(verdict, keyid, rule, words):
    finding = signature.header(REF, hdrsig.HeaderSignature(verdict, keyid, "BAD"), KEYS)
    assert (finding.rule, finding.package, finding.severity) == (rule, REF, Severity.ERROR)
    assert words in finding.detail
    if verdict != hdrsig.INVALID:
        assert finding.detail.endswith("expected a signature by 55c510cc714155c9")


def test_altered_after_signing_lists_paths():
    paths = [f"/usr/lib64/bpf/tool/{i}.o" for i in range(7)]
    finding = signature.altered_after_signing(REF, KEYS[0], paths)
    assert finding.rule == "bpf-package-signature-invalid"
    assert "/usr/lib64/bpf/tool/0.o" in finding.detail and "and 2 more" in finding.detail


def test_file_signature_rules():
    assert signature.file_signature(REF, "/p.o", "fsverity", None) is None
    bad = signature.file_signature(REF, "/p.o", "fsverity", "does not match")
    assert (bad.rule, bad.path, bad.detail) == ("bpf-file-signature-invalid", "/p.o", "fsverity: does not match")
    assert signature.file_signature_missing(REF, "/p.o").rule == "bpf-file-signature-missing"


def test_unsigned_build_rule_is_off_in_the_default_policy_and_judges_rpm_files():
    pkg = FakePkg([bpf("/usr/lib64/bpf/tool/prog.o", bpf_object())], requires=["bpf-filesystem"])
    pkg.package.signed = False
    assert ("bpf-package-unsigned-build", None) in pkg.rules(pkg.check())
    pkg.package.signed = True
    assert ("bpf-package-unsigned-build", None) not in pkg.rules(pkg.check())
    docs = FakePkg([text("/usr/share/doc/tool/README")])
    docs.package.signed = False
    assert docs.rules(docs.check()) == set()  # no BPF content: nothing to require
    assert Policy.load(system=None).severity("bpf-package-unsigned-build") is None


def _blob(entries: list[tuple[int, int, int, int]], data: bytes) -> bytes:
    return struct.pack(">II", len(entries), len(data)) + b"".join(struct.pack(">iIiI", *e) for e in entries) + data


def _signed_blob() -> bytes:
    """A region of two entries (the region tag, NAME) then one dribble entry (INSTALLTIME)."""
    name = b"tool\0"
    trailer = struct.pack(">iIiI", 63, 7, -2 * 16, 16)
    data = name + b"\0" * 3 + trailer + struct.pack(">I", 12345)
    return _blob([(63, 7, 8, 16), (1000, 6, 0, 1), (1008, 4, 24, 1)], data)


def test_signed_region_keeps_the_region_only():
    region = hdrsig.signed_region(_signed_blob())
    il, dl = struct.unpack_from(">II", region, 0)
    assert (il, dl) == (2, 24)
    assert [struct.unpack_from(">i", region, 8 + 16 * i)[0] for i in range(il)] == [63, 1000]


@pytest.mark.parametrize(
    ("blob", "words"),
    [
        (b"\0\0", "shorter"),
        (_blob([(1000, 6, 0, 1)], b"tool\0"), "no immutable region"),
        (_blob([(63, 7, 0, 16)], struct.pack(">iIiI", 63, 7, 16, 16)), "trailer is damaged"),
        (_blob([(63, 7, 0, 16)], struct.pack(">iIiI", 63, 7, -5 * 16, 16)), "more entries"),
        (struct.pack(">II", 1000, 1000), "larger than the header"),
    ],
)
def test_signed_region_rejects_damage(blob, words):
    with pytest.raises(HeaderError, match=words):
        hdrsig.signed_region(blob)


def test_changed_entries():
    a = FileEntry("/usr/lib64/bpf/a.o", 0o100644, 10, "root", "root", 0, "eBPF", "aa")
    b = FileEntry("/usr/lib64/bpf/b.o", 0o100644, 10, "root", "root", 0, "eBPF", "bb")
    assert hdrsig.changed_entries([a, b], [a, b]) == []
    assert hdrsig.changed_entries([a, b._replace(digest="cc")], [a, b]) == ["/usr/lib64/bpf/b.o"]
    assert hdrsig.changed_entries([a], [a, b]) == ["/usr/lib64/bpf/b.o"]


def test_policy_trust_section(tmp_path):
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text('[trust]\nkeys = ["/etc/pki/rpm-gpg/A"]\n')
    two.write_text('[trust]\nkeys = ["/etc/pki/rpm-gpg/B"]\ncertificates = ["/etc/pki/c.pem"]\n')
    policy = Policy.load([one, two], system=None)
    assert policy.trust_keys == ("/etc/pki/rpm-gpg/A", "/etc/pki/rpm-gpg/B")  # later files add
    assert policy.trust_certs == ("/etc/pki/c.pem",)
    for bad, words in (('keys = ["relative"]', "absolute file paths"), ("gpg = 1", "unknown key")):
        one.write_text(f"[trust]\n{bad}\n")
        with pytest.raises(PolicyError, match=words):
            Policy.load([one], system=None)


def test_repository_keys_are_the_hosts_local_ones(tmp_path):
    etc, repos = tmp_path / "etc", tmp_path / "repos"
    (etc / "dnf" / "vars").mkdir(parents=True)
    (etc / "dnf" / "vars" / "stream").write_text("10\n")
    (etc / "os-release").write_text('ID=fedora\nVERSION_ID="43"\n')
    repos.mkdir()
    (repos / "fedora.repo").write_text(
        "[fedora]\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch\n"
        "[updates]\ngpgkey=file:///etc/pki/rpm-gpg/K-${stream} https://example.invalid/key.asc\n"
        "[off]\nenabled=0\ngpgkey=file:///etc/pki/rpm-gpg/OFF\n"
        "[odd]\ngpgkey=file:///etc/pki/rpm-gpg/$unknown\n"
    )
    (repos / "broken.repo").write_text("no section header\n")
    paths, notes = trust.repo_key_files(str(etc), [str(repos)])
    import platform

    assert paths == [
        f"/etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-43-{platform.machine()}",
        "/etc/pki/rpm-gpg/K-10",
    ]
    assert any("https://example.invalid/key.asc" in n for n in notes)
    assert any("$unknown" in n for n in notes) and any("broken.repo" in n for n in notes)
