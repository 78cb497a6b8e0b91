"""Hostile and malformed RPMs against the scanner: each defect of the security issue, reproduced.

Every package is written by rpmbuild, then changed as an attacker would
(tests/support/craft.py: rpm's own header API, digests recomputed so the package
passes ``rpm -K --nosignature``) or damaged byte by byte. Each test asserts
the outcome the issue asks for: one clear message naming the input, exit 2
for it, every other input still reported, no traceback, no hang, nothing run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rpm

from rpm_bpf.bpf import elf
from rpm_bpf.samples.build import PkgFile, PkgSpec
from rpm_bpf.sources import bpfdirs
from tests.support import craft
from tests.support.builders import NO_STRIP, binary_with_truncated_bpf_header, good_package
from tests.support.cli import run_cli
from tests.support.paths import REPO
from tests.support.paths import remove_deep as _remove_deep

BPFDIR = bpfdirs.for_arch(bpfdirs.host_arch()).arch_dir

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def victim(rpms, objects, bpfdir) -> Path:
    """A correct package with an object in the BPF directory: what the crafted ones start from."""
    return rpms.build(good_package(objects, bpfdir, name="victim"))


@pytest.fixture(scope="module")
def bystander(rpms, objects) -> Path:
    """A package with a real finding, scanned beside each hostile one: it must still be reported."""
    return rpms.build(PkgSpec("bystander", files=[PkgFile("/opt/bystander/prog.o", objects.full)]))


def _scan(*paths, extra=()):
    result = run_cli("scan", "--no-system-policy", *extra, *paths)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _assert_other_input_reported(result):
    assert "bystander.x86_64: E: bpf-object-outside-bpfdir /opt/bystander/prog.o" in result.stdout


# --- 1. header strings are never interpreted ---------------------------------


def test_arch_macro_is_not_expanded(victim, bystander, tmp_path):
    marker = tmp_path / "pwned"
    crafted = craft.edit_header(
        victim, tmp_path / "arch.rpm", lambda h: craft.set_tag(h, rpm.RPMTAG_ARCH, f"%(touch {marker})")
    )
    result = _scan(crafted, bystander)
    assert not marker.exists(), "the ARCH tag ran a shell command"
    assert result.returncode == 2
    assert f"rpm-bpf: error: {crafted}: architecture '%(touch {marker})' is not an architecture name" in result.stderr
    _assert_other_input_reported(result)


def test_foreign_arch_names_never_reach_rpm_unless_known(tmp_path):
    marker = tmp_path / "pwned"
    for arch in (f"%(touch {marker})", "--eval=%(id)", "x86_64 --define=a b", "%{?x}x86_64"):
        assert bpfdirs.for_arch(arch) == bpfdirs.for_arch(bpfdirs.host_arch())
    assert not marker.exists()
    assert bpfdirs.for_arch("i686").arch_dir == "/usr/lib/bpf"  # a known one is still asked of rpm


# --- 2. the embedded-object search on a truncated trailing ELF header --------


@pytest.fixture(scope="module")
def truncated_tail_package(rpms, tmp_path_factory) -> Path:
    binary = binary_with_truncated_bpf_header(tmp_path_factory.mktemp("tail"))
    return rpms.build(
        PkgSpec(
            "tail-tool",
            requires=["libbpf.so.1"],
            autodeps=False,
            files=[PkgFile("/usr/bin/tail-tool", binary, mode=0o755)],
        ),
        defines=NO_STRIP,
    )


def test_truncated_embedded_header_is_no_crash(truncated_tail_package, bystander, tmp_path):
    extracted = subprocess.run(
        f"rpm2cpio {truncated_tail_package} | cpio -i --to-stdout ./usr/bin/tail-tool",
        shell=True,
        capture_output=True,
        check=True,
    ).stdout
    assert extracted.endswith(elf.ELF_MAGIC + bytes([2, 1, 1, 0]) + bytes(8) + b"\x01\x00\xf7\x00\x01\x00\x00\x00")
    result = _scan(truncated_tail_package, bystander)
    assert result.returncode == 1, result.stderr  # the bystander's error; nothing unreadable
    assert "internal error" not in result.stderr and result.stderr == ""
    assert "2 packages checked" in result.stdout
    _assert_other_input_reported(result)


# --- 6-8. malformed headers -------------------------------------------------


def _damaged(victim: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (crafted file, the reason the scan must give)."""
    n_files = len(craft.Parts.of(victim).header()[rpm.RPMTAG_BASENAMES])
    return {
        "huge-index-count": (
            craft.patch_header_bytes(victim, tmp_path / "count.rpm", 8, b"\xff\xff\xff\xff"),
            "corrupt RPM: main header announces 4294967295 entries",
        ),
        "flipped-byte": (
            craft.patch_header_bytes(victim, tmp_path / "flip.rpm", 200, b"\x5a"),
            "header digest mismatch (sha256)",
        ),
        "dirindex-out-of-range": (
            craft.edit_header(
                victim, tmp_path / "dirindex.rpm", lambda h: craft.set_tag(h, rpm.RPMTAG_DIRINDEXES, [99] * n_files)
            ),
            "a DIRINDEXES entry is out of range",
        ),
        "short-filemodes": (
            craft.edit_header(
                victim, tmp_path / "modes.rpm", lambda h: craft.set_tag(h, rpm.RPMTAG_FILEMODES, [0o100644])
            ),
            f"1 FILEMODES entries for {n_files} files",
        ),
        # librpm 4.18 computes FILENAMES/FILECLASS from these trusting their type: SIGSEGV before the check.
        "dirnames-wrong-type": (
            craft.retype_tag(victim, tmp_path / "dirtype.rpm", rpm.RPMTAG_DIRNAMES, 9),
            "tag 1118 has type 9, rpm writes it as type 8",
        ),
        "classdict-wrong-type": (
            craft.retype_tag(victim, tmp_path / "classtype.rpm", rpm.RPMTAG_CLASSDICT, 9),
            "tag 1142 has type 9, rpm writes it as type 8",
        ),
        "no-header-digest": (craft.strip_digests(victim, tmp_path / "nodigest.rpm"), "has no header digest"),
        # rpm installs the object where the ".." lead, outside the BPF directory every prefix test sees.
        "dotdot-dirname": (
            craft.edit_header(
                victim,
                tmp_path / "dotdot.rpm",
                lambda h: craft.set_tag(
                    h,
                    rpm.RPMTAG_DIRNAMES,
                    [
                        d.replace(f"{BPFDIR}/", f"{BPFDIR}/../../../usr/share/") if d != f"{BPFDIR}/" else d
                        for d in h[rpm.RPMTAG_DIRNAMES]
                    ],
                ),
            ),
            "is not a normalised absolute path",
        ),
        # rpm decides "source" by the missing SOURCERPM alone and installs this as a binary package.
        "sourcepackage-flag": (
            craft.edit_header(
                victim, tmp_path / "srcflag.rpm", lambda h: craft.set_tag(h, rpm.RPMTAG_SOURCEPACKAGE, 1)
            ),
            "SOURCEPACKAGE set on a package that names its SOURCERPM",
        ),
        "signature-size-as-string": (
            craft.retype_sig_tag(victim, tmp_path / "sigsize.rpm", 1000, 6),
            "corrupt RPM signature header (tag 1000 has type 6",
        ),
    }


@pytest.fixture(scope="module")
def damaged(victim, tmp_path_factory):
    return _damaged(victim, tmp_path_factory.mktemp("damaged"))


CASES = [
    "huge-index-count",
    "flipped-byte",
    "dirindex-out-of-range",
    "short-filemodes",
    "dirnames-wrong-type",
    "classdict-wrong-type",
    "no-header-digest",
    "dotdot-dirname",
    "sourcepackage-flag",
    "signature-size-as-string",
]


@pytest.mark.parametrize("case", CASES)
def test_malformed_header_is_one_unreadable_input(damaged, bystander, case):
    crafted, reason = damaged[case]
    result = _scan(crafted, bystander)
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = [line_ for line_ in result.stderr.splitlines() if str(crafted) in line_]
    assert line.startswith(f"rpm-bpf: error: {crafted}: ") and reason in line, line
    assert "1 packages checked" in result.stdout and "1 inputs could not be read" in result.stdout
    _assert_other_input_reported(result)


def test_type_confused_headers_pass_rpms_own_digest_checks(damaged):
    """What makes librpm crash is not caught by its digests (they were recomputed): the refusal is ours."""
    for case in ("dirnames-wrong-type", "classdict-wrong-type"):
        crafted, _ = damaged[case]
        proc = subprocess.run(["rpm", "-K", "--nosignature", str(crafted)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_many_malformed_inputs_with_workers(damaged, victim, bystander, tmp_path):
    """-j 2 (the default from 512 inputs): every input is accounted for, in bounded time."""
    inputs = []
    for i in range(6):
        for case, (path, _) in damaged.items():
            link = tmp_path / f"{i}-{case}.rpm"
            link.symlink_to(path)
            inputs.append(link)
        good = tmp_path / f"{i}-victim.rpm"
        good.symlink_to(victim)
        inputs.append(good)
    started = time.monotonic()
    result = _scan(*inputs, bystander, extra=("-j", "2"))
    assert time.monotonic() - started < 120
    assert result.returncode == 2
    assert f"; {6 * len(damaged)} inputs could not be read." in result.stdout
    assert "7 packages checked" in result.stdout  # 6 copies of the victim (one name: no conflict), the bystander
    _assert_other_input_reported(result)


# --- 7. a worker that dies ----------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _holds(pid: int, suffix: str) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").endswith(suffix) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


@pytest.fixture(scope="module")
def big_package(rpms, tmp_path_factory, bpfdir) -> Path:
    """A package whose payload takes a while to check: a worker can be caught reading it."""
    d = tmp_path_factory.mktemp("big")
    blob = d / "blob.o"
    blob.write_bytes(os.urandom(48 << 20))
    return rpms.build(
        PkgSpec(
            "big",
            requires=["bpf-filesystem"],
            files=[PkgFile(f"{bpfdir}/big", directory=True, mode=0o755), PkgFile(f"{bpfdir}/big/blob.o", blob)],
        )
    )


def test_dead_worker_is_an_error_for_its_input_not_a_hang(big_package, victim, bystander, tmp_path):
    """A worker killed while reading (as a crash in a library, or the OOM killer) costs one input, no more."""
    inputs = []
    for i in range(8):
        link = tmp_path / f"big-{i}.rpm"
        link.symlink_to(big_package)
        inputs.append(link)
    inputs += [victim, bystander]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rpm_bpf", "scan", "--no-system-policy", "-j", "2", *map(str, inputs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        for child in _children(proc.pid):
            if _holds(child, "big.rpm") or _holds(child, "big-1.0-1.x86_64.rpm"):
                os.kill(child, signal.SIGKILL)
                killed = child
                break
        time.sleep(0.001)
    out, err = proc.communicate(timeout=300)
    assert killed is not None, "no worker was caught reading an input"
    assert "Traceback" not in err, err
    assert proc.returncode == 2, out + err
    died = [line for line in err.splitlines() if "the process reading it died (killed by SIGKILL)" in line]
    assert len(died) == 1, err
    assert "; 1 inputs could not be read." in out
    assert "9 packages checked" in out  # 10 inputs: every one but the killed worker's
    assert "bystander.x86_64: E: bpf-object-outside-bpfdir /opt/bystander/prog.o" in out


# --- 9. special files and deep trees as inputs --------------------------------


def test_fifo_named_like_an_rpm_does_not_block(bystander, tmp_path):
    fifo = tmp_path / "x.rpm"
    os.mkfifo(fifo)
    result = _scan(fifo, bystander)
    assert result.returncode == 2
    assert f"rpm-bpf: error: {fifo}: is a FIFO, not an RPM file" in result.stderr
    _assert_other_input_reported(result)
    in_dir = _scan(tmp_path, bystander)  # found by the directory walk: the same
    assert in_dir.returncode == 2 and f"{fifo}: is a FIFO, not an RPM file" in in_dir.stderr


def test_directory_1100_levels_deep(victim, tmp_path, request):
    deep = tmp_path / "deep"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1100):  # level by level: os.makedirs itself recurses too deep for this
        os.mkdir("d", dir_fd=fd)
        fd, parent = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), fd
        os.close(parent)
    os.symlink(victim, "victim.rpm", dir_fd=fd)
    os.close(fd)
    request.addfinalizer(lambda: _remove_deep(deep))
    result = _scan(deep)
    assert result.returncode == 0, result.stderr
    assert "1 packages checked; 0 errors" in result.stdout


CRASHING_SCAN = """
import os, signal, sys
from rpm_bpf.flows import scan
from rpm_bpf.rules.policy import Policy

checked = scan._scan_one
def crash_on_marked_input(item, *args):  # what a SIGSEGV inside librpm does to the worker
    if item.endswith("-crash.rpm"):
        os.kill(os.getpid(), signal.SIGSEGV)
    return checked(item, *args)
scan._scan_one = crash_on_marked_input
result = scan.scan([sys.argv[1]], Policy.load(system=None), jobs=4)
print(len(result.packages), *sorted(f"{e.input}: {e.message}" for e in result.errors), sep="\\n")
"""


def test_worker_crashing_on_one_input_charges_that_input_only(victim, tmp_path):
    """Many inputs, four workers, one input that kills its worker: the error names it, every other is checked."""
    for i in range(300):
        (tmp_path / f"p{i:03}{'-crash' if i == 150 else ''}.rpm").symlink_to(victim)
    for _ in range(5):  # the worker's death races with the next batch sent to it
        proc = subprocess.run(
            [sys.executable, "-c", CRASHING_SCAN, str(tmp_path)],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines == [
            "299",
            f"{tmp_path}/p150-crash.rpm: the process reading it died (killed by SIGSEGV); not checked",
        ], proc.stdout


def test_payload_reads_leak_no_descriptors(victim, tmp_path):
    """Every payload read closes what it opened: 100 packages under a limit of 64 descriptors."""
    import resource

    for i in range(100):
        (tmp_path / f"v{i:03}.rpm").symlink_to(victim)
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "scan", "--no-system-policy", "-j", "1", str(tmp_path)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "100 packages checked; 0 errors" in proc.stdout


def test_package_owning_the_root_directory_is_read(rpms, objects, bpfdir):
    """rpm keeps "/" as the directory "/" with an empty file name: legitimate, not a crafted name."""
    path = rpms.build(
        PkgSpec(
            "owns-root",
            requires=["bpf-filesystem"],
            files=[
                PkgFile("/", directory=True, mode=0o755),
                PkgFile(f"{bpfdir}/owns-root", directory=True, mode=0o755),
                PkgFile(f"{bpfdir}/owns-root/counter.bpf.o", objects.full),
            ],
        )
    )
    result = _scan(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 packages checked; 0 errors" in result.stdout


# --- Hardening II: hard links ----------------------------------------------------


def test_every_member_of_a_hard_link_set_is_inspected(rpms, objects, bpfdir, tmp_path):
    """rpmbuild puts a hard-link set's bytes with one member only: the others must be judged on the same bytes
    (before, they read as empty: bpf-object-invalid, and none of the content rules ran on them)."""
    first = f"{bpfdir}/linked/a.bpf.o"
    spec = PkgSpec(
        "linked",
        requires=["bpf-filesystem"],
        files=[
            PkgFile(f"{bpfdir}/linked", directory=True, mode=0o755),
            PkgFile(first, objects.no_btf),
            PkgFile(f"{bpfdir}/linked/b.bpf.o", hardlink_to=first),
            PkgFile(f"{bpfdir}/linked/c.bpf.o", hardlink_to=first),
        ],
    )
    package = rpms.build(spec)
    nlinks = subprocess.run(
        ["rpm", "-qp", "--qf", "[%{FILENLINKS} %{FILENAMES}\\n]", str(package)], capture_output=True, text=True
    ).stdout
    assert nlinks.count("3 ") == 3, nlinks  # a real hard-link set, as rpmbuild recorded it
    result = run_cli("scan", "--no-system-policy", "-f", "json", package)
    findings = [(f["rule"], f["path"].rsplit("/", 1)[1]) for f in result.json()["findings"]]
    assert [r for r, _ in findings if r == "bpf-object-invalid"] == [], findings
    assert sorted(name for rule, name in findings if rule == "bpf-object-no-btf") == ["a.bpf.o", "b.bpf.o", "c.bpf.o"]


# --- Hardening II: a payload that is not the header's ---------------------------------

PAYLOADDIGEST, PAYLOADDIGESTALT = 5092, 5097


@pytest.mark.parametrize(
    ("payload_digest", "renamed"), [("recomputed", False), ("removed", False), ("recomputed", True)]
)
def test_payload_bytes_that_disagree_with_the_header_are_refused(
    rpms, objects, bpfdir, tmp_path, payload_digest, renamed
):
    """The header of one build, the payload of another (same sizes, other bytes, same or other names): with the payload
    digest made to match, or taken out, the payload check alone let it through. Each file read is now
    checked against the header's own digest of it, as rpm does when it installs."""
    evil_object = tmp_path / "evil.bpf.o"
    original = objects.full.read_bytes()
    assert original.count(b"GPL\0") == 1
    evil_object.write_bytes(original.replace(b"GPL\0", b"MIT\0"))
    spec = good_package(objects, bpfdir, name="swapped")
    good = rpms.build(spec)
    evil_spec = PkgSpec(
        "swapped",
        summary="the other build",
        requires=spec.requires,
        files=[
            f if f.source is None else PkgFile(f.path.replace("counter", "other") if renamed else f.path, evil_object)
            for f in spec.files
        ],
    )
    evil = rpms.build(evil_spec)
    import hashlib
    import struct

    parts, other = craft.Parts.of(good), craft.Parts.of(evil)
    parts.payload = other.payload
    (old_digest,) = parts.header()[PAYLOADDIGEST]
    header = bytearray(parts.header_bytes)
    if payload_digest == "recomputed":  # in place: the header's immutable region stays as rpmbuild wrote it
        at = header.index(old_digest.encode())
        header[at : at + len(old_digest)] = hashlib.sha256(other.payload).hexdigest().encode()
    else:  # both payload digests renumbered into rpm's reserved range: as if rpmbuild had not written them
        count = struct.unpack_from(">I", header, 8)[0]
        for entry in range(count):
            if struct.unpack_from(">i", header, 16 + 16 * entry)[0] in (PAYLOADDIGEST, PAYLOADDIGESTALT):
                struct.pack_into(">i", header, 16 + 16 * entry, 999)
    parts.header_bytes = bytes(header)
    parts.fix_digests()
    crafted = tmp_path / "swapped-1.0-1.x86_64.rpm"
    crafted.write_bytes(parts.bytes())
    assert subprocess.run(["rpm", "-K", "--nosignature", str(crafted)], capture_output=True).returncode == 0
    result = run_cli("scan", "--no-system-policy", crafted)
    assert result.returncode == 2, result.stdout + result.stderr
    if renamed:  # cpio names the header does not list: librpm's archive reader refuses them
        assert "corrupt or truncated payload" in result.stderr, result.stderr
    else:
        assert "counter.bpf.o: payload content does not match the header's sha256 digest" in result.stderr


def test_huge_objects_are_not_read(rpms, objects, bpfdir, tmp_path):
    """Two 100 MiB "objects" that compress to kilobytes: refused by size from the header (a BPF object is a
    few MiB at most), without decompressing or holding them (before: about 2 GiB and three minutes for two
    1000 MiB ones)."""
    import json

    huge = tmp_path / "huge.bpf.o"
    with huge.open("wb") as out:
        out.write(objects.full.read_bytes())
        out.truncate(100 << 20)
    two = [PkgFile(f"{bpfdir}/huge/{name}.bpf.o", huge) for name in ("a", "b")]
    spec = PkgSpec(
        "huge-objects", requires=["bpf-filesystem"], files=[PkgFile(f"{bpfdir}/huge", directory=True, mode=0o755), *two]
    )
    package = rpms.build(spec, payload="w3.zstdio")
    assert package.stat().st_size < 4 << 20
    script = (
        "import resource, sys; from rpm_bpf.cli import main; status = main(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(status)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "scan", "--no-system-policy", "-f", "json", str(package)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
    )
    findings = [f for f in json.loads(proc.stdout)["findings"] if f["rule"] == "bpf-object-invalid"]
    assert len(findings) == 2 and all("larger than rpm-bpf reads of a BPF object" in f["detail"] for f in findings)
    peak_kib = int(proc.stderr.strip().splitlines()[-1])
    assert peak_kib < 200 * 1024, peak_kib  # far below the 200 MiB the two objects would take
