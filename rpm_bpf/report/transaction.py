"""The answer to a transaction check: what a host (the DNF plugins) acts on."""

from __future__ import annotations

from typing import Any

from rpm_bpf.flows.transaction import TransactionResult
from rpm_bpf.report.formats import finding_dict, finding_line, input_error_line

RESPONSE_SCHEMA = "rpm-bpf/transaction-check/v1"
MSG_REFUSED = "rpm-bpf: transaction refused: incoming packages break the BPF object policy"
MSG_WARNING = "rpm-bpf: incoming packages break the BPF object policy (mode=warn, continuing)"


def response(result: TransactionResult, mode: str) -> dict[str, Any]:
    """The answer a host acts on: the verdict, the lines to show, every finding (JSON report fields)."""
    refusing = result.refusing
    verdict = "accept" if not refusing or mode == "off" else ("refuse" if mode == "enforce" else "warn")
    message = ""
    if verdict != "accept":
        head = MSG_REFUSED if verdict == "refuse" else MSG_WARNING
        message = head + ":\n" + "\n".join("  " + finding_line(f) for f in refusing)
    return {
        "schema": RESPONSE_SCHEMA,
        "verdict": verdict,
        "mode": mode,
        "message": message,
        "notes": [finding_line(f) for f in result.notes] + [input_error_line(e) for e in result.errors],
        "findings": [finding_dict(f) for f in result.findings],
        "bpf_packages": sorted(result.bpf_names),
        "input_errors": [{"input": e.input, "message": e.message} for e in result.errors],
    }
