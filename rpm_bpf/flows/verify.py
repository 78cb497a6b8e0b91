"""Verification of installed systems: are the packaged BPF objects still the packaged bytes?

Only BPF-related files are looked at: files in the BPF directories and files
rpmbuild classified as eBPF (from the headers' file classes), never the
whole database's files. Everything below the root is read through ``RootFS``: no symbolic link is
followed, nothing blocks, nothing is read without bound.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat
from collections import namedtuple
from collections.abc import Callable, Iterable
from typing import Any

from rpm_bpf.findings import Finding, InputError
from rpm_bpf.model import MAX_CONTENT, FileEntry, Package, PackageRef
from rpm_bpf.rules import attributes, installed
from rpm_bpf.rules.placement import exempt_finding, location_finding
from rpm_bpf.rules.policy import Policy
from rpm_bpf.sources import bpfdirs, rpmdb
from rpm_bpf.sources.bpfdirs import relative_name
from rpm_bpf.sources.rootfs import RootFS
from rpm_bpf.sources.rpmfile import DIGEST_ALGOS

_READ_CHUNK = 1 << 20


class VerifyResult:
    def __init__(self) -> None:
        self.packages: list[PackageRef] = []
        self.findings: list[Finding] = []
        self.errors: list[InputError] = []

    def to_repair(self) -> list[str]:
        """NEVRAs whose reinstallation restores what was found changed or missing."""
        return sorted(
            {
                f.package.nevra
                for f in self.findings
                if f.rule in installed.REPAIRABLE and f.package is not None and not f.waived
            }
        )

    def unowned(self) -> list[str]:
        """Files in the BPF directories that belong to no package: reinstalling cannot fix them."""
        return [f.path or "" for f in self.findings if f.rule == installed.UNOWNED and not f.waived]

    def names_of(self, nevras: list[str]) -> list[str]:
        wanted = set(nevras)
        return sorted({p.name for p in self.packages if p.nevra in wanted})


class _Names:
    """uid/gid to names as the verified root's own passwd/group files say."""

    def __init__(self, fs: RootFS, errors: list[InputError]):
        self.host = os.path.realpath(fs.root) == "/"
        self.users = self._table(fs, "/etc/passwd", errors)
        self.groups = self._table(fs, "/etc/group", errors)

    @staticmethod
    def _table(fs: RootFS, path: str, errors: list[InputError]) -> dict[int, str]:
        table: dict[int, str] = {0: "root"}  # as rpm itself assumes, even without /etc/passwd
        try:
            text = fs.read(path).decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            return table  # a minimal root: ids stay numbers
        except OSError as exc:
            errors.append(InputError(fs.host_path(path), f"cannot read ({exc.strerror}); owners compared by number"))
            return table
        for line in text.splitlines():
            parts = line.split(":")
            if len(parts) > 2 and parts[2].isdigit() and len(parts[2]) < 11:
                table.setdefault(int(parts[2]), parts[0])
        return table

    def _name(self, table: dict[int, str], ident: int, host_lookup: Callable[[int], Any]) -> str:
        """The root's own name for an id; the host's database only when the root is ``/``."""
        if ident in table:
            return table[ident]
        try:
            return str(host_lookup(ident)[0]) if self.host else str(ident)
        except KeyError:
            return str(ident)

    def user(self, uid: int) -> str:
        return self._name(self.users, uid, pwd.getpwuid)

    def group(self, gid: int) -> str:
        return self._name(self.groups, gid, grp.getgrgid)


def _digest(fd: int, algo: str) -> str:
    h = hashlib.new(algo)
    while chunk := os.read(fd, _READ_CHUNK):
        h.update(chunk)
    return h.hexdigest()


class _Verifier:
    def __init__(self, fs: RootFS, policy: Policy):
        self.fs = fs
        self.policy = policy
        self.result = VerifyResult()
        self.names = _Names(fs, self.result.errors)
        self.owned: set[str] = set()
        self.raw: list[Finding] = []

    def cannot_verify(self, path: str, exc: OSError) -> None:
        self.result.errors.append(InputError(self.fs.host_path(path), f"cannot verify: {exc.strerror}"))

    def package(self, pkg: Package) -> None:
        self.result.packages.append(pkg.ref)
        dirs = bpfdirs.for_arch(pkg.ref.arch)
        algo = DIGEST_ALGOS.get(pkg.digest_algo, "sha256")
        for entry in pkg.files:
            in_bpfdir = relative_name(entry.path, dirs.roots) is not None or entry.path in dirs.roots
            if in_bpfdir:
                self.owned.add(entry.path)
            if not (in_bpfdir or entry.class_says_bpf):
                continue  # an ELF file kept for the embedded-object scan: not ours to verify
            if entry.is_ghost:
                continue  # expected to change: the runtime locations' %ghost entries
            if entry.class_says_bpf and entry.is_regular:
                misplaced = exempt_finding(pkg, entry.path, self.policy.exempt_paths) or location_finding(
                    pkg, entry, dirs
                )
                if misplaced is not None:
                    self.raw.append(misplaced)
            self.compare(pkg, entry, algo)

    def found(self, finding: Finding | None) -> bool:
        if finding is not None:
            self.raw.append(finding)
        return finding is not None

    def compare(self, pkg: Package, entry: FileEntry, algo: str) -> None:
        ref = pkg.ref
        try:
            st = self.fs.lstat(entry.path)
        except FileNotFoundError:
            self.found(installed.missing(ref, entry))
            return
        except OSError as exc:
            self.cannot_verify(entry.path, exc)
            return
        link = self._readlink(entry.path) if stat.S_ISLNK(st.st_mode) else None
        if self.found(installed.type_changed(ref, entry, st.st_mode, link)):
            return
        if entry.is_symlink:
            self.found(installed.link_changed(ref, entry, link or ""))
            return
        if entry.is_regular:
            # lstat already tells a size change: no need to hash (a sparse 5 GB file would take seconds).
            if self.found(installed.size_changed(ref, entry, st.st_size)):
                return
            if entry.size > MAX_CONTENT:
                self.result.errors.append(
                    InputError(
                        self.fs.host_path(entry.path), f"cannot verify: {entry.size} bytes, larger than rpm-bpf hashes"
                    )
                )
                return
            try:
                fd, st = self.fs.open_regular(entry.path)
                try:
                    digest = _digest(fd, algo) if st.st_size == entry.size else None
                finally:
                    os.close(fd)
            except OSError as exc:
                # Not "modified": unknown. The attributes below can still be compared.
                self.cannot_verify(entry.path, exc)
                digest = entry.digest
            if self.found(installed.digest_changed(ref, entry, digest, algo, st.st_size)):
                return
        user, group = self.names.user(st.st_uid), self.names.group(st.st_gid)
        self.raw += attributes.installed(ref, entry, st.st_mode, user)
        self.found(installed.attrs_changed(ref, entry, st.st_mode, user, group))

    def _readlink(self, path: str) -> str:
        try:
            return self.fs.readlink(path)
        except OSError as exc:
            return f"? ({exc.strerror})"

    def unowned(self, roots: Iterable[str]) -> None:
        """Files in the BPF directories that no installed package owns."""
        for bpfroot in roots:
            try:
                top = self.fs.lstat(bpfroot)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self.cannot_verify(bpfroot, exc)
                continue
            if not stat.S_ISDIR(top.st_mode):
                if bpfroot not in self.owned:  # an owned one was compared with its package
                    self.raw.append(installed.not_a_directory(bpfroot, top.st_mode))
                continue
            for path, _ in self.fs.walk(bpfroot, self._walk_error):
                if path not in self.owned:
                    self.raw.append(installed.unowned_file(path))

    def _walk_error(self, exc: OSError) -> None:
        self.result.errors.append(InputError(self.fs.host_path(exc.filename or "/"), f"cannot list: {exc.strerror}"))


def verify(
    root: str = "/",
    policy: Policy | None = None,
    names: Iterable[str] = (),
    private_db: bool = True,
    loaded: bool = False,
) -> VerifyResult:
    """Verify the installed BPF objects of ``root`` (all packages, or those named).

    Unowned files are looked for only when no package is named: they belong
    to none. librpm reads a private copy of the database (nothing in the root
    is written) unless ``private_db`` is False: for the package manager's own
    hook right after its transaction, which has just written the database.
    ``loaded``: the loaded programs too (``bpf-program-unpackaged``, flows/which.py).
    """
    policy = policy or Policy.load(system=None)
    names = list(names)
    # librpm opens a private copy of the database: nothing in the root is written.
    with rpmdb.snapshot(root, private=private_db) as dbroot, RootFS(root) as fs:
        verifier = _Verifier(fs, policy)
        for missing in rpmdb.missing_names(dbroot, names):
            verifier.result.errors.append(InputError(missing, "package is not installed"))
        for pkg in rpmdb.installed(dbroot, names, verifier.result.errors):
            verifier.package(pkg)
        if not names:
            roots = bpfdirs.for_arch(bpfdirs.host_arch()).roots
            verifier.unowned(roots)
    if loaded:
        from rpm_bpf.flows.which import cache_dir, loaded_findings

        verifier.raw += loaded_findings(root, verifier.result.errors, cache_dir())
    verifier.result.findings = policy.apply(verifier.raw)
    return verifier.result


class Repair(namedtuple("Repair", ("nevras", "unowned", "command"))):
    """What reinstalling can restore (``nevras``, with the dnf ``command``), and what it cannot (``unowned``)."""

    __slots__ = ()
    nevras: list[str]
    unowned: list[str]
    command: list[str]


def repair_plan(result: VerifyResult, root: str = "/", extra: Iterable[str] = ()) -> Repair:
    nevras = result.to_repair()
    return Repair(nevras, result.unowned(), repair_command(nevras, root, extra) if nevras else [])


def repair(plan: Repair, root: str, policy: Policy, result: VerifyResult) -> tuple[int, list[Finding]]:
    """Run the plan's dnf reinstall, then verify those packages again: dnf's exit status and what is left.

    Raises OSError when dnf cannot be run.
    """
    import subprocess

    done = subprocess.run(plan.command)
    if done.returncode != 0:
        return done.returncode, []
    after = verify(root, policy, result.names_of(plan.nevras))
    return 0, [f for f in after.findings if f.rule in installed.REPAIRABLE and not f.waived]


def repair_command(nevras: list[str], root: str = "/", extra: Iterable[str] = ()) -> list[str]:
    """The dnf reinstall that puts the packaged bytes back."""
    cmd = ["dnf", "reinstall", "-y"]
    if os.path.realpath(root) != "/":
        cmd.append(f"--installroot={root}")
    # "--": a name from a (possibly hostile) database is never read as an option.
    return cmd + list(extra) + ["--"] + nevras
