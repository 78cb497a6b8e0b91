"""``rpm-bpf inspect``: describe BPF object files, or ELF files embedding them."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rpm_bpf.cli.options import EXIT_OK, EXIT_USAGE, add_format, error


def cmd_inspect(args: argparse.Namespace) -> int:
    from rpm_bpf.flows.inspect import describe_file
    from rpm_bpf.report.inspect import render_text

    results: list[dict[str, Any]] = []
    status = EXIT_OK
    for path in args.files:
        info, problem = describe_file(path)
        if problem or info is None:
            error(problem or f"{path}: cannot be described")
            status = EXIT_USAGE
        else:
            results.append(info)
    if args.format == "json":
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        sys.stdout.write("".join(render_text(i) for i in results))
    return status


def configure(inspect: argparse.ArgumentParser) -> None:
    inspect.add_argument("files", nargs="+", metavar="FILE")
    add_format(inspect, ("text", "json"))
    inspect.set_defaults(func=cmd_inspect)
