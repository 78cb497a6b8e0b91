"""``rpm-bpf clean-cache``'s formats: text lines (what was removed and why) and JSON (``rpm-bpf/clean-cache/v1``)."""

from __future__ import annotations

import json
from typing import Any

from rpm_bpf.flows.caches import CleanResult
from rpm_bpf.report.formats import finding_dict
from rpm_bpf.report.safetext import escape as e
from rpm_bpf.rules.appdirs import STALE

SCHEMA = "rpm-bpf/clean-cache/v1"


def render_text(result: CleanResult, dry_run: bool) -> str:
    lines = []
    for removal in result.removals:
        what = "contents of " if removal.finding.rule == STALE else ""
        verb = "would remove" if dry_run else ("cannot remove" if removal.error else "removed")
        line = f"{verb} {what}{e(removal.path)} ({removal.finding.rule}: {e(removal.finding.detail.split(';')[0])})"
        if removal.error:
            line += f": {e(removal.error)}"
        lines.append(line)
    lines += [f"kept {e(path)}: {why}" for path, why in result.kept]
    failed = sum(1 for r in result.removals if r.error)
    done = len(result.removals) - failed
    summary = f"{done} cache entr{'y' if done == 1 else 'ies'} {'to remove' if dry_run else 'removed'}"
    lines.append(summary + (f", {failed} could not be removed" if failed else ""))
    return "\n".join(lines) + "\n"


def render_json(result: CleanResult, dry_run: bool) -> str:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "dry_run": dry_run,
        "removals": [
            {
                "path": r.path,
                "what": "contents" if r.finding.rule == STALE else "entry",
                "removed": not dry_run and r.error is None,
                "error": r.error,
                "finding": finding_dict(r.finding),
            }
            for r in result.removals
        ],
        "kept": [{"path": path, "reason": why} for path, why in result.kept],
        "errors": [{"input": err.input, "message": err.message} for err in result.errors],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
