"""The ``rpm-bpf`` command: a thin front end over the engine.

Exit codes (all commands): 0 clean or only warnings, 1 errors found,
2 bad invocation or an input that could not be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Callable
from typing import Any

from . import __version__, rules
from .policy import SYSTEM_POLICY, Policy, PolicyError
from .report import FORMATS, RENDERERS, Report

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

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


def _progress(enabled: bool) -> Callable[[int, int], None] | None:
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


def _load_policy(args: argparse.Namespace) -> Policy:
    system = None if args.no_system_policy else SYSTEM_POLICY
    return Policy.load(args.policy or [], system=system)


class OutputError(Exception):
    """The report file cannot be written."""


def _use_color(args: argparse.Namespace) -> bool:
    """Colour like rpmlint: on a terminal only, unless asked; NO_COLOR (any value) turns "auto" off."""
    if args.color != "auto":
        return bool(args.color == "always")
    return (
        not args.output and sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    )


def _render(args: argparse.Namespace, report: Report) -> str:
    show_waived = args.show_waived or args.format in ("json", "sarif")
    if args.format == "text":
        from .report import render_text

        return render_text(report, show_waived=show_waived, color=_use_color(args))
    return RENDERERS[args.format](report, show_waived=show_waived)


def _add_color(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour text output by level: auto (default: on a terminal, unless NO_COLOR is set), always, never",
    )


def _emit(text: str, output: str | None) -> None:
    if not output:
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as stream:
            stream.write(text)
    except OSError as exc:
        raise OutputError(f"{output}: cannot write report: {exc.strerror}") from None


def _error(message: str) -> None:
    """One error line on stderr; names from inputs are escaped (see safetext)."""
    from .safetext import escape

    print(f"rpm-bpf: error: {escape(message)}", file=sys.stderr)


def _report_errors(report: Report) -> None:
    from .report import input_error_line

    for err in report.errors:
        print(input_error_line(err), file=sys.stderr)


def cmd_scan(args: argparse.Namespace) -> int:
    from .scan import scan

    policy = _load_policy(args)
    progress = _progress(sys.stderr.isatty() and not args.quiet)
    if args.against or args.baseline:
        from .gate import gate

        result = gate(
            args.paths,
            policy,
            args.against or [],
            args.baseline or [],
            progress,
            deep=args.deep,
            jobs=args.jobs,
            embedded=args.embedded,
        )
        args.show_waived = True  # a gate's report shows every waived finding, with its reason and expiry
    else:
        result = scan(args.paths, policy, progress, deep=args.deep, jobs=args.jobs, embedded=args.embedded)
    report = Report("scan", result.packages, result.findings, result.errors)
    _report_errors(report)
    _emit(_render(args, report), args.output)
    if args.exit_zero and report.exit_code == EXIT_FINDINGS:
        return EXIT_OK
    return report.exit_code


def cmd_verify(args: argparse.Namespace) -> int:
    from .rpmdb import RpmdbError
    from .verify import repair_command, verify

    policy = _load_policy(args)
    try:
        result = verify(args.root, policy, args.packages, private_db=not args.db_in_place)
        if args.loaded:
            from .which import cache_dir, loaded_findings

            result.findings += policy.apply(loaded_findings(args.root, result.errors, cache_dir()))
    except RpmdbError as exc:
        _error(str(exc))
        return EXIT_USAGE
    report = Report("verify", result.packages, result.findings, result.errors)
    _report_errors(report)
    _emit(_render(args, report), args.output)
    status = report.exit_code
    if args.repair:
        nevras = result.to_repair()
        unowned = [f.path for f in result.findings if f.rule == "bpf-object-unowned" and not f.waived]
        if unowned:
            print(
                f"rpm-bpf: {len(unowned)} unowned file(s) in the BPF directory belong to no package; "
                "reinstalling cannot fix them. Move them to /var/cache/bpf/<app>/ or /run/<app>/, or "
                "remove them.",
                file=sys.stderr,
            )
        if not nevras:
            print("rpm-bpf: nothing to repair with dnf", file=sys.stderr)
            return status
        command = repair_command(nevras, args.root, args.dnf_arg or [])
        from shlex import join

        from .safetext import escape

        if not args.yes:
            print("rpm-bpf: to restore the packaged objects, run:\n  " + escape(join(command)), file=sys.stderr)
            return status
        print("rpm-bpf: running: " + escape(join(command)), file=sys.stderr)
        import subprocess

        try:
            done = subprocess.run(command)
        except OSError as exc:
            _error(f"cannot run dnf: {exc.strerror}")
            return EXIT_USAGE
        if done.returncode != 0:
            _error(f"dnf reinstall failed ({done.returncode})")
            return EXIT_USAGE
        after = verify(args.root, policy, result.names_of(nevras))
        left = [
            f
            for f in after.findings
            if f.rule in ("bpf-object-modified", "bpf-object-missing", "bpf-object-attrs-changed") and not f.waived
        ]
        print(f"rpm-bpf: repaired {len(nevras)} package(s); {len(left)} finding(s) left", file=sys.stderr)
        return EXIT_FINDINGS if left or unowned else EXIT_OK
    return status


def _inspect_one(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """(description, error) for one object file, never following symlinks, never blocking."""
    import stat

    from . import elf
    from .package import MAX_CONTENT
    from .rootfs import describe_mode, read_user_file

    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            return None, f"{path}: is a symbolic link (to {os.readlink(path)}); name the object itself"
        if not stat.S_ISREG(mode):
            return None, f"{path}: is {describe_mode(mode)}, not a regular file"
        data = read_user_file(path, MAX_CONTENT)
    except OSError as exc:
        return None, f"{path}: {exc.strerror}"
    if not data:
        return None, f"{path}: empty file, not a BPF object"
    if elf.is_bpf_elf(data):
        try:
            return {"path": path, "kind": "object", **elf.inspect(data, path).to_dict(), "kernel": _kernel(data)}, None
        except elf.BpfElfError as exc:
            return None, str(exc)
    if elf.elf_machine(data) is None:
        return None, f"{path}: not an ELF file"
    embedded = elf.find_embedded(data)
    if not embedded:
        return None, f"{path}: ELF file without BPF code (no embedded BPF object found)"
    return {
        "path": path,
        "kind": "embedded",
        "embedded": [
            {"offset": e.offset, **e.object.to_dict(), "kernel": _kernel(data[e.offset : e.offset + e.object.size])}
            for e in embedded
        ],
    }, None


def _kernel(data: bytes) -> list[dict[str, Any]]:
    """What the kernel will report for each program once libbpf loaded the object (progtag.py)."""
    from .progtag import PredictionError, predict

    try:
        return [
            {
                "section": p.section,
                "name": p.name,
                "kernel_name": p.kernel_name,
                "type": p.prog_type,
                "insns": p.insns,
                "tag": p.tag,
                "tag_sha1": p.tag_sha1,
                "caveats": list(p.caveats),
            }
            for p in predict(data)
        ]
    except PredictionError:
        return []


def _inspect_text(info: dict[str, Any]) -> str:
    """The human description; every name from the object is escaped (see safetext)."""
    from .safetext import escape as e

    def describe(obj: dict[str, Any], indent: str) -> list[str]:
        lines = [
            f"{indent}ELF{obj['elf_class']} {obj['endianness']}-endian {obj['elf_type']}, {obj['size']} bytes",
            f"{indent}license: {e(obj['license']) if obj['license'] is not None else '(none)'}",
            f"{indent}BTF: {'yes' if obj['btf'] else 'no'}, BTF.ext: {'yes' if obj['btf_ext'] else 'no'}, "
            f"debug info: {'yes' if obj['debug_info'] else 'no'}",
            f"{indent}programs ({len(obj['programs'])}):",
        ]
        lines += [f"{indent}  {e(p['section'])}  {e(p['name'])}" for p in obj["programs"]]
        lines.append(f"{indent}maps ({len(obj['maps'])}): {', '.join(map(e, obj['maps'])) or '-'}")
        for p in obj.get("kernel", []):
            note = f"; {'; '.join(map(e, p['caveats']))}" if p["caveats"] else ""
            lines.append(
                f"{indent}as loaded: {e(p['kernel_name'])} ({p['type']}), {p['insns']} insns, "
                f"tag {p['tag']} (SHA-1 tag {p['tag_sha1']}){note}"
            )
        return lines

    if info["kind"] == "object":
        return "\n".join([f"{e(info['path'])}: BPF object", *describe(info, "  ")]) + "\n"
    out = [f"{e(info['path'])}: ELF file with {len(info['embedded'])} embedded BPF object(s)"]
    for emb in info["embedded"]:
        out.append(f"  at offset {emb['offset']}:")
        out += describe(emb, "    ")
    return "\n".join(out) + "\n"


def cmd_inspect(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    status = EXIT_OK
    for path in args.files:
        info, error = _inspect_one(path)
        if error or info is None:
            _error(error or f"{path}: cannot be described")
            status = EXIT_USAGE
        else:
            results.append(info)
    if args.format == "json":
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        sys.stdout.write("".join(_inspect_text(i) for i in results))
    return status


def cmd_rules(args: argparse.Namespace) -> int:
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


def cmd_explain(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for rule_id in args.rules:
        rule = rules.registry().get(rule_id)
        if rule is None:
            _error(f"unknown rule id {rule_id!r} (see rpm-bpf rules)")
            status = EXIT_USAGE
            continue
        print(f"{rule.id} ({rule.severity.label}): {rule.summary}")
        print(textwrap.fill(rule.description, width=78, initial_indent="  ", subsequent_indent="  "))
    return status


def cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .demo import run_demo
    from .samples import SampleBuildError

    try:
        return run_demo(Path(args.dir), args.format)
    except SampleBuildError as exc:
        _error(f"building the demo packages failed: {exc}")
        return EXIT_USAGE


def _configure_scan(scan: argparse.ArgumentParser) -> None:
    scan.description = (
        "Check RPM files against the BPF policy, and for object name conflicts across all packages given."
    )
    scan.add_argument("paths", nargs="+", metavar="PATH", help="RPM file, or directory searched for *.rpm")
    scan.add_argument("-f", "--format", choices=FORMATS, default="text", help="report format (default: text)")
    _add_color(scan)
    scan.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    scan.add_argument(
        "--policy", action="append", metavar="FILE", help="policy file applied after the system one (repeatable)"
    )
    scan.add_argument("--no-system-policy", action="store_true", help=f"do not read {SYSTEM_POLICY}")
    scan.add_argument("--show-waived", action="store_true", help="list waived findings in text and JUnit output")
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
        choices=("signals", "all"),
        default="signals",
        help="which ELF files are searched for embedded BPF objects: 'signals' (default) those "
        "of packages whose header says they may carry some (Requires libbpf, libxdp or "
        "libelf; Go binaries; cilium/ebpf, libbpf-rs, aya, bundled libbpf), 'all' every ELF "
        "file of every package (finds the rest, e.g. aya programs without such a signal; "
        "reads far more payload)",
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
        help="worker processes (default: one per CPU when scanning 512 or more inputs)",
    )
    scan.add_argument(
        "--exit-zero", action="store_true", help="exit 0 even when errors are found (unreadable inputs still give 2)"
    )
    scan.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    scan.set_defaults(func=cmd_scan)


def _configure_verify(verify: argparse.ArgumentParser) -> None:
    verify.description = (
        "Compare the installed BPF objects (and everything in the BPF directories) with what "
        "the rpm database recorded: digest, size, mode, owner, type. Files in the BPF "
        "directories that no package owns are reported too (when no PACKAGE is named)."
    )
    verify.add_argument("packages", nargs="*", metavar="PACKAGE", help="package names (default: all installed)")
    verify.add_argument("--root", default="/", metavar="DIR", help="verify the system installed in DIR")
    verify.add_argument("-f", "--format", choices=FORMATS, default="text")
    _add_color(verify)
    verify.add_argument("-o", "--output", metavar="FILE")
    verify.add_argument("--policy", action="append", metavar="FILE")
    verify.add_argument("--no-system-policy", action="store_true", help=f"do not read {SYSTEM_POLICY}")
    verify.add_argument("--show-waived", action="store_true")
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
    verify.set_defaults(func=cmd_verify)


def cmd_transaction_check(args: argparse.Namespace) -> int:
    from .rpmdb import RpmdbError, check_root
    from .transaction import MAX_REQUEST, RequestError, check_request, parse_request, response

    source = sys.stdin.buffer if args.request == "-" else None
    try:
        if source is None:
            from .rootfs import read_user_file

            data = read_user_file(args.request, MAX_REQUEST)
        else:
            data = source.read(MAX_REQUEST + 1)
            if len(data) > MAX_REQUEST:
                raise RequestError(f"larger than {MAX_REQUEST} bytes")
        # surrogateescape: a file name that is not UTF-8 still names its file
        request = parse_request(data.decode("utf-8", "surrogateescape"))
        check_root(args.root)
    except (OSError, RequestError, RpmdbError) as exc:
        where = "standard input" if source is not None else args.request
        _error(f"transaction request ({where}): {getattr(exc, 'strerror', None) or exc}")
        return EXIT_USAGE
    policy: list[Policy] = []

    def load_policy() -> Policy:
        if not policy:
            policy.append(_load_policy(args))
        return policy[0]

    try:
        answer = response(check_request(args.root, request, load_policy), args.mode)
    except RpmdbError as exc:
        _error(str(exc))
        return EXIT_USAGE
    if args.bpf_packages:
        try:
            with open(args.bpf_packages, "w", encoding="utf-8", errors="surrogateescape") as stream:
                stream.write("".join(f"{name}\n" for name in answer["bpf_packages"]))
        except OSError as exc:
            _error(f"{args.bpf_packages}: cannot write: {exc.strerror}")
            return EXIT_USAGE
    if args.json:
        sys.stdout.write(json.dumps(answer, indent=2) + "\n")
    else:
        for line in answer["notes"] + ([answer["message"]] if answer["message"] else []):
            print(line)
    return EXIT_FINDINGS if answer["verdict"] == "refuse" else EXIT_OK


def _configure_transaction_check(check: argparse.ArgumentParser) -> None:
    check.description = (
        "The check a package manager runs on a transaction (the DNF plugins call it). Before download, "
        "the bpf(NAME) provides of the packages depsolving chose are compared with each other and with the "
        "installed packages of ROOT that stay; before the transaction, the downloaded package files are "
        "judged with the per-package rules and for bpf-name-conflict. The request is JSON on stdin: "
        '{"candidates": [{"name": N, "epoch": E, "version": V, "release": R, "arch": A, "provides": [...]}], '
        '"incoming": [{"path": FILE, "nevra": NEVRA, "action": "install"}], '
        '"leaving": [{"name": N, "evr": "[E:]V-R", "arch": A}]}. '
        "Exit 0: accept (or warn), 1: refuse (mode enforce), 2: bad request."
    )
    check.add_argument("--root", default="/", metavar="DIR", help="the system the transaction changes")
    check.add_argument("--mode", choices=("enforce", "warn", "off"), default="enforce")
    check.add_argument("--json", action="store_true", help="answer in JSON (schema rpm-bpf/transaction-check/v1)")
    check.add_argument("--request", default="-", metavar="FILE", help="read the request from FILE (default: stdin)")
    check.add_argument(
        "--bpf-packages",
        metavar="FILE",
        help="write the names of the incoming packages with BPF content to FILE, one a line "
        "(what to verify after the transaction; for hosts that do not read --json)",
    )
    check.add_argument("--policy", action="append", metavar="FILE")
    check.add_argument("--no-system-policy", action="store_true", help=f"do not read {SYSTEM_POLICY}")
    check.set_defaults(func=cmd_transaction_check)


def _configure_inspect(inspect: argparse.ArgumentParser) -> None:
    inspect.add_argument("files", nargs="+", metavar="FILE")
    inspect.add_argument("-f", "--format", choices=("text", "json"), default="text")
    inspect.set_defaults(func=cmd_inspect)


def _configure_rules(rules_p: argparse.ArgumentParser) -> None:
    rules_p.add_argument("-f", "--format", choices=("text", "json"), default="text")
    rules_p.set_defaults(func=cmd_rules)


def _configure_explain(explain: argparse.ArgumentParser) -> None:
    explain.add_argument("rules", nargs="+", metavar="RULE")
    explain.set_defaults(func=cmd_explain)


def cmd_policy_show(args: argparse.Namespace) -> int:
    from .policy import render_effective

    sys.stdout.write(render_effective(_load_policy(args)))
    return EXIT_OK


def cmd_policy_check(args: argparse.Namespace) -> int:
    from .safetext import escape

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


def _configure_policy(policy: argparse.ArgumentParser) -> None:
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
    show.add_argument("--policy", action="append", metavar="FILE", help="policy file applied after the system one")
    show.add_argument("--no-system-policy", action="store_true", help=f"do not read {SYSTEM_POLICY}")
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


def cmd_repo_report(args: argparse.Namespace) -> int:
    from . import bpfdirs, inventory
    from .findings import InputError
    from .repodata import RepoError, read_repository

    policy = _load_policy(args)
    roots = {r for arch in ("noarch", bpfdirs.host_arch()) for r in bpfdirs.for_arch(arch).roots}
    repos, errors = [], []
    for location in args.repos:
        try:
            repos.append(read_repository(location, roots, inventory=True))
        except RepoError as exc:
            errors.append(InputError(location, str(exc).removeprefix(location + ": ")))
        except Exception as exc:  # our bug met on this repository: the others are still reported
            errors.append(InputError(location, f"internal error while reading it ({type(exc).__name__}: {exc})"))
    for error in errors:
        _error(f"{error.input}: {error.message}")
    doc = inventory.build(repos, policy.owner_provides)
    doc["input_errors"] = [{"input": e.input, "message": e.message} for e in errors]
    render = {"text": inventory.render_text, "json": inventory.render_json, "html": inventory.render_html}
    _emit(render[args.format](doc), args.output)
    return EXIT_USAGE if errors else EXIT_OK


def _configure_repo_report(report: argparse.ArgumentParser) -> None:
    report.description = (
        "An inventory of whole repositories or a compose, from their metadata only: which packages ship BPF "
        "objects and where, which provide bpf(NAME), name clashes, files that look like BPF objects outside the "
        "BPF directories (by name: metadata has no file types), and packages using a BPF directory without "
        "owning or requiring it. Exit 0, or 2 when a repository cannot be read (the others are still reported)."
    )
    report.add_argument("repos", nargs="+", metavar="REPO", help="a path or an http(s) URL with repodata/")
    report.add_argument("-f", "--format", choices=("text", "json", "html"), default="text")
    report.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    report.add_argument("--policy", action="append", metavar="FILE", help="for [bpfdir] owner-provides")
    report.add_argument("--no-system-policy", action="store_true", help=f"do not read {SYSTEM_POLICY}")
    report.set_defaults(func=cmd_repo_report)


def cmd_which(args: argparse.Namespace) -> int:
    from .findings import InputError
    from .loaded import KernelError, PrivilegeError, loaded_programs
    from .report import finding_dict, finding_line
    from .rpmdb import RpmdbError
    from .safetext import escape as e
    from .which import _Cache, cache_dir, match_dict, trace, unpackaged_findings

    try:
        programs = loaded_programs()
    except (PrivilegeError, KernelError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    errors: list[InputError] = []
    if args.ids:
        wanted = set(args.ids)
        programs = [p for p in programs if p.id in wanted]
        errors += [
            InputError(f"program {i}", "no loaded BPF program with this id")
            for i in sorted(wanted - {p.id for p in programs})
        ]
    cache = _Cache(None if args.no_cache else cache_dir())
    try:
        matches = trace(args.root, programs, errors, cache)
    except RpmdbError as exc:
        _error(str(exc))
        return EXIT_USAGE
    for error in errors:
        _error(f"{error.input}: {error.message}")
    findings = unpackaged_findings(matches) if args.strict else []
    if args.format == "json":
        doc = {
            "schema": "rpm-bpf/which/v1",
            "programs": [match_dict(m) for m in matches],
            "findings": [finding_dict(f) for f in findings],
            "input_errors": [{"input": x.input, "message": x.message} for x in errors],
            # objects whose predictions came from the cache, and objects read and predicted
            "cache": {"hits": cache.hits, "misses": cache.misses},
        }
        _emit(json.dumps(doc, indent=2) + "\n", args.output)
    elif args.format == "text":
        lines = []
        for m in matches:
            prog = m.program
            head = f"{prog.id} {prog.type} {e(prog.name) or '-'} {prog.tag}: {m.confidence}"
            where = "; ".join(
                f"{e(s.package.nevra)} {e(s.path)}{'' if s.offset is None else '@' + str(s.offset)} [{e(s.section)}]"
                for s in m.sources[:3]
            )
            loaders = ", ".join(f"{e(exe) or '?'} ({e(pkg) if pkg else 'no package'})" for _, exe, pkg in m.loaders)
            lines.append(head + (f" {where}" if where else "") + (f"; loaded by {loaders}" if loaders else ""))
        lines += [finding_line(f) for f in findings]
        _emit("".join(line + "\n" for line in lines), args.output)
    else:
        _emit(RENDERERS[args.format](Report("which", [], findings, errors), show_waived=True), args.output)
    if errors:
        return EXIT_USAGE
    return EXIT_FINDINGS if findings else EXIT_OK


def _configure_which(which: argparse.ArgumentParser) -> None:
    which.description = (
        "For each loaded BPF program: id, type, name, tag, the installed package and object file (and section) it "
        "came from, the loader's executable and its package, and how sure the match is: certain (tag and loader "
        "agree), tag (tag alone), weak (name and type only), unknown. The tags of packaged programs are predicted "
        "from the installed objects (standalone, and embedded in executables and libraries) and cached. Needs root, "
        "or CAP_BPF plus CAP_SYS_ADMIN or CAP_PERFMON (exit 2 without)."
    )
    which.add_argument("ids", nargs="*", type=int, metavar="PROG_ID", help="only these programs (default: all)")
    which.add_argument("--root", default="/", metavar="DIR", help="match against the rpm database of DIR")
    which.add_argument("-f", "--format", choices=FORMATS, default="text")
    which.add_argument("-o", "--output", metavar="FILE")
    which.add_argument(
        "--strict",
        action="store_true",
        help="a loaded program no package ships is a finding (bpf-program-unpackaged) and exit 1",
    )
    which.add_argument("--no-cache", action="store_true", help="predict every object again (no cache read or written)")
    which.set_defaults(func=cmd_which)


def _configure_demo(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--dir", default="demo-out", help="where to build (default: ./demo-out)")
    demo.add_argument("-f", "--format", choices=FORMATS, default="text")
    demo.set_defaults(func=cmd_demo)


# name, one-line help, where its options are defined ("module:function"; "" = here).
# Only the command being run has its options built: start-up stays cheap.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("scan", "check RPM files (and directories of them) against the BPF policy", ":_configure_scan"),
    ("verify", "check installed BPF objects against the rpm database", ":_configure_verify"),
    ("inspect", "describe BPF object files (or ELF files embedding them)", ":_configure_inspect"),
    (
        "transaction-check",
        "judge the packages a transaction brings in (JSON in and out, for package managers)",
        ":_configure_transaction_check",
    ),
    (
        "serve",
        "answer rpm-bpf commands sent one per line on stdin (one process for a whole transaction)",
        "serve:configure_serve",
    ),
    ("repo-report", "inventory of the BPF objects of whole repositories (text, JSON, HTML)", ":_configure_repo_report"),
    ("which", "which installed package each loaded BPF program came from", ":_configure_which"),
    ("rules", "list the rules, their ids and severities", ":_configure_rules"),
    ("explain", "explain rule ids (like rpmlint -e)", ":_configure_explain"),
    ("policy", "show the effective policy, or check policy files", ":_configure_policy"),
    (
        "rpmlint-enable",
        "enable BPFCheck in rpmlint (writes the rpmlint drop-in)",
        "buildhelpers:configure_rpmlint_enable",
    ),
    (
        "install-objects",
        "install BPF objects into the buildroot (behind %%bpf_install)",
        "buildhelpers:configure_install_objects",
    ),
    ("rpm-deps", "rpm dependency generator for BPF objects (behind bpf.attr)", "buildhelpers:configure_rpm_deps"),
    ("spec", "spec file templates for BPF packages", "spectemplates:configure_spec"),
    ("demo", "build sample good and bad packages with clang and rpmbuild, and scan them", ":_configure_demo"),
)


def _configurer(where: str) -> Callable[[argparse.ArgumentParser], None]:
    module, _, function = where.partition(":")
    if not module:
        configure: Callable[[argparse.ArgumentParser], None] = globals()[function]
        return configure
    from importlib import import_module

    configure = getattr(import_module(f"{__package__}.{module}"), function)
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
            _configurer(where)(sub_parser)
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
    from .rpmfile import quiet_rpm_log

    quiet_rpm_log()
    try:
        status: int = args.func(args)
        return status
    except (PolicyError, OutputError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # rpm-bpf's own bug: never exit 1, which means "errors found" to every host
        _error(f"internal error ({type(exc).__name__}: {exc}); please report it (RPM_BPF_DEBUG=1 shows where)")
        if os.environ.get("RPM_BPF_DEBUG"):
            import traceback

            traceback.print_exc()
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
