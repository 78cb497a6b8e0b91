"""rules/installed.py: an installed object against its packaged entry (missing, modified, attributes changed), and
files in a BPF directory no package owns; each predicate on what a verification observed, given here directly."""

from __future__ import annotations

import stat

import pytest

from rpm_bpf.model import FileEntry, PackageRef
from rpm_bpf.rules import installed
from rpm_bpf.rules.registry import Severity

REF = PackageRef("tool", None, "1.0", "1", "x86_64", "rpmdb")
PATH = "/usr/lib64/bpf/tool/prog.o"
DIGEST = "ab" * 32
ENTRY = FileEntry(PATH, stat.S_IFREG | 0o644, 664, "root", "root", 0, "ELF 64-bit LSB relocatable, eBPF", DIGEST)
LINK = FileEntry("/usr/lib64/bpf/tool/current.o", stat.S_IFLNK | 0o777, 6, "root", "root", 0, "", "", "prog.o")


def test_missing():
    finding = installed.missing(REF, ENTRY)
    assert (finding.rule, finding.package, finding.path, finding.severity) == (
        "bpf-object-missing",
        REF,
        PATH,
        Severity.ERROR,
    )


def test_type_changed():
    assert installed.type_changed(REF, ENTRY, stat.S_IFREG | 0o600, None) is None  # same kind of file
    to_link = installed.type_changed(REF, ENTRY, stat.S_IFLNK | 0o777, "/etc/hostname")
    assert to_link.rule == "bpf-object-modified"
    assert to_link.detail == "a regular file was replaced by a symbolic link to /etc/hostname"
    to_fifo = installed.type_changed(REF, ENTRY, stat.S_IFIFO | 0o644, None)
    assert to_fifo.detail == "a regular file was replaced by a FIFO"


def test_link_pointing_elsewhere_is_modified():
    finding = installed.link_changed(REF, LINK, "/tmp/evil.o")
    assert finding is not None and finding.rule == "bpf-object-modified"
    assert finding.path == LINK.path and finding.detail.startswith("link points to /tmp/evil.o, not")


def test_untouched_link_is_not_modified():
    assert installed.link_changed(REF, LINK, "prog.o") is None


def test_size_changed():
    assert installed.size_changed(REF, ENTRY, 664) is None
    assert installed.size_changed(REF, ENTRY, 5 << 30).detail == f"size {5 << 30} (packaged 664)"


@pytest.mark.parametrize(
    "digest, size, detail",
    [
        ("cd" * 32, 664, "sha256 digest differs"),
        ("cd" * 32, 700, "sha256 digest differs, size 700 (packaged 664)"),
        (None, 700, "sha256 digest differs, size 700 (packaged 664)"),  # changed size while it was read
    ],
)
def test_digest_changed(digest, size, detail):
    finding = installed.digest_changed(REF, ENTRY, digest, "sha256", size)
    assert finding.rule == "bpf-object-modified" and finding.detail == detail


def test_digest_unchanged():
    assert installed.digest_changed(REF, ENTRY, DIGEST, "sha256", 664) is None


def test_attributes_changed():
    assert installed.attrs_changed(REF, ENTRY, stat.S_IFREG | 0o644, "root", "root") is None
    finding = installed.attrs_changed(REF, ENTRY, stat.S_IFREG | 0o666, "nobody", "wheel")
    assert finding.rule == "bpf-object-attrs-changed" and finding.severity == Severity.WARNING
    assert finding.detail == "mode 0666 (packaged 0644), owner nobody (packaged root), group wheel (packaged root)"
    assert installed.attrs_changed(REF, ENTRY, stat.S_IFREG | 0o600, "root", "root").detail == (
        "mode 0600 (packaged 0644)"
    )


def test_unowned_files_and_what_replaces_the_bpfdir():
    dropped = installed.unowned_file("/usr/lib64/bpf/dropped.o")
    assert (dropped.rule, dropped.package, dropped.detail) == (
        "bpf-object-unowned",
        None,
        "written at run time or copied by hand",
    )
    link = installed.not_a_directory("/usr/lib64/bpf", stat.S_IFLNK | 0o777)
    assert link.path == "/usr/lib64/bpf" and link.detail == "a symbolic link where the BPF directory belongs"


def test_what_reinstalling_repairs():
    assert {"bpf-object-missing", "bpf-object-modified", "bpf-object-attrs-changed"} == set(installed.REPAIRABLE)
    assert installed.UNOWNED not in installed.REPAIRABLE
