"""sources/request.py: the transaction request a host sends, parsed like any untrusted input.

A valid request gives the records the transaction check uses; each malformed
field gives one ``RequestError`` whose message says where. The request
schema (data/transaction-request.schema.json) agrees on each case.
"""

from __future__ import annotations

import io
import json

import jsonschema
import pytest

from rpm_bpf import data_text
from rpm_bpf.errors import RpmBpfError
from rpm_bpf.model import PackageRef
from rpm_bpf.sources import request
from rpm_bpf.sources.request import REQUEST_SCHEMA, Candidate, Incoming, RequestError, parse_request, read_request

SCHEMA = json.loads(data_text("transaction-request.schema.json"))

VALID = {
    "schema": REQUEST_SCHEMA,
    "incoming": [
        {"path": "/var/cache/dnf/x-1.0-1.x86_64.rpm", "nevra": "x-1.0-1.x86_64", "action": "install"},
        {"path": "/var/cache/dnf/y-2-1.noarch.rpm", "nevra": "y-2-1.noarch"},
    ],
    "candidates": [
        {
            "name": "x",
            "epoch": None,
            "version": "1.0",
            "release": "1",
            "arch": "x86_64",
            "provides": ["bpf(x/prog.bpf.o)", "x = 1.0-1", "bpf(not one)", "bpf()"],
        },
        {"name": "z", "epoch": 3, "version": "0.1", "release": "2", "arch": "aarch64"},
    ],
    "leaving": [
        {"name": "x", "evr": "0:0.9-1", "arch": "x86_64"},
        {"name": "w", "evr": "1:2.0-1", "arch": "noarch"},
    ],
}


def test_valid_request():
    jsonschema.validate(VALID, SCHEMA)
    parsed = parse_request(json.dumps(VALID))
    assert parsed.incoming == [
        Incoming("/var/cache/dnf/x-1.0-1.x86_64.rpm", "x-1.0-1.x86_64"),
        Incoming("/var/cache/dnf/y-2-1.noarch.rpm", "y-2-1.noarch"),
    ]
    x, z = parsed.candidates
    assert x == Candidate(
        PackageRef("x", None, "1.0", "1", "x86_64", "repository metadata"),
        ("bpf(x/prog.bpf.o)", "x = 1.0-1", "bpf(not one)", "bpf()"),
    )
    assert x.bpf_names == {"x/prog.bpf.o"}  # a name with a space, or none, is not one the macros make
    assert z.ref.epoch == 3 and z.ref.nevra == "z-3:0.1-2.aarch64" and z.provides == () and z.bpf_names == set()
    # "0:" is how DNF writes no epoch; rpm-bpf's EVRs leave it out
    assert parsed.leaving == {("x", "0.9-1", "x86_64"), ("w", "1:2.0-1", "noarch")}


def test_every_key_is_optional():
    empty = parse_request("{}")
    assert (empty.incoming, empty.candidates, empty.leaving) == ([], [], set())
    assert parse_request('{"candidates": [{"name": "a", "epoch": 0, "version": "1", "release": "1", "arch": "x"}]}')


def test_epoch_zero_is_no_epoch():
    (candidate,) = parse_request(
        json.dumps({"candidates": [{"name": "a", "epoch": 0, "version": "1", "release": "1", "arch": "noarch"}]})
    ).candidates
    assert candidate.ref.epoch is None and candidate.ref.evr == "1-1"


def _with(path: tuple, value) -> dict:
    """VALID with the field at ``path`` (keys and indexes) set to ``value`` (``...``: removed)."""
    doc = json.loads(json.dumps(VALID))
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


MALFORMED = [
    (("schema",), "rpm-bpf/transaction-request/v2", "schema 'rpm-bpf/transaction-request/v2' is not"),
    (("incoming",), {"path": "x"}, "'incoming', 'candidates' and 'leaving' must be arrays"),
    (("candidates",), None, "'incoming', 'candidates' and 'leaving' must be arrays"),
    (("leaving",), "x", "'incoming', 'candidates' and 'leaving' must be arrays"),
    (("incoming", 1, "path"), ..., "incoming[1]: 'path' must be a non-empty string"),
    (("incoming", 0, "path"), "", "incoming[0]: 'path' must be a non-empty string"),
    (("incoming", 0, "nevra"), 7, "incoming[0]: 'nevra' must be a non-empty string"),
    (("incoming", 1), "/var/cache/y.rpm", "incoming[1]: 'path' must be a non-empty string"),
    (("candidates", 1, "name"), ..., "candidates[1]: 'name' must be a non-empty string"),
    (("candidates", 0, "version"), "", "candidates[0]: 'version' must be a non-empty string"),
    (("candidates", 0, "release"), 1, "candidates[0]: 'release' must be a non-empty string"),
    (("candidates", 1, "arch"), None, "candidates[1]: 'arch' must be a non-empty string"),
    (("candidates", 1, "epoch"), -1, "candidates[1]: 'epoch' must be a non-negative integer or null"),
    (("candidates", 1, "epoch"), "1", "candidates[1]: 'epoch' must be a non-negative integer or null"),
    (("candidates", 1, "epoch"), True, "candidates[1]: 'epoch' must be a non-negative integer or null"),
    (("candidates", 0, "provides"), "bpf(x)", "candidates[0]: 'provides' must be an array of strings"),
    (("candidates", 0, "provides"), ["bpf(x)", 1], "candidates[0]: 'provides' must be an array of strings"),
    (("leaving", 0, "evr"), ..., "leaving[0]: 'evr' must be a non-empty string"),
    (("leaving", 1, "name"), ["w"], "leaving[1]: 'name' must be a non-empty string"),
    (("leaving", 1, "arch"), "", "leaving[1]: 'arch' must be a non-empty string"),
]


@pytest.mark.parametrize(
    "path, value, message", MALFORMED, ids=[f"{'.'.join(map(str, p))}={v!r}" for p, v, _ in MALFORMED]
)
def test_malformed_field_names_where(path, value, message):
    doc = _with(path, value)
    with pytest.raises(RequestError) as raised:
        parse_request(json.dumps(doc))
    assert str(raised.value).startswith(message), str(raised.value)
    with pytest.raises(jsonschema.ValidationError):  # the schema refuses it too
        jsonschema.validate(doc, SCHEMA)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not JSON ("),
        ("", "not JSON ("),
        ("[" * 100_000 + "]" * 100_000, "not JSON ("),
        ("[]", "the request must be a JSON object"),
        ('"incoming"', "the request must be a JSON object"),
    ],
    ids=["garbage", "empty", "deep-nesting", "array", "string"],
)
def test_what_is_not_a_request_object(text, message):
    with pytest.raises(RequestError, match=message.replace("(", r"\(")):
        parse_request(text)


def test_request_error_is_an_rpm_bpf_error_and_a_value_error():
    with pytest.raises(RpmBpfError):
        parse_request("[]")
    with pytest.raises(ValueError):
        parse_request("[]")


def test_request_from_stdin_is_bounded(monkeypatch):
    monkeypatch.setattr(request, "MAX_REQUEST", 16)
    assert read_request("-", io.BytesIO(b'{"incoming": []}')).incoming == []
    with pytest.raises(RequestError, match="larger than 16 bytes"):
        read_request("-", io.BytesIO(b'{"incoming": [] }'))


def test_request_file_names_that_are_not_utf8_survive(tmp_path):
    path = "/var/cache/dnf/\udcff.rpm"
    text = json.dumps({"incoming": [{"path": path, "nevra": "x-1-1.x86_64"}]}, ensure_ascii=False)
    data = text.encode("utf-8", "surrogateescape")
    (tmp_path / "req.json").write_bytes(data)
    (incoming,) = read_request(str(tmp_path / "req.json"), io.BytesIO()).incoming
    assert incoming.path.encode("utf-8", "surrogateescape") == b"/var/cache/dnf/\xff.rpm"
