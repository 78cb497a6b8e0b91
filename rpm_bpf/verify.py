"""Verification of installed systems: are the packaged BPF objects still the packaged bytes?

Only BPF-related files are looked at: files in the BPF directories and files
rpmbuild classified as eBPF (from the headers' file classes), never the
whole database's files. Symbolic links are never followed.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import grp
import stat
from collections.abc import Iterable

from . import bpfdirs, rpmdb
from .bpfdirs import location_finding, relative_name
from .findings import Finding, InputError, PackageRef
from .package import FileEntry, Package
from .policy import Policy

# rpm's PGPHASHALGO_* ids (rpmpgp.h) to hashlib names.
DIGEST_ALGOS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
_READ_CHUNK = 1 << 20


class VerifyResult:
    def __init__(self) -> None:
        self.packages: list[PackageRef] = []
        self.findings: list[Finding] = []
        self.errors: list[InputError] = []

    def to_repair(self) -> list[str]:
        """NEVRAs whose reinstallation restores what was found changed or missing."""
        rules = {"bpf-object-modified", "bpf-object-missing", "bpf-object-attrs-changed"}
        return sorted({f.package.nevra for f in self.findings
                       if f.rule in rules and f.package is not None and not f.waived})

    def names_of(self, nevras: list[str]) -> list[str]:
        wanted = set(nevras)
        return sorted({p.name for p in self.packages if p.nevra in wanted})


class _Names:
    """uid/gid to names as the verified root's own passwd/group files say."""

    def __init__(self, root: str):
        self.users = self._table(os.path.join(root, "etc/passwd"))
        self.groups = self._table(os.path.join(root, "etc/group"))
        self.host = os.path.realpath(root) == "/"

    @staticmethod
    def _table(path: str) -> dict[int, str]:
        table: dict[int, str] = {0: "root"}  # as rpm itself assumes, even without /etc/passwd
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    parts = line.split(":")
                    if len(parts) > 2 and parts[2].isdigit():
                        table[int(parts[2])] = parts[0]
        except OSError:
            pass
        return table

    def _name(self, table: dict[int, str], ident: int, host_lookup) -> str:
        """The root's own name for an id; the host's database only when the root is ``/``."""
        if ident in table:
            return table[ident]
        try:
            return host_lookup(ident)[0] if self.host else str(ident)
        except KeyError:
            return str(ident)

    def user(self, uid: int) -> str:
        return self._name(self.users, uid, pwd.getpwuid)

    def group(self, gid: int) -> str:
        return self._name(self.groups, gid, grp.getgrgid)


def _describe_type(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a special file"


def _digest(full: str, algo: str) -> str:
    """Digest of a file, refusing to follow a symlink swapped in meanwhile."""
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    h = hashlib.new(algo)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class _Verifier:
    def __init__(self, root: str, policy: Policy):
        self.root = root
        self.policy = policy
        self.names = _Names(root)
        self.result = VerifyResult()
        self.owned: set[str] = set()
        self.raw: list[Finding] = []

    def full(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def add(self, rule: str, pkg: Package, path: str, detail: str = "") -> None:
        self.raw.append(Finding.of(rule, pkg.ref, path, detail))

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
                misplaced = location_finding(pkg, entry, dirs)
                if misplaced is not None:
                    self.raw.append(misplaced)
            self.compare(pkg, entry, algo)

    def compare(self, pkg: Package, entry: FileEntry, algo: str) -> None:
        full = self.full(entry.path)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            self.add("bpf-object-missing", pkg, entry.path)
            return
        except OSError as exc:
            self.result.errors.append(InputError(full, f"cannot verify: {exc.strerror}"))
            return
        expected_type, actual_type = stat.S_IFMT(entry.mode), stat.S_IFMT(st.st_mode)
        if expected_type != actual_type:
            detail = f"{_describe_type(entry.mode)} was replaced by {_describe_type(st.st_mode)}"
            if stat.S_ISLNK(st.st_mode):
                detail += f" to {os.readlink(full)}"
            self.add("bpf-object-modified", pkg, entry.path, detail)
            return
        if entry.is_symlink:
            target = os.readlink(full)
            if target != entry.linkto:
                self.add("bpf-object-modified", pkg, entry.path, f"link points to {target}, not {entry.linkto}")
            return
        if entry.is_regular:
            try:
                digest = _digest(full, algo)
            except OSError as exc:
                # Not "modified": unknown. The attributes below can still be compared.
                self.result.errors.append(InputError(full, f"cannot verify: {exc.strerror}"))
                digest = entry.digest
            if digest != entry.digest:
                size = "" if st.st_size == entry.size else f", size {st.st_size} (packaged {entry.size})"
                self.add("bpf-object-modified", pkg, entry.path, f"{algo} digest differs{size}")
                return
        changes = []
        if entry.is_regular and st.st_mode & 0o022 and not entry.mode & 0o022:
            # The packaged-object rules hold on disk too: anyone may now rewrite it.
            self.add("bpf-object-writable", pkg, entry.path, f"installed file has mode {stat.S_IMODE(st.st_mode):04o}")
        if stat.S_IMODE(st.st_mode) != stat.S_IMODE(entry.mode):
            changes.append(f"mode {stat.S_IMODE(st.st_mode):04o} (packaged {stat.S_IMODE(entry.mode):04o})")
        user, group = self.names.user(st.st_uid), self.names.group(st.st_gid)
        if user != entry.user:
            changes.append(f"owner {user} (packaged {entry.user})")
            if entry.is_regular and user != "root" and entry.user == "root":
                self.add("bpf-object-not-root-owned", pkg, entry.path, f"installed file is owned by {user}")
        if group != entry.group:
            changes.append(f"group {group} (packaged {entry.group})")
        if changes:
            self.add("bpf-object-attrs-changed", pkg, entry.path, ", ".join(changes))

    def unowned(self, roots: Iterable[str]) -> None:
        """Files in the BPF directories that no installed package owns."""
        for bpfroot in roots:
            top = self.full(bpfroot)
            if os.path.islink(top) or not os.path.isdir(top):
                continue
            for current, dirs, files in os.walk(top, onerror=self._walk_error):
                dirs.sort()
                # os.walk lists symlinks to directories in dirs but does not enter them.
                names = files + [d for d in dirs if os.path.islink(os.path.join(current, d))]
                for name in sorted(names):
                    path = "/" + os.path.relpath(os.path.join(current, name), self.root)
                    if path not in self.owned:
                        self.raw.append(Finding.of("bpf-object-unowned", None, path,
                                                   "written at run time or copied by hand"))

    def _walk_error(self, exc: OSError) -> None:
        self.result.errors.append(InputError(exc.filename or self.root, f"cannot list: {exc.strerror}"))


def verify(root: str = "/", policy: Policy | None = None, names: Iterable[str] = ()) -> VerifyResult:
    """Verify the installed BPF objects of ``root`` (all packages, or those named).

    Unowned files are looked for only when no package is named: they belong
    to none.
    """
    policy = policy or Policy.load(system=None)
    names = list(names)
    verifier = _Verifier(root, policy)
    for missing in rpmdb.missing_names(root, names):
        verifier.result.errors.append(InputError(missing, "package is not installed"))
    for pkg in rpmdb.installed(root, names):
        verifier.package(pkg)
    if not names:
        roots = bpfdirs.for_arch(bpfdirs.host_arch()).roots
        verifier.unowned(roots)
    verifier.result.findings = policy.apply(verifier.raw)
    return verifier.result


def repair_command(nevras: list[str], root: str = "/", extra: Iterable[str] = ()) -> list[str]:
    """The dnf reinstall that puts the packaged bytes back."""
    cmd = ["dnf", "reinstall", "-y"]
    if os.path.realpath(root) != "/":
        cmd.append(f"--installroot={root}")
    return cmd + list(extra) + nevras
