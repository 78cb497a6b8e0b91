"""rules/loaded.py: ``bpf-program-unpackaged``, and which loaded programs get it (flows/which.py's matching).

Loaded programs are ``Loaded`` records as bpftool would describe them; the
packaged programs are predicted from objects written by tests/support/bpfelf.py.
"""

from __future__ import annotations

from rpm_bpf.bpf.progtag import predict
from rpm_bpf.flows.which import Source, unpackaged_findings
from rpm_bpf.flows.which import match as match_programs
from rpm_bpf.model import Package, PackageRef
from rpm_bpf.rules import loaded
from rpm_bpf.rules.loaded import unpackaged_finding
from rpm_bpf.rules.registry import Severity
from rpm_bpf.sources.loaded import Loaded
from tests.support.bpfelf import bpf_object

TOOL = PackageRef("tool", None, "1.0", "1", "x86_64", "rpmdb")
(PREDICTED,) = predict(bpf_object((("xdp", "xdp_filter"),)))
SOURCE = Source(
    TOOL,
    "tool-1.0-1.src.rpm",
    "/usr/lib64/bpf/tool/filter.o",
    None,
    PREDICTED.section,
    PREDICTED.name,
    PREDICTED.kernel_name,
    PREDICTED.prog_type,
    PREDICTED.tag,
    PREDICTED.tag_sha1,
    PREDICTED.caveats,
)


def prog(id_=42, name="xdp_filter", type_="xdp", tag=PREDICTED.tag, pinned=(), holders=()) -> Loaded:
    return Loaded(id_, type_, name, tag, tuple(pinned), tuple(holders))


def test_finding_names_the_program_its_loaders_and_pins():
    program = prog(7, "stray", tag="0123456789abcdef", pinned=["/sys/fs/bpf/stray"], holders=[(10, "/usr/bin/x")])
    finding = unpackaged_finding(program, ((10, "/usr/bin/x", "x-2-1.x86_64"), (11, "", None)))
    assert finding.rule == loaded.RULE == "bpf-program-unpackaged"
    assert finding.severity == Severity.WARNING and finding.package is None
    assert finding.path == "bpf-prog:7"
    assert finding.detail == (
        "program 7 stray (xdp), tag 0123456789abcdef; loaded by /usr/bin/x (pid 10, package x-2-1.x86_64); "
        "loaded by ? (pid 11); pinned at /sys/fs/bpf/stray"
    )


def test_finding_of_a_nameless_program_held_by_nothing():
    finding = unpackaged_finding(prog(8, "", tag="ffff"), ())
    assert finding.detail == "program 8 (no name) (xdp), tag ffff"


def test_program_nothing_packaged_matches_is_unpackaged():
    stray = prog(9, "hand_made", tag="00000000000000aa")
    (match,) = match_programs([stray], [SOURCE], {})
    assert match.confidence == "unknown" and match.sources == ()
    (finding,) = unpackaged_findings([match])
    assert finding.path == "bpf-prog:9" and "hand_made" in finding.detail


def test_program_matched_by_tag_is_packaged():
    for tag in (PREDICTED.tag, PREDICTED.tag_sha1):  # the kernel's SHA-256 tag, or an older kernel's SHA-1 one
        (match,) = match_programs([prog(tag=tag)], [SOURCE], {})
        assert match.confidence == "tag" and match.sources == (SOURCE,)
        assert unpackaged_findings([match]) == []


def test_tag_and_loader_from_one_package_are_certain():
    owner = Package(TOOL, "tool-1.0-1.src.rpm", ())
    (match,) = match_programs([prog(holders=[(5, "/usr/bin/tool")])], [SOURCE], {"/usr/bin/tool": owner})
    assert match.confidence == "certain"
    assert match.loaders == ((5, "/usr/bin/tool", "tool-1.0-1.x86_64"),)
    assert unpackaged_findings([match]) == []


def test_name_and_type_alone_are_weak_but_not_unpackaged():
    """A CO-RE program on another kernel (other code, same name): not an unpackaged program."""
    (match,) = match_programs([prog(tag="1111111111111111")], [SOURCE], {})
    assert match.confidence == "weak" and match.sources == (SOURCE,)
    assert unpackaged_findings([match]) == []
    (other_type,) = match_programs([prog(tag="1111111111111111", type_="sched_cls")], [SOURCE], {})
    assert other_type.confidence == "unknown"
    assert len(unpackaged_findings([other_type])) == 1
