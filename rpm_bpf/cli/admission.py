"""``rpm-bpf admission``: only packaged, verified loaders may load BPF programs (a BPF LSM policy)."""

from __future__ import annotations

import argparse
import sys

import rpm_bpf.cli.options as options

MSG_PREFIX = "rpm-bpf admission: "
MSG_RAILS = (
    "refusing --enforce: these would be refused and must stay able to load BPF: {which}; "
    "admit them with --allow EXE (or the policy's [admission] executables) if that is intended"
)
MSG_NO_OBJECT = "the policy object {path} is not installed (the rpm-bpf-admission package ships it); or give --object"
MSG_PRIVILEGE = "rpm-bpf admission needs root (CAP_BPF, CAP_PERFMON and CAP_MAC_ADMIN) to load its BPF LSM program"
MSG_NO_LSM = "the BPF LSM is not active ({lsm} does not list bpf): boot with lsm=...,bpf"
MSG_NONE_RUNNING = "no rpm-bpf admission is running (no live process in {pid_file})"
MSG_POKED = "asked rpm-bpf admission (pid {pid}) to rebuild its allowlist"


def _say(text: str) -> None:
    from rpm_bpf.report.safetext import escape

    print(MSG_PREFIX + escape(text), file=sys.stderr, flush=True)


def cmd_admission(args: argparse.Namespace) -> int:
    import os

    from rpm_bpf.errors import RpmBpfError
    from rpm_bpf.flows import admission
    from rpm_bpf.report import admission as out

    if args.refresh:
        pid = admission.poke(args.pid_file)
        if pid is None:
            if not args.quiet:
                _say(MSG_NONE_RUNNING.format(pid_file=args.pid_file))
            return options.EXIT_OK if args.quiet else options.EXIT_FINDINGS
        if not args.quiet:
            _say(MSG_POKED.format(pid=pid))
        return options.EXIT_OK
    if not args.list and not admission.privileged():
        options.error(MSG_PRIVILEGE)
        return options.EXIT_USAGE
    if not args.list and admission.bpf_lsm_active() is False:
        options.error(MSG_NO_LSM.format(lsm=admission.LSM_LIST))
        return options.EXIT_USAGE
    policy = options.load_policy(args)

    def rebuild() -> admission.Allowlist:
        return admission.build(args.root, policy, args.allow or [], args.trusted_keys or [], args.trusted_cert or [])

    try:
        allowlist = rebuild()
    except RpmBpfError as exc:
        options.error(str(exc))
        return options.EXIT_USAGE
    for problem in allowlist.errors:
        options.error(f"{problem.input}: {problem.message}")
    for what, why in allowlist.excluded:
        _say(f"not admitted: {what}: {why}")
    if args.list:
        import json

        text = out.allowlist_text(allowlist) if args.format == "text" else json.dumps(out.allowlist_dict(allowlist))
        options.emit(text if text.endswith("\n") else text + "\n", args.output)
        return options.EXIT_OK
    if args.enforce:
        refused = admission.refused_critical(allowlist)
        if refused:
            options.error(MSG_RAILS.format(which="; ".join(f"{what} {path}" for what, path in refused)))
            return options.EXIT_USAGE
    obj = args.object or admission.object_path()
    if not os.path.isfile(obj):
        options.error(MSG_NO_OBJECT.format(path=obj))
        return options.EXIT_USAGE
    mode = "enforce" if args.enforce else "audit"
    stream = open(args.output, "a", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115

    def on_event(event: admission.Event) -> None:
        line = out.event_json(event, mode) if args.format == "json" else out.event_line(event, mode)
        stream.write(line + "\n")
        stream.flush()

    try:
        return admission.run(
            obj,
            rebuild,
            allowlist,
            args.enforce,
            on_event,
            lambda status: _say(status.text),
            root=args.root,
            pid_file=args.pid_file or None,
        )
    except RpmBpfError as exc:
        options.error(str(exc))
        return options.EXIT_USAGE
    finally:
        if stream is not sys.stdout:
            stream.close()


def configure(parser: argparse.ArgumentParser) -> None:
    from rpm_bpf.flows.admission import PID_FILE

    parser.description = (
        "Only packaged, verified loaders may load BPF programs. Builds an allowlist of executables from the rpm "
        "database (the files of installed packages that ship or embed BPF code, or require libbpf or libxdp, or "
        "that the policy names; each package verified first, each executable's bytes checked against its "
        "packaged digest), attaches a BPF LSM program on the bpf_prog_load hook, and reports every load by an "
        "executable not on the list (--audit) or refuses it with EPERM and reports it (--enforce). Runs in the "
        "foreground until SIGINT or SIGTERM; the policy ends with the process (never pinned). SIGHUP, "
        "'rpm-bpf admission --refresh' (the DNF hooks) or a change of the rpm database rebuilds the list. "
        "Needs root and an active BPF LSM (exit 2 without)."
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--audit", action="store_true", help="allow every load; report those not on the list")
    mode.add_argument("--enforce", action="store_true", help="refuse loads not on the list (EPERM), and report them")
    mode.add_argument("--list", action="store_true", help="print the allowlist and what was left off, then exit")
    mode.add_argument(
        "--refresh", action="store_true", help="ask the running rpm-bpf admission to rebuild its allowlist (SIGHUP)"
    )
    parser.add_argument("--root", default="/", metavar="DIR", help="build the allowlist from the rpm database of DIR")
    parser.add_argument(
        "--allow",
        action="append",
        metavar="EXE",
        help="admit this executable too (repeatable; as the file is now: device and inode)",
    )
    parser.add_argument(
        "--trusted-keys",
        action="append",
        metavar="FILE",
        help="OpenPGP public key file (repeatable): only packages whose header signature verifies against these "
        "(or the policy's [trust] keys; without either, the host's dnf repository keys) are admitted",
    )
    parser.add_argument("--trusted-cert", action="append", metavar="FILE", help="PEM certificate, as for verify")
    parser.add_argument(
        "-f", "--format", choices=("text", "json"), default="text", help="events (and --list) as text or JSON lines"
    )
    options.add_output(parser)
    options.add_policy(parser)
    parser.add_argument(
        "--object", metavar="FILE", help="the policy's BPF object (default: the packaged admission.bpf.o)"
    )
    parser.add_argument(
        "--pid-file",
        default=PID_FILE,
        metavar="FILE",
        help=f"where the running process writes its pid, for --refresh (default {PID_FILE}; empty: none)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="--refresh: say nothing, exit 0 when none runs")
    parser.set_defaults(func=cmd_admission)
