"""`rpm-bpf admission` on the real kernel (BPF LSM active): only packaged, verified loaders may load BPF.

A root with Debian's libbpf-tools (the real-world corpus, repacked) and
planted packages, installed with rpm; the policy object compiled by clang
from lsm/admission.bpf.c at test time. Every test runs the admission process
under a context manager that kills it (SIGKILL) and waits until its program
is gone, even when the test fails: the link lives in that process only, so
the rest of the suite is never locked out.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpm_bpf.samples import build as samples
from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.support import realworld
from tests.support.builders import holding_loader
from tests.support.dnf import Dnf, require_dnf
from tests.support.kernel import wait_freed, wait_held
from tests.support.paths import REPO

pytestmark = pytest.mark.integration
ENV = dict(os.environ, PYTHONPATH=str(REPO))
PROGRAM = "admission_prog_load"
# What the safety rails want admitted on this host: the interpreter running rpm-bpf (and dnf), and rpm.
CRITICAL = [os.path.realpath(sys.executable), "/usr/bin/rpm"]


def _lsm_active() -> bool:
    if not os.path.ismount("/sys/kernel/security"):
        subprocess.run(["mount", "-t", "securityfs", "securityfs", "/sys/kernel/security"], check=False)
    try:
        return "bpf" in Path("/sys/kernel/security/lsm").read_text().split(",")
    except OSError:
        return False


@pytest.fixture(scope="module", autouse=True)
def _requirements() -> None:
    if os.geteuid() != 0 or shutil.which("bpftool") is None:
        pytest.skip("the BPF LSM needs root (and bpftool to check what is loaded)")


_MINIMAL_LSM_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
SEC("lsm/bpf_prog_load") int BPF_PROG(probe, void *prog, void *attr, void *token, _Bool kernel, int ret)
{ return ret; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def lsm(tmp_path_factory) -> None:
    """Skips where the kernel cannot run a BPF LSM program at all, saying why (tried, not guessed)."""
    if not _lsm_active():
        pytest.skip("the BPF LSM is not active on this kernel (/sys/kernel/security/lsm does not list bpf)")
    from rpm_bpf.sources.libbpf import BpfObject, LibbpfError

    probe = samples.compile_bpf(_MINIMAL_LSM_C, tmp_path_factory.mktemp("lsm-probe") / "probe.bpf.o")
    try:
        BpfObject(str(probe)).close()
    except LibbpfError as exc:
        pytest.skip(
            f"this kernel lists the BPF LSM but refuses to load even a minimal lsm/bpf_prog_load program "
            f"({exc.strerror}): it loads no program attached through a BPF trampoline (LSM, fentry)"
        )


@pytest.fixture(scope="module")
def lsm_object(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("admission-object")
    return samples.compile_bpf((REPO / "lsm" / "admission.bpf.c").read_text(), work / "admission.bpf.o")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    rpms = realworld.rpms()
    root = tmp_path_factory.mktemp("admission") / "root"
    root.mkdir()
    (tools,) = rpms.glob("deb-libbpf-tools-*.rpm")
    subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", str(tools)], check=True, capture_output=True)
    return root


def _loaded_admission() -> set[int]:
    shown = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, check=True).stdout)
    return {p["id"] for p in shown if p.get("name", "").startswith(PROGRAM[:15])}


@contextlib.contextmanager
def admission(root: Path, obj: Path, work: Path, *args: str) -> Iterator[tuple[subprocess.Popen, Path]]:
    """The admission process, ready; killed (SIGKILL) and its program gone afterwards, whatever happened."""
    events = work / f"events-{uuid.uuid4().hex[:6]}.jsonl"
    stderr = open(work / f"stderr-{uuid.uuid4().hex[:6]}.txt", "w+")  # noqa: SIM115
    before = _loaded_admission()
    cmd = [sys.executable, "-m", "rpm_bpf", "admission", "--root", str(root), "--object", str(obj)]
    cmd += ["--pid-file", str(work / "admission.pid"), "-f", "json", "-o", str(events), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            stderr.seek(0)
            text = stderr.read()
            if ": ready" in text or " admitted from " in text:
                break
            assert proc.poll() is None, text
            time.sleep(0.1)
        else:
            pytest.fail("rpm-bpf admission did not get ready in 120 s")
        yield proc, events
    finally:
        proc.kill()
        proc.wait()
        stderr.close()
        assert not wait_freed(_loaded_admission() - before), "the admission program outlived its process"


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_event(path: Path, exe: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in _events(path):
            if event["executable"] == exe:
                return event
        time.sleep(0.1)
    pytest.fail(f"no event for {exe}: {_events(path)}")


def _bpftool_load(work: Path, obj: Path) -> subprocess.CompletedProcess:
    pin = Path("/sys/fs/bpf") / f"rpm-bpf-admission-{uuid.uuid4().hex[:8]}"
    try:
        return subprocess.run(["bpftool", "prog", "load", str(obj), str(pin)], capture_output=True, text=True)
    finally:
        pin.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def small_object(tmp_path_factory) -> Path:
    return samples.compile_bpf(samples.XDP_COUNTER_C, tmp_path_factory.mktemp("small") / "small.bpf.o")


def _run_tool(exe: Path) -> subprocess.Popen:
    return subprocess.Popen([str(exe), "600", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_enforce_admits_the_packaged_tool_and_refuses_a_copy(root, lsm, lsm_object, small_object, tmp_path):
    copy = tmp_path / "softirqs"
    shutil.copy2(root / "usr/sbin/softirqs", copy)  # byte-identical, but no package's file
    allow = [a for exe in CRITICAL for a in ("--allow", exe)]
    tools: list[subprocess.Popen] = []
    try:
        with admission(root, lsm_object, tmp_path, "--enforce", *allow) as (_, events):
            packaged = _run_tool(root / "usr/sbin/softirqs")
            tools.append(packaged)
            assert wait_held([packaged])  # loaded under the policy
            intruder = _run_tool(copy)
            tools.append(intruder)
            assert intruder.wait(timeout=60) != 0  # its loads refused: it gives up
            event = _wait_event(events, str(copy))
            assert event["verdict"] == "refused" and event["mode"] == "enforce"
            assert event["program_type"] == "tracing" and event["pid"] == intruder.pid
            assert event["inode"] == copy.stat().st_ino
            refused = _bpftool_load(tmp_path, small_object)  # bpftool: no package of this root either
            assert refused.returncode != 0 and "Operation not permitted" in refused.stderr, refused.stderr
        # the process is gone: so is the policy
        assert _bpftool_load(tmp_path, small_object).returncode == 0
    finally:
        for tool in tools:
            tool.kill()
            tool.wait()


def test_audit_lets_the_copy_load_and_reports_it(root, lsm, lsm_object, tmp_path):
    copy = tmp_path / "cpudist"
    shutil.copy2(root / "usr/sbin/cpudist", copy)
    tool = None
    try:
        with admission(root, lsm_object, tmp_path, "--audit") as (_, events):
            tool = _run_tool(copy)
            held = wait_held([tool])
            assert held  # audit: loaded
            event = _wait_event(events, str(copy))
            assert event["verdict"] == "admitted (audit)" and event["mode"] == "audit"
            assert event["comm"] == "cpudist" and event["program_type"] == "tracing"
    finally:
        if tool is not None:
            tool.kill()
            tool.wait()


def test_sigkill_takes_the_policy_away(root, lsm, lsm_object, small_object, tmp_path):
    allow = [a for exe in CRITICAL for a in ("--allow", exe)]
    with admission(root, lsm_object, tmp_path, "--enforce", *allow) as (proc, _):
        assert _bpftool_load(tmp_path, small_object).returncode != 0
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while _bpftool_load(tmp_path, small_object).returncode != 0:
            assert time.monotonic() < deadline, "loads still refused 10 s after the admission process died"
            time.sleep(0.2)


def test_sigterm_stops_cleanly(root, lsm, lsm_object, tmp_path):
    with admission(root, lsm_object, tmp_path, "--audit") as (proc, _):
        pid_file = tmp_path / "admission.pid"
        assert pid_file.read_text().strip() == str(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not pid_file.exists()


def test_modified_executable_is_not_on_the_list(root, tmp_path):
    tool = root / "usr/sbin/biolatency"
    data = tool.read_bytes()
    try:
        tool.write_bytes(data + b"\0")  # changed after installation
        proc = subprocess.run(
            [sys.executable, "-m", "rpm_bpf", "admission", "--root", str(root), "--list", "-f", "json"],
            capture_output=True,
            text=True,
            env=ENV,
        )
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        paths = {e["path"] for e in doc["executables"]}
        assert "/usr/sbin/softirqs" in paths and "/usr/sbin/biolatency" not in paths
        assert len(paths) >= 50  # every other tool
        (excluded,) = [x for x in doc["excluded"] if x["what"].endswith("/usr/sbin/biolatency")]
        assert "changed since installation" in excluded["why"]
        assert "not admitted: deb-libbpf-tools-1.0-1.x86_64 /usr/sbin/biolatency" in proc.stderr
    finally:
        tool.write_bytes(data)


def test_enforce_refuses_to_lock_out_this_process(root, lsm_object, tmp_path):
    """The safety rail, before anything is loaded (so it holds on any kernel)."""
    before = _loaded_admission()
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "admission", "--root", str(root), "--object", str(lsm_object),
         "--pid-file", "", "--enforce"],
        capture_output=True, text=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "refusing --enforce" in proc.stderr and "this process (rpm-bpf admission)" in proc.stderr
    assert os.path.realpath(sys.executable) in proc.stderr and "Traceback" not in proc.stderr
    assert _loaded_admission() == before  # refused before anything was loaded


def test_without_privilege_exit_2(as_nobody, root, lsm_object):
    """Checked before anything is read or loaded: one clear message, exit 2."""
    result = as_nobody("admission", "--audit", "--root", str(root), "--object", str(lsm_object), "--pid-file", "")
    assert result.returncode == 2, result.stderr
    assert "needs root" in result.stderr and "Traceback" not in result.stderr


def test_refresh_after_a_dnf_transaction_admits_the_new_loader(rpms, objects, lsm, lsm_object, tmp_path):
    """A loader installed by dnf (this tree's plugin pokes the running admission): admitted without restart."""
    require_dnf()
    loader = holding_loader(objects.full, tmp_path / "skel" / "adm-loader")
    built = rpms.build(PkgSpec("adm-loader", files=[PkgFile("/usr/bin/adm-loader", loader, mode=0o755)]))
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(built, repo)
    subprocess.run(["createrepo_c", "-q", str(repo)], check=True)
    droot = tmp_path / "droot"
    droot.mkdir()
    dnf = Dnf(repo, droot, tmp_path / "plugins")
    pid_file = tmp_path / "admission.pid"
    conf = dnf.confdir / "bpf.conf"
    conf.write_text(conf.read_text() + f"admission_pid_file = {pid_file}\n")
    subprocess.run(["rpm", "--root", str(droot), "--initdb"], check=True)
    running = None
    try:
        with admission(droot, lsm_object, tmp_path, "--audit") as (_, events):
            result = dnf("install", "adm-loader", "--nogpgcheck")
            assert result.returncode == 0, result.stdout + result.stderr
            deadline = time.monotonic() + 30
            stderr_file = next(tmp_path.glob("stderr-*.txt"))
            while "(+" not in stderr_file.read_text():
                assert time.monotonic() < deadline, stderr_file.read_text()
                time.sleep(0.2)
            assert "rpm-bpf admission: 1 executables admitted (+1 -0)" in stderr_file.read_text()
            running = subprocess.Popen([str(droot / "usr/bin/adm-loader")], stdout=subprocess.PIPE, text=True)
            assert running.stdout.readline().strip() == "loaded"
            time.sleep(0.5)
            assert not [e for e in _events(events) if e["executable"] == str(droot / "usr/bin/adm-loader")]
    finally:
        if running is not None:
            running.kill()
            running.wait()


def test_kernel_refusing_the_lsm_program_is_one_clear_error(root, lsm_object, tmp_path):
    """Where this kernel refuses BPF LSM programs (as this project's CI kernel does), admission says so and
    exits 2, leaving nothing loaded; where it accepts them, the same command gets ready (and is stopped)."""
    cmd = [sys.executable, "-m", "rpm_bpf", "admission", "--audit", "--root", str(root), "--object", str(lsm_object)]
    proc = subprocess.Popen([*cmd, "--pid-file", ""], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        out = ""
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and " admitted from " not in out:
            time.sleep(0.2)
            if proc.poll() is not None:
                break
        if proc.poll() is None:  # it got ready: this kernel runs BPF LSM programs
            proc.terminate()
            assert proc.wait(timeout=30) == 0
            return
        out = proc.stderr.read()
        assert proc.returncode == 2, out
        assert "the kernel refused the BPF LSM program" in out and "Traceback" not in out, out
        assert _loaded_admission() == set()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_refresh_with_nothing_running_never_blocks_or_signals(tmp_path):
    """--refresh reads the pid file bounded (a FIFO there never blocks it) and signals only an admission
    process: a pid file naming another process (this test's own) leaves it alone."""
    fifo = tmp_path / "fifo.pid"
    os.mkfifo(fifo)
    other = tmp_path / "other.pid"
    sleeper = subprocess.Popen(["sleep", "60"])
    other.write_text(f"{sleeper.pid}\n")
    try:
        for pid_file in (fifo, other, tmp_path / "missing.pid"):
            proc = subprocess.run(
                [sys.executable, "-m", "rpm_bpf", "admission", "--refresh", "--pid-file", str(pid_file)],
                capture_output=True, text=True, env=ENV, timeout=30,
            )  # fmt: skip
            assert proc.returncode == 1 and "no rpm-bpf admission is running" in proc.stderr, proc.stderr
        assert sleeper.poll() is None  # not signalled (SIGHUP would have ended it)
    finally:
        sleeper.kill()
        sleeper.wait()
