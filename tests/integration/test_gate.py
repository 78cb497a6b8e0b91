"""The gate: `rpm-bpf scan --against REPO [--baseline OLD] NEW...` on real createrepo_c repositories.

Repositories are made by createrepo_c from RPMs built by rpmbuild at test time,
read as a path and over http from a local server, with metadata in each
compression format; nothing here is a hand-written RPM or metadata file.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.repodata import rewritten

pytestmark = pytest.mark.integration
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def _gate(*args: str) -> tuple[int, dict, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "scan", "-q", "--no-system-policy", "-f", "json", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def _conflicts(report: dict) -> list[dict]:
    return [f for f in report["findings"] if f["rule"] == "bpf-name-conflict"]


def test_new_build_clashing_with_a_repository_package_fails(built, gate_repo, bpfdir):
    status, report, _ = _gate("--against", str(gate_repo), str(built["new-clash"]))
    assert status == 1
    (clash,) = _conflicts(report)
    assert clash["package"]["name"] == "newcomer" and clash["path"] == f"{bpfdir}/shared.o"
    assert clash["related"] == ["other-tool-1.0-1.x86_64"]
    assert f"shared.o is also shipped by other-tool-1.0-1.x86_64 ({bpfdir}/shared.o in {gate_repo})" in clash["detail"]
    # The repository's own old problems (legacy's misplaced object) are not the new build's; decoys are no clash.
    assert {f["package"]["name"] for f in report["findings"]} == {"newcomer"}
    assert report["summary"]["packages"] == 1


def test_upgrade_and_obsoleting_package_pass(built, gate_repo):
    for key in ("new-upgrade", "new-obsoleting", "new-clean"):
        status, report, stderr = _gate("--against", str(gate_repo), str(built[key]))
        assert (status, _conflicts(report)) == (0, []), (key, report, stderr)


def test_clash_with_a_bpf_provide_from_primary(built, gate_repo, bpfdir):
    status, report, _ = _gate("--against", str(gate_repo), str(built["new-announced"]))
    assert status == 1
    (clash,) = _conflicts(report)
    assert clash["related"] == ["provider-only-1.0-1.x86_64"] and "bpf(announced.o)" in clash["detail"]


def test_baseline_finding_is_existing_and_does_not_fail(built, gate_repo):
    status, report, _ = _gate(
        "--against", str(gate_repo), "--baseline", str(built["new-clash"]), str(built["new-clash-1.1"])
    )
    assert status == 0
    (clash,) = _conflicts(report)
    assert clash["existing"] == "newcomer-1.0-1.x86_64" and clash["package"]["version"] == "1.1"
    # Everything 1.1 has, 1.0 had (the clash, and the object's missing BTF): all existing, nothing counts.
    assert {f["rule"] for f in report["findings"]} == {"bpf-name-conflict", "bpf-object-no-btf"}
    assert all(f["existing"] == "newcomer-1.0-1.x86_64" for f in report["findings"])
    assert report["summary"]["existing"] == 2 and report["summary"]["errors"] == 0


def test_waived_finding_passes_and_is_shown_with_reason_and_expiry(built, gate_repo, tmp_path):
    policy = tmp_path / "gate.toml"
    policy.write_text(
        '[[waiver]]\nrule = "bpf-name-conflict"\npackage = "newcomer"\n'
        'reason = "rename tracked in bug 42"\nexpires = 2099-12-31\n'
    )
    status, report, _ = _gate("--against", str(gate_repo), "--policy", str(policy), str(built["new-clash"]))
    assert status == 0
    (clash,) = _conflicts(report)
    assert clash["waived"] and clash["waiver_reason"] == "rename tracked in bug 42"
    assert clash["waiver_expires"] == "2099-12-31"
    text = subprocess.run(
        [
            sys.executable,
            "-m",
            "rpm_bpf",
            "scan",
            "-q",
            "--no-system-policy",
            "--policy",
            str(policy),
            "--against",
            str(gate_repo),
            str(built["new-clash"]),
        ],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert text.returncode == 0
    assert "[waived: rename tracked in bug 42; until 2099-12-31]" in text.stdout


def _recompressed(repo: Path, dest: Path, kind: str) -> Path:
    """A copy of ``repo`` whose metadata createrepo_c wrote compressed with ``kind`` (zstd: recompressed by
    python3-zstandard, as Debian 12's createrepo_c writes no zstd, with repomd.xml's checksums redone)."""
    shutil.copytree(repo, dest)
    shutil.rmtree(dest / "repodata")
    if kind in ("gz", "xz", "bz2"):
        subprocess.run(
            ["createrepo_c", "-q", f"--general-compress-type={kind}", "--no-database", str(dest)], check=True
        )
        return dest
    import gzip
    import hashlib

    import createrepo_c as cr
    import zstandard

    subprocess.run(["createrepo_c", "-q", "--no-database", str(dest)], check=True)
    repomd = cr.Repomd(str(dest / "repodata" / "repomd.xml"))
    fresh = cr.Repomd()
    for record in repomd.records:
        src = dest / record.location_href
        plain = gzip.decompress(src.read_bytes())
        zst = src.with_name(src.name.removesuffix(".gz") + ".zst")
        zst.write_bytes(zstandard.ZstdCompressor().compress(plain))
        src.unlink()
        new = cr.RepomdRecord(record.type, str(zst))
        new.location_href = f"repodata/{zst.name}"
        new.checksum_type, new.checksum = "sha256", hashlib.sha256(zst.read_bytes()).hexdigest()
        new.size = zst.stat().st_size
        fresh.set_record(new)
    (dest / "repodata" / "repomd.xml").write_text(fresh.xml_dump())
    return dest


@pytest.mark.parametrize("kind", ["gz", "xz", "bz2", "zstd"])
def test_every_metadata_compression(built, gate_repo, tmp_path, kind):
    copy = _recompressed(gate_repo, tmp_path / kind, kind)
    suffixes = {p.suffix for p in (copy / "repodata").iterdir() if "primary" in p.name}
    assert suffixes == {{"gz": ".gz", "xz": ".xz", "bz2": ".bz2", "zstd": ".zst"}[kind]}
    status, report, stderr = _gate("--against", str(copy), str(built["new-clash"]))
    assert status == 1 and [c["related"] for c in _conflicts(report)] == [["other-tool-1.0-1.x86_64"]], stderr


@pytest.fixture(scope="module")
def served(gate_repo):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(gate_repo))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_repository_over_http(built, served):
    status, report, stderr = _gate("--against", served, str(built["new-clash"]))
    assert status == 1, stderr
    (clash,) = _conflicts(report)
    assert clash["related"] == ["other-tool-1.0-1.x86_64"] and served in clash["detail"]


def _broken(repo: Path, dest: Path, how: str) -> Path:
    shutil.copytree(repo, dest)
    repodata = dest / "repodata"
    (primary,) = repodata.glob("*-primary.xml.gz")
    if how == "missing":
        shutil.rmtree(repodata)
    elif how == "truncated":
        primary.write_bytes(primary.read_bytes()[: primary.stat().st_size // 2])
    elif how == "corrupt":
        data = bytearray(primary.read_bytes())
        data[len(data) // 2] ^= 0xFF
        primary.write_bytes(bytes(data))
    elif how == "repomd-garbage":
        (repodata / "repomd.xml").write_text("<repomd><data type=")
    elif how == "href-escape":
        text = (
            (repodata / "repomd.xml").read_text().replace(f'href="repodata/{primary.name}"', 'href="../../etc/passwd"')
        )
        (repodata / "repomd.xml").write_text(text)
    return dest


@pytest.mark.parametrize(
    "how, message",
    [
        ("missing", "repodata/repomd.xml"),
        ("truncated", "primary"),
        ("corrupt", "primary"),
        ("repomd-garbage", "repomd.xml cannot be parsed"),
        ("href-escape", "points outside the repository"),
    ],
)
def test_unreadable_repository_is_exit_2_and_the_rest_still_checked(built, gate_repo, tmp_path, how, message):
    bad = _broken(gate_repo, tmp_path / how, how)
    status, report, stderr = _gate("--against", str(bad), "--against", str(gate_repo), str(built["new-clash"]))
    assert status == 2
    (error,) = report["input_errors"]
    assert error["input"] == str(bad) and message in error["message"], error
    assert [c["related"] for c in _conflicts(report)] == [["other-tool-1.0-1.x86_64"]]  # the good repo still counts
    assert stderr.count("rpm-bpf: error:") == 1


def test_unreachable_url_is_exit_2(built):
    status, report, _ = _gate("--against", "http://127.0.0.1:9/repo/", str(built["new-clean"]))
    assert status == 2 and "cannot fetch repodata/repomd.xml" in report["input_errors"][0]["message"]
    assert report["summary"]["packages"] == 1  # the new package was still checked


def test_multi_member_gzip_is_read_whole(built, gate_repo, tmp_path):
    """zcat, libsolv and dnf read every member of a concatenated gzip file: so does the gate (a clash in the
    second member is a clash)."""
    import gzip

    def split(kind: str, xml: bytes) -> bytes:
        cut = xml.index(b"<package ", len(xml) // 2)
        return gzip.compress(xml[:cut]) + gzip.compress(xml[cut:])

    copy = rewritten(gate_repo, tmp_path / "multi", split)
    status, report, stderr = _gate("--against", str(copy), str(built["new-clash"]))
    assert status == 1 and [c["related"] for c in _conflicts(report)] == [["other-tool-1.0-1.x86_64"]], stderr


def test_trailing_garbage_after_the_stream_is_refused(built, gate_repo, tmp_path):
    import gzip

    copy = rewritten(gate_repo, tmp_path / "trailing", lambda kind, xml: gzip.compress(xml) + b"garbage")
    status, report, _ = _gate("--against", str(copy), str(built["new-clash"]))
    assert status == 2 and "data after the end of the compressed stream" in report["input_errors"][0]["message"]


def test_epoch_that_is_not_a_number_is_refused(built, gate_repo, tmp_path):
    # every package's epoch: the ones the pre-filter hands to the parser carry it too
    import gzip

    copy = rewritten(
        gate_repo,
        tmp_path / "epoch",
        lambda kind, xml: gzip.compress(xml.replace(b'epoch="0"', 'epoch="\u00b2"'.encode())),
    )
    status, report, stderr = _gate("--against", str(copy), str(built["new-clash"]))
    assert status == 2 and "epoch that is not a number" in report["input_errors"][0]["message"], stderr


@pytest.mark.parametrize("link", ["file", "directory"])
def test_symbolic_links_in_the_repository_are_not_followed(built, gate_repo, tmp_path, link):
    copy = tmp_path / "linked"
    shutil.copytree(gate_repo, copy)
    if link == "directory":
        shutil.move(copy / "repodata", tmp_path / "elsewhere")
        (copy / "repodata").symlink_to(tmp_path / "elsewhere")
    else:
        (primary,) = (copy / "repodata").glob("*-primary.xml.gz")
        shutil.move(primary, tmp_path / "outside.xml.gz")
        primary.symlink_to(tmp_path / "outside.xml.gz")
    status, report, _ = _gate("--against", str(copy), str(built["new-clash"]))
    assert status == 2 and "symbolic link" in report["input_errors"][0]["message"]


def test_gate_searches_every_elf_file_by_default(rpms, objects, gate_repo):
    """The gate finds an object no header signal announces (a loader that needs nothing but libc), as scan
    does by default; header triage (--embedded=signals) does not."""
    from rpm_bpf.samples.build import PkgFile, PkgSpec

    new = rpms.build(
        PkgSpec("quiet-loader", autodeps=False, files=[PkgFile("/usr/bin/quiet-loader", objects.loader, mode=0o755)])
    )
    status, report, _ = _gate("--against", str(gate_repo), str(new))
    (found,) = [f for f in report["findings"] if f["rule"] == "bpf-object-embedded"]
    assert status == 0 and found["path"] == "/usr/bin/quiet-loader" and found["embedded"]["signal"] == "payload"
    _, triaged, _ = _gate("--embedded=signals", "--against", str(gate_repo), str(new))
    assert not [f for f in triaged["findings"] if f["rule"] == "bpf-object-embedded"]
