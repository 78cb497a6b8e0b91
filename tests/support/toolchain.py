"""The build tools the integration fixtures need, checked where they are needed (not at import)."""

from __future__ import annotations

import shutil

import pytest

HINT = "run ./setup.sh --no-demo (the README's test command does)"


def require(*tools: str) -> None:
    """Fail (not skip: CI has them) the test that needs ``tools`` when one of them is not on PATH."""
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: {HINT}", pytrace=False)
