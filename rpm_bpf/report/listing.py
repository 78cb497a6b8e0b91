"""``rpm-bpf list``'s formats: text in rpm's style, JSON (schema ``rpm-bpf/list/v1``), an HTML page
(report/htmlpage.py), and SBOMs (report/sbom.py)."""

from __future__ import annotations

import json
from typing import Any

from rpm_bpf import __version__
from rpm_bpf.bpf.embedded import LIGHT_SKELETON
from rpm_bpf.flows.listing import DISK_OK, Listed, ListResult
from rpm_bpf.report import sbom
from rpm_bpf.report.formats import finding_dict
from rpm_bpf.report.safetext import escape as e

SCHEMA = "rpm-bpf/list/v1"

_LABELS = {
    "objects": "BPF objects",
    "packages": "packages shipping them",
    "programs": "programs",
    "embedded": "embedded in ELF files",
    "archive_members": "members of ar archives",
    "light_skeletons": "light skeletons (loader programs, no ELF image)",
    "outside_bpfdir": "standalone outside the BPF directories",
    "changed": "not the packaged bytes (or not readable)",
    "loaded": "with a program loaded now",
}
_BAD = {"outside_bpfdir", "changed"}


def _programs(obj: Listed) -> list[dict[str, Any]]:
    return list((obj.description or {}).get("kernel", []))


def kind(obj: Listed) -> str:
    if obj.member is not None:
        return "archive member"
    if (obj.description or {}).get("elf_type") == LIGHT_SKELETON:
        return LIGHT_SKELETON
    return "standalone" if obj.offset is None else "embedded"


def where(obj: Listed) -> str:
    """The path; ``ARCHIVE(MEMBER)`` for an archive member, ``PATH@OFFSET`` for an embedded object."""
    return sbom_item(obj).name


def object_dict(obj: Listed) -> dict[str, Any]:
    d = obj.description or {}
    ref = obj.package
    return {
        "path": obj.path,
        "offset": obj.offset,
        "member": obj.member,
        "kind": kind(obj),
        "size": obj.size,
        "bpf_name": obj.bpf_name,
        "outside_bpfdir": obj.outside_bpfdir,
        "found_by": obj.found_by,
        "package": {
            "name": ref.name,
            "epoch": ref.epoch,
            "version": ref.version,
            "release": ref.release,
            "arch": ref.arch,
            "nevra": ref.nevra,
        },
        "sourcerpm": obj.sourcerpm,
        "bpf_provides": list(obj.bpf_provides),
        "programs": [
            {
                "section": p["section"],
                "name": p["name"],
                "kernel_name": p["kernel_name"],
                "type": p["type"],
                "tag": p["tag"],
                "tag_sha1": p["tag_sha1"],
                "caveats": p["caveats"],
            }
            for p in _programs(obj)
        ],
        "maps": d.get("maps", []),
        "license": d.get("license"),
        "btf": d.get("btf", False),
        "core": d.get("btf_ext", False),
        "sha256": obj.sha256,
        "packaged_digest": obj.packaged_digest,
        "disk": obj.disk,
        "loaded": None if obj.loaded is None else list(obj.loaded),
    }


def counts(objects: list[Listed]) -> dict[str, int]:
    return {
        "objects": len(objects),
        "packages": len({o.package for o in objects}),
        "programs": sum(len(_programs(o)) for o in objects),
        "embedded": sum(1 for o in objects if o.offset is not None and o.member is None),
        "archive_members": sum(1 for o in objects if o.member is not None),
        "light_skeletons": sum(1 for o in objects if kind(o) == LIGHT_SKELETON),
        "outside_bpfdir": sum(1 for o in objects if o.outside_bpfdir),
        "changed": sum(1 for o in objects if o.disk != DISK_OK),
        "loaded": sum(1 for o in objects if o.loaded),
    }


def document(result: ListResult, root: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "rpm-bpf", "version": __version__},
        "root": root,
        "loaded_checked": result.loaded_checked,
        "counts": counts(result.objects),
        "objects": [object_dict(o) for o in result.objects],
        "findings": [finding_dict(f) for f in result.findings],
        "input_errors": [{"input": i.input, "message": i.message} for i in result.errors],
        "notes": list(result.notes),
    }


def render_json(result: ListResult, root: str) -> str:
    return json.dumps(document(result, root), indent=2, ensure_ascii=False) + "\n"


def _flags(obj: Listed) -> str:
    """rpm -V's habit: one short column of what is true of the object."""
    d = obj.description or {}
    parts = [f"license {e(d['license'])}" if d.get("license") else "no license"]
    parts += ["BTF"] if d.get("btf") else []
    parts += ["CO-RE"] if d.get("btf_ext") else []
    if obj.disk != DISK_OK:
        parts.append(obj.disk.upper())
    if obj.loaded:
        parts.append("loaded: " + ",".join(str(i) for i in obj.loaded))
    return ", ".join(parts)


def render_text(result: ListResult) -> str:
    """One line per object (path, package, what it is), then one indented line per program."""
    lines = []
    for obj in result.objects:
        name = f" bpf({e(obj.bpf_name)})" if obj.bpf_name and obj.bpf_name in obj.bpf_provides else ""
        outside = " (outside the BPF directories)" if obj.outside_bpfdir else ""
        lines.append(f"{e(where(obj))}  {e(obj.package.nevra)}{name}{outside}: {_flags(obj)}")
        lines += [f"    {e(p['type'])}  {e(p['name'])}  {e(p['section'])}  tag {p['tag']}" for p in _programs(obj)]
    c = counts(result.objects)
    members = f", {c['archive_members']} in archives" if c["archive_members"] else ""
    lines.append(
        f"{c['objects']} BPF objects ({c['embedded']} embedded{members}) in {c['packages']} packages, "
        f"{c['programs']} programs"
        + (f", {c['loaded']} objects with a program loaded" if result.loaded_checked else "")
        + (f"; {c['changed']} not the packaged bytes" if c["changed"] else "")
        + "."
    )
    return "\n".join(lines) + "\n"


def render_html(result: ListResult, root: str) -> str:
    from rpm_bpf.report import htmlpage

    objects = [(where(listed), object_dict(listed)) for listed in result.objects]
    rows = [
        [
            name,
            o["package"]["nevra"],
            o["kind"],
            ", ".join(f"{p['name']} ({p['type']})" for p in o["programs"]),
            o["license"] or "",
            "yes" if o["core"] else "no",
            o["disk"],
            "not checked" if o["loaded"] is None else ", ".join(str(i) for i in o["loaded"]),
        ]
        for name, o in objects
    ]
    programs = [[name, p["name"], p["section"], p["type"], p["tag"]] for name, o in objects for p in o["programs"]]
    sections = [
        {
            "id": "objects",
            "title": "BPF objects",
            "columns": ["object", "package", "kind", "programs", "license", "CO-RE", "disk", "loaded"],
            "rows": rows,
        },
        {
            "id": "programs",
            "title": "Programs",
            "columns": ["object", "name", "section", "type", "tag"],
            "rows": programs,
        },
    ]
    intro = [
        ("The BPF objects the packages of ", False),
        (root, True),
        (f" ship, from its rpm database and files. Generated by rpm-bpf {__version__}.", False),
    ]
    return htmlpage.render(
        "rpm-bpf list", "BPF objects shipped by the installed packages", intro, _LABELS, counts(result.objects),
        _BAD, sections,
    )  # fmt: skip


def sbom_item(o: Listed) -> sbom.Item:
    return sbom.Item(
        o.package,
        o.path,
        o.offset,
        o.size,
        o.sha256,
        tuple(_programs(o)),
        (o.description or {}).get("license"),
        o.bpf_name,
        o.member,
    )


def sbom_items(result: ListResult) -> list[sbom.Item]:
    return [sbom_item(o) for o in result.objects]
