"""``rpm-bpf list``: every BPF object the installed packages ship, and what each holds."""

from __future__ import annotations

import argparse
import sys

import rpm_bpf.cli.options as options

FORMATS = ("text", "json", "html", "cyclonedx", "spdx")
MSG_SEE_ALSO = "see also: rpm-bpf verify (is the disk the packaged bytes?), rpm-bpf which (who loaded a program)"


def cmd_list(args: argparse.Namespace) -> int:
    from rpm_bpf.errors import RpmBpfError
    from rpm_bpf.flows.listing import listing
    from rpm_bpf.flows.which import cache_dir
    from rpm_bpf.report import listing as report
    from rpm_bpf.report import sbom
    from rpm_bpf.report.formats import finding_line
    from rpm_bpf.report.safetext import escape

    policy = options.load_policy(args)
    try:
        result = listing(
            args.root,
            policy,
            [*args.packages, *(args.package or [])],
            loaded=False if args.offline else None,
            embedded=args.embedded,
            only_loaded=args.loaded,
            only_outside=args.outside_bpfdir,
            cache_directory=None if args.no_cache else cache_dir(),
        )
        if args.format in sbom.FORMATS:
            distro = sbom.Distro(*result.distro)
            text = sbom.render(args.format, report.sbom_items(result), f"the system in {args.root}", distro)
        elif args.format == "json":
            text = report.render_json(result, args.root)
        elif args.format == "html":
            text = report.render_html(result, args.root)
        else:
            text = report.render_text(result)
    except RpmBpfError as exc:  # an unreadable rpm database, no SBOM library
        options.error(str(exc))
        return options.EXIT_USAGE
    for note in [] if args.quiet else result.notes:
        print(f"rpm-bpf: {escape(note)}", file=sys.stderr)
    for problem in result.errors:
        options.error(f"{problem.input}: {problem.message}")
    if args.format != "json":  # JSON carries them; the other formats are inventories: the reason for exit 1
        for finding in result.findings:
            if not finding.waived:
                print(finding_line(finding), file=sys.stderr)
    options.emit(text, args.output)
    if result.errors:
        return options.EXIT_USAGE
    return options.EXIT_FINDINGS if any(f.counts for f in result.findings) else options.EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    from rpm_bpf.sources.rpmheader import EMBEDDED_MODES, SIGNALS

    parser.description = (
        "Every BPF object the installed packages ship, from the rpm database and the files below the root: "
        "standalone objects in and outside the BPF directories, and objects embedded in executables and "
        "libraries (libbpf skeletons, Go, Rust). For each: path, package, its bpf(NAME) provides, programs "
        "(name, section, type, predicted kernel tags), license, BTF and CO-RE, the packaged digest and whether the "
        "disk still matches it, and which of its programs are loaded now (when the kernel can be asked: root, or "
        "CAP_BPF with CAP_SYS_ADMIN or CAP_PERFMON). A file that is not the packaged bytes is also a finding "
        "(bpf-object-modified, -missing). Exit 0, 1 when such a finding stands, 2 when an input cannot be read."
    )
    parser.epilog = MSG_SEE_ALSO
    parser.add_argument("packages", nargs="*", metavar="PACKAGE", help="only these installed packages")
    parser.add_argument(
        "--package", action="append", metavar="PACKAGE", help="only this installed package (repeatable)"
    )
    parser.add_argument("--root", default="/", metavar="DIR", help="list the system installed in DIR")
    kernel = parser.add_mutually_exclusive_group()
    kernel.add_argument(
        "--loaded",
        action="store_true",
        help="only objects with a program loaded now (asks the kernel; exit 2 without the privilege)",
    )
    parser.add_argument(
        "--outside-bpfdir", action="store_true", help="only standalone objects outside the BPF directories"
    )
    kernel.add_argument("--offline", action="store_true", help="do not ask the kernel which programs are loaded")
    parser.add_argument(
        "--embedded",
        choices=EMBEDDED_MODES,
        default=SIGNALS,
        help="which ELF files are searched for embedded objects: 'signals' (default) those a header signal "
        "names (libbpf, Go, Rust), 'all' every ELF file of every package (slower)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="describe every object again (no cache read or written; the disk is always compared)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no notes on stderr (what was not checked)")
    options.add_format(parser, FORMATS, "report format; cyclonedx and spdx are SBOMs (JSON)")
    options.add_output(parser)
    options.add_policy(parser, "policy file (severities and waivers of the findings)")
    parser.set_defaults(func=cmd_list)
