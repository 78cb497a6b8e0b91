"""The rpm-bpf command line: formats, exit codes, bad input, inspect, rules."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from importlib import resources

import jsonschema
import pytest

from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.support.builders import good_package
from tests.support.cli import run_cli
from tests.support.paths import REPO, open_to_others

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mixed_dir(rpms, objects, bpfdir, tmp_path_factory):
    """Good, bad and corrupt RPMs in one tree (with a subdirectory)."""
    d = tmp_path_factory.mktemp("mixed")
    (d / "sub").mkdir()
    good = rpms.build(good_package(objects, bpfdir, name="xdp-good"))
    bad = rpms.build(
        PkgSpec("legacy", files=[PkgFile("/usr/share/legacy/prog.o", objects.no_license, mode=0o755, config=True)])
    )
    clash = rpms.build(
        PkgSpec(
            "xdp-clash",
            requires=["bpf-filesystem"],
            files=[
                PkgFile(f"{bpfdir}/xdp-good", directory=True, mode=0o755),
                PkgFile(f"{bpfdir}/xdp-good/counter.bpf.o", objects.full_el),
            ],
        )
    )
    shutil.copy(good, d)
    shutil.copy(bad, d / "sub")
    shutil.copy(clash, d)
    data = good.read_bytes()
    (d / "truncated-1-1.x86_64.rpm").write_bytes(data[: len(data) // 2])
    (d / "notanrpm-1-1.x86_64.rpm").write_text("this is not an RPM\n")
    (d / "empty-1-1.x86_64.rpm").write_bytes(b"")
    return d


def _no_traceback(result):
    assert "Traceback" not in result.stderr, result.stderr


def test_text_report_lists_findings_and_input_errors(mixed_dir, bpfdir):
    result = run_cli("scan", mixed_dir)
    _no_traceback(result)
    assert result.returncode == 2
    out = result.stdout
    assert "legacy.x86_64: E: bpf-object-outside-bpfdir /usr/share/legacy/prog.o" in out
    assert "legacy.x86_64: E: bpf-object-config /usr/share/legacy/prog.o" in out
    assert "legacy.x86_64: W: bpf-object-executable /usr/share/legacy/prog.o mode 0755" in out
    assert f"xdp-good.x86_64: E: bpf-name-conflict {bpfdir}/xdp-good/counter.bpf.o" in out
    assert f"xdp-clash.x86_64: E: bpf-name-conflict {bpfdir}/xdp-good/counter.bpf.o" in out
    assert out.rstrip().endswith("3 packages checked; 4 errors, 3 warnings, 0 info; 3 inputs could not be read.")
    err = result.stderr
    assert f"rpm-bpf: error: {mixed_dir}/truncated-1-1.x86_64.rpm: " in err
    assert f"rpm-bpf: error: {mixed_dir}/notanrpm-1-1.x86_64.rpm: not an RPM package" in err
    assert f"rpm-bpf: error: {mixed_dir}/empty-1-1.x86_64.rpm: empty file" in err


def test_json_report_follows_the_schema(mixed_dir):
    result = run_cli("scan", "--format", "json", mixed_dir)
    assert result.returncode == 2
    doc = result.json()
    schema = json.loads(resources.files("rpm_bpf").joinpath("data/report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["summary"] == {
        "packages": 3,
        "errors": 4,
        "warnings": 3,
        "info": 0,
        "waived": 0,
        "existing": 0,
        "input_errors": 3,
    }
    conflict = [f for f in doc["findings"] if f["rule"] == "bpf-name-conflict"]
    assert {f["package"]["name"] for f in conflict} == {"xdp-good", "xdp-clash"}
    assert {tuple(f["related"]) for f in conflict} == {("xdp-clash-1.0-1.x86_64",), ("xdp-good-1.0-1.x86_64",)}
    assert {e["input"].rsplit("/", 1)[1] for e in doc["input_errors"]} == {
        "truncated-1-1.x86_64.rpm",
        "notanrpm-1-1.x86_64.rpm",
        "empty-1-1.x86_64.rpm",
    }


def test_junit_report(mixed_dir):
    result = run_cli("scan", "--format", "junit", mixed_dir)
    assert result.returncode == 2
    root = ET.fromstring(result.stdout)
    suite = root.find("testsuite")
    assert suite.get("tests") == "6" and suite.get("failures") == "3" and suite.get("errors") == "3"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert "bpf-object-outside-bpfdir" in cases["legacy-1.0-1.x86_64"].find("failure").text
    assert cases["xdp-good-1.0-1.x86_64"].find("failure").get("type") == "bpf-name-conflict"


def test_sarif_report(mixed_dir):
    result = run_cli("scan", "--format", "sarif", mixed_dir)
    assert result.returncode == 2
    doc = result.json()
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert "bpf-object-outside-bpfdir" in rule_ids
    for res in run["results"]:
        assert rule_ids[res["ruleIndex"]] == res["ruleId"]
        assert res["level"] in ("error", "warning", "note")
    assert {r["ruleId"] for r in run["results"]} == {
        "bpf-object-outside-bpfdir",
        "bpf-object-config",
        "bpf-object-executable",
        "bpf-object-no-btf",
        "bpf-object-no-license",
        "bpf-name-conflict",
    }
    assert run["invocations"][0]["executionSuccessful"] is False
    assert len(run["invocations"][0]["toolExecutionNotifications"]) == 3


def test_exit_codes_without_unreadable_input(rpms, objects, bpfdir, tmp_path):
    good = rpms.build(good_package(objects, bpfdir, name="exit-good"))
    warn_only = rpms.build(
        PkgSpec("exit-warn", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/w.o", objects.no_btf)])
    )
    bad = rpms.build(PkgSpec("exit-bad", files=[PkgFile("/opt/bad.o", objects.full)]))
    assert run_cli("scan", good).returncode == 0
    warned = run_cli("scan", warn_only)
    assert warned.returncode == 0 and "W: bpf-object-no-btf" in warned.stdout
    assert run_cli("scan", good, bad).returncode == 1


def test_waiver_from_policy_file(rpms, objects, tmp_path):
    bad = rpms.build(PkgSpec("exit-bad", files=[PkgFile("/opt/bad.o", objects.full)]))
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[[waiver]]\nrule = "bpf-object-outside-bpfdir"\npackage = "exit-*"\n'
        'path = "/opt/*"\nreason = "bug 7: moving to %_bpfdir"\n'
    )
    result = run_cli("scan", "--policy", policy, bad)
    assert result.returncode == 0
    assert "E: bpf-object-outside-bpfdir" not in result.stdout and "1 waived" in result.stdout
    shown = run_cli("scan", "--policy", policy, "--show-waived", bad)
    assert "[waived: bug 7: moving to %_bpfdir]" in shown.stdout
    doc = run_cli("scan", "--policy", policy, "-f", "json", bad).json()
    assert doc["findings"][0]["waived"] is True and doc["exit_code"] == 0


def test_bad_policy_and_bad_invocation(rpms, objects, bpfdir, tmp_path):
    good = rpms.build(good_package(objects, bpfdir, name="exit-good"))
    policy = tmp_path / "broken.toml"
    policy.write_text("[severity]\nbpf-object-config = 3\n")
    result = run_cli("scan", "--policy", policy, good)
    assert (
        result.returncode == 2
        and f"rpm-bpf: error: {policy}: [severity] bpf-object-config: expected a string" in result.stderr
    )
    _no_traceback(result)
    assert run_cli("scan").returncode == 2
    assert run_cli("scan", "--format", "yaml", good).returncode == 2


def test_missing_paths_broken_symlinks_and_corrupt_payload(rpms, objects, bpfdir, tmp_path):
    victim = rpms.build(PkgSpec("payload-victim", files=[PkgFile("/opt/victim.o", objects.full)]), payload="w6.xzdio")
    bad = rpms.build(PkgSpec("exit-bad", files=[PkgFile("/opt/bad.o", objects.full)]))
    data = bytearray(victim.read_bytes())
    # Damage the compressed payload but not the header: the size stays the same.
    for i in range(len(data) - 400, len(data) - 200):
        data[i] ^= 0x5A
    corrupt = tmp_path / "corrupt-payload.rpm"
    corrupt.write_bytes(bytes(data))
    (tmp_path / "dangling.rpm").symlink_to(tmp_path / "nowhere.rpm")
    result = run_cli("scan", tmp_path / "missing.rpm", tmp_path / "dangling.rpm", corrupt, bad)
    _no_traceback(result)
    assert result.returncode == 2
    assert f"{tmp_path}/missing.rpm: no such file or directory" in result.stderr
    assert f"{tmp_path}/dangling.rpm: broken symbolic link" in result.stderr
    assert f"{corrupt}: payload digest mismatch (sha256)" in result.stderr
    # What the header alone shows of the damaged package is still reported, and so is the other input.
    assert "payload-victim.x86_64: E: bpf-object-outside-bpfdir /opt/victim.o" in result.stdout
    assert "exit-bad.x86_64: E: bpf-object-outside-bpfdir /opt/bad.o" in result.stdout


def test_unreadable_rpm_as_ordinary_user(rpms, objects, bpfdir, tmp_path_factory, as_nobody):
    d = tmp_path_factory.mktemp("unreadable")
    open_to_others(d)
    good = shutil.copy(rpms.build(good_package(objects, bpfdir, name="readable")), d)
    bad = shutil.copy(rpms.build(PkgSpec("exit-bad", files=[PkgFile("/opt/bad.o", objects.full)])), d)
    secret = d / "secret-1-1.x86_64.rpm"
    shutil.copy(good, secret)
    os.chmod(secret, 0o000)
    os.chmod(bad, 0o644)
    os.chmod(good, 0o644)
    locked = d / "locked"
    locked.mkdir(mode=0o700)
    shutil.copy(good, locked)
    proc = as_nobody("scan", d)
    assert proc.returncode == 2, proc.stderr
    assert f"rpm-bpf: error: {secret}: Permission denied" in proc.stderr
    assert f"rpm-bpf: error: {locked}: cannot list directory: Permission denied" in proc.stderr
    assert "exit-bad.x86_64: E: bpf-object-outside-bpfdir /opt/bad.o" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_report_to_unwritable_output(rpms, objects, bpfdir, tmp_path):
    good = rpms.build(good_package(objects, bpfdir, name="exit-good"))
    result = run_cli("scan", "-o", tmp_path / "no" / "such" / "dir" / "r.json", "-f", "json", good)
    assert result.returncode == 2 and "cannot write report" in result.stderr
    ok = run_cli("scan", "-o", tmp_path / "r.json", "-f", "json", good)
    assert ok.returncode == 0 and json.loads((tmp_path / "r.json").read_text())["summary"]["packages"] == 1


# --- inspect -----------------------------------------------------------------


def test_inspect_text_and_json(objects):
    text = run_cli("inspect", objects.full)
    assert text.returncode == 0
    assert "little-endian ET_REL" in text.stdout and "xdp  xdp_count" in text.stdout
    assert "license: GPL" in text.stdout and "maps (1): counters" in text.stdout
    (doc,) = run_cli("inspect", "-f", "json", objects.full_eb).json()
    assert doc["endianness"] == "big" and doc["kind"] == "object"
    emb = run_cli("inspect", objects.loader)
    assert emb.returncode == 0 and "1 embedded BPF object" in emb.stdout


def _patch(data: bytes, fmt: str, offset: int, value: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, value)
    return bytes(buf)


def test_inspect_bad_inputs_are_reported_and_the_rest_still_done(objects, tmp_path):
    data = objects.full.read_bytes()
    garbage = bytearray(data)
    shoff = struct.unpack_from("<Q", garbage, 40)[0]
    garbage[shoff + 64 :] = bytes((i * 131) & 0xFF for i in range(len(garbage) - shoff - 64))
    cases = {
        "garbage.o": bytes(garbage),
        "huge.o": _patch(data, "<H", 60, 0xFFFF),
        "zero.o": b"",
        "text.o": b"plain text\n",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "link.o").symlink_to(objects.full)
    os.mkfifo(tmp_path / "fifo.o")  # must not block
    args = [tmp_path / n for n in cases] + [
        tmp_path / "link.o",
        tmp_path / "absent.o",
        tmp_path / "fifo.o",
        "/dev/zero",
        objects.full,
    ]
    result = run_cli("inspect", *args)
    _no_traceback(result)
    assert result.returncode == 2
    err = result.stderr
    assert f"{tmp_path}/garbage.o: " in err
    assert f"{tmp_path}/huge.o: " in err
    assert f"{tmp_path}/zero.o: empty file" in err
    assert f"{tmp_path}/text.o: not an ELF file" in err
    assert f"{tmp_path}/link.o: is a symbolic link" in err
    assert f"{tmp_path}/absent.o: No such file or directory" in err
    assert f"{tmp_path}/fifo.o: is a FIFO, not a regular file" in err
    assert "/dev/zero: is a character device, not a regular file" in err
    assert f"{objects.full}: BPF object" in result.stdout  # the good one is still described


def test_rules_and_explain():
    listing = run_cli("rules")
    assert listing.returncode == 0 and "E  bpf-object-outside-bpfdir" in listing.stdout
    explained = run_cli("explain", "bpf-object-config")
    assert explained.returncode == 0 and "%config" in explained.stdout
    unknown = run_cli("explain", "no-such-rule")
    assert unknown.returncode == 2 and "unknown rule id 'no-such-rule'" in unknown.stderr


def test_help_lists_every_command_and_each_has_its_own_help():
    """Sub-parsers are built lazily (only the command run): every one must still be reachable."""
    from rpm_bpf.cli.main import COMMANDS

    top = run_cli("--help")
    assert top.returncode == 0
    for name, _, _ in COMMANDS:
        assert name in top.stdout
        own = run_cli(name, "--help")
        assert own.returncode == 0, own.stderr
        assert own.stdout.startswith(f"usage: rpm-bpf {name}"), own.stdout
    wrong = run_cli("no-such-command")
    assert wrong.returncode == 2 and "invalid choice: 'no-such-command'" in wrong.stderr
    missing = run_cli("verify", "--no-such-option")
    assert missing.returncode == 2 and "unrecognized arguments: --no-such-option" in missing.stderr


def test_demo_builds_and_scans(tmp_path):
    result = run_cli("demo", "--dir", tmp_path / "demo")
    _no_traceback(result)
    assert result.returncode == 0
    assert "legacy-tracer.x86_64: E: bpf-object-outside-bpfdir /usr/share/legacy-tracer/xdp_drop.o" in result.stdout
    assert "xdp-loader.x86_64: I: bpf-object-embedded /usr/bin/xdp-loader" in result.stdout
    assert "bpf-name-conflict" in result.stdout
    assert "truncated-1.0-1.x86_64.rpm: truncated RPM" in result.stderr
    assert result.stdout.rstrip().endswith(
        "4 packages checked; 5 errors, 3 warnings, 1 info; 1 inputs could not be read."
    )


def test_progress_bar_only_on_a_terminal(rpms, objects, bpfdir, tmp_path):
    if shutil.which("script") is None:
        pytest.skip("script (util-linux) is not installed: no pseudo-terminal to test with")
    many = tmp_path / "many"
    many.mkdir()
    good = rpms.build(good_package(objects, bpfdir, name="progress"))
    for i in range(130):
        (many / f"copy{i:03d}.rpm").symlink_to(good)
    cmd = f"{REPO}/.venv/bin/python -m rpm_bpf scan -j 1 -o {tmp_path}/report.txt {many}"
    tty = subprocess.run(
        ["script", "-q", "-e", "-c", cmd, str(tmp_path / "typescript")], capture_output=True, text=True, cwd=REPO
    )
    assert tty.returncode == 0, tty.stdout + tty.stderr
    screen = (tmp_path / "typescript").read_text(errors="replace")
    assert "] 64/130 packages" in screen and "] 130/130 packages" in screen
    piped = run_cli("scan", "-j", "1", many)
    assert piped.returncode == 0 and "packages\r" not in piped.stderr and "/130" not in piped.stderr


def test_policy_fifo_is_one_error_not_a_hang(tmp_path):
    fifo = tmp_path / "policy.toml"
    os.mkfifo(fifo)
    result = run_cli("rules", "--help")  # the CLI itself works
    assert result.returncode == 0
    for command in (["scan", str(tmp_path)], ["verify", "--root", str(tmp_path)]):
        result = run_cli(*command, "--no-system-policy", "--policy", fifo)
        _no_traceback(result)
        assert result.returncode == 2
        assert result.stderr == f"rpm-bpf: error: {fifo}: cannot read policy file: is a FIFO, not a regular file\n"
