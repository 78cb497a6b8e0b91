"""`rpm-bpf transaction-check`: the one transaction check every package manager host calls (JSON in and out).

A real installroot (dnf, createrepo_c, rpmbuild-built packages) and the
repository's RPM files as the incoming packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from tests.support.dnf import GOOD_OBJ, Dnf
from tests.support.paths import REPO

pytestmark = pytest.mark.integration

RESPONSE = {
    "type": "object",
    "required": ["schema", "verdict", "mode", "message", "notes", "findings", "bpf_packages", "input_errors"],
    "properties": {
        "schema": {"const": "rpm-bpf/transaction-check/v1"},
        "verdict": {"enum": ["accept", "warn", "refuse"]},
        "findings": {"type": "array"},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}


@pytest.fixture
def installed(dnf_repo, tmp_path) -> Dnf:
    dnf = Dnf(dnf_repo, tmp_path / "root", tmp_path / "plugconf")
    assert dnf("install", "xdp-good-1.0").returncode == 0
    return dnf


def _check(root, request, *args: str) -> subprocess.CompletedProcess:
    text = request if isinstance(request, str) else json.dumps(request)
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "transaction-check", "--root", str(root), "--no-system-policy", *args],
        input=text,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _rpm(repo, name):
    (path,) = list(repo.glob(f"{name}-*.rpm"))
    return str(path)


def test_clash_with_an_installed_package_is_refused(installed, dnf_repo):
    request = {
        "incoming": [
            {"path": _rpm(dnf_repo, "xdp-clash-same"), "nevra": "xdp-clash-same-1.0-1.x86_64", "action": "install"}
        ],
        "leaving": [],
    }
    proc = _check(installed.root, request, "--json")
    assert proc.returncode == 1
    answer = json.loads(proc.stdout)
    jsonschema.validate(answer, RESPONSE)
    assert answer["verdict"] == "refuse" and answer["bpf_packages"] == ["xdp-clash-same"]
    (finding,) = [f for f in answer["findings"] if f["rule"] == "bpf-name-conflict"]
    assert finding["path"] == GOOD_OBJ and finding["related"] == ["xdp-good-1.0-1.x86_64"]
    assert answer["message"].startswith("rpm-bpf: transaction refused")
    assert f"xdp-clash-same.x86_64: E: bpf-name-conflict {GOOD_OBJ}" in answer["message"]
    warned = _check(installed.root, request, "--json", "--mode", "warn")
    assert warned.returncode == 0 and json.loads(warned.stdout)["verdict"] == "warn"
    text = _check(installed.root, request)
    assert text.returncode == 1 and "\nrpm-bpf: transaction refused" in text.stdout


def test_bpf_packages_list_for_hosts_that_read_no_json(installed, dnf_repo, tmp_path):
    """What a host verifies after the transaction: only the incoming packages with BPF content."""
    listing = tmp_path / "names"
    request = {
        "incoming": [
            {"path": _rpm(dnf_repo, "xdp-good-2.0"), "nevra": "xdp-good-2.0-1.x86_64"},
            {"path": _rpm(dnf_repo, "bpf-filesystem"), "nevra": "bpf-filesystem-1.0-1.x86_64"},
        ],
        "leaving": [{"name": "xdp-good", "evr": "1.0-1", "arch": "x86_64"}],
    }
    proc = _check(installed.root, request, "--bpf-packages", str(listing))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert listing.read_text() == "xdp-good\n"


def test_the_package_it_replaces_does_not_count(installed, dnf_repo):
    request = {
        "incoming": [{"path": _rpm(dnf_repo, "xdp-good-2.0"), "nevra": "xdp-good-2.0-1.x86_64", "action": "upgrade"}],
        "leaving": [{"name": "xdp-good", "evr": "1.0-1", "arch": "x86_64"}],
    }
    proc = _check(installed.root, request, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "accept"


def test_nothing_bpf_related_reads_no_policy(installed, dnf_repo, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[severity\n")
    request = {"incoming": [{"path": _rpm(dnf_repo, "bpf-filesystem"), "nevra": "bpf-filesystem-1.0-1.x86_64"}]}
    proc = _check(installed.root, request, "--json", "--policy", str(broken))
    assert proc.returncode == 0 and json.loads(proc.stdout)["findings"] == []


def test_unreadable_incoming_package_is_a_refusing_finding(installed, tmp_path):
    bad = tmp_path / "bad.rpm"
    bad.write_bytes(b"\xed\xab\xee\xdb" + bytes(200))
    proc = _check(installed.root, {"incoming": [{"path": str(bad), "nevra": "bad-1-1.x86_64"}]}, "--json")
    assert proc.returncode == 1
    (finding,) = json.loads(proc.stdout)["findings"]
    assert finding["rule"] == "bpf-package-unreadable" and finding["path"] == str(bad)
    assert finding["detail"].startswith("bad-1-1.x86_64: ")


@pytest.mark.parametrize(
    "request_text,message",
    [
        ("{", "not JSON"),
        ("[]", "must be a JSON object"),
        ('{"incoming": [{"path": 3, "nevra": "x"}]}', "incoming[0]: 'path' must be a non-empty string"),
        ('{"leaving": [{"name": "x", "evr": "1-1"}]}', "leaving[0]: 'arch' must be a non-empty string"),
        ('{"schema": "v0"}', "schema 'v0' is not 'rpm-bpf/transaction-request/v1'"),
    ],
)
def test_bad_requests_are_one_message_exit_2(installed, request_text, message):
    proc = _check(installed.root, request_text)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("rpm-bpf: error: transaction request (standard input): ") and message in proc.stderr


def test_relative_root_is_refused(installed, dnf_repo):
    proc = _check("relative/root", {"incoming": []})
    assert proc.returncode == 2 and "the root must be an absolute path" in proc.stderr


def test_root_without_a_database_is_refused_and_left_alone(dnf_repo, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    request = {"incoming": [{"path": _rpm(dnf_repo, "xdp-clash-same"), "nevra": "xdp-clash-same-1.0-1.x86_64"}]}
    proc = _check(empty, request, "--json")
    assert proc.returncode == 2 and f"no rpm database in {empty}" in proc.stderr
    assert list(empty.iterdir()) == []  # librpm would have created one


def test_leaving_evr_with_epoch_zero_written_out(installed, dnf_repo):
    request = {
        "incoming": [{"path": _rpm(dnf_repo, "xdp-good-2.0"), "nevra": "xdp-good-2.0-1.x86_64"}],
        "leaving": [{"name": "xdp-good", "evr": "0:1.0-1", "arch": "x86_64"}],
    }
    proc = _check(installed.root, request, "--json")
    assert proc.returncode == 0, proc.stdout


def test_candidates_stage_refuses_clashing_provides_before_download(installed):
    """What a host sends right after depsolving: names and provides from repository metadata, no file."""
    request = {
        "candidates": [
            {
                "name": "xdp-clash-same",
                "epoch": None,
                "version": "1.0",
                "release": "1",
                "arch": "x86_64",
                "provides": ["bpf(xdp-good/counter.bpf.o)", "xdp-clash-same"],
            }
        ]
    }
    proc = _check(installed.root, request)
    assert proc.returncode == 1
    assert (
        "xdp-clash-same.x86_64: E: bpf-name-conflict bpf(xdp-good/counter.bpf.o) is also provided by "
        "xdp-good-1.0-1.x86_64 (repository metadata, before download)"
    ) in proc.stdout
    leaving = dict(request, leaving=[{"name": "xdp-good", "evr": "1.0-1", "arch": "x86_64"}])
    assert _check(installed.root, leaving).returncode == 0
    bad = {"candidates": [{"name": "x", "epoch": "1", "version": "1", "release": "1", "arch": "x86_64"}]}
    proc = _check(installed.root, bad)
    assert proc.returncode == 2 and "candidates[0]: 'epoch' must be a non-negative integer or null" in proc.stderr


def test_broken_policy_file_is_the_hosts_error_not_the_packages(installed, dnf_repo, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[severity]\nbpf-object-no-btf = 3\n")
    request = {"incoming": [{"path": _rpm(dnf_repo, "xdp-good-2.0"), "nevra": "xdp-good-2.0-1.x86_64"}]}
    proc = _check(installed.root, request, "--json", "--policy", str(broken))
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"rpm-bpf: error: {broken}: [severity] bpf-object-no-btf: expected a string" in proc.stderr


# --- `rpm-bpf serve`: the same commands from one process (the libdnf5 plugin's way) ---


class Server:
    """A real `rpm-bpf serve` process spoken to with its line protocol."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rpm_bpf", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )

    def send(self, line: bytes) -> tuple[int, bytes]:
        self.proc.stdin.write(line)
        self.proc.stdin.flush()
        status, length = self.proc.stdout.readline().split()
        return int(status), self.proc.stdout.read(int(length))

    def call(self, argv: list[str], data: str = "") -> tuple[int, bytes]:
        return self.send(json.dumps({"argv": argv, "input": data}).encode() + b"\n")

    def close(self) -> str:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0
        return self.proc.stderr.read().decode()


def test_serve_answers_as_the_one_shot_command_does(installed, dnf_repo):
    request = json.dumps(
        {
            "incoming": [
                {"path": _rpm(dnf_repo, "xdp-clash-same"), "nevra": "xdp-clash-same-1.0-1.x86_64", "action": "install"}
            ],
            "leaving": [],
        }
    )
    argv = ["transaction-check", "--root", str(installed.root), "--no-system-policy", "--json"]
    once = _check(installed.root, request, "--json")
    server = Server()
    try:
        for _ in range(2):  # the second answer comes from the same process, warm
            status, out = server.call(argv, request)
            assert status == once.returncode == 1
            assert json.loads(out) == json.loads(once.stdout)
        verify = ["verify", "--root", str(installed.root), "--no-system-policy", "--format", "json", "--", "xdp-good"]
        alone = subprocess.run(
            [sys.executable, "-m", "rpm_bpf", *verify],
            capture_output=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            timeout=120,
        )
        status, out = server.call(verify)
        assert status == alone.returncode == 0
        assert json.loads(out) == json.loads(alone.stdout)
        assert json.loads(out)["summary"]["packages"] == 1
    finally:
        stderr = server.close()
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "line, message",
    [
        (b"not json\n", "bad request"),
        (b'{"argv": "transaction-check"}\n', "bad request"),
        (b'{"argv": ["serve"]}\n', "'serve' is not served"),
        (b'{"argv": ["transaction-check", "--no-such-option"]}\n', "unrecognized arguments"),
        (b'{"argv": []}\n', "is not served"),
        (b"[]\n", "bad request"),
        (b'{"argv": ["inspect", "a\\u0000b"]}\n', "NUL byte"),
    ],
)
def test_serve_bad_requests_are_exit_2_and_the_server_goes_on(installed, line, message):
    server = Server()
    try:
        assert server.send(line) == (2, b"")
        status, out = server.call(
            ["transaction-check", "--root", str(installed.root), "--no-system-policy"], '{"incoming": []}'
        )
        assert (status, out) == (0, b"")
    finally:
        stderr = server.close()
    assert message in stderr and "Traceback" not in stderr


def test_serve_passes_non_utf8_paths_through(installed, tmp_path):
    # A file name that is not UTF-8 reaches the check as the same bytes (a missing package: refused, named).
    request = b'{"incoming": [{"path": "/nonexistent/\xff.rpm", "nevra": "x-1-1.x86_64"}]}'
    line = (
        b'{"argv": ["transaction-check", "--root", "'
        + str(installed.root).encode()
        + b'", "--no-system-policy"], "input": '
        + json.dumps(request.decode("latin-1")).encode("latin-1").replace(b"\\u00ff", b"\xff")
        + b"}\n"
    )
    server = Server()
    try:
        status, out = server.send(line)
    finally:
        server.close()
    assert status == 1 and b"bpf-package-unreadable /nonexistent/\\xff.rpm" in out
