"""A native citizen of Fedora tooling: man pages, shell completion, colour, `rpm-bpf policy`.

Man pages are generated and rendered by groff and man for real; bash's own
completion machinery runs the generated completion; colour is judged on a
real pseudo-terminal (script(1)).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rpm_bpf.cli.main import COMMANDS
from rpm_bpf.rules import registry as rules
from tests.support.dnf import Dnf
from tests.support.paths import REPO
from tests.support.toolchain import require

pytestmark = pytest.mark.integration
ENV = dict(os.environ, PYTHONPATH=str(REPO))
BASH_COMPLETION = Path("/usr/share/bash-completion/completions/rpm-bpf")
ZSH_COMPLETION = Path("/usr/share/zsh/vendor-completions/_rpm-bpf")


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=kwargs.pop("env", ENV), timeout=300, **kwargs)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("man")
    proc = _run(sys.executable, "-m", "tools.manpages", str(out))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return {p.name: p for p in out.iterdir()}


def _rendered(page: Path) -> str:
    proc = _run("groff", "-man", "-Tutf8", "-P-cbou", "-K", "utf8", str(page))
    assert proc.returncode == 0
    return proc.stdout


def test_every_man_page_renders_without_a_warning(pages):
    assert set(pages) == {
        "rpm-bpf.1",
        "rpm-bpf-policy.5",
        "rpm-bpf-rules.7",
        "rpm-bpf-macros.7",
        "dnf-bpf-verify.8",
        "dnf5-bpf-verify.8",
    }
    for page in pages.values():
        proc = _run("groff", "-ww", "-man", "-z", "-K", "utf8", str(page))
        assert (proc.returncode, proc.stderr) == (0, ""), (page.name, proc.stderr)
        proc = _run("man", "--warnings=w", "-l", str(page), env=dict(ENV, MANWIDTH="80", MAN_KEEP_FORMATTING="0"))
        assert proc.returncode == 0 and proc.stderr == "", (page.name, proc.stderr)


def test_rpm_bpf_1_has_every_command_and_the_usual_sections(pages):
    text = _rendered(pages["rpm-bpf.1"])
    for heading in (
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
        "EXAMPLES",
        "SEE ALSO",
    ):
        assert re.search(rf"^{heading}$", text, re.M), heading
    for name, _, _ in COMMANDS:
        assert re.search(rf"^   {re.escape(name)}$", text, re.M), name  # a sub-section per command
        assert f"rpm-bpf {name} [-h]" in text, name  # with its usage
    assert "policy show" in text and "policy check" in text
    assert "--embedded {all,signals}" in text and "NO_COLOR" in text


def test_rules_7_has_every_rule_with_its_description(pages):
    text = " ".join(_rendered(pages["rpm-bpf-rules.7"]).split())
    for rule in rules.registry().values():
        assert rule.id in text
        assert " ".join(rule.description.split())[:60] in text.replace("‐ ", "").replace("- ", "-"), rule.id


def test_policy_5_and_macros_7_come_from_their_sources(pages):
    policy = _rendered(pages["rpm-bpf-policy.5"])
    for key in (
        "[severity]",
        "[[waiver]]",
        "rule =",
        "package =",
        "path =",
        "reason =",
        "expires =",
        "owner-provides",
        "[exempt]",
        "paths =",
    ):
        assert key in policy, key
    macros = _rendered(pages["rpm-bpf-macros.7"])
    defined = re.findall(r"^(%[\w(:)]+)", (REPO / "macros" / "macros.bpf").read_text(), re.M)
    assert len(defined) > 8
    for name in defined:
        assert name in macros, name
    for command in ("dnf", "dnf5"):
        text = _rendered(pages[f"{command}-bpf-verify.8"])
        assert f"{command} bpf-verify" in text and "--json" in text and "PACKAGE" in text


def test_setup_installed_the_man_pages():
    for name in ("rpm-bpf", "rpm-bpf-policy", "rpm-bpf-rules", "rpm-bpf-macros", "dnf-bpf-verify", "dnf5-bpf-verify"):
        proc = _run("man", "-w", name)
        assert proc.returncode == 0 and proc.stdout.strip(), (name, proc.stderr)


# --- shell completion ------------------------------------------------------------


def _complete(line: str, root: Path | None = None) -> list[str]:
    """What bash's completion offers for ``line`` (the cursor at its end), with the installed script."""
    words = line.split(" ")
    rpm_override = f'rpm() {{ command rpm --root "{root}" "$@"; }}\n' if root else ""
    script = (
        f"source /usr/share/bash-completion/bash_completion\nsource {BASH_COMPLETION}\n{rpm_override}"
        f"COMP_LINE={_quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
        f"COMP_WORDS=({' '.join(_quote(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        "_shtab_rpm_bpf rpm-bpf\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    proc = _run("bash", "--norc", "-c", script)
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def _quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def test_bash_completion_is_installed_and_registered():
    assert BASH_COMPLETION.is_file()
    proc = _run("bash", "--norc", "-c", f"source {BASH_COMPLETION}; complete -p rpm-bpf")
    assert proc.returncode == 0 and "-F _shtab_rpm_bpf rpm-bpf" in proc.stdout


def test_bash_completes_commands_options_formats_and_rule_ids():
    assert _complete("rpm-bpf ex") == ["explain"]
    assert set(_complete("rpm-bpf ")) == {name for name, _, _ in COMMANDS}
    assert set(_complete("rpm-bpf scan --format ")) == {"text", "json", "junit", "sarif"}
    assert "--embedded" in _complete("rpm-bpf scan --emb")
    assert set(_complete("rpm-bpf policy ")) == {"show", "check"}
    assert set(_complete("rpm-bpf explain bpf-object-no")) == {
        rule for rule in rules.registry() if rule.startswith("bpf-object-no")
    }
    assert set(_complete("rpm-bpf verify --color ")) == {"auto", "always", "never"}


def test_bash_completes_installed_package_names_for_verify(installed_root):
    offered = _complete("rpm-bpf verify xdp-", root=installed_root)
    assert offered == ["xdp-good"]


def test_zsh_completion_is_installed_and_parses():
    assert ZSH_COMPLETION.is_file()
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed (./setup.sh installs it)")
    proc = _run("zsh", "-n", str(ZSH_COMPLETION))
    assert proc.returncode == 0, proc.stderr
    text = ZSH_COMPLETION.read_text()
    assert "#compdef rpm-bpf" in text and "bpf-object-no-programs" in text


@pytest.fixture(scope="module")
def installed_root(dnf_repo, tmp_path_factory) -> Path:
    """A real installroot with xdp-good installed by dnf from the DNF tests' rpmbuild-built repository."""
    dnf = Dnf(dnf_repo, tmp_path_factory.mktemp("root") / "root", tmp_path_factory.mktemp("plugconf"))
    proc = dnf("install", "xdp-good-1.0")
    assert proc.returncode == 0, proc.stderr
    return dnf.root


# --- colour ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def misplaced(tmp_path_factory) -> Path:
    from rpm_bpf.samples import build as samples
    from rpm_bpf.samples.build import PkgFile, PkgSpec

    require("clang", "rpmbuild")
    work = tmp_path_factory.mktemp("colour")
    obj = samples.compile_bpf(samples.NO_LICENSE_C, work / "o.bpf.o", btf=False)
    return samples.build_rpm(PkgSpec("colourful", files=[PkgFile("/usr/share/colourful/o.o", obj)]), work / "b")


def _on_terminal(command: str, **env: str) -> str:
    """``command`` run on a real pseudo-terminal (script(1)); what it printed there."""
    proc = _run("script", "-qec", command, "/dev/null", env=dict(ENV, TERM="xterm", **env))
    return proc.stdout


def test_colour_on_a_terminal_only(misplaced):
    scan = f"{sys.executable} -m rpm_bpf scan -q --no-system-policy {misplaced}"
    tty = _on_terminal(scan)
    assert "\x1b[1;31mE: bpf-object-outside-bpfdir\x1b[0m" in tty
    assert "\x1b[1;33mW: bpf-object-no-license\x1b[0m" in tty
    piped = _run(*scan.split())
    assert "bpf-object-outside-bpfdir" in piped.stdout and "\x1b" not in piped.stdout
    assert "\x1b" not in _on_terminal(scan, NO_COLOR="1").replace("\x1b]", "")
    assert "\x1b" not in _on_terminal(scan + " --color=never")
    forced = _run(*scan.split(), "--color=always")
    assert "\x1b[1;31mE: bpf-object-outside-bpfdir\x1b[0m" in forced.stdout
    assert "\x1b[" not in _on_terminal(scan + " -f json")  # only text output is ever coloured


# --- rpm-bpf policy show / check ----------------------------------------------------------


def test_policy_show_prints_the_merged_policy_with_origins(tmp_path):
    mine = tmp_path / "gate.toml"
    mine.write_text(
        '[severity]\nbpf-object-no-btf = "info"\n"bpf-object-*-location" = "warning"\n\n'
        '[[waiver]]\nrule = "bpf-object-outside-bpfdir"\npath = "/opt/legacy/*"\n'
        'reason = "moving, bug \\"7\\""\nexpires = 2027-03-01\n\n[exempt]\npaths = ["/opt/testdata/*"]\n'
    )
    proc = _run(sys.executable, "-m", "rpm_bpf", "policy", "show", "--no-system-policy", "--policy", str(mine))
    assert proc.returncode == 0, proc.stderr
    shown = tomllib.loads(proc.stdout)  # a valid policy file itself
    assert shown["severity"]["bpf-object-no-btf"] == "info"
    assert shown["severity"]["bpf-object-exempt-location"] == "warning"
    assert shown["severity"]["bpf-name-conflict"] == "error"
    assert shown["exempt"]["paths"] == ["/opt/testdata/*"]
    assert shown["waiver"] == [
        {
            "rule": "bpf-object-outside-bpfdir",
            "package": "*",
            "path": "/opt/legacy/*",
            "reason": 'moving, bug "7"',
            "expires": __import__("datetime").date(2027, 3, 1),
        }
    ]
    lines = proc.stdout.splitlines()
    assert f'bpf-object-no-btf = "info"  # {mine}' in lines
    assert 'bpf-name-conflict = "error"  # built-in rule registry' in lines
    assert f"[[waiver]]  # {mine}" in lines
    assert "#   1. built-in default policy" in lines and f"#   2. {mine}" in lines
    again = tmp_path / "shown.toml"
    again.write_text(proc.stdout)
    assert _run(sys.executable, "-m", "rpm_bpf", "policy", "check", str(again)).returncode == 0


def test_policy_check_exit_codes(tmp_path):
    good, bad, fifo = tmp_path / "good.toml", tmp_path / "bad.toml", tmp_path / "fifo.toml"
    good.write_text('[severity]\nbpf-object-no-btf = "off"\n')
    bad.write_text("[severity]\nbpf-object-no-btf = 3\n")
    os.mkfifo(fifo)
    proc = _run(sys.executable, "-m", "rpm_bpf", "policy", "check", str(good))
    assert (proc.returncode, proc.stdout) == (0, f"{good}: ok\n")
    proc = _run(sys.executable, "-m", "rpm_bpf", "policy", "check", str(good), str(bad), str(fifo))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == f"{good}: ok"
    assert out[1].startswith(f"{bad}: [severity] bpf-object-no-btf: expected a string")
    assert out[2].startswith(f"{fifo}: cannot read policy file")
