"""``rpm-bpf rules`` and ``rpm-bpf explain``: the rule registry."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from rpm_bpf.cli.options import EXIT_OK, EXIT_USAGE, add_format, error


def cmd_rules(args: argparse.Namespace) -> int:
    from rpm_bpf.rules import registry as rules

    registry = rules.registry()
    if args.format == "json":
        sys.stdout.write(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "severity": r.severity.label,
                        "scope": r.scope,
                        "summary": r.summary,
                        "description": r.description,
                    }
                    for r in registry.values()
                ],
                indent=2,
            )
            + "\n"
        )
        return EXIT_OK
    for r in registry.values():
        print(f"{r.severity.letter}  {r.id:28} {r.summary}")
    return EXIT_OK


def configure_rules(rules_p: argparse.ArgumentParser) -> None:
    add_format(rules_p, ("text", "json"))
    rules_p.set_defaults(func=cmd_rules)


def cmd_explain(args: argparse.Namespace) -> int:
    from rpm_bpf.rules import registry as rules

    status = EXIT_OK
    for rule_id in args.rules:
        rule = rules.registry().get(rule_id)
        if rule is None:
            error(f"unknown rule id {rule_id!r} (see rpm-bpf rules)")
            status = EXIT_USAGE
            continue
        print(f"{rule.id} ({rule.severity.label}): {rule.summary}")
        print(textwrap.fill(rule.description, width=78, initial_indent="  ", subsequent_indent="  "))
    return status


def configure_explain(explain: argparse.ArgumentParser) -> None:
    explain.add_argument("rules", nargs="+", metavar="RULE")
    explain.set_defaults(func=cmd_explain)
