"""``rpm-bpf scan``: RPM files against the BPF policy, and the gate (``--against``, ``--baseline``)."""

from __future__ import annotations

import argparse
import sys

import rpm_bpf.cli.options as options


def cmd_scan(args: argparse.Namespace) -> int:
    from rpm_bpf.flows.scan import scan
    from rpm_bpf.report.formats import Report

    policy = options.load_policy(args)
    shown = options.progress(sys.stderr.isatty() and not args.quiet)
    if args.against or args.baseline:
        from rpm_bpf.flows.gate import gate

        result = gate(
            args.paths,
            policy,
            args.against or [],
            args.baseline or [],
            shown,
            deep=args.deep,
            jobs=args.jobs,
            embedded=args.embedded,
        )
        args.show_waived = True  # a gate's report shows every waived finding, with its reason and expiry
    else:
        result = scan(args.paths, policy, shown, deep=args.deep, jobs=args.jobs, embedded=args.embedded)
    report = Report("scan", result.packages, result.findings, result.errors)
    options.report_errors(report)
    options.emit(options.render(args, report), args.output)
    if args.exit_zero and report.exit_code == options.EXIT_FINDINGS:
        return options.EXIT_OK
    return report.exit_code


def configure(scan: argparse.ArgumentParser) -> None:
    from rpm_bpf.sources.rpmheader import EMBEDDED_MODES, FULL_RECALL

    scan.description = (
        "Check RPM files against the BPF policy, and for object name conflicts across all packages given."
    )
    scan.add_argument("paths", nargs="+", metavar="PATH", help="RPM file, or directory searched for *.rpm")
    options.add_format(scan)
    options.add_color(scan)
    options.add_output(scan)
    options.add_policy(scan)
    options.add_show_waived(scan)
    scan.add_argument(
        "--against",
        action="append",
        metavar="REPO",
        help="also compare the packages with a yum/dnf repository (a path or an http(s) URL with repodata/; "
        "repeatable): bpf-name-conflict with what it ships, from its metadata only, leaving out packages the "
        "new ones replace or obsolete",
    )
    scan.add_argument(
        "--baseline",
        action="append",
        metavar="OLD",
        help="the previous build (RPM files or directories; repeatable): findings it already had are reported "
        "as existing and do not fail the scan",
    )
    scan.add_argument(
        "--embedded",
        choices=EMBEDDED_MODES,
        default=FULL_RECALL,
        help="which ELF files are searched for embedded BPF objects: 'all' (default) every ELF file of every "
        "package (each payload decompressed once, up to its last ELF file); 'signals' only those of packages "
        "whose header says they may carry some (Requires libbpf, libxdp or libelf; Go binaries; cilium/ebpf, "
        "libbpf-rs, aya, bundled libbpf), for mass audits: it misses programs that dlopen() libbpf, Go built "
        "with cgo, objects embedded without libbpf",
    )
    scan.add_argument(
        "--deep",
        action="store_true",
        help="read every file of every payload instead of triaging from headers (slow; "
        "the reference the triage is measured against)",
    )
    scan.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes (default: one per CPU when scanning 512 or more inputs, or 16 MB or more)",
    )
    scan.add_argument(
        "--exit-zero", action="store_true", help="exit 0 even when errors are found (unreadable inputs still give 2)"
    )
    scan.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    scan.set_defaults(func=cmd_scan)
