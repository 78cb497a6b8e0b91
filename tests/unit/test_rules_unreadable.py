"""rules/unreadable.py: ``bpf-package-unreadable``, a package that cannot be read is an error of its own."""

from __future__ import annotations

from rpm_bpf.rules import unreadable
from rpm_bpf.rules.registry import Severity


def test_unreadable_package_is_an_error_naming_the_file_and_why():
    finding = unreadable.unreadable("/var/cache/dnf/x.rpm", "x-1-1.x86_64: the RPM has no header digest")
    assert finding.rule == unreadable.RULE == "bpf-package-unreadable"
    assert finding.severity == Severity.ERROR and finding.counts
    assert (finding.package, finding.path) == (None, "/var/cache/dnf/x.rpm")
    assert finding.detail == "x-1-1.x86_64: the RPM has no header digest"


def test_unreadable_without_a_file():
    finding = unreadable.unreadable(None, "corrupt RPM header (bad magic)")
    assert finding.path is None and finding.message.endswith(": corrupt RPM header (bad magic)")
