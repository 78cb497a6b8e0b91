"""Benchmark: `rpm-bpf scan` against `rpmlint`, and against just decompressing the payloads, in one run.

    .venv/bin/python benchmarks/bench_scan.py [--corpus DIR] [--packages 2000] [--repeat 3]

Builds the synthetic corpus with benchmarks/corpus.py if DIR has none (zstd
payloads, as Fedora's), warms the page cache, then times (wall clock, whole
processes, start-up included):
  * rpm-bpf scan, the default: every ELF file's bytes searched (best of --repeat runs),
  * the floor: the same payloads only decompressed, by the zstd command in as many
    processes as the scan uses (each payload cut out of its RPM beforehand, untimed),
  * rpm-bpf scan --embedded=signals (header triage, the mass-audit mode; best of --repeat),
  * rpm-bpf scan --deep (every payload read in full, no header triage),
  * rpmlint on the same RPM files (one process for all of them, as a build
    system would run it; --rpmlint-limit N times it on the first N only).
Targets: the default scan at most 1.5x the floor, the signals mode at least
1000x rpmlint and 5000 packages/s. It checks that the default scan reports
exactly what --deep reports and every finding planted in the corpus. Then
the same default/floor/signals/deep runs on the real-world corpus
(benchmarks/realworld_corpus.py), with the embedded objects each finds.

Last, in this process, what the security checks of reading a package cost:
the header digest (SHA-256 of the main header, as `rpm -qp` checks it) and
the index type check, timed inside real `open_rpm` calls over the corpus, and
`rpm -K --nosignature` on the same files (rpm's own digest check) beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = REPO / ".venv" / "bin"
sys.path.insert(0, str(REPO))
TARGET_RATIO = 1000
TARGET_RATE = 5000
TARGET_FLOOR = 1.5
# PAYLOADCOMPRESSOR -> the command that decompresses such a payload to stdout
DECOMPRESSORS = {"zstd": ["zstd", "-dcq"], "gzip": ["gzip", "-dc"], "xz": ["xz", "-dc"]}


def _tool(name: str) -> str:
    local = VENV_BIN / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def _timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - started, proc


def _best(cmd: list[str], repeat: int) -> tuple[float, subprocess.CompletedProcess]:
    runs = [_timed(cmd) for _ in range(max(1, repeat))]
    return min(runs, key=lambda run: run[0])


def _findings(proc: subprocess.CompletedProcess) -> set[tuple[str, str, str]]:
    doc = json.loads(proc.stdout)
    return {(f["package"]["name"], f["rule"], f["path"]) for f in doc["findings"]}


def scan_jobs(rpms: list[Path]) -> int:
    """The worker processes ``rpm-bpf scan`` uses for these inputs (flows/scan.py's own rule)."""
    from rpm_bpf.flows import scan

    return scan.default_jobs([str(p) for p in rpms])


def decompress_floor(rpms: list[Path], jobs: int, repeat: int) -> tuple[float, int]:
    """Wall time of only decompressing every payload (best of ``repeat``), and the bytes decompressed.

    Each payload is cut out of its RPM first (not timed) and the payloads are dealt to ``jobs`` files,
    balanced by size; then one decompressor process per file runs, all at once, output to /dev/null
    (concatenated zstd frames, gzip members and xz streams decompress as one stream)."""
    import rpm

    from rpm_bpf.sources import bpfdirs, rpmfile

    rpmfile.quiet_rpm_log()
    with tempfile.TemporaryDirectory(prefix="rpm-bpf-floor-", dir="/var/tmp") as tmp:
        outs: dict[tuple[str, int], tuple[Path, list[int]]] = {}
        sizes: dict[str, list[int]] = {}
        for path in rpms:
            opened = rpmfile.open_rpm(str(path), bpfdirs.for_arch)
            compressor = opened.header[rpm.RPMTAG_PAYLOADCOMPRESSOR] or "gzip"
            if compressor not in DECOMPRESSORS:
                raise SystemExit(f"bench_scan: no floor command for {compressor} payloads ({path})")
            loads = sizes.setdefault(compressor, [0] * jobs)
            slot = loads.index(min(loads))
            data = path.read_bytes()[opened.payload_offset :]
            loads[slot] += len(data)
            target, _ = outs.setdefault((compressor, slot), (Path(tmp) / f"{compressor}-{slot}", []))
            with target.open("ab") as f:
                f.write(data)
        commands = " ; ".join(f"{' '.join(DECOMPRESSORS[c])} {p}" for (c, _), (p, _) in outs.items())
        count = subprocess.run(["sh", "-c", f"( {commands} ) | wc -c"], capture_output=True, text=True, check=True)
        total = int(count.stdout)
        best = float("inf")
        for _ in range(max(1, repeat)):
            started = time.perf_counter()
            with open(os.devnull, "wb") as null:
                procs = [subprocess.Popen([*DECOMPRESSORS[c], str(p)], stdout=null) for (c, _), (p, _) in outs.items()]
                if any(proc.wait() != 0 for proc in procs):
                    raise SystemExit("bench_scan: a decompressor failed")
            best = min(best, time.perf_counter() - started)
    return best, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=HERE / "out" / "corpus-zstd")
    parser.add_argument("--packages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rpmlint-limit", type=int, default=0, help="time rpmlint on the first N packages only")
    parser.add_argument(
        "--no-realworld",
        action="store_true",
        help="skip the real-world corpus (benchmarks/realworld_corpus.py: apt-get download)",
    )
    args = parser.parse_args()

    manifest_path = args.corpus / "expected.json"
    if not manifest_path.exists():
        subprocess.run(
            [sys.executable, str(HERE / "corpus.py"), str(args.corpus), "--packages", str(args.packages)], check=True
        )
    manifest = json.loads(manifest_path.read_text())
    rpms = sorted((args.corpus / "rpms").glob("*.rpm"))
    n = len(rpms)
    size_mb = sum(p.stat().st_size for p in rpms) / 1e6
    for path in rpms:  # warm cache for every tool alike
        path.read_bytes()
    print(
        f"corpus: {n} packages, {manifest['bpf_packages']} ship BPF objects "
        f"({100 * manifest['bpf_packages'] / n:.1f} %), {size_mb:.0f} MB, "
        f"payloads {manifest.get('payload', 'rpm default')}, seed {manifest['seed']}"
    )

    rpm_bpf = [_tool("rpm-bpf"), "scan", "-q", "--no-system-policy", "-f", "json", str(args.corpus / "rpms")]
    fast_s, fast = _best(rpm_bpf, args.repeat)
    floor_s, raw = decompress_floor(rpms, scan_jobs(rpms), args.repeat)
    signals_s, signals = _best([*rpm_bpf[:2], "--embedded=signals", *rpm_bpf[2:]], args.repeat)
    deep_s, deep = _timed([*rpm_bpf[:2], "--deep", *rpm_bpf[2:]])

    lint_files = rpms[: args.rpmlint_limit] if args.rpmlint_limit else rpms
    lint_s, lint = _timed([_tool("rpmlint"), *map(str, lint_files)])
    lint_n = len(lint_files)

    fast_found, deep_found = _findings(fast), _findings(deep)
    expected = {(e["package"], e["rule"], e["path"]) for e in manifest["expected"]}
    lint_rate = lint_n / lint_s
    ratio = n / signals_s / lint_rate
    jobs = scan_jobs(rpms)

    print(f"{'tool':40} {'packages':>8} {'seconds':>9} {'packages/s':>11}")
    print(f"{'rpm-bpf scan (best of ' + str(args.repeat) + ')':40} {n:8} {fast_s:9.3f} {n / fast_s:11.0f}")
    print(f"{'decompress only (' + str(jobs) + ' x zstd -dc, floor)':40} {n:8} {floor_s:9.3f} {n / floor_s:11.0f}")
    print(f"{'rpm-bpf scan --embedded=signals':40} {n:8} {signals_s:9.3f} {n / signals_s:11.0f}")
    print(f"{'rpm-bpf scan --deep':40} {n:8} {deep_s:9.3f} {n / deep_s:11.0f}")
    print(f"{'rpmlint ' + lint_run_label(lint):40} {lint_n:8} {lint_s:9.3f} {lint_rate:11.1f}")
    print(f"payloads decompressed by the floor: {raw / 1e6:.0f} MB")
    floor_ratio = fast_s / floor_s
    print(f"ratio rpm-bpf scan / decompression floor: {floor_ratio:.2f}x  (target <= {TARGET_FLOOR}x)")
    print(
        f"ratio rpm-bpf --embedded=signals / rpmlint: {ratio:,.0f}x  "
        f"(target >= {TARGET_RATIO}x and >= {TARGET_RATE} packages/s)"
    )
    print(f"ratio rpm-bpf scan (default) / rpmlint: {n / fast_s / lint_rate:,.0f}x")
    print(f"findings: default {len(fast_found)}, deep {len(deep_found)}, planted {len(expected)}")
    ok = True
    for label, rows in (
        ("found by --deep but not by the default scan", deep_found - fast_found),
        ("planted but not found", expected - fast_found),
        ("found but not planted", fast_found - expected),
    ):
        if rows:
            ok = False
            print(f"MISMATCH: {label}:")
            for row in sorted(rows):
                print("   ", *row)
    if _findings(signals) != fast_found:
        ok = False
        print("MISMATCH: --embedded=signals differs from the default scan on the synthetic corpus")
    met = floor_ratio <= TARGET_FLOOR and ratio >= TARGET_RATIO and n / signals_s >= TARGET_RATE
    print(f"result: {'findings identical' if ok else 'FINDINGS DIFFER'}; targets {'met' if met else 'NOT met'}")
    if not args.no_realworld:
        ok = realworld(args.repeat) and ok
    header_checks(rpms)
    return 0 if ok else 1


def _embedded(proc: subprocess.CompletedProcess) -> set[tuple[str, str, int]]:
    doc = json.loads(proc.stdout)
    return {(f["package"]["name"], f["path"], f["embedded"]["offset"]) for f in doc["findings"] if f["embedded"]}


def realworld(repeat: int) -> bool:
    """The default scan against the decompression floor, and embedded-object recall of every mode against
    --deep, on Debian packages repacked as RPMs."""
    import realworld_corpus
    import realworld_sid_corpus

    ok = True
    for label, module in (("Debian 12", realworld_corpus), ("Debian sid/trixie", realworld_sid_corpus)):
        try:
            rpms = module.build()
        except module.CorpusUnavailable as exc:
            print(f"real-world corpus ({label}): not measured ({exc})")
            continue
        files = sorted(rpms.glob("*.rpm"))
        for path in files:
            path.read_bytes()
        size_mb = sum(p.stat().st_size for p in files) / 1e6
        print(f"real-world corpus: {len(files)} {label} packages repacked as RPMs ({size_mb:.0f} MB), {rpms}")
        base = [_tool("rpm-bpf"), "scan", "-q", "--no-system-policy", "-f", "json", str(rpms)]
        runs = {}
        for name, extra in (("default", []), ("--embedded=signals", ["--embedded=signals"]), ("--deep", ["--deep"])):
            elapsed, proc = _best(base[:2] + extra + base[2:], repeat if name != "--deep" else 1)
            runs[name] = (elapsed, _embedded(proc))
        jobs = scan_jobs(files)
        floor_s, raw = decompress_floor(files, jobs, repeat)
        print(f"  {'decompress only (floor)':20} {floor_s:7.3f} s  ({raw / 1e6:.0f} MB, {jobs} x zstd -dc)")
        reference = runs["--deep"][1]
        for name, (elapsed, found) in runs.items():
            recall = 100 * len(found & reference) / len(reference) if reference else 100.0
            print(f"  {name:20} {elapsed:7.3f} s  embedded objects {len(found):4}  recall vs --deep {recall:6.2f} %")
            for missed in sorted(reference - found):
                print(f"      missed: {missed[0]} {missed[1]} at offset {missed[2]}")
        floor_ratio = runs["default"][0] / floor_s
        print(f"  ratio default scan / decompression floor: {floor_ratio:.2f}x  (target <= {TARGET_FLOOR}x)")
        ok = ok and runs["default"][1] == reference
    return ok


def header_checks(rpms: list[Path]) -> None:
    """Cost of the header digest and index checks inside open_rpm, and rpm's own digest check beside it."""
    from rpm_bpf.sources import bpfdirs, rpmfile

    spent = {"digest": 0.0, "index": 0.0}

    def timed(name, function):
        def wrapper(*args):
            started = time.perf_counter()
            try:
                return function(*args)
            finally:
                spent[name] += time.perf_counter() - started

        return wrapper

    rpmfile.quiet_rpm_log()
    bpfdirs.for_arch(bpfdirs.host_arch())
    digest, index = rpmfile._check_header_digest, rpmfile.check_index
    rpmfile._check_header_digest, rpmfile.check_index = timed("digest", digest), timed("index", index)
    try:
        started = time.perf_counter()
        for path in rpms:
            rpmfile.open_rpm(str(path), bpfdirs.for_arch)
        total = time.perf_counter() - started
    finally:
        rpmfile._check_header_digest, rpmfile.check_index = digest, index
    n = len(rpms)
    rpm_k, _ = _timed(["rpm", "-K", "--nosignature", *map(str, rpms)])
    print(f"reading {n} headers in-process (open_rpm, triage included): {total:.3f} s, {1e6 * total / n:.0f} us each")
    for name, label in (("digest", "header digest (SHA-256)"), ("index", "index type check")):
        print(
            f"  {label:28} {spent[name]:.3f} s, {1e6 * spent[name] / n:.1f} us each, "
            f"{100 * spent[name] / total:.1f} % of open_rpm"
        )
    print(
        f"rpm -K --nosignature on the same files (header and payload digests): {rpm_k:.3f} s, "
        f"{1e6 * rpm_k / n:.0f} us each"
    )


def lint_run_label(proc: subprocess.CompletedProcess) -> str:
    return f"(exit {proc.returncode})"


if __name__ == "__main__":
    sys.exit(main())
