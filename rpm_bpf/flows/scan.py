"""Scanning RPM files: per-package rules plus name conflicts across them all."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections import deque, namedtuple
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from rpm_bpf.findings import Finding, InputError
from rpm_bpf.model import PackageRef
from rpm_bpf.rules import appdirs, clash
from rpm_bpf.rules.clash import Claim
from rpm_bpf.rules.package import ShippedObject, check_package
from rpm_bpf.rules.policy import Policy
from rpm_bpf.sources import bpfdirs
from rpm_bpf.sources.rpmfile import RpmFileError, open_rpm
from rpm_bpf.sources.rpmheader import FULL_RECALL

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess


class ScanResult:
    __slots__ = ("apps", "errors", "findings", "packages", "shipped")

    def __init__(
        self,
        packages: list[PackageRef] | None = None,
        findings: list[Finding] | None = None,
        errors: list[InputError] | None = None,
    ) -> None:
        self.packages = packages if packages is not None else []
        self.findings = findings if findings is not None else []
        self.errors = errors if errors is not None else []
        self.shipped: list[ShippedObject] = []  # every BPF object the packages ship (for a gate)
        self.apps: list[Claim] = []  # every application directory they claim (for a gate)


def _walk_rpms(top: str, errors: list[InputError]) -> list[str]:
    """``*.rpm`` below ``top``, depth-first with an explicit stack (any depth);
    directory symlinks are not entered (no loops)."""
    found: list[str] = []
    stack = [top]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            errors.append(InputError(current, f"cannot list directory: {exc.strerror}"))
            continue
        subdirs = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(entry.path)
            elif entry.name.endswith(".rpm"):
                found.append(entry.path)
        stack.extend(reversed(subdirs))
    return found


def expand_inputs(paths: Iterable[str]) -> Iterator[str | InputError]:
    """RPM files named directly, and ``*.rpm`` found below directories.

    Directory symlinks are not followed (no loops); file symlinks are.
    Whether an input is a regular file is checked when it is opened.
    """
    for path in paths:
        if os.path.isdir(path):
            unreadable: list[InputError] = []
            found = _walk_rpms(path, unreadable)
            yield from unreadable
            if not found and not unreadable:
                yield InputError(path, "directory contains no .rpm files")
            yield from sorted(found)
        elif os.path.lexists(path) and not os.path.exists(path):
            yield InputError(path, "broken symbolic link")
        elif not os.path.exists(path):
            yield InputError(path, "no such file or directory")
        else:
            yield path


class _Chunk:
    """What one worker found in its share of the inputs."""

    __slots__ = ("apps", "errors", "findings", "packages", "shipped")

    def __init__(self, errors: list[InputError] | None = None) -> None:
        self.packages: list[PackageRef] = []
        self.findings: list[Finding] = []
        self.shipped: list[ShippedObject] = []
        self.apps: list[Claim] = []
        self.errors: list[InputError] = errors if errors is not None else []


class _Options(namedtuple("_Options", ("owner_provides", "exempt", "deep", "embedded"))):
    """What every worker needs to check a package (picklable, sent once per worker)."""

    __slots__ = ()
    owner_provides: tuple[str, ...]
    exempt: tuple[str, ...]
    deep: bool
    embedded: str


def _scan_chunk(args: tuple[list[str | InputError], _Options]) -> _Chunk:
    items, options = args
    chunk = _Chunk()
    for item in items:
        if isinstance(item, InputError):
            chunk.errors.append(item)
            continue
        try:
            _scan_one(item, options, chunk)
        except Exception as exc:  # rpm-bpf's own bug, met on this input: fail closed for it
            chunk.errors.append(
                InputError(
                    item,
                    f"internal error while checking it ({type(exc).__name__}: {exc}); not checked, please report this",
                )
            )
    return chunk


def _scan_one(item: str, options: _Options, chunk: _Chunk) -> None:
    try:
        rpmfile = open_rpm(item, bpfdirs.for_arch, deep=options.deep, embedded=options.embedded, archives=True)
    except RpmFileError as exc:
        chunk.errors.append(InputError(item, exc.reason))
        return
    pkg = rpmfile.package
    checked = check_package(pkg, bpfdirs.for_arch(pkg.ref.arch), options.owner_provides, rpmfile, options.exempt)
    if checked.content_error:
        chunk.errors.append(InputError(item, checked.content_error.removeprefix(item + ": ")))
    chunk.packages.append(pkg.ref)
    chunk.findings.extend(checked.findings)
    chunk.shipped.extend(checked.objects)
    chunk.apps.extend(checked.apps)


_BATCH = 16  # inputs handed to a worker at a time, answered together (at most)
_PARALLEL_FROM = 512  # below this many inputs, starting workers costs more than it saves...
_PARALLEL_BYTES = 16 << 20  # ...unless they are this large in all: every ELF file's bytes are searched


def default_jobs(inputs: list[str | InputError]) -> int:
    """Worker processes for these inputs when the caller names none: one per CPU for many inputs, or large
    ones; else one (the benchmark's decompression floor uses the same number)."""
    many = len(inputs) >= _PARALLEL_FROM or (len(inputs) > 1 and _total_size(inputs) >= _PARALLEL_BYTES)
    return (os.cpu_count() or 1) if many else 1


def _total_size(inputs: list[str | InputError]) -> int:
    total = 0
    for item in inputs:
        if isinstance(item, str):
            with contextlib.suppress(OSError):
                total += os.stat(item).st_size
    return total


def _serve(conn: Connection, options: _Options, on: Any) -> None:
    """Worker process: checks the batches it is sent, answering one message per batch.

    Before each input it writes the input's index to ``on`` (shared memory,
    no system call), so that if it dies the parent knows which input killed it.
    """
    try:
        while (batch := conn.recv()) is not None:
            answers = []
            for index, item in batch:
                on.value = index
                answers.append((index, _scan_chunk(([item], options))))
            on.value = -1
            conn.send(answers)
    except (EOFError, KeyboardInterrupt):
        pass


def _death(process: BaseProcess) -> str:
    import signal

    code = process.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _scan_parallel(
    inputs: list[str | InputError],
    jobs: int,
    options: _Options,
    done: Callable[[int, _Chunk], None],
    batch_size: int = _BATCH,
) -> None:
    """Check ``inputs`` in ``jobs`` worker processes.

    Each worker answers batch by batch and marks in shared memory the input
    it is on, so when one dies (a crash in a library on a crafted file) that
    input becomes an input error and the rest of its work, answered or not,
    goes to a fresh worker. Never a hang.
    """
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    queue = deque(enumerate(inputs))
    # connection -> (process, shared "on" index, inputs sent and not answered)
    workers: dict[Connection, tuple[BaseProcess, Any, deque[tuple[int, str | InputError]]]] = {}
    idle_deaths = [0]  # workers died in a row before taking any input

    def start() -> None:
        parent, child = ctx.Pipe()
        on = ctx.RawValue("q", -1)
        process = ctx.Process(target=_serve, args=(child, options, on), daemon=True)
        process.start()
        child.close()
        workers[parent] = (process, on, deque())

    def answered(conn: Connection, answers: list[tuple[int, _Chunk]]) -> None:
        inflight = workers[conn][2]
        for index, chunk in answers:
            inflight.popleft()
            done(index, chunk)

    def retire(conn: Connection) -> None:
        """A worker died: the input it was on is an error, the rest of its work goes back."""
        process, on, inflight = workers[conn]
        try:
            while inflight and conn.poll(0):  # batches it answered before dying are still in the pipe
                answered(conn, conn.recv())
        except (EOFError, OSError):
            pass
        del workers[conn]
        conn.close()
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        culprit = next((pending for pending in inflight if pending[0] == on.value), None)
        if culprit is None:
            # Died before taking any input: after a few such deaths, the next input is charged,
            # so that workers are never forked forever without progress.
            queue.extendleft(reversed(inflight))
            idle_deaths[0] += 1
            if idle_deaths[0] <= 2 * jobs or not queue:
                return
            culprit = queue.popleft()
        else:
            queue.extendleft(reversed([pending for pending in inflight if pending is not culprit]))
        idle_deaths[0] = 0
        index, item = culprit
        done(index, _Chunk(errors=[InputError(item, f"the process reading it died ({_death(process)}); not checked")]))

    def feed(conn: Connection) -> None:
        batch = [queue.popleft() for _ in range(min(batch_size, len(queue)))]
        if not batch:
            return
        try:
            conn.send(batch)
        except OSError:  # it died before taking them
            queue.extendleft(reversed(batch))
            retire(conn)
            return
        workers[conn][2].extend(batch)

    try:
        while queue or any(inflight for _, _, inflight in workers.values()):
            while queue and len(workers) < jobs:
                start()
                conn = next(reversed(workers))
                feed(conn)
                if conn in workers and len(queue) > (jobs - len(workers)) * batch_size:
                    # A second batch waits in the pipe (the worker never idles between batches), unless the
                    # workers still to start need what is left.
                    feed(conn)
            busy = [c for c, (_, _, inflight) in workers.items() if inflight]
            for ready in wait(busy) if busy else []:
                conn = cast("Connection", ready)  # wait() gives back the connections it was given
                try:
                    answers = conn.recv()
                except (EOFError, OSError):
                    retire(conn)
                    continue
                answered(conn, answers)
                idle_deaths[0] = 0
                if len(workers[conn][2]) <= batch_size:
                    feed(conn)
    finally:
        for conn in workers:
            with contextlib.suppress(OSError):
                conn.send(None)
            conn.close()
        for process, _, _ in workers.values():
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


def scan(
    paths: Iterable[str],
    policy: Policy,
    progress: Callable[[int, int], None] | None = None,
    deep: bool = False,
    jobs: int | None = None,
    embedded: str = FULL_RECALL,
) -> ScanResult:
    """Check every package, then conflicts across all of them.

    ``deep`` skips header triage and reads every payload in full: slow, and
    meant to prove that the fast path misses nothing.  ``embedded``: which
    ELF files are searched for embedded objects ("all", the default: every
    one; "signals": where a header signal says so).  ``jobs``: worker processes (default:
    one per CPU for large scans).
    """
    options = _Options(policy.owner_provides, policy.exempt_paths, deep, embedded)
    inputs = list(expand_inputs(paths))
    total = len(inputs)
    if jobs is None:
        jobs = default_jobs(inputs)
    bpfdirs.for_arch(bpfdirs.host_arch())  # warm the cache before any fork
    bpfdirs.known_arches()
    results: list[_Chunk | None] = [None] * total
    count = 0

    def done(index: int, chunk: _Chunk) -> None:
        nonlocal count
        results[index] = chunk
        count += 1
        if progress is not None and (count % _BATCH == 0 or count == total):
            progress(count, total)

    if jobs > 1 and total > 1:
        # Small batches for few inputs, so that every worker gets some (packages differ in size).
        _scan_parallel(inputs, jobs, options, done, max(1, min(_BATCH, total // (4 * jobs))))
    else:
        for index, item in enumerate(inputs):
            done(index, _scan_chunk(([item], options)))
    merged = _Chunk()
    for chunk in results:
        if chunk is None:
            continue
        merged.packages += chunk.packages
        merged.findings += chunk.findings
        merged.shipped += chunk.shipped
        merged.apps += chunk.apps
        merged.errors += chunk.errors
    merged.findings += clash.conflicts(obj.claim for obj in merged.shipped)
    merged.findings += appdirs.conflicts(merged.apps)
    result = ScanResult(packages=merged.packages, findings=policy.apply(merged.findings), errors=merged.errors)
    result.shipped = merged.shipped
    result.apps = merged.apps
    return result
