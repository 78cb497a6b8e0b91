"""``rpm-bpf policy show|check``: the effective policy, and policy files checked."""

from __future__ import annotations

import argparse
import sys

from rpm_bpf.cli.options import EXIT_OK, EXIT_USAGE, add_policy, load_policy


def cmd_policy_show(args: argparse.Namespace) -> int:
    from rpm_bpf.rules.policy import render_effective

    sys.stdout.write(render_effective(load_policy(args)))
    return EXIT_OK


def cmd_policy_check(args: argparse.Namespace) -> int:
    from rpm_bpf.report.safetext import escape
    from rpm_bpf.rules.policy import Policy, PolicyError

    status = EXIT_OK
    for path in args.files:
        try:
            Policy.load([path], system=None)
        except PolicyError as exc:
            print(escape(str(exc)))
            status = EXIT_USAGE
        else:
            print(f"{escape(path)}: ok")
    return status


def configure(policy: argparse.ArgumentParser) -> None:
    from rpm_bpf.rules.policy import SYSTEM_POLICY

    policy.description = (
        "Policy files: severities, waivers, BPF directory owners, exempt locations (see rpm-bpf-policy(5))."
    )
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        help="print the effective policy, each value with the file it came from",
        description="Print the merged policy in force (the built-in default, then "
        f"{SYSTEM_POLICY}, then each --policy) as TOML, each value with a "
        "comment naming the file it came from, like rpmlint --print-config.",
    )
    add_policy(show)
    show.set_defaults(func=cmd_policy_show)
    check = actions.add_parser(
        "check",
        help="validate policy files (exit 0: all valid, 2: not)",
        description="Check each FILE as a policy file on top of the built-in default: "
        "TOML syntax, every key and type, rule ids and globs. Prints "
        "'FILE: ok' or the error; exit 0 when all are valid, 2 otherwise.",
    )
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=cmd_policy_check)
