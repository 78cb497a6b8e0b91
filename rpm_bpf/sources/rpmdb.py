"""Reading the rpm database of a system (``/`` or an installroot) into the package model.

librpm has no read-only mode: opening a database, even to read it, writes
its ``-shm``/``-wal`` files, creates a whole database where none exists, and
follows symbolic links out of the root. Verification must write nothing and
read nothing outside the root, so ``snapshot`` copies the database files,
reached without following any link (``RootFS``), into a private temporary
root, and librpm opens that copy. The transaction check (DNF) reads the live
database instead: there the package manager has it open for writing anyway.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import rpm

from rpm_bpf.errors import RpmBpfError
from rpm_bpf.findings import InputError
from rpm_bpf.model import Package, PackageRef
from rpm_bpf.sources import bpfdirs
from rpm_bpf.sources.rootfs import RootFS, UnsafePathError, describe_mode
from rpm_bpf.sources.rpmfile import HeaderError, package_from_header

# Database files of each backend rpm 4.x/6.x may use; lock files are not data.
_DB_FILES = ("rpmdb.sqlite", "rpmdb.sqlite-wal", "Packages", "Packages.db", "Index.db")
_MAIN_FILES = ("rpmdb.sqlite", "Packages.db", "Packages")
_MAX_DB = 16 << 30  # bytes copied from one root's database, at most


class RpmdbError(RpmBpfError):
    """The rpm database cannot be opened or read; the message names the root."""


def check_root(root: str) -> None:
    """A root rpm-bpf may read: absolute (librpm reads a relative one as the host) and a directory."""
    if not os.path.isabs(root):
        raise RpmdbError(f"{root}: the root must be an absolute path (as rpm --root requires)")
    if not os.path.isdir(root):
        raise RpmdbError(f"{root}: no such directory")


def dbpath() -> str:
    """Where librpm looks for the database inside a root (``%_dbpath``)."""
    return str(rpm.expandMacro("%{_dbpath}"))


def _check_sqlite(head: bytes, size: int, where: str) -> None:
    """The SQLite header's own consistency: catches truncated and overwritten databases cheaply."""
    if len(head) < 100 or not head.startswith(b"SQLite format 3\0"):
        raise RpmdbError(f"{where}: damaged rpm database (no SQLite header)")
    page = struct.unpack_from(">H", head, 16)[0]
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1) or size % page:
        raise RpmdbError(f"{where}: damaged rpm database (size {size} is not a whole number of {page}-byte pages)")
    pages, change, valid_for = (struct.unpack_from(">I", head, off)[0] for off in (28, 24, 92))
    if pages and change == valid_for and pages * page != size:
        raise RpmdbError(f"{where}: damaged rpm database (truncated: {size} bytes, its header says {pages * page})")


@contextmanager
def snapshot(root: str, private: bool = True) -> Iterator[str]:
    """A root for librpm to open: a private temporary copy of ``root``'s rpm database.

    Raises ``RpmdbError`` when the root has no database ("no rpm database in
    ROOT"), when the database directory or a file in it is a symbolic link
    or not a regular file, or when it is visibly damaged. ``private=False``
    checks the same and yields ``root`` itself: for the package manager's own
    hooks, whose database it has just written anyway.
    """
    check_root(root)
    where = dbpath()
    copied = tempfile.mkdtemp(prefix="rpm-bpf-rpmdb-") if private else ""
    try:
        target = os.path.join(copied, where.lstrip("/"))
        if private:
            os.makedirs(target)
        with RootFS(root) as fs:
            try:
                # Links inside the root are a layout (Fedora's /var/lib/rpm); none may leave it.
                where = fs.resolve(where)
                listing = fs.lstat(where)
            except FileNotFoundError:
                raise RpmdbError(f"no rpm database in {root} (no {where})") from None
            except OSError as exc:
                raise RpmdbError(f"{fs.host_path(where)}: cannot read the rpm database: {exc.strerror}") from None
            if not stat.S_ISDIR(listing.st_mode):
                raise RpmdbError(
                    f"{fs.host_path(where)}: is {describe_mode(listing.st_mode)}, not an rpm database "
                    "directory; not followed"
                )
            present = [name for name in _DB_FILES if _exists(fs, f"{where}/{name}")]
            if not any(name in _MAIN_FILES for name in present):
                raise RpmdbError(f"no rpm database in {root} ({where} has none of {', '.join(_MAIN_FILES)})")
            if "rpmdb.sqlite" in present:
                _check_sqlite_in(fs, f"{where}/rpmdb.sqlite")
            if private:
                budget = _MAX_DB
                for name in present:
                    budget -= _copy(fs, f"{where}/{name}", os.path.join(target, name), budget)
        yield copied if private else root
    finally:
        if private:
            shutil.rmtree(copied, ignore_errors=True)


def _check_sqlite_in(fs: RootFS, path: str) -> None:
    try:
        fd, st = fs.open_regular(path)
    except OSError as exc:
        raise RpmdbError(f"{fs.host_path(path)}: {exc.strerror}; the rpm database is not read") from None
    try:
        _check_sqlite(os.pread(fd, 100, 0), st.st_size, fs.host_path(path))
    finally:
        os.close(fd)


def _exists(fs: RootFS, path: str) -> bool:
    try:
        fs.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise RpmdbError(f"{fs.host_path(path)}: cannot read the rpm database: {exc.strerror}") from None
    return True


def _copy(fs: RootFS, path: str, dest: str, budget: int) -> int:
    """Copy one database file (a regular file, reached without links); its size."""
    try:
        fd, st = fs.open_regular(path)
    except UnsafePathError as exc:
        raise RpmdbError(f"{fs.host_path(path)}: {exc.strerror}; the rpm database is not read") from None
    except OSError as exc:
        raise RpmdbError(f"{fs.host_path(path)}: cannot read the rpm database: {exc.strerror}") from None
    try:
        if st.st_size > budget:
            raise RpmdbError(f"{fs.host_path(path)}: rpm database larger than {_MAX_DB} bytes; not read")
        with open(dest, "wb") as out:
            offset = 0
            while offset < st.st_size:
                sent = os.sendfile(out.fileno(), fd, offset, min(st.st_size - offset, 1 << 30))
                if sent == 0:
                    break
                offset += sent
        return st.st_size
    finally:
        os.close(fd)


def _key(text: str) -> bytes:
    """A look-up key as rpm stores it: a name that is not UTF-8 (surrogate-escaped) is still a key."""
    return text.encode("utf-8", "surrogateescape")


def _transaction_set(root: str) -> rpm.TransactionSet:
    ts = rpm.TransactionSet(root)
    # Header digests are checked (a hostile root's database is data like any
    # package); signatures are not: the keys are the root's business.
    ts.setVSFlags(getattr(rpm, "_RPMVSF_NOSIGNATURES", 0))
    return ts


def _read(
    root: str, lookups: Callable[[rpm.TransactionSet], Iterable[rpm.mi]], errors: list[InputError] | None
) -> Iterator[Package]:
    """The packages the match iterators of ``lookups`` give, each once.

    A header that contradicts itself is an input error (when ``errors`` is
    given) and the others are still read.
    """
    ts = _transaction_set(root)
    seen: set[int] = set()
    try:
        for matches in lookups(ts):
            for hdr in matches:
                if matches.instance() in seen or hdr[rpm.RPMTAG_NAME] == "gpg-pubkey":
                    continue
                seen.add(matches.instance())
                try:
                    yield package_from_header(hdr, bpfdirs.for_arch, origin="rpmdb")
                except HeaderError as exc:
                    if errors is None:
                        raise RpmdbError(f"{root}: rpm database entry #{matches.instance()}: {exc}") from None
                    errors.append(InputError(f"{root}: rpm database entry #{matches.instance()}", str(exc)))
    except rpm.error as exc:
        raise RpmdbError(f"{root}: cannot read the rpm database: {exc}") from None
    finally:
        ts.closeDB()


def installed(root: str = "/", names: Iterable[str] = (), errors: list[InputError] | None = None) -> Iterator[Package]:
    """Installed packages (all, or those named), with their BPF-relevant files only.

    ``root`` is the root librpm opens: a ``snapshot`` for verification.
    """
    names = list(names)
    return _read(
        root, lambda ts: (ts.dbMatch("name", _key(name)) for name in names) if names else [ts.dbMatch()], errors
    )


def owners(root: str, paths: Iterable[str], errors: list[InputError] | None = None) -> Iterator[Package]:
    """Installed packages owning any of ``paths``, each once.

    An index look-up per path (rpm's file index, as ``rpm -qf``): what the
    transaction check needs to know about the installed side of a name
    conflict, without reading every installed header.
    """
    paths = sorted(set(paths))
    return _read(root, lambda ts: (ts.dbMatch("basenames", _key(path)) for path in paths), errors)


def providers(root: str, capabilities: Iterable[str]) -> dict[str, list[PackageRef]]:
    """Installed packages providing each capability (rpm's provides index, as ``rpm -q --whatprovides``)."""
    ts = _transaction_set(root)
    found: dict[str, list[PackageRef]] = {}
    try:
        for capability in capabilities:
            for hdr in ts.dbMatch("providename", _key(capability)):
                found.setdefault(capability, []).append(
                    PackageRef(
                        hdr[rpm.RPMTAG_NAME],
                        hdr[rpm.RPMTAG_EPOCH],
                        hdr[rpm.RPMTAG_VERSION],
                        hdr[rpm.RPMTAG_RELEASE],
                        hdr[rpm.RPMTAG_ARCH] or "noarch",
                        "rpmdb",
                    )
                )
    except rpm.error as exc:
        raise RpmdbError(f"{root}: cannot read the rpm database: {exc}") from None
    finally:
        ts.closeDB()
    return found


def missing_names(root: str, names: Iterable[str]) -> list[str]:
    """Which of ``names`` are not installed (so a front end can say so)."""
    ts = _transaction_set(root)
    try:
        return [name for name in names if not ts.dbMatch("name", _key(name)).count()]
    except rpm.error as exc:
        raise RpmdbError(f"{root}: cannot read the rpm database: {exc}") from None
    finally:
        ts.closeDB()
