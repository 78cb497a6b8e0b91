"""The real rpmlint (the virtualenv's, or Debian's) and its BPF message lines."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO

VENV_RPMLINT = REPO / ".venv" / "bin" / "rpmlint"
BPF_LINE = re.compile(r"^(?P<pkg>\S+?)\.(?P<arch>\w+):(?:\d+:)? (?P<level>[EWI]): (?P<rule>bpf\S*) ?(?P<rest>.*)$")


def rpmlint(*args, exe: Path | str = VENV_RPMLINT) -> subprocess.CompletedProcess:
    if not Path(exe).exists() and shutil.which(str(exe)) is None:
        pytest.skip(f"{exe} is not installed (./setup.sh installs it)")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=300)


def bpf_messages(proc: subprocess.CompletedProcess) -> set[tuple[str, str, str, str]]:
    """(package, level, rule, first word after it) of every BPF message line."""
    found = set()
    for line in proc.stdout.splitlines():
        m = BPF_LINE.match(line.strip())
        if m:
            found.add((m["pkg"], m["level"], m["rule"], m["rest"].split(" ")[0]))
    return found
