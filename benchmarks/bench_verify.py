"""Benchmark: `rpm-bpf verify` against `rpm -Va`, and a dnf transaction with and without the plugin.

    .venv/bin/python benchmarks/bench_verify.py [--corpus DIR] [--installed 300] [--transaction 100] [--repeat 3]

1. An installroot with --installed ordinary packages of the benchmark corpus
   (benchmarks/corpus.py) plus its BPF packages, installed with rpm. Times,
   whole processes on a warm cache, best of --repeat: `rpm -Va --root` and
   `rpm-bpf verify --root`. Target: verify under 1 % of rpm -Va's time.
2. A repository of --transaction packages (AutoReqProv off so an empty root
   can take them, 1 % with BPF objects), installed by `dnf install` into a
   fresh installroot with the BPF plugin enabled and disabled, interleaved,
   best of --repeat. Target: the plugin adds under 2 %.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RPM_BPF = REPO / ".venv" / "bin" / "rpm-bpf"


def _timed(cmd: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    return time.perf_counter() - started, proc


def _corpus(path: Path, packages: int, *extra: str) -> Path:
    if not (path / "expected.json").exists():
        subprocess.run([sys.executable, str(HERE / "corpus.py"), str(path), "--packages", str(packages), *extra],
                       check=True)
    return path / "rpms"


def bench_verify(corpus: Path, installed: int, repeat: int) -> None:
    rpms = sorted(corpus.glob("pkg*.rpm"))[:installed] + sorted(corpus.glob("bpfpkg*.rpm"))
    root = Path(tempfile.mkdtemp(prefix="rpm-bpf-verify-root-"))
    try:
        subprocess.run(["rpm", "--root", str(root), "--initdb"], check=True)
        subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", "--replacefiles", "--noscripts",
                        *map(str, rpms)], check=True, capture_output=True)
        files = subprocess.run(["rpm", "--root", str(root), "-qa", "--qf", "[%{FILENAMES}\n]"],
                               capture_output=True, text=True).stdout.count("\n")
        rpm_times, bpf_times = [], []
        for _ in range(repeat):
            rpm_s, rpm_proc = _timed(["rpm", "--root", str(root), "-Va", "--nodeps", "--noscripts"])
            bpf_s, bpf_proc = _timed([str(RPM_BPF), "verify", "--root", str(root), "--no-system-policy"])
            rpm_times.append(rpm_s)
            bpf_times.append(bpf_s)
        share = 100 * min(bpf_times) / min(rpm_times)
        print(f"installroot: {len(rpms)} packages, {files} files")
        print(f"  rpm -Va:         {min(rpm_times):.3f} s (best of {repeat}; exit {rpm_proc.returncode})")
        print(f"  rpm-bpf verify:  {min(bpf_times):.3f} s (best of {repeat}; exit {bpf_proc.returncode}: "
              f"{bpf_proc.stdout.strip().splitlines()[-1]})")
        print(f"  rpm-bpf verify takes {share:.1f} % of rpm -Va's time (target < 1 %): "
              f"{'met' if share < 1 else 'NOT met'}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_transaction(corpus: Path, repeat: int, without_bpf: bool = False) -> None:
    work = Path(tempfile.mkdtemp(prefix="rpm-bpf-dnf-"))
    try:
        repo = work / "repo"
        shutil.copytree(corpus, repo)
        if without_bpf:  # the common case: a transaction with nothing BPF-related in it
            for path in repo.glob("bpfpkg*.rpm"):
                path.unlink()
        subprocess.run(["createrepo_c", "-q", str(repo)], check=True)
        names = sorted({p.name.rsplit("-", 2)[0] for p in repo.glob("*.rpm")})
        confs = {}
        for state in ("enabled", "disabled"):
            conf = work / f"conf-{state}"
            conf.mkdir()
            (conf / "bpf.conf").write_text(f"[main]\nenabled = {1 if state == 'enabled' else 0}\nmode = enforce\n")
            confs[state] = conf
        times: dict[str, list[float]] = {"enabled": [], "disabled": []}
        own: list[float] = []  # the plugin's own hooks, from dnf.log
        for i in range(repeat):
            for state in ("disabled", "enabled"):
                root = work / f"root-{state}-{i}"
                cmd = ["dnf", "-y", "-q", f"--installroot={root}", "--setopt=reposdir=/nonexistent",
                       f"--repofrompath=bench,{repo}", "--setopt=bench.gpgcheck=0", "--releasever=1",
                       f"--setopt=pluginpath={REPO / 'dnf_plugin'}", f"--setopt=pluginconfpath={confs[state]}",
                       "install", *names]
                elapsed, proc = _timed(cmd)
                if proc.returncode != 0:
                    raise SystemExit(f"dnf failed ({state}): {proc.stderr[-2000:]}")
                times[state].append(elapsed)
                if state == "enabled":
                    log = (root / "var/log/dnf.log").read_text(errors="replace")
                    own.append(sum(float(m) for m in re.findall(r"rpm-bpf: \w+ took ([\d.]+) s", log)))
                shutil.rmtree(root, ignore_errors=True)
        best_on, best_off = min(times["enabled"]), min(times["disabled"])
        overhead = 100 * (best_on - best_off) / best_off
        bpf = sum(1 for n in names if n.startswith("bpfpkg"))
        print(f"dnf install of {len(names)} packages ({bpf} with BPF objects) into a fresh installroot "
              f"(best of {repeat}):")
        print(f"  plugin disabled: {best_off:.3f} s ({', '.join(f'{t:.3f}' for t in times['disabled'])})")
        print(f"  plugin enabled:  {best_on:.3f} s ({', '.join(f'{t:.3f}' for t in times['enabled'])})")
        print(f"  wall-clock difference: {overhead:+.1f} % (noise between runs: "
              f"{100 * (max(times['disabled']) - best_off) / best_off:.1f} %)")
        own_share = 100 * min(own) / best_off
        print(f"  the plugin's own hooks (timed inside dnf, dnf.log): {min(own):.3f} s = {own_share:.1f} % "
              f"of the transaction (target < 2 %): {'met' if own_share < 2 else 'NOT met'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=HERE / "out" / "corpus")
    parser.add_argument("--transaction-corpus", type=Path, default=HERE / "out" / "corpus-noautodeps")
    parser.add_argument("--installed", type=int, default=300)
    parser.add_argument("--transaction", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_verify(_corpus(args.corpus, 2000), args.installed, args.repeat)
    tx_corpus = _corpus(args.transaction_corpus, args.transaction, "--no-autodeps")
    bench_transaction(tx_corpus, args.repeat)
    bench_transaction(tx_corpus, args.repeat, without_bpf=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
