"""RootFS: paths below a root, resolved or walked, never leaving it."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys

import pytest

from rpm_bpf.sources.rootfs import RootFS
from tests.support.paths import REPO


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "usr/lib/sysimage/rpm").mkdir(parents=True)
    (r / "var/lib").mkdir(parents=True)
    (r / "etc").mkdir()
    (r / "etc/f").write_text("x")
    return r


@pytest.mark.parametrize(
    "link,target,expected",
    [
        ("var/lib/rpm", "../../usr/lib/sysimage/rpm", "/usr/lib/sysimage/rpm"),  # Fedora's layout
        ("var/lib/rpm", "/usr/lib/sysimage/rpm", "/usr/lib/sysimage/rpm"),  # absolute: from the root
        ("var/lib/rpm", "../../../../../../usr/lib/sysimage/rpm", "/usr/lib/sysimage/rpm"),  # '..' stops at /
        ("var/lib/rpm", "/nowhere/../../x", "/x"),  # dangling: the rest applied as text
    ],
)
def test_resolve_stays_in_the_root(root, link, target, expected):
    (root / link).symlink_to(target)
    with RootFS(str(root)) as fs:
        assert fs.resolve("/var/lib/rpm") == expected


def test_resolve_refuses_loops_and_files_used_as_directories(root):
    (root / "var/lib/a").symlink_to("b")
    (root / "var/lib/b").symlink_to("a")
    with RootFS(str(root)) as fs:
        with pytest.raises(OSError) as loop:
            fs.resolve("/var/lib/a")
        assert loop.value.errno == errno.ELOOP
        with pytest.raises(OSError) as notdir:
            fs.resolve("/etc/f/..")
        assert notdir.value.errno == errno.ENOTDIR


def test_walk_deeper_than_the_descriptor_limit(tmp_path):
    """400 levels under a limit of 200 descriptors: every file found, in a child process with the limit."""
    script = """
import os, sys
from rpm_bpf.sources.rootfs import RootFS
from tests.support.paths import REPO
root = sys.argv[1]
fd = os.open(root, os.O_RDONLY)
for i in range(400):
    os.mkdir("d", dir_fd=fd)
    fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
    os.close(old)
os.close(os.open("deep.o", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
os.close(fd)
open(os.path.join(root, "top.o"), "w").close()
errors = []
with RootFS(root) as fs:
    found = [path for path, _ in fs.walk("/", errors.append)]
print(len(found), len(errors), max(p.count("/d") for p in found), "/top.o" in found)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200)),
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
    )
    subprocess.run(["rm", "-rf", "--", str(tmp_path / "d")])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2", "0", "401", "True"], proc.stdout  # 400 levels, then "/deep.o"
