"""Benchmark: the gate (`rpm-bpf scan --against REPO NEW...`) on a distribution-sized repository, in one run.

    .venv/bin/python benchmarks/bench_gate.py [--repeat 3]

The repository is synthetic metadata of Fedora's size (benchmarks/repo_corpus.py:
75,000 packages, ~3.5 million file entries, planted clashes and decoys). The
new build is four RPMs built here by rpmbuild, each clashing with one
planted repository package: an object name in one of the three ways
(lib64/lib64, lib/lib, lib/lib64), and a cache directory (bpf-cache(APP)).
Side by side, whole processes, cold (the page cache dropped and no tool's own
cache) and warm:

* rpm-bpf scan --against (and its peak memory, /usr/bin/time), and rpm-bpf repo-report,
* dnf repoquery --whatprovides 'bpf(*)' (primary only),
* dnf repoquery --file '/usr/lib64/bpf/*' '/usr/lib/bpf/*' (both globs after one --file:
  dnf 4.14 keeps only the last of several --file options),
* zcat of filelists alone: the floor any reader of this metadata pays.

Checks that every planted clash is found, on the right new package, and no decoy.
Target: under 2 s cold and under 200 MB peak memory.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import repo_corpus  # noqa: E402

from rpm_bpf.samples import build as samples  # noqa: E402
from rpm_bpf.samples.build import PkgFile, PkgSpec  # noqa: E402

TARGET_SECONDS, TARGET_MB = 2.0, 200
RPM_BPF = str(REPO / ".venv" / "bin" / "rpm-bpf")


def _drop_caches() -> bool:
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def _timed(cmd: list[str], cold: bool) -> tuple[float, int, subprocess.CompletedProcess]:
    """Seconds, peak resident kB (from GNU time) and the process."""
    if cold:
        _drop_caches()
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    peak = int(proc.stderr.strip().splitlines()[-1]) if proc.stderr.strip() else 0
    return elapsed, peak, proc


def new_build(work: Path) -> list[Path]:
    obj = samples.compile_bpf(samples.XDP_COUNTER_C, work / "prog.bpf.o")
    specs = [
        PkgSpec("new-lib64", files=[PkgFile("/usr/lib64/bpf/clash64/prog.bpf.o", obj)]),
        PkgSpec("new-lib", noarch=True, files=[PkgFile("/usr/lib/bpf/clashnoarch/prog.bpf.o", obj)]),
        PkgSpec("new-mixed", noarch=True, files=[PkgFile("/usr/lib/bpf/clashmixed/prog.bpf.o", obj)]),
        # claims the repository's planted cache directory (bpf-cache(clashcache), from bpfapp.attr)
        PkgSpec("new-cache", files=[PkgFile("/var/cache/bpf/clashcache", directory=True, mode=0o755)]),
    ]
    return [samples.build_rpm(spec, work / "build") for spec in specs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    repo = repo_corpus.build()
    manifest = json.loads((repo / "planted.json").read_text())
    filelists = next((repo / "repodata").glob("*-filelists.xml.gz"))
    print(
        f"repository: {manifest['packages']} packages, {manifest['file_entries']} file entries, "
        f"filelists {filelists.stat().st_size / 1e6:.0f} MB gzip; {repo}"
    )
    cold_ok = _drop_caches()
    if not cold_ok:
        print("note: cannot drop the page cache here (not root): 'cold' runs only start without tool caches")
    work = Path(tempfile.mkdtemp(prefix="rpm-bpf-bench-gate-", dir="/var/tmp"))
    try:
        rpms = new_build(work)
        gate = [RPM_BPF, "scan", "-q", "--no-system-policy", "-f", "json", "--against", str(repo), *map(str, rpms)]
        rows = []
        for label, cold in (("cold", True), ("warm", False)):
            best = None
            for _ in range(args.repeat):
                elapsed, peak, proc = _timed(gate, cold)
                if best is None or elapsed < best[0]:
                    best = (elapsed, peak, proc)
            rows.append((f"rpm-bpf scan --against ({label})", best[0], best[1]))
            result = best[2]
        inventory = [RPM_BPF, "repo-report", "--no-system-policy", "-f", "json", str(repo)]
        for label, cold in (("cold", True), ("warm", False)):
            elapsed, peak, proc = _timed(inventory, cold)
            rows.append((f"rpm-bpf repo-report ({label})", elapsed, peak))
        report = json.loads(result.stdout)
        clash_rules = ("bpf-name-conflict", "bpf-app-dir-conflict")
        clashes = {
            (f["rule"], f["package"]["name"], tuple(f["related"]))
            for f in report["findings"]
            if f["rule"] in clash_rules
        }
        expected = {
            ("bpf-name-conflict", "new-lib64", ("planted-lib64-1.0-1.x86_64",)),
            ("bpf-name-conflict", "new-lib", ("planted-lib-1.0-1.noarch",)),
            ("bpf-name-conflict", "new-mixed", ("planted-mixed-1.0-1.x86_64",)),
            ("bpf-app-dir-conflict", "new-cache", ("planted-cache-1.0-1.x86_64",)),
        }
        decoys = [f for f in report["findings"] if any("decoy" in r or "lookalike" in r for r in f["related"])]

        dnf_base = [
            "dnf",
            "-q",
            f"--repofrompath=bench,{repo}",
            "--repo=bench",
            "--setopt=bench.gpgcheck=0",
            "--releasever=1",
            "--setopt=reposdir=/nonexistent",
        ]
        for label, query in (
            ("--whatprovides 'bpf(*)'", ["--whatprovides", "bpf(*)"]),
            ("--file '/usr/lib64/bpf/*' '/usr/lib/bpf/*'", ["--file", "/usr/lib64/bpf/*", "/usr/lib/bpf/*"]),
        ):
            cache = work / "dnfcache"
            shutil.rmtree(cache, ignore_errors=True)
            cmd = [*dnf_base, f"--setopt=cachedir={cache}", "repoquery", *query]
            elapsed, peak, proc = _timed(cmd, True)
            rows.append((f"dnf repoquery {label} (cold)", elapsed, peak))
            elapsed, peak, proc = _timed(cmd, False)
            rows.append((f"dnf repoquery {label} (warm)", elapsed, peak))
            if proc.returncode != 0:
                print(f"note: dnf exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
        elapsed, peak, _ = _timed(["sh", "-c", f"zcat {filelists} > /dev/null"], True)
        rows.append(("zcat filelists (cold): the floor", elapsed, peak))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'what':52} {'seconds':>8} {'peak MB':>8}")
    for label, seconds, peak in rows:
        print(f"{label:52} {seconds:8.3f} {peak / 1024:8.0f}")
    cold_s, cold_kb = rows[0][1], rows[0][2]
    print(f"planted clashes found: {len(clashes & expected)}/{len(expected)}; decoys reported: {len(decoys)}")
    met = cold_s < TARGET_SECONDS and cold_kb / 1024 < TARGET_MB and clashes >= expected and not decoys
    print(f"target (< {TARGET_SECONDS} s cold, < {TARGET_MB} MB, every clash, no decoy): {'met' if met else 'NOT met'}")
    return 0 if clashes >= expected and not decoys else 1


if __name__ == "__main__":
    sys.exit(main())
