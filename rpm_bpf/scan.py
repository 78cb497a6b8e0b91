"""Scanning RPM files: per-package rules plus name conflicts across them all."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque, namedtuple
from collections.abc import Callable, Iterable, Iterator

from . import bpfdirs
from .checks import ShippedObject, check_package
from .conflicts import find_conflicts
from .findings import Finding, InputError, PackageRef
from .policy import Policy
from .rpmfile import RpmFileError, open_rpm


class ScanResult:
    __slots__ = ("packages", "findings", "errors")

    def __init__(self, packages: list[PackageRef] | None = None, findings: list[Finding] | None = None,
                 errors: list[InputError] | None = None) -> None:
        self.packages = packages if packages is not None else []
        self.findings = findings if findings is not None else []
        self.errors = errors if errors is not None else []


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

    __slots__ = ("packages", "findings", "shipped", "errors")

    def __init__(self, errors: list[InputError] | None = None) -> None:
        self.packages: list[PackageRef] = []
        self.findings: list[Finding] = []
        self.shipped: list[ShippedObject] = []
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
            chunk.errors.append(InputError(item, f"internal error while checking it ({type(exc).__name__}: {exc}); "
                                                 "not checked, please report this"))
    return chunk


def _scan_one(item: str, options: _Options, chunk: _Chunk) -> None:
    try:
        rpmfile = open_rpm(item, bpfdirs.for_arch, deep=options.deep, embedded=options.embedded)
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


_BATCH = 16  # inputs handed to a worker at a time
_PARALLEL_FROM = 512  # below this, starting workers costs more than it saves


def _serve(conn, options: _Options) -> None:
    """Worker process: checks the inputs it is sent, answering one result per input."""
    try:
        while (batch := conn.recv()) is not None:
            for index, item in batch:
                conn.send((index, _scan_chunk(([item], options))))
    except (EOFError, KeyboardInterrupt):
        pass


def _death(process) -> str:
    import signal

    code = process.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _scan_parallel(inputs: list, jobs: int, options: _Options, done: Callable[[int, _Chunk], None]) -> None:
    """Check ``inputs`` in ``jobs`` worker processes.

    Each worker answers input by input, so when one dies (a crash in a
    library on a crafted file) the input it was on is known: it becomes an
    input error, the rest of its batch goes to a fresh worker. Never a hang.
    """
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    queue = deque(enumerate(inputs))
    workers: dict = {}  # connection -> (process, inputs sent and not answered)
    idle_deaths = [0]  # workers died in a row before taking any input

    def start() -> None:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(child, options), daemon=True)
        process.start()
        child.close()
        workers[parent] = (process, deque())

    def retire(conn) -> None:
        """A worker died: the input it was on is an error, the rest of its batch goes back."""
        process, inflight = workers.pop(conn)
        try:
            while inflight and conn.poll(0):  # answers it sent before dying are still in the pipe
                index, chunk = conn.recv()
                inflight.popleft()
                done(index, chunk)
        except (EOFError, OSError):
            pass
        conn.close()
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        if not inflight:
            # Died before taking any input: after a few such deaths, the next input is charged,
            # so that workers are never forked forever without progress.
            idle_deaths[0] += 1
            if idle_deaths[0] <= 2 * jobs or not queue:
                return
            inflight.append(queue.popleft())
        idle_deaths[0] = 0
        index, item = inflight.popleft()
        done(index, _Chunk(errors=[InputError(item, f"the process reading it died ({_death(process)}); "
                                                   "not checked")]))
        queue.extendleft(reversed(inflight))

    def feed(conn) -> None:
        batch = [queue.popleft() for _ in range(min(_BATCH, len(queue)))]
        if not batch:
            return
        try:
            conn.send(batch)
        except OSError:  # it died before taking them
            queue.extendleft(reversed(batch))
            retire(conn)
            return
        workers[conn][1].extend(batch)

    try:
        while queue or any(inflight for _, inflight in workers.values()):
            while queue and len(workers) < jobs:
                start()
                feed(next(reversed(workers)))
            busy = [c for c, (_, inflight) in workers.items() if inflight]
            for conn in wait(busy) if busy else []:
                _, inflight = workers[conn]
                try:
                    index, chunk = conn.recv()
                except (EOFError, OSError):
                    retire(conn)
                    continue
                inflight.popleft()
                done(index, chunk)
                idle_deaths[0] = 0
                if len(inflight) <= _BATCH // 2:
                    feed(conn)
    finally:
        for conn, (process, _) in workers.items():
            try:
                conn.send(None)
            except OSError:
                pass
            conn.close()
        for process, _ in workers.values():
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


def scan(paths: Iterable[str], policy: Policy, progress: Callable[[int, int], None] | None = None,
         deep: bool = False, jobs: int | None = None, embedded: str = "signals") -> ScanResult:
    """Check every package, then conflicts across all of them.

    ``deep`` skips header triage and reads every payload in full: slow, and
    meant to prove that the fast path misses nothing.  ``embedded``: which
    ELF files are searched for embedded objects ("signals": where a header
    signal says so; "all": every one).  ``jobs``: worker processes (default:
    one per CPU for large scans).
    """
    options = _Options(policy.owner_provides, policy.exempt_paths, deep, embedded)
    inputs = list(expand_inputs(paths))
    total = len(inputs)
    if jobs is None:
        jobs = (os.cpu_count() or 1) if total >= _PARALLEL_FROM else 1
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
        _scan_parallel(inputs, jobs, options, done)
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
        merged.errors += chunk.errors
    merged.findings += find_conflicts(merged.shipped)
    return ScanResult(packages=merged.packages, findings=policy.apply(merged.findings), errors=merged.errors)
