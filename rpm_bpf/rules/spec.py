"""Spec file rules: what a packager wrote, before anything is built.

Works on the spec text (no rpm parsing, so it also judges specs whose
BuildRequires are not installed), the way rpmlint's SpecCheck does.
"""

from __future__ import annotations

import re
from collections import namedtuple

from rpm_bpf.rules import attributes

_SECTION = re.compile(
    r"^%(package|description|prep|build|install|check|clean|files|changelog|pre|post|preun|"
    r"postun|pretrans|posttrans|triggerin|triggerun|triggerpostun|verifyscript)\b"
)
_HARDCODED = re.compile(r"/usr/lib(64)?/bpf(?=[/\s\"';})]|$)")
_BPFDIR_REF = re.compile(r"(%\{?_bpfdir(_noarch)?\}?|/usr/lib(64)?/bpf)(?![\w])")
_BY_HAND = re.compile(r"^\s*(install|cp|mv|ln)\s")
_CONFIG = re.compile(r"%config(\([^)]*\))?\s")


class SpecFinding(namedtuple("SpecFinding", ("rule", "line", "text"))):
    __slots__ = ()
    rule: str
    line: int  # 1-based
    text: str  # the offending line, stripped


def check_spec_text(text: str) -> list[SpecFinding]:
    findings: list[SpecFinding] = []
    section = "preamble"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SECTION.match(line)
        if match:
            section = match.group(1)
            continue
        if section == "changelog":
            continue
        if _HARDCODED.search(line):
            findings.append(SpecFinding("bpf-hardcoded-bpfdir", number, line))
        if (
            section == "install"
            and _BY_HAND.match(line)
            and _BPFDIR_REF.search(line)
            and ("%{buildroot}" in line or "$RPM_BUILD_ROOT" in line or "%buildroot" in line)
        ):
            findings.append(SpecFinding("bpf-install-by-hand", number, line))
        if (
            section == "files"
            and _CONFIG.search(line + " ")
            and (_BPFDIR_REF.search(line) or re.search(r"\.o(?=[\s\"';})]|$)", line))
        ):
            findings.append(SpecFinding(attributes.CONFIG, number, line))  # the same rule, seen in the spec
    return findings
