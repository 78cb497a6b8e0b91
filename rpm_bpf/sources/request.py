"""A package manager's transaction, as it describes it to ``rpm-bpf transaction-check`` (JSON).

Read like any other untrusted input: bounded, every field's type checked,
one ``RequestError`` naming where the request is wrong.
"""

from __future__ import annotations

from collections import namedtuple
from typing import BinaryIO

from rpm_bpf.errors import RpmBpfError
from rpm_bpf.model import PackageRef, app_provide_claims, bpf_provide_names


class Incoming(namedtuple("Incoming", ("path", "label"))):
    """A package file about to be installed; ``label`` names it when its header cannot (its NEVRA)."""

    __slots__ = ()
    path: str
    label: str


class Candidate(namedtuple("Candidate", ("ref", "provides"))):
    """A package a resolved transaction would install, as repository metadata describes it."""

    __slots__ = ()
    ref: PackageRef
    provides: tuple[str, ...]

    @property
    def bpf_names(self) -> set[str]:
        """Object names from ``bpf(NAME)`` provides (those the rpm-bpf macros generate)."""
        return bpf_provide_names(self.provides)

    @property
    def app_claims(self) -> set[tuple[str, str]]:
        """(kind, APP) from ``bpf-cache(APP)``/``bpf-runtime(APP)`` provides."""
        return app_provide_claims(self.provides)


REQUEST_SCHEMA = "rpm-bpf/transaction-request/v1"
MAX_REQUEST = 64 << 20  # a request lists paths and NEVRAs: far below this for any transaction


class RequestError(RpmBpfError, ValueError):
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
    if not isinstance(item, dict):
        raise RequestError(f"{where}: must be an object")
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


def read_request(path: str, stdin: BinaryIO | None) -> Request:
    """The request in ``path`` ("-": ``stdin``), bounded; a regular file only, never a FIFO."""
    if path == "-":
        if stdin is None:
            raise RequestError("no standard input to read the request from")
        data = stdin.read(MAX_REQUEST + 1)
        if len(data) > MAX_REQUEST:
            raise RequestError(f"larger than {MAX_REQUEST} bytes")
    else:
        from rpm_bpf.sources.rootfs import read_user_file

        data = read_user_file(path, MAX_REQUEST)
    # surrogateescape: a file name that is not UTF-8 still names its file
    return parse_request(data.decode("utf-8", "surrogateescape"))
