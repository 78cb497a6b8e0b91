"""``rpm-bpf which``: which installed package each loaded BPF program came from."""

from __future__ import annotations

import argparse

import rpm_bpf.cli.options as options
from rpm_bpf.sources.kernelbtf import KERNEL_BTF


def cmd_which(args: argparse.Namespace) -> int:
    from rpm_bpf.errors import RpmBpfError
    from rpm_bpf.flows.which import cache_dir, which
    from rpm_bpf.report import which as which_report
    from rpm_bpf.report.formats import Report

    strict = options.load_policy(args) if args.strict else None
    try:
        result = which(args.root, args.ids, strict, None if args.no_cache else cache_dir(), args.kernel_btf)
    except RpmBpfError as exc:  # no privilege, no bpftool, no readable rpm database
        options.error(str(exc))
        return options.EXIT_USAGE
    for problem in result.errors:
        options.error(f"{problem.input}: {problem.message}")
    report = Report("which", [], result.findings, result.errors)
    if args.format == "json":
        options.emit(which_report.render_json(result), args.output)
    elif args.format == "text":
        options.emit(which_report.render_text(result, show_waived=args.show_waived), args.output)
    else:
        args.show_waived = True
        options.emit(options.render(args, report), args.output)
    if report.errors:
        return options.EXIT_USAGE
    # --strict: any finding the policy leaves standing (not off, not waived) fails, whatever its level.
    return options.EXIT_FINDINGS if any(f.counts for f in result.findings) else options.EXIT_OK


def configure(which: argparse.ArgumentParser) -> None:
    which.description = (
        "For each loaded BPF program: id, type, name, tag, the installed package and object file (and section) it "
        "came from, the loader's executable and its package, and how sure the match is: certain (tag and loader "
        "agree), tag (tag alone), weak (name and type only), unknown. The tags of packaged programs are predicted "
        "from the installed objects (standalone, and embedded in executables and libraries) and cached. Needs root, "
        "or CAP_BPF plus CAP_SYS_ADMIN or CAP_PERFMON (exit 2 without)."
    )
    which.add_argument("ids", nargs="*", type=int, metavar="PROG_ID", help="only these programs (default: all)")
    which.add_argument("--root", default="/", metavar="DIR", help="match against the rpm database of DIR")
    options.add_format(which)
    options.add_output(which)
    options.add_policy(which, "policy file for --strict (severities, waivers), applied after the system one")
    options.add_show_waived(which)
    which.add_argument(
        "--strict",
        action="store_true",
        help="a loaded program no package ships is a finding (bpf-program-unpackaged), judged by the policy "
        "like every finding; exit 1 when one is left standing (not turned off, not waived)",
    )
    which.add_argument(
        "--kernel-btf",
        default=KERNEL_BTF,
        metavar="FILE",
        help="the BTF that CO-RE relocations are resolved against (default: the running kernel's, "
        f"{KERNEL_BTF}, whatever --root says: the programs were loaded into this kernel)",
    )
    which.add_argument("--no-cache", action="store_true", help="predict every object again (no cache read or written)")
    which.set_defaults(func=cmd_which)
