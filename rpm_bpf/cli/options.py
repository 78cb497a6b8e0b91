"""What the commands share: exit codes, the policy, format and output options, and how errors are shown.

Each option is defined here once, so that every command spells and explains
it the same way (they are public interface, as rpmlint's are).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from rpm_bpf.errors import RpmBpfError

if TYPE_CHECKING:
    from rpm_bpf.report.formats import Report
    from rpm_bpf.rules.policy import Policy

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

# The finding report formats (report/formats.py); a command that shows no findings has its own list.
FORMATS = ("text", "json", "junit", "sarif")


def add_policy(parser: argparse.ArgumentParser, help_text: str = "policy file applied after the system one") -> None:
    """``--policy FILE`` (repeatable) and ``--no-system-policy``."""
    from rpm_bpf.rules.policy import SYSTEM_POLICY

    parser.add_argument("--policy", action="append", metavar="FILE", help=f"{help_text} (repeatable)")
    parser.add_argument("--no-system-policy", action="store_true", help=f"do not read {SYSTEM_POLICY}")


def add_format(
    parser: argparse.ArgumentParser, choices: tuple[str, ...] = FORMATS, help_text: str = "report format"
) -> None:
    parser.add_argument("-f", "--format", choices=choices, default="text", help=f"{help_text} (default: text)")


def add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")


def add_show_waived(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--show-waived", action="store_true", help="list waived findings in text and JUnit output")


def progress(enabled: bool) -> Callable[[int, int], None] | None:
    if not enabled:
        return None

    def show(done: int, total: int) -> None:
        if total < 50:
            return  # short scans finish before a bar would help
        width = 30
        filled = width * done // total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} packages")
        if done == total:
            sys.stderr.write("\r" + " " * (width + 30) + "\r")
        sys.stderr.flush()

    return show


def load_policy(args: argparse.Namespace) -> Policy:
    """The policy in force for this run: the built-in default, the system file, then each --policy."""
    from rpm_bpf.rules.policy import SYSTEM_POLICY, Policy

    system = None if args.no_system_policy else SYSTEM_POLICY
    return Policy.load(args.policy or [], system=system)


class OutputError(RpmBpfError):
    """The report file cannot be written."""


def use_color(args: argparse.Namespace) -> bool:
    """Colour like rpmlint: on a terminal only, unless asked; NO_COLOR (any value) turns "auto" off."""
    if args.color != "auto":
        return bool(args.color == "always")
    return (
        not args.output and sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    )


def render(args: argparse.Namespace, report: Report) -> str:
    from rpm_bpf.report.formats import RENDERERS

    show_waived = args.show_waived or args.format in ("json", "sarif")
    if args.format == "text":
        from rpm_bpf.report.formats import render_text

        return render_text(report, show_waived=show_waived, color=use_color(args))
    return RENDERERS[args.format](report, show_waived=show_waived)


def add_color(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour text output by level: auto (default: on a terminal, unless NO_COLOR is set), always, never",
    )


def emit(text: str, output: str | None) -> None:
    """The report on stdout, or in the file of -o."""
    if not output:
        sys.stdout.write(text)
        return
    try:
        # A name that is not UTF-8 (kept as surrogates) is written as \udcNN, as on stdout: never a crash.
        with open(output, "w", encoding="utf-8", errors="backslashreplace") as stream:
            stream.write(text)
    except OSError as exc:
        raise OutputError(f"{output}: cannot write report: {exc.strerror}") from None


def error(message: str) -> None:
    """One error line on stderr; names from inputs are escaped (see safetext)."""
    from rpm_bpf.report.safetext import escape

    print(f"rpm-bpf: error: {escape(message)}", file=sys.stderr)


def report_errors(report: Report) -> None:
    from rpm_bpf.report.formats import input_error_line

    for err in report.errors:
        print(input_error_line(err), file=sys.stderr)
