"""Shell completion for rpm-bpf, generated from the argparse definitions by shtab.

    python3 -m tools.completion bash|zsh > FILE

Run at build time (./setup.sh, the spec's %build); shtab is needed only
then. What each argument completes to follows from its metavar: FILE and
PATH complete file names, DIR directories, RULE the registry's rule ids
(written into the script: they change only with rpm-bpf), PACKAGE the
names of the installed packages (asked from rpm when Tab is pressed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from rpm_bpf.cli.main import build_parser
from rpm_bpf.rules import registry as rules

SHELLS = ("bash", "zsh")
_RULES = {"bash": "_rpm_bpf_rule_ids", "zsh": "_rpm_bpf_rule_ids"}
_PACKAGES = {"bash": "_rpm_bpf_packages", "zsh": "_rpm_bpf_packages"}


def _preamble(shell: str) -> str:
    ids = " ".join(rules.registry())
    if shell == "bash":
        # shtab calls these with IFS set to a newline: the word lists split on any blank here.
        return (
            f'_rpm_bpf_rule_ids() {{ local IFS=$\' \\t\\n\'; compgen -W "{ids}" -- "$1"; }}\n'
            "_rpm_bpf_packages() { local IFS=$' \\t\\n'; "
            'compgen -W "$(rpm -qa --qf \'%{NAME}\\n\' 2>/dev/null)" -- "$1"; }\n'
        )
    return (
        f"_rpm_bpf_rule_ids() {{ local -a ids=({ids}); _describe 'rule id' ids; }}\n"
        "_rpm_bpf_packages() { local -a names=(${(f)\"$(rpm -qa --qf '%{NAME}\\n' 2>/dev/null)\"}); "
        "_describe 'installed package' names; }\n"
    )


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def annotated_parser() -> argparse.ArgumentParser:
    """The whole rpm-bpf parser, each argument told what it completes to (shtab's ``complete``)."""
    import shtab

    by_metavar = {"FILE": shtab.FILE, "PATH": shtab.FILE, "DIR": shtab.DIRECTORY, "RULE": _RULES, "PACKAGE": _PACKAGES}
    parser = build_parser()
    for sub in _parsers(parser):
        for action in sub._actions:
            complete = by_metavar.get(action.metavar) if isinstance(action.metavar, str) else None
            if complete is not None:
                setattr(action, "complete", complete)  # noqa: B010 (shtab reads this attribute argparse lacks)
    return parser


def script(shell: str) -> str:
    import shtab

    return str(shtab.complete(annotated_parser(), shell=shell, preamble=_preamble(shell)))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in SHELLS:
        print(f"usage: python3 -m tools.completion {{{','.join(SHELLS)}}}", file=sys.stderr)
        return 2
    sys.stdout.write(script(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
