"""``rpm-bpf serve``: one process answering several rpm-bpf commands, for package-manager hooks.

A DNF 5 transaction asks rpm-bpf up to three times (``goal_resolved``,
``pre_transaction``, ``post_transaction``). Run as one process per hook,
each answer starts with ~60 ms of interpreter start-up and imports on the
transaction's critical path. The libdnf5 plugin instead starts this server
while dnf5 is still loading repositories, so the imports happen on the other
core, and each hook costs only the check itself.

Protocol, on stdin and stdout (stderr is the host's, as for a one-shot run):
a request is one line of JSON, ``{"argv": ["transaction-check", ...],
"input": "..."}`` (``input``: what the command would read on stdin; bytes
that are not UTF-8 pass through as they came); the answer is a line
``STATUS LENGTH`` then LENGTH bytes: exactly the exit status and standard
output of ``rpm-bpf ARGV...``. End of input ends the server.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Callable
from typing import BinaryIO, NamedTuple

MAX_LINE = 64 << 20  # the transaction request's own limit, plus room for argv
NOT_SERVED = frozenset({"serve", "demo"})  # no nesting; nothing that builds packages or runs for minutes


class Host(NamedTuple):
    """How to run a command in this process: ``rpm-bpf``'s own ``main`` and parser, handed down by it."""

    main: Callable[[list[str]], int]
    build_parser: Callable[[str], argparse.ArgumentParser]


def _warm_up(host: Host) -> None:
    """Import now what the hooks will need, while the host has other work to do."""
    from rpm_bpf.flows import transaction, verify  # noqa: F401
    from rpm_bpf.report import transaction as answer  # noqa: F401
    from rpm_bpf.rules import package  # noqa: F401
    from rpm_bpf.rules.policy import Policy
    from rpm_bpf.sources import bpfdirs, rpmdb  # noqa: F401

    for command in ("transaction-check", "verify"):
        host.build_parser(command)
    Policy.load([], system=None)  # the built-in policy: its parser and schema
    for arch in ("noarch", bpfdirs.host_arch()):
        bpfdirs.for_arch(arch)
    with contextlib.suppress(ImportError):
        import elftools.elf.elffile  # noqa: F401  (the first BPF object would pay for it)


def _run(host: Host, argv: list[str], data: bytes) -> tuple[int, bytes]:
    """``rpm-bpf ARGV`` in this process, with ``data`` on stdin; its exit status and stdout."""
    if not argv or argv[0] in NOT_SERVED:
        sys.stderr.write(f"rpm-bpf serve: {argv[0] if argv else 'an empty command'!r} is not served\n")
        return 2, b""
    saved = sys.stdin, sys.stdout
    out = io.BytesIO()
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape")
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", errors="backslashreplace", write_through=True)
    try:
        try:
            status = host.main(argv)
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2, already printed)
            status = exc.code if isinstance(exc.code, int) else 2
        sys.stdout.flush()
        return status, out.getvalue()
    finally:
        sys.stdin, sys.stdout = saved


def _request(line: bytes) -> tuple[list[str], bytes]:
    doc = json.loads(line.decode("utf-8", "surrogateescape"))
    if not isinstance(doc, dict):
        raise ValueError('a request is {"argv": [strings], "input": string}')
    argv, data = doc.get("argv"), doc.get("input", "")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv) or not isinstance(data, str):
        raise ValueError('a request is {"argv": [strings], "input": string}')
    if any("\0" in a for a in argv):
        raise ValueError("an argument with a NUL byte (no command line can carry one)")
    return argv, data.encode("utf-8", "surrogateescape")


def serve(host: Host, stdin: BinaryIO, channel: BinaryIO) -> int:
    _warm_up(host)
    while True:
        line = stdin.readline(MAX_LINE + 1)
        if not line:
            return 0
        if not line.endswith(b"\n"):
            if len(line) <= MAX_LINE:
                return 0  # the host closed its end mid-request: nobody to answer
            while line and not line.endswith(b"\n"):  # skip the rest of the oversized line
                line = stdin.readline(1 << 20)
            status, out = 2, b""
            sys.stderr.write(f"rpm-bpf serve: request larger than {MAX_LINE} bytes\n")
        else:
            try:
                argv, data = _request(line)
            except (ValueError, RecursionError) as exc:
                sys.stderr.write(f"rpm-bpf serve: bad request ({exc})\n")
                status, out = 2, b""
            else:
                status, out = _run(host, argv, data)
        sys.stderr.flush()
        channel.write(b"%d %d\n" % (status, len(out)) + out)
        channel.flush()


def cmd_serve(args: argparse.Namespace) -> int:
    # The protocol owns the original stdout; anything else that writes to
    # descriptor 1 (librpm, a child process) lands on stderr instead.
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    try:
        return serve(args.host, sys.stdin.buffer, channel)
    except BrokenPipeError:
        return 0  # the host went away
    finally:
        with contextlib.suppress(OSError):
            channel.close()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (__doc__ or "").split("\n\n", 1)[1].strip()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.set_defaults(func=cmd_serve)
