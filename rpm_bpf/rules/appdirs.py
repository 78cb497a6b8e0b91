"""Application directories, the convention's other two kinds of BPF objects: start-up caches under
``/var/cache/bpf/APP`` and run-time objects under ``/run/APP``.

One home for their rules, whatever the input (RPM files, repository metadata, provides before
download, the disk): who claims which APP (``bpf-app-dir-conflict``), what may be shipped there
(``bpf-app-dir-file``), how APP is named (``bpf-app-dir-unnamed``), and which caches on a system are
left behind or stale (``bpf-cache-left-behind``, ``bpf-cache-stale``).

A package claims APP by a ``bpf-cache(APP)``/``bpf-runtime(APP)`` provide (the rpm-bpf macros
generate them) or, for caches, by owning anything at or below ``/var/cache/bpf/APP``. Owning
``/run/APP`` alone claims nothing: ``/run`` belongs to every daemon.
"""

from __future__ import annotations

from collections.abc import Iterable

from rpm_bpf.findings import Finding
from rpm_bpf.model import (
    APP_PARENTS,
    BPF_CAPABILITY_PREFIXES,
    FileEntry,
    Package,
    PackageRef,
    app_provide,
    app_provide_claims,
)
from rpm_bpf.rules import clash
from rpm_bpf.rules.clash import Claim, Selector

CONFLICT = "bpf-app-dir-conflict"
SHIPPED = "bpf-app-dir-file"
UNNAMED = "bpf-app-dir-unnamed"
LEFT_BEHIND = "bpf-cache-left-behind"
STALE = "bpf-cache-stale"
CACHE = APP_PARENTS["cache"]
RUNTIME = APP_PARENTS["runtime"]
MACRO = {"cache": "%bpf_cache_dir", "runtime": "%bpf_runtime_dir"}


def cache_app(path: str) -> str | None:
    """APP of a path at or below ``/var/cache/bpf/APP``; None elsewhere."""
    if not path.startswith(CACHE + "/"):
        return None
    return path[len(CACHE) + 1 :].split("/", 1)[0] or None


def _runtime_app(path: str, apps: set[str]) -> str | None:
    if not path.startswith(RUNTIME + "/"):
        return None
    app = path[len(RUNTIME) + 1 :].split("/", 1)[0]
    return app if app in apps else None


def claim(ref: PackageRef, kind: str, app: str, path: str | None = None, where: str = "") -> Claim:
    """A claim of APP, keyed by its capability (``bpf-cache(APP)``): one name space per kind; its path is
    the directory (what waivers and reports name)."""
    return Claim(ref, app_provide(kind, app), path or f"{APP_PARENTS[kind]}/{app}", None, where)


def directory(kind: str, app: str) -> str:
    return f"{APP_PARENTS[kind]}/{app}"


def claims(pkg: Package) -> list[Claim]:
    """What ``pkg`` claims: its provides, and the cache directories it owns files in (the directory as path)."""
    found: dict[tuple[str, str], Claim] = {}
    for entry in pkg.files:
        app = cache_app(entry.path)
        if app is not None:
            found.setdefault(("cache", app), claim(pkg.ref, "cache", app))
    for kind, app in sorted(app_provide_claims(pkg.provides)):
        found.setdefault((kind, app), claim(pkg.ref, kind, app))
    return [found[key] for key in sorted(found)]


def shipped_file(pkg: Package, entry: FileEntry, ships_bpf: bool = False) -> Finding | None:
    """``bpf-app-dir-file``: something other than a directory or a %ghost entry shipped in an application
    directory (BPF objects there are ``bpf-object-outside-bpfdir``, rules/placement.py).

    Under ``/run``: in a directory the package declares (``bpf-runtime(APP)``), or anywhere when the
    package ships or embeds BPF code (``ships_bpf``); other packages' files in /run are not rpm-bpf's.
    """
    if entry.is_dir or entry.is_ghost:
        return None
    runtime = {app for kind, app in app_provide_claims(pkg.provides) if kind == "runtime"}
    if cache_app(entry.path) is not None or entry.path == CACHE:
        kind, parent = "cache", CACHE
    elif _runtime_app(entry.path, runtime) is not None or (ships_bpf and entry.path.startswith(RUNTIME + "/")):
        kind, parent = "runtime", RUNTIME
    else:
        return None
    return Finding.of(
        SHIPPED,
        pkg.ref,
        entry.path,
        f"{parent} holds what applications write at run time; create the directory with {MACRO[kind]} and "
        f"list its contents as %ghost ({MACRO[kind]}_files)",
    )


def _names(pkg: Package) -> set[str]:
    """What an APP may be named after: the package, its source package, its other provides."""
    names = {pkg.ref.name}
    if pkg.sourcerpm.endswith(".src.rpm"):
        names.add(pkg.sourcerpm[: -len(".src.rpm")].rsplit("-", 2)[0])
    for provide in pkg.provides:
        if not provide.startswith(BPF_CAPABILITY_PREFIXES):
            names.add(provide)
            names.add(provide.split("(", 1)[0])
    return names


def unnamed(pkg: Package, found: Iterable[Claim]) -> list[Finding]:
    """``bpf-app-dir-unnamed`` for each claimed APP that is neither the package's name nor one of its provides."""
    names = _names(pkg)
    out = []
    for c in found:
        app = c.name.partition("(")[2][:-1]
        if app not in names:
            out.append(
                Finding.of(
                    UNNAMED,
                    pkg.ref,
                    c.path,
                    f"{app!r} is not the name of {pkg.ref.name} or of one of its provides: name the directory "
                    f"after the package, so that administrators can tell whose cache it is",
                )
            )
    return out


def conflicts(
    found: Iterable[Claim], reported: Selector | None = None, counted: Selector | None = None, note: str = ""
) -> list[Finding]:
    """``bpf-app-dir-conflict``: one APP claimed by packages that can be installed together."""
    return clash.conflicts(found, reported, counted, verb="claimed", note=note, rule=CONFLICT)


def left_behind(path: str, what: str) -> Finding:
    """A cache entry no installed package claims."""
    return Finding.of(
        LEFT_BEHIND,
        None,
        path,
        f"{what} no installed package claims (no bpf-cache provide, no owner); remove it with rpm-bpf clean-cache",
    )


def stale_reason(newest: float | None, installed: int | None, kernel: float | None) -> str | None:
    """Why a claimed cache whose newest entry was written at ``newest`` is stale, or None.

    Older than the owning package's installation (the objects were compiled by an earlier build of
    the application) or than the running kernel's installation (compiled against another kernel).
    An empty cache is never stale: there is nothing to remove.
    """
    if newest is None:
        return None
    if installed is not None and newest < installed:
        return "written before its package was installed or updated"
    if kernel is not None and newest < kernel:
        return "written before the running kernel was installed"
    return None


def stale(ref: PackageRef, path: str, reason: str) -> Finding:
    return Finding.of(
        STALE, ref, path, f"{reason}; the application rebuilds it: remove the contents with rpm-bpf clean-cache"
    )
