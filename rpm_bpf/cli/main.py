"""The ``rpm-bpf`` command: the command table, the parser, and ``main``.

Exit codes (all commands): 0 clean or only warnings, 1 errors found,
2 bad invocation or an input that could not be read.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from rpm_bpf import __version__
from rpm_bpf.cli.options import EXIT_OK, EXIT_USAGE, error
from rpm_bpf.errors import RpmBpfError

DESCRIPTION = """\
Check that RPM packages ship BPF object files the way the distribution
convention says: only under %{_libdir}/bpf (or %{_prefix}/lib/bpf for noarch
packages), one package per object name, never rewritten at run time."""

EPILOG = """\
exit status:
  0  no errors (warnings and info may have been reported)
  1  at least one error-level finding that no waiver covers
  2  bad invocation, an input could not be read (the others are still checked),
     or an internal error of rpm-bpf

files:
  /etc/rpm-bpf/policy.toml   system policy: severities and waivers (see rpm-bpf policy)
"""

Configure = Callable[[argparse.ArgumentParser], None]

# name, one-line help, and where its options are defined: "MODULE" (its ``configure``) or
# "MODULE:FUNCTION", a module of rpm_bpf.cli. Named, not imported: only the command being run is
# imported and built, so start-up stays cheap (tests/unit/test_layout.py checks these names like imports).
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("scan", "check RPM files (and directories of them) against the BPF policy", "scan"),
    ("verify", "check installed BPF objects against the rpm database", "verify"),
    ("inspect", "describe BPF object files (or ELF files embedding them)", "inspect"),
    (
        "transaction-check",
        "judge the packages a transaction brings in (JSON in and out, for package managers)",
        "transaction_check",
    ),
    (
        "serve",
        "answer rpm-bpf commands sent one per line on stdin (one process for a whole transaction)",
        "serve",
    ),
    ("repo-report", "inventory of the BPF objects of whole repositories (text, JSON, HTML)", "repo_report"),
    ("list", "every BPF object the installed packages ship (text, JSON, HTML, CycloneDX, SPDX)", "listing"),
    ("which", "which installed package each loaded BPF program came from", "which"),
    (
        "admission",
        "only packaged, verified loaders may load BPF programs (a BPF LSM policy from the rpm database)",
        "admission",
    ),
    ("clean-cache", "remove BPF caches no package claims, and stale ones (/var/cache/bpf)", "clean_cache"),
    ("rules", "list the rules, their ids and severities", "rules:configure_rules"),
    ("explain", "explain rule ids (like rpmlint -e)", "rules:configure_explain"),
    ("policy", "show the effective policy, or check policy files", "policy"),
    ("rpmlint-enable", "enable BPFCheck in rpmlint (writes the rpmlint drop-in)", "build:configure_rpmlint_enable"),
    (
        "install-objects",
        "install BPF objects into the buildroot (behind %%bpf_install)",
        "build:configure_install_objects",
    ),
    ("rpm-deps", "rpm dependency generator for BPF objects (behind bpf.attr)", "build:configure_rpm_deps"),
    ("spec", "spec file templates for BPF packages", "spec:configure_spec"),
    ("demo", "build sample good and bad packages with clang and rpmbuild, and scan them", "demo"),
)


def configurer(where: str) -> Configure:
    """The function that defines a command's options, from its ``COMMANDS`` entry."""
    from importlib import import_module

    module, _, function = where.partition(":")
    configure: Configure = getattr(import_module(f"rpm_bpf.cli.{module}"), function or "configure")
    return configure


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``command`` given) one with only that command's options."""
    parser = argparse.ArgumentParser(
        prog="rpm-bpf", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"rpm-bpf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text, where in COMMANDS:
        if command is None or command == name:
            # Each sub-parser costs argparse a gettext look-up on disk: only the one run is built.
            sub_parser = sub.add_parser(
                name, help=help_text, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
            )
            configurer(where)(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for stream in (sys.stdout, sys.stderr):
        # Never a UnicodeEncodeError under an ASCII or Latin-1 locale: what cannot be encoded is escaped.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in {c[0] for c in COMMANDS} else None)
    args = parser.parse_args(argv)
    # What `serve` runs each request with: this very function and parser, handed down (no import cycle).
    from rpm_bpf.cli.serve import Host

    args.host = Host(main, build_parser)
    from rpm_bpf.sources.rpmfile import quiet_rpm_log

    quiet_rpm_log()
    try:
        status: int = args.func(args)
        return status
    except RpmBpfError as exc:  # a policy file, the report file, ...: named in the message
        error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # rpm-bpf's own bug: never exit 1, which means "errors found" to every host
        error(f"internal error ({type(exc).__name__}: {exc}); please report it (RPM_BPF_DEBUG=1 shows where)")
        if os.environ.get("RPM_BPF_DEBUG"):
            import traceback

            traceback.print_exc()
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
