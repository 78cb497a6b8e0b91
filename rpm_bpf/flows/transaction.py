"""The transaction check: what a package manager asks before it installs packages.

One function for every host (the DNF 4 plugin today): the incoming packages
are judged with the per-package rules, and for ``bpf-name-conflict`` against
each other and against the installed packages that stay (found through rpm's
file index, not by reading every installed header). Packages being upgraded
or removed are left out.

It fails closed on hostile input: an incoming package that cannot be read,
or whose check fails, is a ``bpf-package-unreadable`` finding (an error:
refused under enforce), never a reason to skip the check for the rest of
the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rpm_bpf.findings import Finding, InputError
from rpm_bpf.model import APP_PARENTS, app_provide_claims, bpf_provide
from rpm_bpf.rules import appdirs, clash
from rpm_bpf.rules.clash import Claim
from rpm_bpf.rules.policy import Policy
from rpm_bpf.rules.registry import Severity
from rpm_bpf.rules.unreadable import unreadable
from rpm_bpf.sources import bpfdirs, rpmdb
from rpm_bpf.sources.request import Candidate, Incoming, Request

if TYPE_CHECKING:  # imported where needed at run time: most transactions never check a package
    from rpm_bpf.rules.package import ShippedObject


class TransactionResult:
    def __init__(self) -> None:
        self.findings: list[Finding] = []  # as the policy has them (waived ones included)
        self.bpf_names: set[str] = set()  # incoming packages with BPF-related files: what to verify after
        self.errors: list[InputError] = []  # installed packages that could not be read (not incoming ones)

    @property
    def refusing(self) -> list[Finding]:
        """The findings that stop the transaction under mode = enforce."""
        return [f for f in self.findings if f.severity == Severity.ERROR and not f.waived]

    @property
    def notes(self) -> list[Finding]:
        """Warnings and info: shown, never blocking."""
        return [f for f in self.findings if f.severity != Severity.ERROR and not f.waived]


def _unreadable(item: Incoming, reason: str) -> Finding:
    return unreadable(item.path, f"{item.label}: {reason}" if item.label else reason)


def check_transaction(
    root: str, incoming: Iterable[Incoming], leaving: Iterable[tuple[str, str, str]], load_policy: Callable[[], Policy]
) -> TransactionResult:
    """Judge the ``incoming`` package files of a transaction on the system in ``root``.

    ``leaving``: (name, evr, arch) of installed packages the transaction
    removes or replaces; their objects do not conflict with the new ones.
    ``load_policy`` is called only when some package needs judging: most
    transactions bring nothing BPF-related and pay for no policy file.
    """
    from rpm_bpf.rules.package import check_package
    from rpm_bpf.sources.rpmfile import RpmFileError, open_rpm

    result = TransactionResult()
    raw: list[Finding] = []
    relevant = []
    policy: Policy | None = None
    for item in incoming:
        try:
            rpmfile = open_rpm(item.path, bpfdirs.for_arch)
        except RpmFileError as exc:
            raw.append(_unreadable(item, exc.reason))
            continue
        except Exception as exc:  # our bug met on this package: it stays unchecked, so it is refused
            raw.append(_unreadable(item, f"internal error while reading it ({type(exc).__name__}: {exc})"))
            continue
        if not rpmfile.package.files and not app_provide_claims(rpmfile.package.provides):
            continue  # header triage: nothing BPF-related in it
        # Outside the package's try: a broken policy file is the host's error, not this package's.
        policy = policy or load_policy()
        try:
            checked = check_package(
                rpmfile.package,
                bpfdirs.for_arch(rpmfile.package.ref.arch),
                policy.owner_provides,
                rpmfile,
                policy.exempt_paths,
            )
        except Exception as exc:  # our bug met on this package: it stays unchecked, so it is refused
            raw.append(_unreadable(item, f"internal error while checking it ({type(exc).__name__}: {exc})"))
            continue
        if checked.content_error:
            raw.append(_unreadable(item, checked.content_error.removeprefix(item.path + ": ")))
        relevant.append(checked)
        result.bpf_names.add(rpmfile.package.ref.name)
    if not raw and not relevant:
        return result
    policy = policy or load_policy()
    shipped = [obj for checked in relevant for obj in checked.objects]
    apps = [claim for checked in relevant for claim in checked.apps]
    for checked in relevant:
        raw += checked.findings
    if shipped or apps:
        try:
            incoming_nevras = {c.package.ref.nevra for c in relevant}
            raw += _conflicts(root, shipped, set(leaving), incoming_nevras, policy) if shipped else []
            raw += _app_conflicts(root, apps, set(leaving), incoming_nevras, "") if apps else []
        except rpmdb.RpmdbError:
            raise  # the system's own database: not an incoming package's fault
        except Exception as exc:  # met on what the incoming packages ship: they stay unchecked, so refused
            reason = f"internal error while checking name conflicts ({type(exc).__name__}: {exc})"
            raw += [_unreadable(Incoming(c.package.ref.source, c.package.ref.nevra), reason) for c in relevant]
    result.findings = policy.apply(raw)
    return result


def _conflicts(
    root: str,
    shipped: list[ShippedObject],
    leaving: set[tuple[str, str, str]],
    incoming_nevras: set[str],
    policy: Policy,
) -> list[Finding]:
    """``bpf-name-conflict`` of incoming objects, among themselves and with installed packages that stay."""
    from rpm_bpf.rules.package import check_package

    # Installed packages that own a file where an incoming object's name would clash:
    # index look-ups, not a read of every installed header.
    roots = {
        r
        for arch in {bpfdirs.host_arch()} | {o.package.ref.arch for o in shipped}
        for r in bpfdirs.for_arch(arch).roots
    }
    paths = {f"{r}/{o.relname}" if o.relname is not None else o.entry.path for o in shipped for r in roots}
    with rpmdb.snapshot(root, private=False) as live:  # a database must be there, and inside the root
        damaged: list[InputError] = []
        installed = list(rpmdb.owners(live, paths, damaged))
    claims = [obj.claim for obj in shipped]
    for pkg in installed:
        ref = pkg.ref
        if (ref.name, ref.evr, ref.arch) in leaving or ref.nevra in incoming_nevras:
            continue
        checked = check_package(pkg, bpfdirs.for_arch(ref.arch), policy.owner_provides, None, policy.exempt_paths)
        claims += [obj.claim for obj in checked.objects]
    return _installed_unreadable(damaged) + clash.conflicts(
        claims, reported=lambda c: c.package.nevra in incoming_nevras
    )


def _app_conflicts(
    root: str, offered: list[Claim], leaving: set[tuple[str, str, str]], incoming_nevras: set[str], note: str
) -> list[Finding]:
    """``bpf-app-dir-conflict`` of incoming application directories, among themselves and with installed
    packages that stay: rpm's provides index for ``bpf-cache(APP)``/``bpf-runtime(APP)``, its file index
    for ``/var/cache/bpf/APP``."""
    capabilities = sorted({claim.name for claim in offered})
    cache = APP_PARENTS["cache"] + "/"
    cache_dirs = sorted({claim.path for claim in offered if claim.path is not None and claim.path.startswith(cache)})
    with rpmdb.snapshot(root, private=False) as live:
        damaged: list[InputError] = []
        providers = rpmdb.providers(live, capabilities, damaged)
        owning = list(rpmdb.owners(live, cache_dirs, damaged)) if cache_dirs else []
    staying: list[Claim] = []
    for capability, refs in providers.items():
        kind, app = next(iter(app_provide_claims([capability])))
        staying += [appdirs.claim(ref, kind, app) for ref in refs]
    for pkg in owning:
        staying += appdirs.claims(pkg)

    def stays(claim: Claim) -> bool:
        ref = claim.package
        return ref.nevra not in incoming_nevras and (ref.name, ref.evr, ref.arch) not in leaving

    claims = offered + [claim for claim in staying if stays(claim)]
    return _installed_unreadable(damaged) + appdirs.conflicts(
        claims, reported=lambda c: c.package.nevra in incoming_nevras, note=note
    )


def _installed_unreadable(damaged: list[InputError]) -> list[Finding]:
    """An installed package that cannot be read may hold the clashing name: the check fails closed."""
    return [
        unreadable(None, f"installed package {e.input}: {e.message}; a name conflict with it cannot be ruled out")
        for e in damaged
    ]


# --- before download: bpf(NAME) provides from repository metadata ---------------


def check_provides(
    root: str,
    candidates: Iterable[Candidate],
    leaving: Iterable[tuple[str, str, str]],
    load_policy: Callable[[], Policy],
) -> TransactionResult:
    """``bpf-name-conflict`` from ``bpf(NAME)`` provides alone, before any package is downloaded.

    Among the candidates and against installed packages that stay (rpm's
    provides index, one look-up per name). Packages without such provides
    (not built with the rpm-bpf macros) are left to ``check_transaction``
    on the downloaded files.
    """
    result = TransactionResult()
    candidates = list(candidates)
    offered = [Claim(c.ref, name) for c in candidates for name in sorted(c.bpf_names)]
    apps = [appdirs.claim(c.ref, kind, app) for c in candidates for kind, app in sorted(c.app_claims)]
    if not offered and not apps:
        return result  # the common case: nothing BPF-related, no policy file read
    leaving = set(leaving)
    policy = load_policy()
    if apps:
        app_nevras = {claim.package.nevra for claim in apps}
        found = _app_conflicts(root, apps, leaving, app_nevras, "repository metadata, before download")
        result.findings += policy.apply(found)
        result.bpf_names.update(claim.package.name for claim in apps)
    if not offered:
        return result
    incoming_nevras = {claim.package.nevra for claim in offered}
    names = sorted({claim.name for claim in offered})
    with rpmdb.snapshot(root, private=False) as live:  # a database must be there, and inside the root
        damaged: list[InputError] = []
        installed = rpmdb.providers(live, [bpf_provide(name) for name in names], damaged)
    staying = [
        Claim(ref, name)
        for name in names
        for ref in installed.get(bpf_provide(name), [])
        if ref.nevra not in incoming_nevras and (ref.name, ref.evr, ref.arch) not in leaving
    ]
    result.findings += policy.apply(_installed_unreadable(damaged))
    for claim, others in clash.find_clashes(offered + staying, reported=lambda c: c.package.nevra in incoming_nevras):
        others = tuple(sorted(others, key=lambda o: o.package.nevra))
        subject, note = bpf_provide(claim.name), "repository metadata, before download"
        finding = clash.conflict_finding(claim, others, subject, verb="provided", note=note)
        result.findings += _judged_at_every_bpfdir(policy, finding, claim.name)
    result.bpf_names.update(claim.package.name for claim in offered)
    return result


def _judged_at_every_bpfdir(policy: Policy, finding: Finding, name: str) -> list[Finding]:
    """The conflict as the policy has it, its path not known yet: the object is NAME under one of
    the BPF directories, so a waiver or severity that holds for any of those paths holds."""
    arch = finding.package.arch if finding.package is not None else bpfdirs.host_arch()
    judged = [policy.apply([finding._replace(path=f"{root}/{name}")]) for root in bpfdirs.for_arch(arch).roots]
    if any(not found for found in judged):
        return []  # turned off
    chosen = next((found for found in judged if found[0].waived or found[0].severity != Severity.ERROR), judged[0])
    return [chosen[0]._replace(path=None)]  # which directory holds it is known only from the file


def check_request(root: str, request: Request, load_policy: Callable[[], Policy]) -> TransactionResult:
    """Both stages a request may ask for, as one result."""
    result = check_provides(root, request.candidates, request.leaving, load_policy)
    if request.incoming:
        files = check_transaction(root, request.incoming, request.leaving, load_policy)
        files.findings = result.findings + files.findings
        files.bpf_names |= result.bpf_names
        result = files
    return result
