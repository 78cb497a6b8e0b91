"""Benchmark: `rpm-bpf scan` against `rpmlint` on the same corpus, in one run.

    .venv/bin/python benchmarks/bench_scan.py [--corpus DIR] [--packages 2000] [--repeat 3]

Builds the corpus with benchmarks/corpus.py if DIR has none, warms the page
cache, then times (wall clock, whole processes, start-up included):
  * rpm-bpf scan (best of --repeat runs),
  * rpm-bpf scan --deep (every payload read in full, no header triage),
  * rpmlint on the same RPM files (one process for all of them, as a build
    system would run it; --rpmlint-limit N times it on the first N only).
It checks that the fast scan reports exactly what --deep reports and every
finding planted in the corpus, and prints packages/second and the ratio.

Then, in this process, what the security checks of reading a package cost:
the header digest (SHA-256 of the main header, as `rpm -qp` checks it) and
the index type check, timed inside real `open_rpm` calls over the corpus, and
`rpm -K --nosignature` on the same files (rpm's own digest check) beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = REPO / ".venv" / "bin"
TARGET_RATIO = 1000
TARGET_RATE = 5000


def _tool(name: str) -> str:
    local = VENV_BIN / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def _timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - started, proc


def _findings(proc: subprocess.CompletedProcess) -> set[tuple[str, str, str]]:
    doc = json.loads(proc.stdout)
    return {(f["package"]["name"], f["rule"], f["path"]) for f in doc["findings"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=HERE / "out" / "corpus")
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
        f"({100 * manifest['bpf_packages'] / n:.1f} %), {size_mb:.0f} MB, seed {manifest['seed']}"
    )

    rpm_bpf = [_tool("rpm-bpf"), "scan", "-q", "--no-system-policy", "-f", "json", str(args.corpus / "rpms")]
    fast_times, fast = [], None
    for _ in range(args.repeat):
        elapsed, fast = _timed(rpm_bpf)
        fast_times.append(elapsed)
    fast_s = min(fast_times)
    deep_s, deep = _timed([*rpm_bpf[:2], "--deep", *rpm_bpf[2:]])
    all_s, every_elf = _timed([*rpm_bpf[:2], "--embedded=all", *rpm_bpf[2:]])

    lint_files = rpms[: args.rpmlint_limit] if args.rpmlint_limit else rpms
    lint_s, lint = _timed([_tool("rpmlint"), *map(str, lint_files)])
    lint_n = len(lint_files)

    fast_found, deep_found = _findings(fast), _findings(deep)
    expected = {(e["package"], e["rule"], e["path"]) for e in manifest["expected"]}
    fast_rate, deep_rate, lint_rate = n / fast_s, n / deep_s, lint_n / lint_s
    ratio = fast_rate / lint_rate

    print(f"{'tool':34} {'packages':>8} {'seconds':>9} {'packages/s':>11}")
    print(f"{'rpm-bpf scan (best of ' + str(args.repeat) + ')':34} {n:8} {fast_s:9.3f} {fast_rate:11.0f}")
    print(f"{'rpm-bpf scan --embedded=all':34} {n:8} {all_s:9.3f} {n / all_s:11.0f}")
    print(f"{'rpm-bpf scan --deep':34} {n:8} {deep_s:9.3f} {deep_rate:11.0f}")
    print(f"{'rpmlint ' + lint_run_label(lint):34} {lint_n:8} {lint_s:9.3f} {lint_rate:11.1f}")
    print(f"ratio rpm-bpf / rpmlint: {ratio:,.0f}x  (target >= {TARGET_RATIO}x and >= {TARGET_RATE} packages/s)")
    print(f"ratio rpm-bpf --embedded=all / rpmlint: {n / all_s / lint_rate:,.0f}x")
    print(f"findings: fast {len(fast_found)}, deep {len(deep_found)}, planted {len(expected)}")
    missing_vs_deep = deep_found - fast_found
    missing_planted = expected - fast_found
    unexpected = fast_found - expected
    ok = True
    for label, rows in (
        ("found by --deep but not by the fast scan", missing_vs_deep),
        ("planted but not found", missing_planted),
        ("found but not planted", unexpected),
    ):
        if rows:
            ok = False
            print(f"MISMATCH: {label}:")
            for row in sorted(rows):
                print("   ", *row)
    if _findings(every_elf) != fast_found:
        ok = False
        print("MISMATCH: --embedded=all differs from the default scan on the synthetic corpus")
    met = ratio >= TARGET_RATIO and fast_rate >= TARGET_RATE
    print(f"result: {'findings identical' if ok else 'FINDINGS DIFFER'}; target {'met' if met else 'NOT met'}")
    if not args.no_realworld:
        ok = realworld() and ok
    header_checks(rpms)
    return 0 if ok else 1


def _embedded(proc: subprocess.CompletedProcess) -> set[tuple[str, str, int]]:
    doc = json.loads(proc.stdout)
    return {(f["package"]["name"], f["path"], f["embedded"]["offset"]) for f in doc["findings"] if f["embedded"]}


def realworld() -> bool:
    """Embedded-object recall of the default scan against --deep on Debian packages repacked as RPMs."""
    import realworld_corpus

    try:
        rpms = realworld_corpus.build()
    except realworld_corpus.CorpusUnavailable as exc:
        print(f"real-world corpus: not measured ({exc})")
        return True
    files = sorted(rpms.glob("*.rpm"))
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    print(f"real-world corpus: {len(files)} Debian 12 packages repacked as RPMs ({size_mb:.0f} MB), {rpms}")
    base = [_tool("rpm-bpf"), "scan", "-q", "--no-system-policy", "-f", "json", str(rpms)]
    runs = {}
    for label, extra in (("default", []), ("--embedded=all", ["--embedded=all"]), ("--deep", ["--deep"])):
        elapsed, proc = _timed(base[:2] + extra + base[2:])
        runs[label] = (elapsed, _embedded(proc))
    reference = runs["--deep"][1]
    for label, (elapsed, found) in runs.items():
        recall = 100 * len(found & reference) / len(reference) if reference else 100.0
        print(f"  {label:16} {elapsed:7.3f} s  embedded objects {len(found):4}  recall vs --deep {recall:6.2f} %")
        for missed in sorted(reference - found):
            print(f"      missed: {missed[0]} {missed[1]} at offset {missed[2]}")
    return runs["--embedded=all"][1] == reference


def header_checks(rpms: list[Path]) -> None:
    """Cost of the header digest and index checks inside open_rpm, and rpm's own digest check beside it."""
    sys.path.insert(0, str(REPO))
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
