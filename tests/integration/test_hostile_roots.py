"""Hostile installroots against `rpm-bpf verify` and `dnf bpf-verify`.

Each root is a real one: packages installed by dnf from a createrepo_c
repository of rpmbuild-built RPMs (the ``dnf_repo`` fixture of tests/integration/conftest.py), then
changed as an attacker with write access to the root would. ``strace``
proves that nothing outside the root is opened and nothing in it written.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.dnf import BPFDIR, GOOD_OBJ, Dnf
from tests.support.paths import REPO
from tests.support.paths import remove_deep as _remove_deep

pytestmark = pytest.mark.integration


@pytest.fixture
def root(dnf_repo, tmp_path) -> Dnf:
    dnf = Dnf(dnf_repo, tmp_path / "root", tmp_path / "plugconf")
    proc = dnf("install", "xdp-good-1.0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (dnf.root / "etc").mkdir(exist_ok=True)
    (dnf.root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dnf.root / "etc/group").write_text("root:x:0:\n")
    return dnf


def _verify(root: Path, *args: str, timeout: int = 60, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(REPO), **kwargs.pop("env", {}))
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "verify", "--no-system-policy", "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _traced(tmp_path: Path, *args: str, command: str = "verify") -> tuple[subprocess.CompletedProcess, str]:
    """`rpm-bpf verify` (or ``command``) under strace -f -y: every file syscall, with the paths its descriptors
    resolve to."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (./setup.sh installs it)")
    log = tmp_path / "strace.log"
    proc = subprocess.run(
        [
            "strace",
            "-f",
            "-y",
            "-qq",
            "-o",
            str(log),
            "-e",
            "trace=%file,%desc",
            sys.executable,
            "-m",
            "rpm_bpf",
            command,
            "--no-system-policy",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    return proc, log.read_text(errors="replace")


def _opened(trace: str, outside: str) -> list[str]:
    """Lines of an ``strace -y`` log where a file at or below ``outside`` was opened or read."""
    hits = []
    for line in trace.splitlines():
        opened = "openat(" in line and (f'"{outside}' in line or f"<{outside}" in line.split("openat(", 1)[1][:400])
        used = f"<{outside}" in line and not line.split(" ", 1)[-1].startswith(("close(", "readlinkat("))
        if opened or used:
            hits.append(line)
    return hits


def _tree(root: Path) -> dict[str, tuple]:
    """Every entry below ``root`` with what a write would change (no link followed)."""
    found = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            st = os.lstat(os.path.join(top, name))
            found[os.path.relpath(os.path.join(top, name), root)] = (
                st.st_mode,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
            )
    return found


# --- 3. nothing outside the root is read --------------------------------------


def test_bpf_directory_linked_to_the_host_is_not_followed(root, tmp_path):
    host = tmp_path / "host-bpf"
    shutil.copytree(root.root / BPFDIR.lstrip("/"), host, symlinks=True)  # the packaged bytes, on the host
    shutil.rmtree(root.root / BPFDIR.lstrip("/"))
    (root.root / BPFDIR.lstrip("/")).symlink_to(host)
    proc, trace = _traced(tmp_path, "--root", str(root.root))
    assert trace.count("openat(") > 10  # the trace works
    assert not _opened(trace, str(host)), "a file below the host directory was opened"
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (
        f"{root.root}{GOOD_OBJ}: cannot verify: {BPFDIR} is a symbolic link; not followed below the root" in proc.stderr
    )
    assert f"rpm-bpf: E: bpf-object-unowned {BPFDIR} a symbolic link where the BPF directory belongs" in proc.stdout


def _list(root: Path, *args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "list", "--no-system-policy", "--offline", "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_list_does_not_follow_a_bpf_directory_linked_to_the_host(root, tmp_path):
    host = tmp_path / "host-bpf"
    shutil.copytree(root.root / BPFDIR.lstrip("/"), host, symlinks=True)
    shutil.rmtree(root.root / BPFDIR.lstrip("/"))
    (root.root / BPFDIR.lstrip("/")).symlink_to(host)
    before = _tree(root.root)
    proc, trace = _traced(tmp_path, "--offline", "--root", str(root.root), "-f", "json", command="list")
    assert trace.count("openat(") > 10
    assert not _opened(trace, str(host)), "a file below the host directory was opened"
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{root.root}{GOOD_OBJ}: cannot read: {BPFDIR} is a symbolic link; not followed below the root" in (
        proc.stderr
    )
    (listed,) = json.loads(proc.stdout)["objects"]  # still listed, as what could not be read
    assert listed["path"] == GOOD_OBJ and listed["disk"] == "unreadable" and listed["programs"] == []
    assert _tree(root.root) == before  # nothing in the root changed


def test_list_of_a_fifo_in_place_of_an_object_does_not_hang(root):
    obj = root.root / GOOD_OBJ.lstrip("/")
    obj.unlink()
    os.mkfifo(obj)
    proc = _list(root.root, "-f", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert [o["disk"] for o in doc["objects"]] == ["modified"]
    ((rule, detail),) = [(f["rule"], f["detail"]) for f in doc["findings"]]
    assert rule == "bpf-object-modified" and detail == "a regular file was replaced by a FIFO"


def test_list_of_a_huge_sparse_replacement_is_a_finding_not_a_read(root):
    obj = root.root / GOOD_OBJ.lstrip("/")
    obj.unlink()
    with open(obj, "wb") as stream:
        stream.truncate(5 << 30)  # 5 GB of nothing, made in no time
    started = time.monotonic()
    proc = _list(root.root, "-f", "json")
    assert time.monotonic() - started < 30
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert [(o["path"], o["disk"]) for o in doc["objects"]] == [(GOOD_OBJ, "modified")]
    ((rule, detail),) = [(f["rule"], f["detail"]) for f in doc["findings"]]
    assert rule == "bpf-object-modified" and detail.startswith(f"size {5 << 30} (packaged ")


def test_list_with_a_damaged_header_fails_closed(root):
    record = _damage_header(root.root, _db_at_dbpath(root.root), "xdp-good")
    proc = _list(root.root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"rpm database record #{record}: header cannot be read (damaged)" in proc.stderr
    assert "internal error" not in proc.stderr


def test_passwd_linked_to_shadow_is_not_opened(root, tmp_path):
    passwd = root.root / "etc/passwd"
    passwd.unlink()
    passwd.symlink_to("/etc/shadow")
    proc, trace = _traced(tmp_path, "--root", str(root.root))
    assert not _opened(trace, "/etc/shadow")
    assert proc.returncode == 2
    assert f"{passwd}: cannot read (is a symbolic link, not a regular file); owners compared by number" in proc.stderr


# --- 4. the rpm database: absolute roots only, never written ------------------


def test_verification_writes_nothing_in_the_root(root, tmp_path):
    before = _tree(root.root)
    time.sleep(0.01)
    proc = _verify(root.root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _tree(root.root) == before


def test_relative_root_is_refused_before_librpm_sees_it(root, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    rel = os.path.relpath(root.root, tmp_path)
    proc = _verify(Path(rel), cwd=tmp_path, env={"HOME": str(home)})
    assert proc.returncode == 2
    assert f"rpm-bpf: error: {rel}: the root must be an absolute path" in proc.stderr
    assert list(home.iterdir()) == []  # librpm would have made $HOME/.rpmdb


def test_root_without_a_database_is_said_so_and_left_alone(tmp_path):
    empty = tmp_path / "empty-root"
    (empty / "etc").mkdir(parents=True)
    before = _tree(empty)
    proc = _verify(empty)
    assert proc.returncode == 2
    assert f"rpm-bpf: error: no rpm database in {empty}" in proc.stderr
    assert "0 packages" not in proc.stdout
    assert _tree(empty) == before


@pytest.mark.parametrize("size", [0, 4096, "half"])
def test_truncated_database_is_damaged_and_left_alone(root, size):
    db = next(root.root.rglob("rpmdb.sqlite"))
    for extra in db.parent.glob("rpmdb.sqlite-*"):
        extra.unlink()  # as a damaged copy would come: no -wal/-shm
    length = db.stat().st_size // 2 if size == "half" else size
    os.truncate(db, length)
    before = _tree(root.root)
    proc = _verify(root.root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "damaged rpm database" in proc.stderr
    assert _tree(root.root) == before


def test_database_directory_linked_out_of_the_root(root, tmp_path):
    """A link out of the root is resolved as if the root were / (RESOLVE_IN_ROOT): it leads nowhere."""
    db_dir = next(root.root.rglob("rpmdb.sqlite")).parent
    elsewhere = tmp_path / "elsewhere"
    shutil.move(db_dir, elsewhere)
    db_dir.symlink_to(elsewhere)
    proc, trace = _traced(tmp_path, "--root", str(root.root))
    assert proc.returncode == 2
    assert f"rpm-bpf: error: no rpm database in {root.root} (no {elsewhere})" in proc.stderr
    assert not _opened(trace, str(elsewhere))


def test_database_directory_linked_inside_the_root_as_fedora_lays_it_out(root):
    """/var/lib/rpm -> ../../usr/lib/sysimage/rpm: a link that stays in the root is a layout, not an attack."""
    db_dir = next(root.root.rglob("rpmdb.sqlite")).parent
    real = root.root / "usr/lib/sysimage/rpm"
    real.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(db_dir, real)
    db_dir.symlink_to(os.path.relpath(real, db_dir.parent))
    proc = _verify(root.root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 packages checked" in proc.stdout


# --- 5. special files, deep trees, huge files ----------------------------------


@pytest.mark.parametrize("which", ["verify", "dnf"])
def test_passwd_fifo_does_not_hang(root, which):
    passwd = root.root / "etc/passwd"
    passwd.unlink()
    os.mkfifo(passwd)
    if which == "verify":
        proc = _verify(root.root, timeout=60)
    else:
        proc = subprocess.run(
            [
                "dnf",
                "-y",
                *root.options(),
                f"--setopt=pluginpath={REPO / 'dnf_plugin'}",
                f"--setopt=pluginconfpath={root.confdir}",
                "bpf-verify",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert f"{passwd}: cannot read (is a FIFO, not a regular file)" in proc.stderr, proc.stderr
    assert "0 errors" in proc.stdout


@pytest.mark.parametrize("kind", ["symlink", "device"])
def test_group_as_dev_zero_is_not_read(root, kind):
    group = root.root / "etc/group"
    group.unlink()
    if kind == "symlink":
        group.symlink_to("/dev/zero")
    else:
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(group, 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    proc = _verify(root.root, timeout=60)
    assert proc.returncode == 2
    what = "a symbolic link" if kind == "symlink" else "a character device"
    assert f"{group}: cannot read (is {what}, not a regular file)" in proc.stderr


def test_deep_tree_in_the_bpf_directory(root, request):
    fd = os.open(root.root / BPFDIR.lstrip("/"), os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1100):
        os.mkdir("d", dir_fd=fd)
        fd, parent = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), fd
        os.close(parent)
    with os.fdopen(os.open("dropped.o", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
        f.write(b"\x7fELF")
    os.close(fd)
    request.addfinalizer(lambda: _remove_deep(root.root / BPFDIR.lstrip("/") / "d"))
    proc = _verify(root.root, "-f", "json", timeout=120)
    assert proc.returncode == 1, proc.stderr
    import json

    (finding,) = json.loads(proc.stdout)["findings"]
    assert finding["rule"] == "bpf-object-unowned"
    assert finding["path"] == BPFDIR + "/d" * 1100 + "/dropped.o"


def test_huge_sparse_replacement_is_judged_by_its_size(root):
    obj = root.root / GOOD_OBJ.lstrip("/")
    packaged = obj.stat().st_size
    with open(obj, "r+b") as f:
        f.truncate(5 << 30)
    started = time.monotonic()
    proc = _verify(root.root)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1
    assert f"bpf-object-modified {GOOD_OBJ} size {5 << 30} (packaged {packaged})" in proc.stdout
    assert elapsed < 10, f"{elapsed:.1f} s: the 5 GB file was read (hashing it takes ~15 s)"


# --- 6. the rpm database as hostile input (Hardening II) -------------------------


def _dbpath() -> str:
    proc = subprocess.run(["rpm", "--eval", "%{_dbpath}"], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def _db_at_dbpath(root: Path) -> Path:
    """The root's database moved to where librpm looks for it (``%_dbpath`` inside the root)."""
    current = next(root.rglob("rpmdb.sqlite")).parent
    wanted = root / _dbpath().lstrip("/")
    if current != wanted:
        wanted.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(current, wanted)
    return wanted


def _transaction_check(root: Path, request: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "transaction-check", "--no-system-policy", "--json", "--root", str(root)],
        input=request,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


def _incoming(root: Dnf, name: str) -> str:
    (path,) = root.repo.glob(f"{name}-1.0-*.rpm")
    return json.dumps({"incoming": [{"path": str(path), "nevra": path.name.removesuffix(".rpm")}]})


def test_database_path_linked_to_the_host_is_never_handed_to_librpm(root, tmp_path):
    """The first %_dbpath component links to a host directory: inside the root it leads to the real database,
    and librpm must be given that path, not the link (it would create an empty database on the host)."""
    db = _db_at_dbpath(root.root)
    first = Path(_dbpath()).parts[1]  # "root" for Debian's /root/.rpmdb
    host = tmp_path / "host-dir"
    host.mkdir()
    inside = root.root / str(host).lstrip("/")
    inside.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(root.root / first, inside)
    (root.root / first).symlink_to(host)
    assert (inside / db.relative_to(root.root / first) / "rpmdb.sqlite").is_file()
    proc = _verify(root.root, "--db-in-place")
    assert proc.returncode == 0 and "2 packages checked" in proc.stdout, proc.stdout + proc.stderr
    answer = _transaction_check(root.root, _incoming(root, "xdp-clash-diff"))
    assert answer.returncode == 1 and json.loads(answer.stdout)["verdict"] == "refuse", answer.stdout + answer.stderr
    assert list(host.iterdir()) == []  # nothing was created on the host


def _damage_header(root: Path, db: Path, name: str) -> int:
    """Flip a byte in the middle of ``name``'s header blob in the root's real rpmdb.sqlite; its record number."""
    import sqlite3

    query = subprocess.run(
        ["rpm", "--root", str(root), "-q", "--qf", "%{DBINSTANCE}", name], capture_output=True, text=True
    )
    record = int(query.stdout)
    with sqlite3.connect(db / "rpmdb.sqlite") as conn:
        (blob,) = conn.execute("SELECT blob FROM Packages WHERE hnum = ?", (record,)).fetchone()
        damaged = bytearray(blob)
        damaged[len(damaged) // 2] ^= 0xFF
        conn.execute("UPDATE Packages SET blob = ? WHERE hnum = ?", (bytes(damaged), record))
    return record


def test_damaged_header_in_the_database_fails_closed(root):
    """librpm skips a header it cannot read: verify must name the record and fail, and the transaction check
    must refuse rather than lose the clash with the package that header held."""
    db = _db_at_dbpath(root.root)
    record = _damage_header(root.root, db, "xdp-good")
    proc = _verify(root.root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"rpm database record #{record}: header cannot be read (damaged)" in proc.stderr
    for in_place in ((), ("--db-in-place",)):
        assert _verify(root.root, *in_place).returncode == 2
    answer = _transaction_check(root.root, _incoming(root, "xdp-clash-diff"))
    doc = json.loads(answer.stdout)
    assert answer.returncode == 1 and doc["verdict"] == "refuse", answer.stdout + answer.stderr
    assert any(f"record #{record}" in f["detail"] for f in doc["findings"] if f["rule"] == "bpf-package-unreadable")


def test_database_path_that_is_not_utf8_is_refused_by_name(root, tmp_path):
    """The root's own link gives a database path librpm cannot take as text: one error naming it (it used to
    be an internal error, and the DNF 4 plugin then went on without its check)."""
    _db_at_dbpath(root.root)
    first = Path(_dbpath()).parts[1]
    inside = os.path.join(os.fsencode(root.root), b"\xffdir")
    shutil.move(root.root / first, os.fsdecode(inside))
    os.symlink(b"/\xffdir", os.path.join(os.fsencode(root.root), os.fsencode(first)))
    proc = _verify(root.root, "--db-in-place")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "the rpm database path has characters librpm would interpret" in proc.stderr
    assert "internal error" not in proc.stderr


def test_record_number_that_is_not_an_integer_is_damage_not_a_crash(root):
    """A Packages table rebuilt without its column type, with a record numbered 9e999: librpm skips it,
    rpm-bpf calls the database damaged (it used to crash converting the number)."""
    import sqlite3

    db = _db_at_dbpath(root.root)
    with sqlite3.connect(db / "rpmdb.sqlite") as conn:
        conn.execute("CREATE TABLE Loose (hnum, blob)")
        conn.execute("INSERT INTO Loose SELECT hnum, blob FROM Packages")
        conn.execute("DROP TABLE Packages")
        conn.execute("ALTER TABLE Loose RENAME TO Packages")
        conn.execute("INSERT INTO Packages VALUES (9e999, x'00')")
    proc = _verify(root.root)
    assert proc.returncode == 2 and "internal error" not in proc.stderr, proc.stdout + proc.stderr
    assert "damaged rpm database" in proc.stderr, proc.stderr
