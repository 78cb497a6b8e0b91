"""Reading the rpm database of a system (``/`` or an installroot) into the package model."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import rpm

from . import bpfdirs
from .package import Package
from .rpmfile import package_from_header


class RpmdbError(Exception):
    """The rpm database cannot be opened or read."""


def _transaction_set(root: str) -> rpm.TransactionSet:
    ts = rpm.TransactionSet(root)
    # Headers in the database were checked when installed; re-checking every one is slow.
    ts.setVSFlags(getattr(rpm, "_RPMVSF_NOSIGNATURES", 0) | getattr(rpm, "_RPMVSF_NODIGESTS", 0)
                  | getattr(rpm, "RPMVSF_NOHDRCHK", 0))
    return ts


def _read(root: str, lookups: Callable[[rpm.TransactionSet], Iterable[rpm.mi]]) -> Iterator[Package]:
    """The packages the match iterators of ``lookups`` give, each once."""
    ts = _transaction_set(root)
    seen: set[int] = set()
    try:
        for matches in lookups(ts):
            for hdr in matches:
                if matches.instance() in seen or hdr[rpm.RPMTAG_NAME] == "gpg-pubkey":
                    continue
                seen.add(matches.instance())
                yield package_from_header(hdr, bpfdirs.for_arch, origin="rpmdb")
    except rpm.error as exc:
        raise RpmdbError(f"{root}: cannot read the rpm database: {exc}") from None
    finally:
        ts.closeDB()


def installed(root: str = "/", names: Iterable[str] = ()) -> Iterator[Package]:
    """Installed packages (all, or those named), with their BPF-relevant files only."""
    names = list(names)
    return _read(root, lambda ts: (ts.dbMatch("name", name) for name in names) if names else [ts.dbMatch()])


def owners(root: str, paths: Iterable[str]) -> Iterator[Package]:
    """Installed packages owning any of ``paths``, each once.

    An index look-up per path (rpm's file index, as ``rpm -qf``): what the
    DNF plugin needs to know about the installed side of a name conflict,
    without reading every installed header.
    """
    paths = sorted(set(paths))
    return _read(root, lambda ts: (ts.dbMatch("basenames", path) for path in paths))


def missing_names(root: str, names: Iterable[str]) -> list[str]:
    """Which of ``names`` are not installed (so a front end can say so)."""
    ts = _transaction_set(root)
    try:
        return [name for name in names if not ts.dbMatch("name", name).count()]
    finally:
        ts.closeDB()
