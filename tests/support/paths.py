"""The checkout the tests run from, and file-system helpers for test folders."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def open_to_others(path: Path) -> None:
    """Let an ordinary user reach ``path`` (pytest's temporary folders are 0700)."""
    path.chmod(path.stat().st_mode | 0o055)
    for parent in path.parents:
        if parent == parent.parent:
            break
        parent.chmod(parent.stat().st_mode | 0o005)


def remove_deep(path: Path) -> None:
    """Remove a directory tree too deep for shutil.rmtree (and pytest's own clean-up): rm uses no recursion."""
    subprocess.run(["rm", "-rf", "--", str(path)], check=False)
