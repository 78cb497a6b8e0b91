"""``rpm-bpf transaction-check``: the check a package manager runs on a transaction."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from rpm_bpf.cli.options import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, add_policy, error, load_policy

if TYPE_CHECKING:
    from rpm_bpf.rules.policy import Policy


def cmd_transaction_check(args: argparse.Namespace) -> int:
    from rpm_bpf.errors import RpmBpfError
    from rpm_bpf.flows.transaction import check_request
    from rpm_bpf.report.transaction import response
    from rpm_bpf.sources.request import read_request
    from rpm_bpf.sources.rpmdb import RpmdbError, check_root

    try:
        request = read_request(args.request, sys.stdin.buffer if args.request == "-" and sys.stdin else None)
        check_root(args.root)
    except (OSError, RpmBpfError) as exc:
        where = "standard input" if args.request == "-" else args.request
        error(f"transaction request ({where}): {getattr(exc, 'strerror', None) or exc}")
        return EXIT_USAGE
    loaded: list[Policy] = []

    def policy() -> Policy:
        """Read only when some package needs judging: most transactions bring nothing BPF-related."""
        if not loaded:
            loaded.append(load_policy(args))
        return loaded[0]

    try:
        answer = response(check_request(args.root, request, policy), args.mode)
    except RpmdbError as exc:
        error(str(exc))
        return EXIT_USAGE
    if args.bpf_packages:
        try:
            with open(args.bpf_packages, "w", encoding="utf-8", errors="surrogateescape") as stream:
                stream.write("".join(f"{name}\n" for name in answer["bpf_packages"]))
        except OSError as exc:
            error(f"{args.bpf_packages}: cannot write: {exc.strerror}")
            return EXIT_USAGE
    if args.json:
        sys.stdout.write(json.dumps(answer, indent=2) + "\n")
    else:
        for line in answer["notes"] + ([answer["message"]] if answer["message"] else []):
            print(line)
    return EXIT_FINDINGS if answer["verdict"] == "refuse" else EXIT_OK


def configure(check: argparse.ArgumentParser) -> None:
    check.description = (
        "The check a package manager runs on a transaction (the DNF plugins call it). Before download, "
        "the bpf(NAME) provides of the packages depsolving chose are compared with each other and with the "
        "installed packages of ROOT that stay; before the transaction, the downloaded package files are "
        "judged with the per-package rules and for bpf-name-conflict. The request is JSON on stdin: "
        '{"candidates": [{"name": N, "epoch": E, "version": V, "release": R, "arch": A, "provides": [...]}], '
        '"incoming": [{"path": FILE, "nevra": NEVRA, "action": "install"}], '
        '"leaving": [{"name": N, "evr": "[E:]V-R", "arch": A}]}. '
        "Exit 0: accept (or warn), 1: refuse (mode enforce), 2: bad request."
    )
    check.add_argument("--root", default="/", metavar="DIR", help="the system the transaction changes")
    check.add_argument("--mode", choices=("enforce", "warn", "off"), default="enforce")
    check.add_argument("--json", action="store_true", help="answer in JSON (schema rpm-bpf/transaction-check/v1)")
    check.add_argument("--request", default="-", metavar="FILE", help="read the request from FILE (default: stdin)")
    check.add_argument(
        "--bpf-packages",
        metavar="FILE",
        help="write the names of the incoming packages with BPF content to FILE, one a line "
        "(what to verify after the transaction; for hosts that do not read --json)",
    )
    add_policy(check)
    check.set_defaults(func=cmd_transaction_check)
