"""Man pages, generated from the sources that already say everything: never a second copy.

    python3 -m tools.manpages OUTDIR [--macros FILE] [--policy FILE]

* rpm-bpf(1): the argparse definitions of every command (cli.build_parser);
* rpm-bpf-policy(5): the built-in default policy file, whose comments
  document every key and the waiver syntax;
* rpm-bpf-rules(7): the rule registry (data/rules.toml);
* rpm-bpf-macros(7): macros/macros.bpf and its comments;
* dnf-bpf-verify(8), dnf5-bpf-verify(8): the DNF 4 command's argparse
  definitions (the DNF 5 command takes the same arguments).

Each page is written as reStructuredText and turned into troff by docutils'
man page writer (a maintained generator). Run at build time; docutils is
needed only then.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from rpm_bpf import __version__, data_text
from rpm_bpf.cli.main import COMMANDS, DESCRIPTION, build_parser
from rpm_bpf.rules import registry as rules

DATE = "2026-12-03"
REPO = Path(__file__).resolve().parent.parent
PAGES = (
    "rpm-bpf.1",
    "rpm-bpf-policy.5",
    "rpm-bpf-rules.7",
    "rpm-bpf-macros.7",
    "dnf-bpf-verify.8",
    "dnf5-bpf-verify.8",
)
_SPECIAL = re.compile(r"([\\*`|_\[\]<>:])")


def _inline(text: str) -> str:
    """Text as reST shows it literally: every markup character escaped."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _literal(text: str, indent: str = "    ") -> str:
    return "::\n\n" + "\n".join(indent + line if line.strip() else "" for line in text.rstrip().splitlines()) + "\n"


def _header(name: str, section: str, summary: str, group: str) -> str:
    """Title (the page name) and subtitle (its one-line summary), as docutils' man writer reads them."""
    return (
        f"{'=' * len(name)}\n{name}\n{'=' * len(name)}\n\n{'-' * len(summary)}\n{summary}\n{'-' * len(summary)}\n\n"
        f":Manual section: {section}\n:Manual group: {group}\n:Date: {DATE}\n:Version: rpm-bpf {__version__}\n\n"
    )


def _section(title: str) -> str:
    return f"{title}\n{'=' * len(title)}\n\n"


def _options(parser: argparse.ArgumentParser) -> str:
    """The parser's arguments as a reST option/definition list."""
    formatter = parser._get_formatter()
    out = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            takes = action.nargs != 0
            metavar = formatter._metavar_formatter(action, action.dest.upper())(1)[0] if takes else ""
            term = ", ".join(f"{opt} {metavar}".strip() for opt in action.option_strings)
        else:
            term = formatter._metavar_formatter(action, action.dest)(1)[0]
        help_text = formatter._expand_help(action) if action.help else ""
        out.append(f"**{_inline(term)}**\n    {_inline(help_text) or '-'}\n")
    return "\n".join(out) + "\n"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def page_rpm_bpf() -> str:
    parser = build_parser()
    helps = {name: text.replace("%%", "%") for name, text, _ in COMMANDS}
    text = _header("rpm-bpf", "1", "check and verify BPF objects in RPM packages", "rpm-bpf")
    text += _section("SYNOPSIS") + "**rpm-bpf** *COMMAND* [*OPTIONS*] ...\n\n"
    text += _section("DESCRIPTION") + _inline(DESCRIPTION) + "\n\n"
    text += (
        "The convention: objects a package delivers live under %{_libdir}/bpf (or %{_prefix}/lib/bpf for "
        "architecture-independent ones), two packages never ship the same object name there, and these "
        "files are never rewritten at run time. Objects compiled at start-up go to /var/cache/bpf/APP/, "
        "short-lived ones to /run/APP/.\n\n"
    ).replace("_", "\\_")
    text += _section("COMMANDS")
    for name, sub in _subcommands(parser).items():
        text += f"{name}\n{'-' * len(name)}\n\n{_inline(helps[name])}.\n\n"
        text += _literal(sub.format_usage().removeprefix("usage: ")) + "\n"
        if sub.description:
            text += _inline(sub.description) + "\n\n"
        text += _options(sub)
        for action_name, action in _subcommands(sub).items():
            text += f"**{name} {action_name}**\n\n" + _literal(action.format_usage().removeprefix("usage: ")) + "\n"
            if action.description:
                text += _inline(action.description) + "\n\n"
            text += _options(action)
    text += _section("EXIT STATUS")
    text += (
        "**0**\n    no errors (warnings and info may have been reported)\n\n"
        "**1**\n    at least one error-level finding that no waiver covers (transaction-check: the "
        "transaction is refused)\n\n"
        "**2**\n    bad invocation, an input that could not be read (the others are still checked), a "
        "broken policy file, or an internal error of rpm-bpf\n\n"
    )
    text += _section("FILES")
    text += (
        "**/etc/rpm-bpf/policy.toml**\n    system policy: severities, waivers, exempt locations "
        "(rpm-bpf-policy(5))\n\n"
        "**/etc/dnf/plugins/bpf.conf**, **/etc/dnf/libdnf5-plugins/bpf.conf**\n    the DNF 4 and DNF 5 "
        "plugins' configuration\n\n"
    ).replace("_", "\\_")
    text += _section("ENVIRONMENT")
    text += (
        "**NO_COLOR**\n    any value turns --color=auto off\n\n"
        "**RPM_BPF_DEBUG**\n    on an internal error, print the Python traceback\n\n"
    ).replace("_", "\\_")
    text += _section("EXAMPLES")
    text += (
        _literal(
            "rpm-bpf scan ~/rpmbuild/RPMS\n"
            "rpm-bpf scan --format sarif -o bpf.sarif build/*.rpm\n"
            "rpm-bpf scan --embedded=signals --policy gate.toml compose/Packages\n"
            "rpm-bpf verify --root /mnt/sysimage\n"
            "rpm-bpf explain bpf-name-conflict\n"
            "rpm-bpf policy show --policy gate.toml\n"
            "rpm-bpf policy check /etc/rpm-bpf/policy.toml"
        )
        + "\n"
    )
    text += _section("SEE ALSO") + (
        "rpm-bpf-policy(5), rpm-bpf-rules(7), rpm-bpf-macros(7), dnf-bpf-verify(8), "
        "dnf5-bpf-verify(8), rpmlint(1), rpmbuild(8), bpftool(8)\n"
    )
    return text


def page_policy(policy_text: str) -> str:
    text = _header("rpm-bpf-policy", "5", "rpm-bpf policy files", "rpm-bpf")
    text += _section("SYNOPSIS") + "/etc/rpm-bpf/policy.toml, and files given with **--policy**\n\n"
    text += _section("DESCRIPTION")
    text += (
        "Policy files are TOML. They are layered: the built-in default policy, then "
        "/etc/rpm-bpf/policy.toml (unless --no-system-policy), then each --policy FILE in order. Later "
        "files change severities and replace the [bpfdir] owner-provides and [exempt] paths lists; waivers "
        "from every file add up. Every key is checked when a file is loaded (type, rule ids and globs "
        "against the registry, no unknown key); a bad file is one error line naming file and key, and "
        "exit status 2. Policy files must be regular files of at most 1 MiB. **rpm-bpf policy show** "
        "prints the policy in force with the origin of each value; **rpm-bpf policy check FILE** "
        "validates a file.\n\n"
    ).replace("_", "\\_")
    comments = "\n".join(
        line.removeprefix("#").removeprefix(" ") for line in policy_text.splitlines() if line.startswith("#")
    )
    text += _section("KEYS AND WAIVER SYNTAX")
    text += "Every key, as the built-in default policy documents it:\n\n" + _literal(comments) + "\n"
    text += _section("THE BUILT-IN DEFAULT POLICY") + _literal(policy_text) + "\n"
    text += _section("SEE ALSO") + "rpm-bpf(1), rpm-bpf-rules(7)\n"
    return text


def page_rules() -> str:
    text = _header("rpm-bpf-rules", "7", "the rules of rpm-bpf", "rpm-bpf")
    text += _section("DESCRIPTION")
    text += (
        "Every rule rpm-bpf applies, in every front end (rpm-bpf scan and verify, the rpmlint check "
        "BPFCheck, the DNF 4 and DNF 5 plugins, the build-time check of the RPM macros). Rule ids are "
        "public interface, like rpmlint's message ids: they are never renamed. Severity: error (E), "
        "warning (W) or info (I); a policy file may change it (rpm-bpf-policy(5)). Scope: judged from "
        "one package, across a set of packages, or on an installed system.\n\n"
    )
    text += _section("RULES")
    for rule in rules.registry().values():
        if getattr(rule, "retired", False):
            continue
        text += f"{rule.id}\n{'-' * len(rule.id)}\n\n"
        text += f"*{rule.severity.label}, {rule.scope}*: {_inline(rule.summary)}.\n\n"
        text += _inline(rule.description) + "\n\n"
    text += _section("SEE ALSO") + "rpm-bpf(1), rpm-bpf-policy(5)\n"
    return text


def page_macros(macros_text: str) -> str:
    text = _header("rpm-bpf-macros", "7", "RPM macros for packaging BPF objects", "rpm-bpf")
    text += (
        _section("SYNOPSIS")
        + _literal("%bpf_install [-a] [-d SUBDIR] [-m MODE] FILE...\n%{_bpfdir}\n%{_bpfdir_noarch}")
        + "\n"
    )
    text += _section("DESCRIPTION")
    text += (
        "The rpm-bpf-macros package installs these macros (as %{_rpmconfigdir}/macros.d/macros.bpf), a "
        "dependency generator that gives every packaged BPF object a Provides: bpf(NAME) (NAME relative "
        "to the BPF directory), and a check of the built packages that rpmbuild runs at the end of every "
        "build. Each macro below is shown with the comment that documents it in the macro file.\n\n"
    ).replace("_", "\\_")
    text += _section("MACROS")
    block: list[str] = []  # the comment above a group of macros documents each of them
    for line in macros_text.splitlines():
        if line.startswith("#"):
            if block and block[-1] == "":
                block = []
            block.append(line.removeprefix("#").strip())
            continue
        if line.startswith("%"):
            if block and block[-1] == "":
                block.pop()
            name = line.split()[0]
            about = _inline(" ".join(block)) or "(no comment in the macro file)"
            text += f"**{_inline(name)}**\n    {about}\n\n" + _literal(line, indent="        ") + "\n"
            block.append("") if block and block[-1] != "" else None
        elif not line.strip():
            block = []
    text += _section("FILES") + (
        "**%{_rpmconfigdir}/macros.d/macros.bpf**\n    the macros\n\n"
        "**%{_rpmconfigdir}/fileattrs/bpf.attr**\n    the bpf(NAME) dependency "
        "generator\n\n"
    ).replace("_", "\\_")
    text += _section("SEE ALSO") + "rpm-bpf(1), rpm-bpf-policy(5), rpmbuild(8)\n"
    return text


def _dnf_parser() -> argparse.ArgumentParser:
    """The DNF 4 command's own argument definitions (dnf_plugin/bpf.py), without loading dnf."""
    import ast

    source = (REPO / "dnf_plugin" / "bpf.py").read_text()
    parser = argparse.ArgumentParser(prog="dnf bpf-verify")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == "set_argparser":
            for call in ast.walk(node):
                if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "add_argument":
                    args = [ast.literal_eval(a) for a in call.args]
                    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
                    parser.add_argument(*args, **kwargs)
    return parser


def page_dnf(command: str) -> str:
    parser = _dnf_parser()
    name = f"{command}-bpf-verify"
    text = _header(name, "8", "verify the installed BPF objects against the rpm database", "rpm-bpf")
    text += _section("SYNOPSIS") + f"**{command} bpf-verify** [**--json**] [*PACKAGE*...]\n\n"
    plugin = "python3-dnf-plugin-bpf" if command == "dnf" else "libdnf5-plugin-bpf"
    text += _section("DESCRIPTION")
    text += (
        f"A {command} command of {plugin}: runs rpm-bpf verify on the system {command} manages (its "
        "--installroot) and exits with its status. Compares the installed BPF objects, and everything in "
        "the BPF directories, with what the rpm database recorded: digest, size, mode, owner, type; "
        "files in the BPF directories that no package owns are reported when no PACKAGE is named.\n\n"
        "To see which BPF objects and programs the installed packages ship (standalone, embedded in "
        "executables and libraries, in archives), with their predicted kernel tags, whether one is loaded "
        "now, or as an SBOM (CycloneDX, SPDX): **rpm-bpf list** (see rpm-bpf(1)).\n\n"
    )
    text += _section("OPTIONS") + _options(parser)
    text += _section("EXIT STATUS") + (
        "**0**\n    clean\n\n**1**\n    errors found\n\n"
        "**2**\n    input errors (a package not installed, a file that cannot "
        "be read)\n\n"
    )
    text += _section("SEE ALSO") + f"rpm-bpf(1) (rpm-bpf list, rpm-bpf which), {command}(8), rpm-bpf-rules(7)\n"
    return text


def render(rst: str) -> str:
    """reST to troff with docutils' man page writer; warnings are errors."""
    from docutils.core import publish_string

    out = publish_string(
        rst,
        writer_name="manpage",
        settings_overrides={"report_level": 2, "halt_level": 2, "input_encoding": "utf-8", "output_encoding": "utf-8"},
    )
    return out.decode("utf-8") if isinstance(out, bytes) else out


def sources(macros: Path | None = None, policy: Path | None = None) -> dict[str, str]:
    macros_text = (macros or REPO / "macros" / "macros.bpf").read_text()
    policy_text = policy.read_text() if policy else data_text("policy.toml")
    return {
        "rpm-bpf.1": page_rpm_bpf(),
        "rpm-bpf-policy.5": page_policy(policy_text),
        "rpm-bpf-rules.7": page_rules(),
        "rpm-bpf-macros.7": page_macros(macros_text),
        "dnf-bpf-verify.8": page_dnf("dnf"),
        "dnf5-bpf-verify.8": page_dnf("dnf5"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m tools.manpages", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--macros", type=Path, help="the macro file (default: macros/macros.bpf of the source tree)")
    parser.add_argument("--policy", type=Path, help="the default policy (default: the package's)")
    parser.add_argument("--rst", action="store_true", help="write the reStructuredText too (PAGE.rst)")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, rst in sources(args.macros, args.policy).items():
        if args.rst:
            (args.outdir / f"{name}.rst").write_text(rst)
        (args.outdir / name).write_text(render(rst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
