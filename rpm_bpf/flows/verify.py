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
import subprocess
from collections import namedtuple
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import rpm

from rpm_bpf.findings import Finding, InputError, SignatureStatus
from rpm_bpf.flows import caches
from rpm_bpf.model import MAX_CONTENT, FileEntry, Package, PackageRef
from rpm_bpf.rules import attributes, installed, signature
from rpm_bpf.rules.placement import exempt_finding, location_finding
from rpm_bpf.rules.policy import Policy
from rpm_bpf.sources import bpfdirs, filesig, hdrsig, rpmdb, trust
from rpm_bpf.sources.bpfdirs import relative_name
from rpm_bpf.sources.rootfs import RootFS
from rpm_bpf.sources.rpmfile import DIGEST_ALGOS
from rpm_bpf.sources.rpmheader import HeaderError

# What reinstalling restores: the files, and a signed header in place of a rewritten one.
REPAIRABLE = installed.REPAIRABLE | signature.REPAIRABLE
NOTE_UNCHECKED = (
    "header signatures were not checked: no trusted keys (give --trusted-keys FILE, set [trust] keys in the "
    "policy, or configure gpgkey=file:// keys in the host's dnf repositories)"
)

_READ_CHUNK = 1 << 20


class VerifyResult:
    def __init__(self) -> None:
        self.packages: list[PackageRef] = []
        self.findings: list[Finding] = []
        self.errors: list[InputError] = []
        self.signatures: list[SignatureStatus] | None = None  # None: not checked (no trusted keys)
        self.notes: list[str] = []  # one line each for stderr: what was not checked and why
        self.trust_files: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())  # for the repair's second verify

    def to_repair(self) -> list[str]:
        """NEVRAs whose reinstallation restores what was found changed or missing."""
        return sorted(
            {f.package.nevra for f in self.findings if f.rule in REPAIRABLE and f.package is not None and not f.waived}
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
    def __init__(self, fs: RootFS, policy: Policy, anchors: trust.Trust | None = None):
        self.fs = fs
        self.policy = policy
        self.result = VerifyResult()
        self.names = _Names(fs, self.result.errors)
        self.owned: set[str] = set()
        self.raw: list[Finding] = []
        self.trust = anchors if anchors is not None else trust.Trust()
        self.checker = hdrsig.Checker(self.trust.keyring()) if self.trust.checks_headers else None
        if self.checker is not None:
            self.result.signatures = []

    def close(self) -> None:
        if self.checker is not None:
            self.checker.close()

    def cannot_verify(self, path: str, exc: OSError) -> None:
        self.result.errors.append(InputError(self.fs.host_path(path), f"cannot verify: {exc.strerror}"))

    @staticmethod
    def _bpf_entries(pkg: Package) -> list[tuple[FileEntry, bool]]:
        """The entries verify compares (files in the BPF directories, files classified eBPF), and which are BPF
        objects proper."""
        dirs = bpfdirs.for_arch(pkg.ref.arch)
        picked = []
        for entry in pkg.files:
            in_bpfdir = relative_name(entry.path, dirs.roots) is not None or entry.path in dirs.roots
            if in_bpfdir or entry.class_says_bpf:
                picked.append((entry, in_bpfdir))
        return picked

    def package(self, pkg: Package) -> None:
        self.result.packages.append(pkg.ref)
        dirs = bpfdirs.for_arch(pkg.ref.arch)
        algo = DIGEST_ALGOS.get(pkg.digest_algo, "sha256")
        entries = self._bpf_entries(pkg)
        file_sigs: dict[str, list[hdrsig.FileSignature]] | None = None
        status = None
        if pkg.header is not None and (entries or pkg.embedded_signal):
            if self.checker is not None:
                status, entries = self.header_signature(pkg, entries)
            if self.trust.checks_files:
                file_sigs, problem = hdrsig.file_signatures(pkg.header)
                if problem:
                    self.raw.append(signature.file_signatures_unreadable(pkg.ref, problem))
        checked = failed = 0
        for entry, in_bpfdir in entries:
            if in_bpfdir:
                self.owned.add(entry.path)
            if entry.is_ghost:
                continue  # expected to change: the runtime locations' %ghost entries
            if entry.class_says_bpf and entry.is_regular:
                misplaced = exempt_finding(pkg, entry.path, self.policy.exempt_paths) or location_finding(
                    pkg, entry, dirs
                )
                if misplaced is not None:
                    self.raw.append(misplaced)
            sigs = None
            if file_sigs is not None and entry.is_regular and (entry.class_says_bpf or entry.path.endswith(".o")):
                sigs = file_sigs.get(entry.path, [])
                if not sigs:
                    self.raw.append(signature.file_signature_missing(pkg.ref, entry.path))
            outcome = self.compare(pkg, entry, algo, sigs or None)
            checked += outcome[0]
            failed += outcome[1]
        if status is not None and self.result.signatures is not None:
            self.result.signatures.append(status._replace(files_checked=checked, files_failed=failed))

    def header_signature(
        self, pkg: Package, entries: list[tuple[FileEntry, bool]]
    ) -> tuple[SignatureStatus, list[tuple[FileEntry, bool]]]:
        """Check the stored header's signature; when it verifies, the entries to compare are the signed ones."""
        assert self.checker is not None
        try:
            blob = bytes(pkg.header.unload())
        except (rpm.error, TypeError, ValueError) as exc:
            sig = hdrsig.HeaderSignature(hdrsig.INVALID, "", f"the stored header cannot be read back ({exc})")
        else:
            sig = self.checker.check(blob, pkg.header)
        if sig.verdict == hdrsig.VERIFIED:
            try:
                signed = hdrsig.signed_package(blob, bpfdirs.for_arch)
            except HeaderError as exc:
                sig = sig._replace(verdict=hdrsig.INVALID, detail=f"the signed region cannot be read ({exc})")
            else:
                changed = hdrsig.changed_entries(pkg.files, signed.files)
                entries = self._bpf_entries(signed)
                if changed:
                    self.raw.append(signature.altered_after_signing(pkg.ref, sig.keyid, changed))
                    return SignatureStatus(pkg.ref, hdrsig.INVALID, sig.keyid, 0, 0), entries
        finding = signature.header(pkg.ref, sig, self.trust.key_ids()) if sig.verdict != hdrsig.VERIFIED else None
        if finding is not None:
            self.raw.append(finding)
        return SignatureStatus(pkg.ref, sig.verdict, sig.keyid, 0, 0), entries

    def found(self, finding: Finding | None) -> bool:
        if finding is not None:
            self.raw.append(finding)
        return finding is not None

    def compare(
        self, pkg: Package, entry: FileEntry, algo: str, sigs: list[hdrsig.FileSignature] | None = None
    ) -> tuple[int, int]:
        """Compare one entry with the disk; (file signatures checked, failed)."""
        ref = pkg.ref
        counts = (0, 0)
        try:
            st = self.fs.lstat(entry.path)
        except FileNotFoundError:
            self.found(installed.missing(ref, entry))
            return counts
        except OSError as exc:
            self.cannot_verify(entry.path, exc)
            return counts
        link = self._readlink(entry.path) if stat.S_ISLNK(st.st_mode) else None
        if self.found(installed.type_changed(ref, entry, st.st_mode, link)):
            return counts
        if entry.is_symlink:
            self.found(installed.link_changed(ref, entry, link or ""))
            return counts
        if entry.is_regular:
            # lstat already tells a size change: no need to hash (a sparse 5 GB file would take seconds).
            if self.found(installed.size_changed(ref, entry, st.st_size)):
                return counts
            if entry.size > MAX_CONTENT:
                self.result.errors.append(
                    InputError(
                        self.fs.host_path(entry.path), f"cannot verify: {entry.size} bytes, larger than rpm-bpf hashes"
                    )
                )
                return counts
            try:
                fd, st = self.fs.open_regular(entry.path)
                try:
                    digest = _digest(fd, algo) if st.st_size == entry.size else None
                    if sigs:
                        counts = self.file_signatures(ref, entry.path, fd, sigs)
                finally:
                    os.close(fd)
            except OSError as exc:
                # Not "modified": unknown. The attributes below can still be compared.
                self.cannot_verify(entry.path, exc)
                digest = entry.digest
            if self.found(installed.digest_changed(ref, entry, digest, algo, st.st_size)):
                return counts
        user, group = self.names.user(st.st_uid), self.names.group(st.st_gid)
        self.raw += attributes.installed(ref, entry, st.st_mode, user)
        self.found(installed.attrs_changed(ref, entry, st.st_mode, user, group))
        return counts

    def file_signatures(self, ref: PackageRef, path: str, fd: int, sigs: list[hdrsig.FileSignature]) -> tuple[int, int]:
        """Each signature over the file behind ``fd``: (checked, failed)."""
        checked = failed = 0
        for sig in sigs:
            try:
                problem = filesig.check(fd, sig, self.trust)
            except OSError as exc:
                self.cannot_verify(path, exc)
                continue
            except subprocess.SubprocessError as exc:
                problem = f"could not be checked ({exc})"
            checked += 1
            finding = signature.file_signature(ref, path, sig.kind, problem)
            if finding is not None:
                self.raw.append(finding)
                failed += 1
        return checked, failed

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
    trusted_keys: Sequence[str] = (),
    trusted_certs: Sequence[str] = (),
    host_keys: bool = True,
) -> VerifyResult:
    """Verify the installed BPF objects of ``root`` (all packages, or those named).

    Unowned files are looked for only when no package is named: they belong
    to none. librpm reads a private copy of the database (nothing in the root
    is written) unless ``private_db`` is False: for the package manager's own
    hook right after its transaction, which has just written the database.
    ``loaded``: the loaded programs too (``bpf-program-unpackaged``, flows/which.py).
    ``trusted_keys``/``trusted_certs``: files of trust anchors, with the policy's ``[trust]``; without any
    key, ``host_keys`` takes the host's dnf repository keys (sources/trust.py). Raises ``TrustError``.
    """
    policy = policy or Policy.load(system=None)
    names = list(names)
    anchors, notes = trust.resolve(
        trusted_keys, trusted_certs, policy.trust_keys, policy.trust_certs, host_default=host_keys
    )
    try:
        # librpm opens a private copy of the database: nothing in the root is written.
        with rpmdb.snapshot(root, private=private_db) as dbroot, RootFS(root) as fs:
            verifier = _Verifier(fs, policy, anchors)
            try:
                verifier.result.notes += notes
                if not anchors.checks_headers:
                    verifier.result.notes.append(NOTE_UNCHECKED)
                for tool in filesig.tools_missing(anchors):
                    verifier.result.errors.append(
                        InputError(tool, "not installed: file signatures cannot be checked (install fsverity, openssl)")
                    )
                for missing in rpmdb.missing_names(dbroot, names):
                    verifier.result.errors.append(InputError(missing, "package is not installed"))
                keep = anchors.checks_headers or anchors.checks_files
                packages = []
                for pkg in rpmdb.installed(dbroot, names, verifier.result.errors, keep_header=keep):
                    verifier.package(pkg)
                    if caches.claims_any(pkg):
                        packages.append(pkg)  # what the cache check needs: claimants only
                if not names:
                    roots = bpfdirs.for_arch(bpfdirs.host_arch()).roots
                    verifier.unowned(roots)
                    verifier.raw += [entry.finding for entry in caches.inspect(fs, packages, verifier.result.errors)]
            finally:
                verifier.close()
    finally:
        anchors.close()
    if loaded:
        from rpm_bpf.flows.which import cache_dir, loaded_findings

        verifier.raw += loaded_findings(root, verifier.result.errors, cache_dir())
    verifier.result.findings = policy.apply(verifier.raw)
    verifier.result.trust_files = (tuple(trusted_keys), tuple(trusted_certs))
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
    keys, certs = result.trust_files
    after = verify(root, policy, result.names_of(plan.nevras), trusted_keys=keys, trusted_certs=certs)
    return 0, [f for f in after.findings if f.rule in REPAIRABLE and not f.waived]


def repair_command(nevras: list[str], root: str = "/", extra: Iterable[str] = ()) -> list[str]:
    """The dnf reinstall that puts the packaged bytes back."""
    cmd = ["dnf", "reinstall", "-y"]
    if os.path.realpath(root) != "/":
        cmd.append(f"--installroot={root}")
    # "--": a name from a (possibly hostile) database is never read as an option.
    return cmd + list(extra) + ["--"] + nevras
