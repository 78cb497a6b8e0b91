"""SBOMs (report/sbom.py) of in-memory objects, hostile names included, checked by the formats' own validators."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rpm_bpf.model import PackageRef
from rpm_bpf.report import sbom

cyclonedx_validation = pytest.importorskip("cyclonedx.validation.json", reason="the sbom extra is not installed")
spdx_parser = pytest.importorskip("spdx_tools.spdx.parser.parse_anything", reason="the sbom extra is not installed")

TOOL = PackageRef("xdp-tools", 2, "1.4.2", "1.fc41", "x86_64", "rpmdb")
EVIL = PackageRef("evil\n<script>&", None, "1.0\u202e", "1\udcff", "noarch", "rpmdb")
PROGRAM = {"name": "xdp_pass", "section": "xdp", "type": "xdp", "tag": "614b434cd8324ecc", "tag_sha1": "aa" * 8}
ITEMS = [
    sbom.Item(TOOL, "/usr/lib64/bpf/xdp-tools/xdp_pass.o", None, 640, "ab" * 32, (PROGRAM,), "GPL", "xdp-tools/x.o"),
    sbom.Item(TOOL, "/usr/sbin/xdp-loader", 8240, 10672, "cd" * 32, (PROGRAM,), "GPL", None),
    sbom.Item(TOOL, "/usr/lib64/libxdp.a", 4096, 640, "ef" * 32, (), None, None, "xdp_dispatcher.o"),
    sbom.Item(EVIL, "/usr/lib/bpf/\x1b[2J\udcfe.o", None, None, None, ({**PROGRAM, "name": 'a"b'},), "\n", None),
]


def _validate_cyclonedx(text: str) -> dict:
    from cyclonedx.schema import SchemaVersion

    assert cyclonedx_validation.JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    return json.loads(text)


def test_cyclonedx_nests_each_object_in_its_rpm(tmp_path: Path):
    bom = _validate_cyclonedx(sbom.cyclonedx(ITEMS, "the system in /", sbom.Distro("fedora", "41")))
    assert bom["metadata"]["component"]["type"] == "operating-system"
    by_name = {c["name"]: c for c in bom["components"]}
    tool = by_name["xdp-tools"]
    assert tool["purl"] == "pkg:rpm/fedora/xdp-tools@1.4.2-1.fc41?arch=x86_64&distro=fedora-41&epoch=2"
    assert tool["version"] == "2:1.4.2-1.fc41"
    names = {c["name"] for c in tool["components"]}  # the library orders them itself
    assert names == {
        "/usr/lib64/bpf/xdp-tools/xdp_pass.o",
        "/usr/sbin/xdp-loader@8240",
        "/usr/lib64/libxdp.a(xdp_dispatcher.o)",
    }
    assert all(c["purl"] == tool["purl"] and c["type"] == "file" for c in tool["components"])
    first = next(c for c in tool["components"] if c["name"].endswith("xdp_pass.o"))
    assert first["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert {"name": "rpm-bpf:bpf-name", "value": "xdp-tools/x.o"} in first["properties"]
    assert any(p["value"].startswith("xdp_pass (section xdp, type xdp, tag 614b") for p in first["properties"])


def test_hostile_names_stay_data_in_both_formats(tmp_path: Path):
    bom = _validate_cyclonedx(sbom.cyclonedx(ITEMS, "x"))
    evil = next(c for c in bom["components"] if c["name"].startswith("evil"))
    # A byte that is not UTF-8 is written as \\xNN (JSON cannot carry it); controls stay JSON escapes.
    assert evil["name"] == EVIL.name and evil["components"][0]["name"] == "/usr/lib/bpf/\x1b[2J\\xfe.o"
    assert evil["version"] == "1.0\u202e-1\\xff"
    text = sbom.spdx(ITEMS, "x")
    path = tmp_path / "doc.spdx.json"
    path.write_text(text)  # strictly: a surrogate leaking into the document fails here
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    document = spdx_parser.parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    assert any(p.name == EVIL.name for p in document.packages)


def test_spdx_relations_and_references(tmp_path: Path):
    text = sbom.spdx(ITEMS, "the system in /", sbom.Distro("fedora", "41"))
    doc = json.loads(text)
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["documentNamespace"].startswith("https://rpm-bpf.invalid/")
    ids = {p["SPDXID"]: p for p in doc["packages"]}
    rel = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in doc["relationships"]}
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Subject") in rel
    objects = [p for p in doc["packages"] if p["SPDXID"].startswith("SPDXRef-BPF-")]
    assert len(objects) == len(ITEMS)
    for obj in objects:
        (parent,) = [a for a, kind, b in rel if kind == "CONTAINS" and b == obj["SPDXID"]]
        assert ("SPDXRef-Subject", "CONTAINS", parent) in rel and ids[parent]["name"] in (TOOL.name, EVIL.name)
    loader = next(p for p in objects if p["name"] == "/usr/sbin/xdp-loader@8240")
    assert loader["checksums"] == [{"algorithm": "SHA256", "checksumValue": "cd" * 32}]
    assert loader["primaryPackagePurpose"] == "OTHER" and "embedded at offset 8240" in loader["comment"]


def test_empty_inventory_is_a_valid_document():
    _validate_cyclonedx(sbom.cyclonedx([], "the repositories r", system=False))
    assert json.loads(sbom.spdx([], "the repositories r", system=False))["packages"][0]["name"] == (
        "the repositories r"
    )
