"""``rpm-bpf which``'s own formats: the JSON document (schema ``rpm-bpf/which/v1``) and the text lines."""

from __future__ import annotations

import json
from typing import Any

from rpm_bpf.flows.which import Match, WhichResult
from rpm_bpf.report.formats import finding_dict, finding_line
from rpm_bpf.report.safetext import escape as e

SCHEMA = "rpm-bpf/which/v1"


def match_dict(m: Match) -> dict[str, Any]:
    prog = m.program
    return {
        "id": prog.id,
        "type": prog.type,
        "name": prog.name,
        "tag": prog.tag,
        "pinned": list(prog.pinned),
        "confidence": m.confidence,
        "reason": m.reason,
        "sources": [
            {
                "package": s.package.nevra,
                "path": s.path,
                "offset": s.offset,
                "section": s.section,
                "program": s.name,
                "caveats": list(s.caveats),
            }
            for s in m.sources
        ],
        "loaders": [{"pid": pid, "executable": exe, "package": pkg} for pid, exe, pkg in m.loaders],
    }


def render_json(result: WhichResult) -> str:
    doc = {
        "schema": SCHEMA,
        "programs": [match_dict(m) for m in result.matches],
        "findings": [finding_dict(f) for f in result.findings],
        "input_errors": [{"input": x.input, "message": x.message} for x in result.errors],
        # objects whose predictions came from the cache, and objects read and predicted
        "cache": {"hits": result.cache.hits, "misses": result.cache.misses},
    }
    if result.kernel is not None:  # what CO-RE relocations were resolved against
        doc["kernel_btf"] = {
            "path": result.kernel.path,
            "sha256": result.kernel.digest,
            "problem": result.kernel.problem,
        }
    return json.dumps(doc, indent=2) + "\n"


def render_text(result: WhichResult, show_waived: bool = False) -> str:
    lines = []
    for m in result.matches:
        prog = m.program
        head = f"{prog.id} {prog.type} {e(prog.name) or '-'} {prog.tag}: {m.confidence}"
        where = "; ".join(
            f"{e(s.package.nevra)} {e(s.path)}{'' if s.offset is None else '@' + str(s.offset)} [{e(s.section)}]"
            for s in m.sources[:3]
        )
        loaders = ", ".join(f"{e(exe) or '?'} ({e(pkg) if pkg else 'no package'})" for _, exe, pkg in m.loaders)
        lines.append(
            head
            + (f" {where}" if where else "")
            + (f"; loaded by {loaders}" if loaders else "")
            + (f"; {e(m.reason)}" if m.reason else "")
        )
    lines += [finding_line(f) for f in result.findings if show_waived or not f.waived]
    return "".join(line + "\n" for line in lines)
