"""``rpm-bpf clean-cache``: remove the BPF caches that ``verify`` reports left behind or stale."""

from __future__ import annotations

import argparse
import sys

import rpm_bpf.cli.options as options

MSG_DB = "cannot read the rpm database; nothing was removed"


def cmd_clean_cache(args: argparse.Namespace) -> int:
    from rpm_bpf.flows.caches import clean
    from rpm_bpf.report.caches import render_json, render_text
    from rpm_bpf.report.formats import input_error_line
    from rpm_bpf.sources.rpmdb import RpmdbError

    policy = options.load_policy(args)
    try:
        result = clean(args.root, policy, args.apps, dry_run=args.dry_run)
    except RpmdbError as exc:
        options.error(f"{exc} ({MSG_DB})")
        return options.EXIT_USAGE
    except OSError as exc:  # the root itself cannot be opened
        options.error(f"{exc.filename or args.root}: {exc.strerror}")
        return options.EXIT_USAGE
    for err in result.errors:
        print(input_error_line(err), file=sys.stderr)
    if result.errors and not result.removals:
        print(
            f"rpm-bpf: {MSG_DB if any('rpm database' in e.input for e in result.errors) else 'see above'}",
            file=sys.stderr,
        )
    render = render_json if args.format == "json" else render_text
    options.emit(render(result, args.dry_run), args.output)
    failed = any(r.error for r in result.removals)
    return options.EXIT_USAGE if result.errors or failed else options.EXIT_OK


def configure(clean: argparse.ArgumentParser) -> None:
    clean.description = (
        "Remove what rpm-bpf verify reports in /var/cache/bpf: entries no installed package claims "
        "(bpf-cache-left-behind: removed whole) and the contents of caches older than their package's "
        "installation or the running kernel's (bpf-cache-stale: the directory and the files its package "
        "ships stay). Nothing outside /var/cache/bpf is touched, no symbolic link is followed, nothing on "
        "another file system is removed, and nothing at all when the rpm database cannot be read completely."
    )
    clean.add_argument("apps", nargs="*", metavar="APP", help="only these caches (/var/cache/bpf/APP)")
    clean.add_argument("--root", default="/", metavar="DIR", help="clean the system installed in DIR")
    clean.add_argument("-n", "--dry-run", action="store_true", help="list what would be removed, remove nothing")
    options.add_format(clean, ("text", "json"), "output format")
    options.add_output(clean)
    options.add_policy(clean)
    clean.set_defaults(func=cmd_clean_cache)
