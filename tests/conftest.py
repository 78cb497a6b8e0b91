"""Fixtures for every test directory. Importing this file needs no build tool (clang, rpmbuild, bpftool):
the fixtures that build with them are in tests/integration/conftest.py and check for them when used."""

from __future__ import annotations

import shutil

import pytest

from tests.support.cli import nobody_runner, world_readable_engine


@pytest.fixture(scope="session")
def as_nobody():
    """Run rpm-bpf as an ordinary user (uid/gid 65534) through setpriv.

    The engine is copied to a world-readable folder (the checkout may not be
    readable by others) and run with Debian's python3, which has the rpm bindings.
    """
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot drop to an ordinary user")
    code = world_readable_engine()
    yield nobody_runner(code)
    shutil.rmtree(code, ignore_errors=True)
