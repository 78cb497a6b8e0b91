"""BPF caches on an installed system: what ``verify`` reports of ``/var/cache/bpf`` and what ``clean-cache``
removes.

Every entry of ``/var/cache/bpf`` is judged against the installed packages' claims (rules/appdirs.py):
unclaimed ones are left behind, claimed ones whose newest entry predates their package's installation
or the running kernel's are stale. Everything is reached through ``RootFS`` and directory descriptors:
no symbolic link is followed, nothing outside ``/var/cache/bpf`` is touched, nothing below another
mount is removed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import namedtuple
from collections.abc import Iterable

from rpm_bpf.findings import Finding, InputError
from rpm_bpf.model import Package
from rpm_bpf.rules import appdirs
from rpm_bpf.rules.policy import Policy
from rpm_bpf.sources import rpmdb
from rpm_bpf.sources.rootfs import RootFS, describe_mode

CACHE = appdirs.CACHE
MAX_ENTRIES = 100_000  # entries looked at below one cache for its age: a bound for crafted trees


class CacheEntry(namedtuple("CacheEntry", ("path", "finding", "keep"))):
    """An entry of ``/var/cache/bpf`` with a finding (left behind or stale); ``keep``: paths below it that
    an installed package ships (never removed)."""

    __slots__ = ()
    path: str
    finding: Finding
    keep: frozenset[str]


def _claims(packages: Iterable[Package]) -> tuple[dict[str, list[Package]], set[str]]:
    """Cache APP -> its claimants, and the paths below the cache that packages ship (not %ghost)."""
    by_app: dict[str, list[Package]] = {}
    shipped: set[str] = set()
    for pkg in packages:
        for claim in appdirs.claims(pkg):
            app = appdirs.cache_app(claim.path or "")
            if app is not None and claim.name.startswith("bpf-cache("):
                by_app.setdefault(app, []).append(pkg)
        shipped |= {e.path for e in pkg.files if not e.is_ghost and appdirs.cache_app(e.path) is not None}
    return by_app, shipped


def claims_any(pkg: Package) -> bool:
    """Whether ``pkg`` claims an application directory (what ``inspect`` needs of the installed packages)."""
    return bool(appdirs.claims(pkg))


def kernel_time(fs: RootFS, release: str | None = None) -> float | None:
    """When the running kernel was installed: the modification time of its module directory in the root
    (None when the root has none: then no cache is called stale for the kernel's sake)."""
    release = release or os.uname().release
    if "/" in release or release in (".", ".."):
        return None
    for candidate in (f"/usr/lib/modules/{release}", f"/lib/modules/{release}"):
        try:
            st = fs.lstat(fs.resolve(candidate))
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            return st.st_mtime
    return None


def _newest(fs: RootFS, path: str, errors: list[InputError]) -> float | None:
    """The newest modification time of anything below ``path`` (bounded), None when it is empty."""
    newest: float | None = None

    def failed(exc: OSError) -> None:
        errors.append(InputError(fs.host_path(exc.filename or path), f"cannot list: {exc.strerror}"))

    for seen, (_, st) in enumerate(fs.walk(path, failed), 1):
        newest = st.st_mtime if newest is None else max(newest, st.st_mtime)
        if seen >= MAX_ENTRIES:
            break
    return newest


def inspect(fs: RootFS, packages: Iterable[Package], errors: list[InputError]) -> list[CacheEntry]:
    """The entries of ``/var/cache/bpf`` that are left behind or stale, with their (unapplied) findings."""
    try:
        top = fs.lstat(CACHE)
    except FileNotFoundError:
        return []
    except OSError as exc:
        errors.append(InputError(fs.host_path(CACHE), f"cannot check the BPF caches: {exc.strerror}"))
        return []
    by_app, shipped = _claims(packages)
    if not stat.S_ISDIR(top.st_mode):
        what = f"is {describe_mode(top.st_mode)}, not a directory; not followed"
        errors.append(InputError(fs.host_path(CACHE), what))
        return []
    try:
        fd = fs.open_dir(CACHE)
    except OSError as exc:
        errors.append(InputError(fs.host_path(CACHE), f"cannot list: {exc.strerror}"))
        return []
    try:
        with os.scandir(fd) as it:
            names = sorted(e.name for e in it)
    finally:
        os.close(fd)
    kernel = kernel_time(fs)
    found = []
    for name in names:
        path = f"{CACHE}/{name}"
        try:
            st = fs.lstat(path)
        except OSError as exc:
            errors.append(InputError(fs.host_path(path), f"cannot check: {exc.strerror}"))
            continue
        claimants = by_app.get(name)
        if not claimants:
            found.append(CacheEntry(path, appdirs.left_behind(path, f"{describe_mode(st.st_mode)} that"), frozenset()))
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue  # a claimed name that is not a directory: the package's own entry, verified as its file
        installed = max((p.installtime for p in claimants if p.installtime), default=None)
        reason = appdirs.stale_reason(_newest(fs, path, errors), installed, kernel)
        if reason is not None:
            owner = max(claimants, key=lambda p: p.installtime or 0)
            keep = frozenset(p for p in shipped if p.startswith(path + "/"))
            found.append(CacheEntry(path, appdirs.stale(owner.ref, path, reason), keep))
    return found


# --- clean-cache ------------------------------------------------------------------


class Removal(namedtuple("Removal", ("path", "finding", "error"))):
    """One entry removed (or, with a dry run, to be removed); ``error``: why it could not be."""

    __slots__ = ()
    path: str
    finding: Finding
    error: str | None


class CleanResult:
    def __init__(self) -> None:
        self.removals: list[Removal] = []
        self.kept: list[tuple[str, str]] = []  # (path, why) of entries named on the command line and kept
        self.errors: list[InputError] = []


def _remove(parent_fd: int, name: str, keep: frozenset[str], path: str) -> None:
    """Remove ``name`` in the directory ``parent_fd`` (a tree: below it, no symlink followed, nothing on
    another device, nothing in ``keep``)."""
    import shutil

    st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=parent_fd)
        return
    if st.st_dev != os.fstat(parent_fd).st_dev:
        raise OSError(errno.EXDEV, "a mount point; not removed", path)
    if any(k.startswith(path + "/") for k in keep):
        _remove_contents(parent_fd, name, keep, path)  # what a package ships below it stays, and so does it
        return
    shutil.rmtree(name, dir_fd=parent_fd)  # the descriptor-based walk: symbolic links are removed, not followed


def clean(
    root: str, policy: Policy, apps: Iterable[str] = (), dry_run: bool = False, packages: list[Package] | None = None
) -> CleanResult:
    """Remove the left-behind caches and the contents of stale ones (as ``verify`` reports them, after the
    policy: a waived or disabled finding removes nothing); only ``apps`` when given.

    A stale cache keeps its directory and whatever its package ships; a left-behind one goes whole.
    Raises ``rpmdb.RpmdbError`` when the database cannot be read (nothing is removed then).
    """
    result = CleanResult()
    wanted = set(apps)
    with rpmdb.snapshot(root) as dbroot, RootFS(root) as fs:
        if packages is None:
            packages = list(rpmdb.installed(dbroot, (), result.errors))
        if result.errors:
            # A package that cannot be read may claim any cache: nothing is removed (fail closed).
            return result
        entries = inspect(fs, packages, result.errors)
        judged = {e.path: e for e in entries}
        findings = policy.apply([e.finding for e in entries])
        chosen = [f for f in findings if not f.waived and f.path in judged]
        if wanted:
            chosen = [f for f in chosen if (f.path or "").rsplit("/", 1)[-1] in wanted]
            reported = {(f.path or "").rsplit("/", 1)[-1] for f in chosen}
            for app in sorted(wanted - reported):
                why = "claimed by an installed package and not stale" if _exists(fs, app) else "no such cache"
                result.kept.append((f"{CACHE}/{app}", why))
        if not chosen or dry_run:
            result.removals = [Removal(f.path or "", f, None) for f in chosen]
            return result
        try:
            cache_fd = fs.open_dir(CACHE)
        except OSError as exc:
            result.errors.append(InputError(fs.host_path(CACHE), f"cannot open: {exc.strerror}"))
            return result
        try:
            for finding in chosen:
                entry = judged[finding.path or ""]
                name = entry.path.rsplit("/", 1)[-1]
                error = None
                try:
                    if finding.rule == appdirs.STALE:
                        _remove_contents(cache_fd, name, entry.keep, entry.path)
                    else:
                        _remove(cache_fd, name, entry.keep, entry.path)
                except OSError as exc:
                    error = f"{exc.filename or entry.path}: {exc.strerror}"
                result.removals.append(Removal(entry.path, finding, error))
        finally:
            os.close(cache_fd)
    return result


def _remove_contents(parent_fd: int, name: str, keep: frozenset[str], path: str) -> None:
    """Remove what is in the directory ``name`` (in ``parent_fd``) except ``keep``; it stays."""
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    try:
        with os.scandir(fd) as it:
            children = sorted(e.name for e in it)
        for child in children:
            below = f"{path}/{child}"
            if below not in keep:
                _remove(fd, child, keep, below)
    finally:
        os.close(fd)


def _exists(fs: RootFS, app: str) -> bool:
    if "/" in app or app in (".", ".."):
        return False
    try:
        fs.lstat(f"{CACHE}/{app}")
    except OSError:
        return False
    return True
