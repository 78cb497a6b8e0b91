"""Repositories as the gate and the inventory read them: every location, and the claims of their packages."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rpm_bpf.findings import InputError
from rpm_bpf.model import bpf_provide
from rpm_bpf.rules import appdirs
from rpm_bpf.rules.clash import Claim
from rpm_bpf.sources import bpfdirs
from rpm_bpf.sources.repodata import RepoContents, RepoError, read_repository


def read_all(locations: Iterable[str], inventory: bool = False) -> tuple[list[RepoContents], list[InputError]]:
    """Every repository that can be read; one input error for each that cannot (the others are still read)."""
    roots = bpfdirs.repository_roots()
    repos, errors = [], []
    for location in locations:
        try:
            repos.append(read_repository(location, roots, inventory=inventory))
        except RepoError as exc:
            errors.append(InputError(location, str(exc).removeprefix(location + ": ")))
        except Exception as exc:  # our bug met on this repository: it stays unchecked, so the gate fails
            errors.append(InputError(location, f"internal error while reading it ({type(exc).__name__}: {exc})"))
    return repos, errors


def claims(repo: RepoContents, where: Callable[[str], str] = str) -> list[Claim]:
    """What ``repo``'s packages claim: files under their BPF directories, then ``bpf(NAME)`` provides
    (a provide of a name the package already ships as a file adds nothing)."""
    found = []
    for pkg, paths in sorted(repo.files.items()):
        roots = bpfdirs.package_roots(pkg.arch)
        for path in sorted(paths):
            rel = bpfdirs.relative_name(path, roots)
            if rel is not None:
                found.append(Claim(pkg, rel, path, None, where(path)))
    files = {(c.package, c.name) for c in found}
    found += [
        Claim(pkg, name, None, None, where(bpf_provide(name)))
        for pkg, names in sorted(repo.provides.items())
        for name in sorted(set(names))
        if (pkg, name) not in files
    ]
    return found


def app_claims(repo: RepoContents, where: Callable[[str], str] = str) -> list[Claim]:
    """The application directories ``repo``'s packages claim (by provide, or by files in a cache directory)."""
    found = []
    for pkg, apps in sorted(repo.apps.items()):
        for (kind, app), path in sorted(apps.items()):
            claim = appdirs.claim(pkg, kind, app)
            found.append(claim._replace(where=where(path or claim.name)))  # a provide when no file says so
    return found
