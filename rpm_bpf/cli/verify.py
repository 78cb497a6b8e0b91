"""``rpm-bpf verify``: installed BPF objects against the rpm database, and ``--repair``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import rpm_bpf.cli.options as options

if TYPE_CHECKING:
    from rpm_bpf.flows.verify import VerifyResult
    from rpm_bpf.rules.policy import Policy

MSG_UNOWNED = (
    "rpm-bpf: {count} unowned file(s) in the BPF directory belong to no package; reinstalling cannot fix them. "
    "Move them to /var/cache/bpf/<app>/ or /run/<app>/, or remove them."
)
MSG_NOTHING = "rpm-bpf: nothing to repair with dnf"
MSG_RUN_THIS = "rpm-bpf: to restore the packaged objects, run:\n  {command}"
MSG_RUNNING = "rpm-bpf: running: {command}"
MSG_REPAIRED = "rpm-bpf: repaired {count} package(s); {left} finding(s) left"


def cmd_verify(args: argparse.Namespace) -> int:
    from rpm_bpf.flows.verify import verify
    from rpm_bpf.report.formats import Report
    from rpm_bpf.report.safetext import escape
    from rpm_bpf.sources.rpmdb import RpmdbError
    from rpm_bpf.sources.trust import TrustError

    policy = options.load_policy(args)
    try:
        result = verify(
            args.root,
            policy,
            args.packages,
            private_db=not args.db_in_place,
            loaded=args.loaded,
            trusted_keys=args.trusted_keys or [],
            trusted_certs=args.trusted_cert or [],
        )
    except (RpmdbError, TrustError) as exc:
        options.error(str(exc))
        return options.EXIT_USAGE
    for note in [] if args.quiet else result.notes:
        print(f"rpm-bpf: {escape(note)}", file=sys.stderr)
    report = Report("verify", result.packages, result.findings, result.errors, result.signatures)
    options.report_errors(report)
    options.emit(options.render(args, report), args.output)
    if args.repair:
        return _repair(args, policy, result, report.exit_code)
    return report.exit_code


def _repair(args: argparse.Namespace, policy: Policy, result: VerifyResult, status: int) -> int:
    from shlex import join

    from rpm_bpf.flows.verify import repair, repair_plan
    from rpm_bpf.report.safetext import escape

    plan = repair_plan(result, args.root, args.dnf_arg or [])
    if plan.unowned:
        print(MSG_UNOWNED.format(count=len(plan.unowned)), file=sys.stderr)
    if not plan.nevras:
        print(MSG_NOTHING, file=sys.stderr)
        return status
    if not args.yes:
        print(MSG_RUN_THIS.format(command=escape(join(plan.command))), file=sys.stderr)
        return status
    print(MSG_RUNNING.format(command=escape(join(plan.command))), file=sys.stderr)
    try:
        code, left = repair(plan, args.root, policy, result)
    except OSError as exc:
        options.error(f"cannot run dnf: {exc.strerror}")
        return options.EXIT_USAGE
    if code != 0:
        options.error(f"dnf reinstall failed ({code})")
        return options.EXIT_USAGE
    print(MSG_REPAIRED.format(count=len(plan.nevras), left=len(left)), file=sys.stderr)
    return options.EXIT_FINDINGS if left or plan.unowned else options.EXIT_OK


def configure(verify: argparse.ArgumentParser) -> None:
    verify.description = (
        "Compare the installed BPF objects (and everything in the BPF directories) with what "
        "the rpm database recorded: digest, size, mode, owner, type. Files in the BPF "
        "directories that no package owns are reported too (when no PACKAGE is named)."
    )
    verify.add_argument("packages", nargs="*", metavar="PACKAGE", help="package names (default: all installed)")
    verify.add_argument("--root", default="/", metavar="DIR", help="verify the system installed in DIR")
    options.add_format(verify)
    options.add_color(verify)
    options.add_output(verify)
    options.add_policy(verify)
    options.add_show_waived(verify)
    verify.add_argument(
        "--db-in-place",
        action="store_true",
        help="let librpm read ROOT's rpm database where it is instead of a private copy (for a "
        "package manager's hook right after its own transaction wrote that database)",
    )
    verify.add_argument(
        "--repair", action="store_true", help="say which dnf reinstall restores the changed objects (run it with --yes)"
    )
    verify.add_argument("-y", "--yes", action="store_true", help="with --repair: run dnf reinstall")
    verify.add_argument(
        "--dnf-arg",
        action="append",
        metavar="ARG",
        help="extra argument for the dnf reinstall of --repair (repeatable), e.g. --dnf-arg=--repo=x",
    )
    verify.add_argument(
        "--loaded",
        action="store_true",
        help="also check the loaded BPF programs: one that no installed package ships is bpf-program-unpackaged "
        "(see rpm-bpf which; needs root, or CAP_BPF plus CAP_SYS_ADMIN or CAP_PERFMON)",
    )
    verify.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no notes on stderr about what was not checked (as: header signatures, when no key is trusted)",
    )
    verify.add_argument(
        "--trusted-keys",
        action="append",
        metavar="FILE",
        help="ASCII-armored OpenPGP public key file (repeatable, as in /etc/pki/rpm-gpg/): every installed package "
        "with BPF code must carry a header signature by one of these keys or of the policy's [trust] keys; when "
        "neither names one, the host's dnf repository gpgkey=file:// keys. Keys in ROOT's rpm database never count",
    )
    verify.add_argument(
        "--trusted-cert",
        action="append",
        metavar="FILE",
        help="PEM X.509 certificate file (repeatable): the fs-verity and IMA file signatures of BPF objects must "
        "verify against these (with the policy's [trust] certificates); BPF objects without one are reported",
    )
    verify.set_defaults(func=cmd_verify)
