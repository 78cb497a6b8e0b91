"""Benchmark: what BPFCheck adds to rpmlint on packages without BPF objects.

    .venv/bin/python benchmarks/bench_rpmlint.py [--corpus DIR] [--count 100] [--repeat 3]

Runs the same rpmlint on the same packages (ordinary packages of the
benchmark corpus, none with BPF objects) with BPFCheck enabled (the normal
configuration, through /etc/xdg/rpmlint/bpf.toml) and without it
(XDG_CONFIG_DIRS pointed away from the drop-in), interleaved, best of
--repeat, and prints the overhead. rpmlint's own --time-report gives
BPFCheck's share as a second, noise-free figure. Target: under 5 %.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RPMLINT = HERE.parent / ".venv" / "bin" / "rpmlint"
TARGET = 5.0


def _run(files: list[Path], with_check: bool, report: bool = False) -> tuple[float, str]:
    env = dict(os.environ)
    if not with_check:
        env["XDG_CONFIG_DIRS"] = tempfile.gettempdir() + "/rpm-bpf-no-xdg"
    cmd = [str(RPMLINT), *(["--time-report"] if report else []), *map(str, files)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - started, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=HERE / "out" / "corpus-zstd")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not (args.corpus / "rpms").is_dir():
        subprocess.run([sys.executable, str(HERE / "corpus.py"), str(args.corpus), "--packages", "2000"], check=True)
    files = sorted((args.corpus / "rpms").glob("pkg*.rpm"))[: args.count]  # ordinary packages only
    for path in files:
        path.read_bytes()

    _, listing = _run(files[:1], True)
    assert "bpf.toml" in listing, "BPFCheck drop-in not active: run ./setup.sh"
    with_times, without_times = [], []
    for _ in range(args.repeat):
        without_times.append(_run(files, False)[0])
        with_times.append(_run(files, True)[0])
    best_with, best_without = min(with_times), min(without_times)
    overhead = 100 * (best_with - best_without) / best_without

    _, report = _run(files, True, report=True)
    total = re.search(r"TOTAL\s+([\d.]+)", report)
    own = re.search(r"BPFCheck\s+([\d.]+)\s+([\d.]+)", report)
    print(f"packages: {len(files)} ordinary RPMs (no BPF objects), rpmlint {RPMLINT}")
    print(
        f"rpmlint without BPFCheck: {best_without:.2f} s (best of {args.repeat}: "
        + ", ".join(f"{t:.2f}" for t in without_times)
        + ")"
    )
    print(
        f"rpmlint with BPFCheck:    {best_with:.2f} s (best of {args.repeat}: "
        + ", ".join(f"{t:.2f}" for t in with_times)
        + ")"
    )
    print(f"wall-clock overhead: {overhead:+.2f} % (target < {TARGET} %)")
    if total and own:
        print(f"rpmlint --time-report: BPFCheck {own.group(1)} s of {total.group(1)} s checks time ({own.group(2)} %)")
    elif total:
        print(
            f"rpmlint --time-report: BPFCheck not listed, i.e. under rpmlint's reporting threshold "
            f"(1 % and 0.1 s) of {total.group(1)} s"
        )
    met = overhead < TARGET
    print(f"result: target {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
