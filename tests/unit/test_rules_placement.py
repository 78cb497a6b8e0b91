"""rules/placement.py (``bpf-object-outside-bpfdir``, ``bpf-object-exempt-location``) and rules/attributes.py's
judgement of installed files: the functions that package checks and the verification of installed systems share."""

from __future__ import annotations

import stat

import pytest

from rpm_bpf.model import FileEntry
from rpm_bpf.rules import attributes
from rpm_bpf.rules.placement import exempt_finding, location_finding
from tests.support.fakepkg import I686, X86_64, FakePkg


def entry(path: str, mode: int = stat.S_IFREG | 0o644, user: str = "root") -> FileEntry:
    return FileEntry(path, mode, 10, user, "root", 0, "ELF 64-bit LSB relocatable, eBPF", "ab" * 32)


ARCH = FakePkg(name="tool").package
NOARCH = FakePkg(name="tool-data", arch="noarch").package


@pytest.mark.parametrize(
    "pkg, dirs, path",
    [
        (ARCH, X86_64, "/usr/lib64/bpf/tool/prog.o"),
        (ARCH, X86_64, "/usr/lib/bpf/tool/prog.o"),
        (ARCH, X86_64, "/usr/lib64/bpf"),
        (NOARCH, X86_64, "/usr/lib/bpf/tool/prog.o"),
        (ARCH, I686, "/usr/lib/bpf/prog.o"),
    ],
)
def test_objects_in_place(pkg, dirs, path):
    assert location_finding(pkg, entry(path), dirs) is None


@pytest.mark.parametrize(
    "pkg, dirs, path, detail",
    [
        (ARCH, X86_64, "/usr/share/tool/prog.o", "expected under /usr/lib64/bpf"),
        (ARCH, X86_64, "/usr/lib64/bpfilter/prog.o", "expected under /usr/lib64/bpf"),
        (ARCH, I686, "/usr/lib64/bpf/prog.o", "expected under /usr/lib/bpf"),
        (NOARCH, X86_64, "/usr/lib64/bpf/prog.o", "noarch packages ship BPF objects in /usr/lib/bpf"),
        (NOARCH, X86_64, "/opt/prog.o", "expected under /usr/lib/bpf"),
        (ARCH, X86_64, "/run/tool/prog.o", "runtime locations may only hold %ghost entries; ship it in /usr/lib64/bpf"),
        (
            ARCH,
            X86_64,
            "/var/cache/bpf/prog.o",
            "runtime locations may only hold %ghost entries; ship it in /usr/lib64/bpf",
        ),
    ],
)
def test_objects_out_of_place(pkg, dirs, path, detail):
    finding = location_finding(pkg, entry(path), dirs)
    assert finding is not None
    assert (finding.rule, finding.package, finding.path, finding.detail) == (
        "bpf-object-outside-bpfdir",
        pkg.ref,
        path,
        detail,
    )


def test_exempt_globs():
    found = exempt_finding(ARCH, "/usr/share/doc/tool/examples/x.o", ("/usr/src/*", "/usr/share/doc/*"))
    assert found is not None and found.rule == "bpf-object-exempt-location"
    assert found.detail == "policy [exempt] path /usr/share/doc/*"
    assert exempt_finding(ARCH, "/usr/share/tool/x.o", ("/usr/share/doc/*",)) is None
    assert exempt_finding(ARCH, "/usr/share/doc/x.o", ()) is None
    assert exempt_finding(ARCH, "/usr/share/DOC/x.o", ("/usr/share/doc/*",)) is None  # case counts


def test_installed_file_that_became_writable_or_changed_owner():
    packaged = entry("/usr/lib64/bpf/tool/prog.o")
    found = attributes.installed(ARCH.ref, packaged, stat.S_IFREG | 0o666, "nobody")
    assert {(f.rule, f.detail) for f in found} == {
        ("bpf-object-writable", "installed file has mode 0666"),
        ("bpf-object-not-root-owned", "installed file is owned by nobody"),
    }
    assert attributes.installed(ARCH.ref, packaged, stat.S_IFREG | 0o644, "root") == []


def test_installed_file_keeps_a_fault_the_package_already_had():
    """Reported once, by the package rules: an object packaged writable is not "became writable"."""
    packaged = entry("/usr/lib64/bpf/tool/prog.o", stat.S_IFREG | 0o664, user="tool")
    assert attributes.installed(ARCH.ref, packaged, stat.S_IFREG | 0o664, "tool") == []
    directory = entry("/usr/lib64/bpf/tool", stat.S_IFDIR | 0o755)
    assert attributes.installed(ARCH.ref, directory, stat.S_IFDIR | 0o777, "nobody") == []


@pytest.mark.parametrize("mode, writable", [(0o644, False), (0o664, True), (0o646, True), (0o744, False)])
def test_writable_means_group_or_others_may_write(mode, writable):
    assert attributes.writable(mode) is writable
