"""rules/ownership.py: ``bpfdir-unowned``, the one predicate for packaged files and repository file lists."""

from __future__ import annotations

import pytest

from rpm_bpf.rules import ownership
from rpm_bpf.rules.ownership import unowned_directories

ROOTS = ("/usr/lib64/bpf", "/usr/lib/bpf")
OWNERS = ("bpf-filesystem",)


def test_files_in_the_bpfdir_without_its_owner_required():
    files = ["/usr/lib64/bpf/a.o", "/usr/lib/bpf/b.o", "/usr/share/doc/x/README"]
    assert unowned_directories(files, ROOTS, set(), set(), OWNERS) == {"/usr/lib64/bpf": 1, "/usr/lib/bpf": 1}


@pytest.mark.parametrize(
    "owned, requires",
    [({"/usr/lib64/bpf"}, set()), (set(), {"/usr/lib64/bpf"}), (set(), {"bpf-filesystem"})],
    ids=["owns-it", "requires-the-path", "requires-an-owner"],
)
def test_the_bpfdir_itself_may_be_owned_or_required(owned, requires):
    assert unowned_directories(["/usr/lib64/bpf/a.o"], ROOTS, owned, requires, OWNERS) == {}


def test_subdirectories_must_be_owned_by_the_package_itself():
    files = ["/usr/lib64/bpf/tool/sub/a.o", "/usr/lib64/bpf/tool/b.o"]
    # Requiring the owner of the BPF directory does not own the package's own subdirectories.
    assert unowned_directories(files, ROOTS, set(), {"bpf-filesystem"}, OWNERS) == {
        "/usr/lib64/bpf/tool": 2,
        "/usr/lib64/bpf/tool/sub": 1,
    }
    owned = {"/usr/lib64/bpf/tool", "/usr/lib64/bpf/tool/sub"}
    assert unowned_directories(files, ROOTS, owned, {"bpf-filesystem"}, OWNERS) == {}


def test_owner_provides_come_from_the_policy():
    files = ["/usr/lib64/bpf/a.o"]
    assert unowned_directories(files, ROOTS, set(), {"distro-bpf-dirs"}, ("distro-bpf-dirs",)) == {}
    assert unowned_directories(files, ROOTS, set(), {"bpf-filesystem"}, ()) == {"/usr/lib64/bpf": 1}


def test_paths_that_only_look_like_the_bpfdir_are_ignored():
    files = ["/usr/lib64/bpfilter/a.o", "/usr/lib64/bpf", "/usr/local/lib64/bpf/a.o"]
    assert unowned_directories(files, ROOTS, set(), set(), OWNERS) == {}


@pytest.mark.parametrize("count, text", [(1, "1 file below it"), (2, "2 files below it")])
def test_detail(count, text):
    assert ownership.detail(count) == text
    assert ownership.RULE == "bpfdir-unowned"
