"""Benchmark: `rpm-bpf list` against `rpm-bpf verify` (the target) and rpm's own query, on one installroot.

    .venv/bin/python benchmarks/bench_list.py [--corpus DIR] [--repeat 5]

The installroot of bench_verify.py: 300 of this machine's Debian packages
repacked as RPMs, file for file, plus the planted BPF packages
(benchmarks/dpkg_corpus.py, built on first use into --corpus), installed with
rpm. Whole processes on a warm page cache, interleaved, best of --repeat:

* `rpm-bpf verify --root` (the reference: the target is list within 1.5x of it),
* `rpm-bpf list --root --offline -f json --no-cache` (every object described from scratch: its programs and
  predicted tags; the digest check),
* the same with its cache (descriptions keyed by the SHA-256 of the bytes read; the first round fills it),
* `rpm-bpf list --root --offline --embedded=all -f json` (every ELF file searched, cache filled),
* `rpm -qa --root --qf '[%{FILECLASS}\\t%{FILENAMES}\\n]'` filtered for eBPF: what rpm alone can say (the
  standalone objects rpmbuild classified; no embedded object, no program, no disk check).

The loaded join is left out (--offline): it costs one `bpftool prog show`, the same for every command
that asks the kernel. Prints each series, the ratios, and what each found.
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
RPM_BPF = HERE.parent / ".venv" / "bin" / "rpm-bpf"


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - started, proc


def _corpus(path: Path) -> list[Path]:
    if not (path / "expected.json").exists():
        subprocess.run([sys.executable, str(HERE / "dpkg_corpus.py"), str(path)], check=True)
    rpms = path / "rpms"
    return sorted(rpms.glob("deb-*.rpm")) + sorted(rpms.glob("bpfpkg*.rpm"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=HERE / "out" / "dpkg-corpus")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rpms = _corpus(args.corpus)
    root = Path(tempfile.mkdtemp(prefix="rpm-bpf-list-root-"))
    cache = Path(tempfile.mkdtemp(prefix="rpm-bpf-list-cache-"))
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))  # a cache of the run's own: the first round fills it
    try:
        subprocess.run(["rpm", "--root", str(root), "--initdb"], check=True)
        subprocess.run(
            ["rpm", "--root", str(root), "-i", "--nodeps", "--replacefiles", "--noscripts", *map(str, rpms)],
            check=True,
            capture_output=True,
        )
        base = [str(RPM_BPF), "list", "--root", str(root), "--no-system-policy", "--offline", "-f", "json"]
        commands = {
            "rpm-bpf verify": [str(RPM_BPF), "verify", "--root", str(root), "--no-system-policy"],
            "rpm-bpf list --no-cache": [*base, "--no-cache"],
            "rpm-bpf list": base,
            "rpm-bpf list --embedded=all": [*base, "--embedded=all"],
            "rpm -qa (file classes)": ["rpm", "--root", str(root), "-qa", "--qf", "[%{FILECLASS}\\t%{FILENAMES}\\n]"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        procs: dict[str, subprocess.CompletedProcess] = {}
        for round_ in range(args.repeat + 1):  # the first round warms the page cache for all
            for name, cmd in commands.items():
                seconds, procs[name] = _timed(cmd, env)
                if round_:
                    times[name].append(seconds)
        print(f"installroot: {len(rpms)} packages (bench_verify.py's), warm page cache, best of {args.repeat}")
        for name, series in times.items():
            print(f"  {name:30} {min(series):7.3f} s   ({', '.join(f'{s:.3f}' for s in series)})")
        reference = min(times["rpm-bpf verify"])
        for name in ("rpm-bpf list --no-cache", "rpm-bpf list", "rpm-bpf list --embedded=all"):
            ratio = min(times[name]) / reference
            verdict = "meets" if ratio <= 1.5 else "MISSES"
            print(f"  {name} / rpm-bpf verify = {ratio:.2f}x ({verdict} the 1.5x target)")
        for name in ("rpm-bpf list", "rpm-bpf list --embedded=all"):
            doc = json.loads(procs[name].stdout)
            c = doc["counts"]
            print(
                f"  {name}: {c['objects']} objects ({c['embedded']} embedded, {c['archive_members']} archive "
                f"members) in {c['packages']} packages, {c['programs']} programs; exit {procs[name].returncode}"
            )
        classified = [line for line in procs["rpm -qa (file classes)"].stdout.splitlines() if "eBPF" in line]
        print(f"  rpm -qa: {len(classified)} files classified eBPF (standalone objects only)")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
