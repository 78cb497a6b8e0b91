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

from collections import namedtuple
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from . import bpfdirs, rpmdb
from .findings import Finding, InputError, PackageRef
from .policy import Policy
from .rules import Severity

if TYPE_CHECKING:  # imported where needed at run time: most transactions never check a package
    from .checks import ShippedObject


class Incoming(namedtuple("Incoming", ("path", "label"))):
    """A package file about to be installed; ``label`` names it when its header cannot (its NEVRA)."""

    __slots__ = ()
    path: str
    label: str


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
    detail = f"{item.label}: {reason}" if item.label else reason
    return Finding.of("bpf-package-unreadable", None, item.path, detail)


def check_transaction(
    root: str, incoming: Iterable[Incoming], leaving: Iterable[tuple[str, str, str]], load_policy: Callable[[], Policy]
) -> TransactionResult:
    """Judge the ``incoming`` package files of a transaction on the system in ``root``.

    ``leaving``: (name, evr, arch) of installed packages the transaction
    removes or replaces; their objects do not conflict with the new ones.
    ``load_policy`` is called only when some package needs judging: most
    transactions bring nothing BPF-related and pay for no policy file.
    """
    from .checks import check_package
    from .rpmfile import RpmFileError, open_rpm

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
        if not rpmfile.package.files:
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
    for checked in relevant:
        raw += checked.findings
    if shipped:
        try:
            raw += _conflicts(root, shipped, set(leaving), {c.package.ref.nevra for c in relevant}, policy, result)
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
    result: TransactionResult,
) -> list[Finding]:
    """``bpf-name-conflict`` of incoming objects, among themselves and with installed packages that stay."""
    from .checks import check_package
    from .conflicts import find_conflicts

    # Installed packages that own a file where an incoming object's name would clash:
    # index look-ups, not a read of every installed header.
    roots = {
        r
        for arch in {bpfdirs.host_arch()} | {o.package.ref.arch for o in shipped}
        for r in bpfdirs.for_arch(arch).roots
    }
    paths = {f"{r}/{o.relname}" if o.relname is not None else o.entry.path for o in shipped for r in roots}
    with rpmdb.snapshot(root, private=False) as live:  # a database must be there, and inside the root
        installed = list(rpmdb.owners(live, paths, result.errors))
    for pkg in installed:
        ref = pkg.ref
        if (ref.name, _evr(ref), ref.arch) in leaving or ref.nevra in incoming_nevras:
            continue
        shipped = (
            shipped
            + check_package(pkg, bpfdirs.for_arch(ref.arch), policy.owner_provides, None, policy.exempt_paths).objects
        )
    return find_conflicts(shipped, only_for=incoming_nevras)


# --- before download: bpf(NAME) provides from repository metadata ---------------

BPF_PROVIDE_PREFIX = "bpf("


class Candidate(namedtuple("Candidate", ("ref", "provides"))):
    """A package a resolved transaction would install, as repository metadata describes it."""

    __slots__ = ()
    ref: PackageRef
    provides: tuple[str, ...]

    @property
    def bpf_names(self) -> set[str]:
        """Object names from ``bpf(NAME)`` provides (those the rpm-bpf macros generate)."""
        return {
            p[len(BPF_PROVIDE_PREFIX) : -1]
            for p in self.provides
            if p.startswith(BPF_PROVIDE_PREFIX) and p.endswith(")") and " " not in p
        }


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
    by_name: dict[str, list[PackageRef]] = {}
    for candidate in candidates:
        for name in candidate.bpf_names:
            by_name.setdefault(name, []).append(candidate.ref)
    if not by_name:
        return result  # the common case: nothing BPF-related, no policy file read
    leaving = set(leaving)
    incoming_nevras = {ref.nevra for refs in by_name.values() for ref in refs}
    with rpmdb.snapshot(root, private=False) as live:  # a database must be there, and inside the root
        installed = rpmdb.providers(live, [f"{BPF_PROVIDE_PREFIX}{name})" for name in by_name])
    policy = load_policy()
    for name, refs in sorted(by_name.items()):
        others = refs + [
            ref
            for ref in installed.get(f"{BPF_PROVIDE_PREFIX}{name})", [])
            if ref.nevra not in incoming_nevras and (ref.name, _evr(ref), ref.arch) not in leaving
        ]
        for ref in refs:
            clashing = sorted({o.nevra for o in others if o.name != ref.name})
            if clashing:
                detail = f"bpf({name}) is also provided by {', '.join(clashing)} (repository metadata, before download)"
                result.findings += _judged_at_every_bpfdir(policy, ref, name, detail, tuple(clashing))
        result.bpf_names.update(ref.name for ref in refs)
    return result


def _judged_at_every_bpfdir(
    policy: Policy, ref: PackageRef, name: str, detail: str, related: tuple[str, ...]
) -> list[Finding]:
    """The conflict as the policy has it, its path not known yet: the object is NAME under one of
    the BPF directories, so a waiver or severity that holds for any of those paths holds."""
    judged = [
        policy.apply([Finding.of("bpf-name-conflict", ref, f"{root}/{name}", detail, related=related)])
        for root in bpfdirs.for_arch(ref.arch).roots
    ]
    if any(not found for found in judged):
        return []  # turned off
    chosen = next((found for found in judged if found[0].waived or found[0].severity != Severity.ERROR), judged[0])
    return [chosen[0]._replace(path=None)]  # which directory holds it is known only from the file


def _evr(ref: PackageRef) -> str:
    """EVR as DNF writes it: no epoch when it is 0."""
    return f"{ref.epoch}:{ref.version}-{ref.release}" if ref.epoch else f"{ref.version}-{ref.release}"


# --- the command's JSON interface (`rpm-bpf transaction-check`) ----------------

REQUEST_SCHEMA = "rpm-bpf/transaction-request/v1"
RESPONSE_SCHEMA = "rpm-bpf/transaction-check/v1"
MAX_REQUEST = 64 << 20  # a request lists paths and NEVRAs: far below this for any transaction
MSG_REFUSED = "rpm-bpf: transaction refused: incoming packages break the BPF object policy"
MSG_WARNING = "rpm-bpf: incoming packages break the BPF object policy (mode=warn, continuing)"


class RequestError(ValueError):
    """A request that does not follow the schema; the message says where."""


def _field(item: object, key: str, where: str) -> str:
    value = item.get(key) if isinstance(item, dict) else None
    if not isinstance(value, str) or not value:
        raise RequestError(f"{where}: {key!r} must be a non-empty string")
    return value


class Request(namedtuple("Request", ("incoming", "candidates", "leaving"))):
    """A transaction as a host describes it: downloaded files, metadata candidates, leaving packages."""

    __slots__ = ()
    incoming: list[Incoming]
    candidates: list[Candidate]
    leaving: set[tuple[str, str, str]]


def _candidate(item: object, where: str) -> Candidate:
    epoch = item.get("epoch") if isinstance(item, dict) else None
    if epoch is not None and (not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0):
        raise RequestError(f"{where}: 'epoch' must be a non-negative integer or null")
    provides = item.get("provides", []) if isinstance(item, dict) else None
    if not isinstance(provides, list) or not all(isinstance(p, str) for p in provides):
        raise RequestError(f"{where}: 'provides' must be an array of strings")
    ref = PackageRef(
        _field(item, "name", where),
        epoch or None,
        _field(item, "version", where),
        _field(item, "release", where),
        _field(item, "arch", where),
        "repository metadata",
    )
    return Candidate(ref, tuple(provides))


def parse_request(text: str) -> Request:
    """A request (schema ``REQUEST_SCHEMA``); every key is optional::

        {"incoming": [{"path": "/var/cache/.../x.rpm", "nevra": "x-1.0-1.x86_64", "action": "install"}],
         "candidates": [{"name": "x", "epoch": null, "version": "1.0", "release": "1", "arch": "x86_64",
                         "provides": ["bpf(x/prog.bpf.o)", "x = 1.0-1"]}],
         "leaving": [{"name": "x", "evr": "0.9-1", "arch": "x86_64"}]}

    ``incoming``: downloaded files (``check_transaction``); ``candidates``:
    what depsolving chose, from repository metadata, before download
    (``check_provides``). ``evr`` as DNF writes it (``[EPOCH:]VERSION-RELEASE``).
    """
    import json

    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise RequestError("the request must be a JSON object")
    if doc.get("schema", REQUEST_SCHEMA) != REQUEST_SCHEMA:
        raise RequestError(f"schema {doc.get('schema')!r} is not {REQUEST_SCHEMA!r}")
    incoming, candidates, leaving = doc.get("incoming", []), doc.get("candidates", []), doc.get("leaving", [])
    if not all(isinstance(x, list) for x in (incoming, candidates, leaving)):
        raise RequestError("'incoming', 'candidates' and 'leaving' must be arrays")
    items = [
        Incoming(_field(i, "path", f"incoming[{n}]"), _field(i, "nevra", f"incoming[{n}]"))
        for n, i in enumerate(incoming)
    ]
    chosen = [_candidate(c, f"candidates[{n}]") for n, c in enumerate(candidates)]
    gone = {
        (
            _field(i, "name", f"leaving[{n}]"),
            _field(i, "evr", f"leaving[{n}]").removeprefix("0:"),
            _field(i, "arch", f"leaving[{n}]"),
        )
        for n, i in enumerate(leaving)
    }
    return Request(items, chosen, gone)


def check_request(root: str, request: Request, load_policy: Callable[[], Policy]) -> TransactionResult:
    """Both stages a request may ask for, as one result."""
    result = check_provides(root, request.candidates, request.leaving, load_policy)
    if request.incoming:
        files = check_transaction(root, request.incoming, request.leaving, load_policy)
        files.findings = result.findings + files.findings
        files.bpf_names |= result.bpf_names
        result = files
    return result


def response(result: TransactionResult, mode: str) -> dict[str, Any]:
    """The answer a host acts on: the verdict, the lines to show, every finding (JSON report fields)."""
    from .report import finding_dict, finding_line, input_error_line

    refusing = result.refusing
    verdict = "accept" if not refusing or mode == "off" else ("refuse" if mode == "enforce" else "warn")
    message = ""
    if verdict != "accept":
        head = MSG_REFUSED if verdict == "refuse" else MSG_WARNING
        message = head + ":\n" + "\n".join("  " + finding_line(f) for f in refusing)
    return {
        "schema": RESPONSE_SCHEMA,
        "verdict": verdict,
        "mode": mode,
        "message": message,
        "notes": [finding_line(f) for f in result.notes] + [input_error_line(e) for e in result.errors],
        "findings": [finding_dict(f) for f in result.findings],
        "bpf_packages": sorted(result.bpf_names),
        "input_errors": [{"input": e.input, "message": e.message} for e in result.errors],
    }
