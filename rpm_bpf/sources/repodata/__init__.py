"""Reading yum/dnf repository metadata: what a repository ships under the BPF directories.

For the gate (``rpm-bpf scan --against REPO``): a distribution repository has
~75,000 packages and ~3.5 million file entries, and only a few hundred ship
BPF objects. So the metadata is streamed, never held whole: each file
(primary, filelists) is read in bounded chunks, its checksum from repomd.xml
checked as it goes, decompressed (gzip, xz, bzip2 or zstd, recognised by
their magic bytes) with a bounded output, and searched for the few byte
strings that matter (``>/usr/lib64/bpf/`` in a ``<file>`` element,
``name="bpf(`` in a provides entry). Only the ``<package>`` elements around
a hit are handed to createrepo_c's own parser (``xml_parse_*_snippet``):
no XML is parsed here, and no package is downloaded.

Repositories are hostile input like packages: an ``href`` may not leave the
repository, sizes are bounded, a checksum that does not match makes the whole
repository an input error.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from rpm_bpf.model import APP_PARENTS, PackageRef, app_provide_claims, bpf_provide_names
from rpm_bpf.sources.repodata import glib
from rpm_bpf.sources.repodata.decompress import decompressed
from rpm_bpf.sources.repodata.prefilter import OPEN, any_of, either, named, snippets
from rpm_bpf.sources.repodata.transport import CHUNK, DIGESTS, MAX_COMPRESSED, MAX_KEPT, RepoError, Source, read_records

__all__ = ["RepoContents", "RepoError", "looks_like_bpf_object", "read_repository"]


class RepoContents:
    """What matters in one repository: files under the BPF directories and bpf(NAME) provides, per package
    (a PackageRef whose ``source`` is the repository)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.files: dict[PackageRef, list[str]] = {}  # paths under a BPF directory (files, not directories)
        self.provides: dict[PackageRef, list[str]] = {}  # bpf(NAME) provides, as NAME
        # Application directories: (kind, APP) from bpf-cache(APP)/bpf-runtime(APP) provides, and
        # ("cache", APP) for entries below /var/cache/bpf/APP (directories included), with the directory.
        self.apps: dict[PackageRef, dict[tuple[str, str], str | None]] = {}
        self.packages = 0  # how many packages the primary metadata lists
        # With inventory=True (repo-report): files that look like BPF objects outside the BPF directories
        # (by name: metadata has no file types), the BPF directories each package owns, and the
        # Requires of the packages with files in them.
        self.outside: dict[PackageRef, list[str]] = {}
        self.owned: dict[PackageRef, set[str]] = {}
        self.requires: dict[PackageRef, list[str]] = {}


def metadata_stream(source: Source, record: Any) -> Iterator[bytes]:
    """One metadata file, decompressed, its checksum (repomd.xml's) checked once it is all read."""
    algo = DIGESTS.get((record.checksum_type or "").lower())
    if algo is None:
        raise RepoError(f"{source.location}: {record.location_href}: unknown checksum type {record.checksum_type!r}")
    with source.open(record.location_href, MAX_COMPRESSED) as stream:
        stream.digest = algo()
        yield from decompressed(stream, f"{source.location}/{record.location_href}")
        while stream.read(CHUNK):  # whatever follows the compressed data still counts for the checksum
            pass
        if stream.digest.hexdigest() != (record.checksum or "").lower():
            raise RepoError(
                f"{source.location}: {record.location_href}: checksum does not match repomd.xml "
                "(changed, truncated or corrupt metadata)"
            )


def _ref(pkg: Any, label: str) -> PackageRef:
    epoch = pkg.epoch or "0"
    if not (epoch.isascii() and epoch.isdigit() and len(epoch) <= 10):
        raise RepoError(f"{label}: package {pkg.name!r} has an epoch that is not a number ({epoch[:20]!r})")
    return PackageRef(pkg.name, int(epoch) or None, pkg.version, pkg.release, pkg.arch, label)


def looks_like_bpf_object(path: str) -> bool:
    """A file name BPF objects carry (``*.bpf.o``, or ``*.o`` in a directory named ``bpf``): metadata has no
    file types, so objects outside the BPF directories can only be recognised by name."""
    return path.endswith(".bpf.o") or (path.endswith(".o") and "/bpf/" in path)


def read_repository(location: str, roots: Iterable[str], inventory: bool = False) -> RepoContents:
    """The BPF side of one repository (a path or an http(s) URL with ``repodata/``).

    ``roots``: the BPF directories to look under (every architecture's).
    ``inventory``: also what ``repo-report`` shows (see ``RepoContents``);
    the primary metadata is then read after the filelists, not beside them.
    Raises ``RepoError`` for anything that makes the repository unreadable.
    """
    import createrepo_c as cr  # type: ignore[import-untyped]

    source = Source(location)
    if not source.url and not os.path.isdir(source.base):
        raise RepoError(f"{location}: no such repository (not a directory or an http(s) URL)")
    records = read_records(source)
    contents = RepoContents(location)
    roots = tuple(sorted(set(roots)))
    cache = APP_PARENTS["cache"]
    file_needles = tuple(b">" + root.encode() + b"/" for root in (*roots, cache))
    errors: list[BaseException] = []
    kept = [0]  # entries kept from this repository: bounded, whatever a crafted file decompresses to

    def check_kept() -> None:
        if kept[0] > MAX_KEPT:
            raise RepoError(
                f"{location}: more than {MAX_KEPT} BPF entries (files under the BPF directories, "
                "bpf(NAME) provides): not a real repository"
            )

    def parse(kind: str, snippet: bytes) -> list[Any]:
        found: list[Any] = []

        def keep(pkg: Any) -> bool:
            found.append(pkg)
            return True

        try:
            text = snippet.decode("utf-8")
            if kind == "filelists":
                cr.xml_parse_filelists_snippet(text, None, keep, None)
            else:
                cr.xml_parse_primary_snippet(text, None, keep, None, False)
        except Exception as exc:  # createrepo_c's parser error, or bytes that are not UTF-8
            # createrepo_c quotes the whole element in its message: keep the reason, not the (hostile) text
            reason = str(exc).split("\n", 1)[0].split(": ")[-1][:200]
            raise RepoError(f"{location}: {kind} metadata cannot be parsed ({reason})") from None
        return found

    def filelists() -> None:
        try:
            needles, found = file_needles, None
            if inventory:
                needles = (b".bpf.o<", b"/bpf/")  # "/bpf/" is part of every directory's needle too
            elif all(n.endswith(b"bpf/") for n in file_needles):
                needles, found = (), any_of(file_needles, b"bpf/")  # one search finds them all
            for snippet in snippets(metadata_stream(source, records["filelists"]), needles, found):
                check_kept()
                for pkg in parse("filelists", snippet):
                    paths = [f"{d}{n}" for kind, d, n in pkg.files if kind != "dir"]
                    mine = [p for p in paths if any(p.startswith(root + "/") for root in roots)]
                    ref = _ref(pkg, location)
                    if mine:
                        contents.files.setdefault(ref, []).extend(mine)
                        kept[0] += len(mine)
                    cached = {
                        f"{d}{n}"[len(cache) + 1 :].split("/", 1)[0]
                        for _, d, n in pkg.files
                        if f"{d}{n}".startswith(cache + "/")
                    }
                    for app in sorted(cached - {""}):
                        contents.apps.setdefault(ref, {})[("cache", app)] = f"{cache}/{app}"
                        kept[0] += 1
                    if not inventory:
                        continue
                    outside = [p for p in paths if p not in mine and looks_like_bpf_object(p)]
                    if outside:
                        contents.outside.setdefault(ref, []).extend(outside)
                        kept[0] += len(outside)
                    dirs = {f"{d}{n}" for kind, d, n in pkg.files if kind == "dir"}
                    owned = {d for d in dirs if any(d == root or d.startswith(root + "/") for root in roots)}
                    if owned:
                        contents.owned.setdefault(ref, set()).update(owned)
        except BaseException as exc:  # reported by the caller's thread
            errors.append(exc)

    counter = _CountingIter()

    def primary() -> None:
        try:
            wanted = {ref.name.encode() for ref in contents.files}  # whose Requires the inventory needs
            stream = counter(metadata_stream(source, records["primary"]))
            provides = any_of((b'name="bpf(', b'name="bpf-cache(', b'name="bpf-runtime('), b'name="bpf')
            elements = snippets(stream, (), either(provides, named(wanted) if wanted else None))
            for chunk in elements:
                check_kept()
                for pkg in parse("primary", chunk):
                    ref = _ref(pkg, location)
                    names = sorted(bpf_provide_names(p[0] for p in pkg.provides))
                    if names:
                        contents.provides.setdefault(ref, []).extend(names)
                        kept[0] += len(names)
                    for app in sorted(app_provide_claims(p[0] for p in pkg.provides)):
                        contents.apps.setdefault(ref, {}).setdefault(app, None)
                        kept[0] += 1
                    if ref in contents.files:
                        contents.requires[ref] = [r[0] for r in pkg.requires]
            contents.packages = counter.last
        except BaseException as exc:
            errors.append(exc)

    with glib.quiet():  # createrepo_c's messages quote hostile elements whole: one line, the RepoError, instead
        if inventory:  # the primary pass needs the names the filelists found
            filelists()
            if not errors:
                primary()
        else:  # two files, two cores: decompression releases the GIL
            worker = threading.Thread(target=filelists, name="rpm-bpf-filelists")
            worker.start()
            primary()
            worker.join()
    if errors:
        first = errors[0]
        if isinstance(first, RepoError) and not str(first).startswith(f"{location}: "):
            raise RepoError(f"{location}: {first}") from None  # the pre-filter's refusals name no repository
        raise first
    return contents


class _CountingIter:
    """Counts ``<package `` openings in the primary stream as it passes (the repository's size, for reports)."""

    def __init__(self) -> None:
        self.last = 0

    def __call__(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        self.last = 0
        tail = b""
        for chunk in chunks:
            self.last += (tail + chunk[: len(OPEN) - 1]).count(OPEN) + chunk.count(OPEN)
            tail = chunk[-(len(OPEN) - 1) :]
            yield chunk
