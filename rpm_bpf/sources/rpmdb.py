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

import contextlib
import os
import shutil
import stat
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

import rpm

from rpm_bpf.errors import RpmBpfError
from rpm_bpf.findings import InputError
from rpm_bpf.model import Package, PackageRef
from rpm_bpf.sources import bpfdirs
from rpm_bpf.sources.rootfs import RootFS, UnsafePathError, describe_mode
from rpm_bpf.sources.rpmheader import HeaderError, package_from_header

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
        if private:
            yield copied
        else:
            # librpm follows links itself: it is handed the path resolved and checked here, never %_dbpath
            # as the root's links would have it (a link out of the root would make it create a database there).
            with _dbpath_set(where):
                yield root
    finally:
        if private:
            shutil.rmtree(copied, ignore_errors=True)


@contextmanager
def _dbpath_set(path: str) -> Iterator[None]:
    """``%_dbpath`` defined as ``path`` while the context lasts, the previous definition back afterwards.

    The path comes from the root's own links: it must never be read as macros (``%``), escapes or lines.
    """
    try:
        path.encode("utf-8")
        plain = not any(c in path for c in "%\\") and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in path)
    except UnicodeEncodeError:
        plain = False
    if not plain:
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise RpmdbError(f"{shown}: the rpm database path has characters librpm would interpret; not read")
    rpm.addMacro("_dbpath", path)
    try:
        yield
    finally:
        rpm.delMacro("_dbpath")


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


def _stored_records(root: str) -> set[int] | None:
    """Every header number the database's own table lists (sqlite backend), None when it cannot tell.

    librpm skips a header it cannot read and says so only on stderr: this is
    what a read is checked against, so that no installed package goes unseen.
    """
    import sqlite3

    path = os.path.join(root, dbpath().lstrip("/"), "rpmdb.sqlite")
    if not os.path.isfile(path):
        return None  # another backend: librpm's own count is all there is
    try:
        with contextlib.closing(sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT hnum, typeof(hnum) FROM Packages").fetchall()
    except (sqlite3.Error, ValueError, TypeError) as exc:
        raise RpmdbError(f"{root}: damaged rpm database ({exc})") from None
    if any(kind != "integer" for _, kind in rows):
        raise RpmdbError(f"{root}: damaged rpm database (a Packages record whose number is not an integer)")
    return {int(hnum) for hnum, _ in rows}


def _readable_records(ts: rpm.TransactionSet) -> set[int]:
    matches = ts.dbMatch()
    return {matches.instance() for _ in matches}


def _unreadable(root: str, ts: rpm.TransactionSet, loaded: set[int] | None) -> list[int]:
    """Header numbers the database lists that librpm could not read (``loaded``: those a full read gave)."""
    stored = _stored_records(root)
    if stored is None:
        return []
    return sorted(stored - (loaded if loaded is not None else _readable_records(ts)))


def _damaged(root: str, records: list[int], errors: list[InputError] | None) -> None:
    for record in records:
        where, what = (
            f"{root}: rpm database record #{record}",
            "header cannot be read (damaged); its package is not checked",
        )
        if errors is None:
            raise RpmdbError(f"{where}: {what}")
        errors.append(InputError(where, what))


def _read(
    root: str,
    lookups: Callable[[rpm.TransactionSet], Iterable[rpm.mi]],
    errors: list[InputError] | None,
    full: bool = False,
    keep_header: bool = False,
    embedded: str = "signals",
    archives: bool = False,
    deep: bool = False,
) -> Iterator[Package]:
    """The packages the match iterators of ``lookups`` give, each once.

    A header that contradicts itself, or one librpm skips as damaged, is an
    input error naming its record (when ``errors`` is given) and the others
    are still read. ``full``: the lookups read the whole database.
    ``keep_header``: each package keeps its header (``Package.header``) for the signature checks.
    ``embedded``, ``archives``: which ELF files and archives are kept to be searched for objects
    (``package_from_header``).
    """
    ts = _transaction_set(root)
    seen: set[int] = set()
    loaded: set[int] = set()
    short = False
    try:
        for matches in lookups(ts):
            expected, got = len(matches), 0
            for hdr in matches:
                got += 1
                loaded.add(matches.instance())
                if matches.instance() in seen or hdr[rpm.RPMTAG_NAME] == "gpg-pubkey":
                    continue
                seen.add(matches.instance())
                try:
                    pkg = package_from_header(
                        hdr, bpfdirs.for_arch, origin="rpmdb", deep=deep, embedded=embedded, archives=archives
                    )
                except HeaderError as exc:
                    if errors is None:
                        raise RpmdbError(f"{root}: rpm database entry #{matches.instance()}: {exc}") from None
                    errors.append(InputError(f"{root}: rpm database entry #{matches.instance()}", str(exc)))
                    continue
                if keep_header:
                    pkg.header = hdr
                yield pkg
            short = short or got < expected  # the index listed a header librpm then skipped
        if full or short:
            _damaged(root, _unreadable(root, ts, loaded if full else None), errors)
    except rpm.error as exc:
        raise RpmdbError(f"{root}: cannot read the rpm database: {exc}") from None
    finally:
        ts.closeDB()


def installed(
    root: str = "/",
    names: Iterable[str] = (),
    errors: list[InputError] | None = None,
    keep_header: bool = False,
    embedded: str = "signals",
    archives: bool = False,
    deep: bool = False,
) -> Iterator[Package]:
    """Installed packages (all, or those named), with their BPF-relevant files only (every file: ``deep``).

    ``root`` is the root librpm opens: a ``snapshot`` for verification.
    ``keep_header``: each keeps its ``rpm.hdr`` (``Package.header``), for the signature checks.
    """
    names = list(names)
    return _read(
        root,
        lambda ts: (ts.dbMatch("name", _key(name)) for name in names) if names else [ts.dbMatch()],
        errors,
        full=not names,
        keep_header=keep_header,
        embedded=embedded,
        archives=archives,
        deep=deep,
    )


def owners(root: str, paths: Iterable[str], errors: list[InputError] | None = None) -> Iterator[Package]:
    """Installed packages owning any of ``paths``, each once.

    An index look-up per path (rpm's file index, as ``rpm -qf``): what the
    transaction check needs to know about the installed side of a name
    conflict, without reading every installed header.
    """
    paths = sorted(set(paths))
    return _read(root, lambda ts: (ts.dbMatch("basenames", _key(path)) for path in paths), errors)


def providers(
    root: str, capabilities: Iterable[str], errors: list[InputError] | None = None
) -> dict[str, list[PackageRef]]:
    """Installed packages providing each capability (rpm's provides index, as ``rpm -q --whatprovides``).

    A header the index lists but librpm cannot read is an input error naming its record (``errors``), or
    an ``RpmdbError``.
    """
    ts = _transaction_set(root)
    found: dict[str, list[PackageRef]] = {}
    short = False
    try:
        for capability in capabilities:
            matches = ts.dbMatch("providename", _key(capability))
            expected = len(matches)
            before = sum(len(refs) for refs in found.values())
            for hdr in matches:
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
            short = short or sum(len(refs) for refs in found.values()) - before < expected
        if short:
            _damaged(root, _unreadable(root, ts, None), errors)
    except rpm.error as exc:
        raise RpmdbError(f"{root}: cannot read the rpm database: {exc}") from None
    finally:
        ts.closeDB()
    return found


def missing_names(root: str, names: Iterable[str]) -> list[str]:
    """Which of ``names`` are not installed (so a front end can say so)."""
    ts = _transaction_set(root)
    try:
        return [name for name in names if not len(ts.dbMatch("name", _key(name)))]
    except rpm.error as exc:
        raise RpmdbError(f"{root}: cannot read the rpm database: {exc}") from None
    finally:
        ts.closeDB()
