"""``rpm-bpf admission``'s output: one line per load by an executable not on the list (text or JSON lines),
the allowlist (``--list``), and its status lines."""

from __future__ import annotations

import json
from typing import Any

from rpm_bpf.flows.admission import Allowlist, Event
from rpm_bpf.report.safetext import escape as e

SCHEMA = "rpm-bpf/admission-event/v1"


def event_line(event: Event, mode: str) -> str:
    d = event.to_dict(mode)
    name = f" {e(d['program_name'])}" if d["program_name"] else ""
    return (
        f"{d['time']} {d['verdict']}: pid {d['pid']} uid {d['uid']} {e(d['executable'])} ({e(d['comm'])}, "
        f"{d['device']} inode {d['inode']}) loads a {d['program_type']} program{name}"
    )


def event_json(event: Event, mode: str) -> str:
    return json.dumps({"schema": SCHEMA} | event.to_dict(mode), sort_keys=False)


def allowlist_dict(allowlist: Allowlist) -> dict[str, Any]:
    return {
        "schema": "rpm-bpf/admission-allowlist/v1",
        "executables": [
            {"path": a.path, "package": a.package, "device": f"{a.dev >> 20}:{a.dev & 0xFFFFF}", "inode": a.ino}
            for a in sorted(allowlist.entries.values(), key=lambda a: a.path)
        ],
        "packages": sorted(allowlist.packages),
        "excluded": [{"what": what, "why": why} for what, why in allowlist.excluded],
        "input_errors": [{"input": x.input, "message": x.message} for x in allowlist.errors],
    }


def allowlist_text(allowlist: Allowlist) -> str:
    lines = [
        f"{e(a.path)}  {e(a.package) if a.package else '(--allow)'}"
        for a in sorted(allowlist.entries.values(), key=lambda a: a.path)
    ]
    lines += [f"not admitted: {e(what)}: {e(why)}" for what, why in allowlist.excluded]
    return "".join(line + "\n" for line in lines)
