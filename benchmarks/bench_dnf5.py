"""Benchmark: the DNF 5 plugin's cost in real `dnf5 install` transactions, in one run.

    .venv/bin/python benchmarks/bench_dnf5.py [--corpus DIR] [--dpkg-corpus DIR] [--repeat 4]

In a Debian sid root with dnf5 (made and cached like the tests' one,
tests/support/debroot.py; the plugin built there with CMake, this
checkout's rpm-bpf installed), installs the 100 packages of a synthetic
corpus (benchmarks/corpus.py --packages 100 --no-autodeps, built on first
use) into fresh installroots, with the plugin enabled and disabled in
alternating order. Whole transactions vary far more between runs than the
plugin costs, so the figure is the plugin's own time, which it measures
around each hook inside dnf5 and logs to dnf5.log (the `rpm-bpf serve`
process it starts at repos_configured does its start-up beside dnf5, on the
other core: that CPU time is not in the figure, the hooks' waiting for it is); it is compared with the
fastest transaction without the plugin (target: under 1 %). The same is done
with the corpus's packages that ship nothing BPF-related: the plugin's fixed
cost per transaction.
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
sys.path.insert(0, str(REPO))

from tests.support import debroot  # noqa: E402
from tests.support.dnf5 import CONF, DNF5_PACKAGES, install_checkout  # noqa: E402

TARGET_SHARE = 1.0  # percent of the transaction


def _root(work: Path) -> Path:
    base = debroot.base_tree("sid-dnf5", "sid", DNF5_PACKAGES)
    root = debroot.fresh_copy(base, work / "sid")
    built = install_checkout(root)
    if built.returncode != 0:
        raise SystemExit(f"building the plugin failed: {built.stderr[-2000:]}")
    return root


def _series(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def bench(root: Path, names: list[str], repeat: int, label: str) -> float:
    times: dict[str, list[float]] = {"enabled": [], "disabled": []}
    own: list[float] = []
    best_hooks: list[tuple[str, float]] = []
    for i in range(repeat):
        for state in ("disabled", "enabled") if i % 2 == 0 else ("enabled", "disabled"):
            (root / CONF.lstrip("/")).write_text(
                f"[main]\nname = bpf\nenabled = {1 if state == 'enabled' else 0}\nmode = enforce\n"
                "fail_on_error = 0\nverify_after = 1\npolicy =\ncommand = /usr/bin/rpm-bpf\n"
            )
            subprocess.run(["sync"], check=True)
            inst = f"/inst-{abs(hash(label))}-{state}-{i}"
            started = time.perf_counter()
            proc = debroot.run_in(
                root,
                "dnf5",
                "-y",
                "-q",
                f"--installroot={inst}",
                "--setopt=reposdir=/nonexistent",
                "--repofrompath=bench,/repo",
                "--setopt=bench.gpgcheck=0",
                "--releasever=1",
                "install",
                *names,
                timeout=1800,
            )
            elapsed = time.perf_counter() - started
            if proc.returncode != 0:
                raise SystemExit(f"dnf5 failed ({state}): {proc.stderr[-2000:]}")
            times[state].append(elapsed)
            if state == "enabled":
                logs = list((root / inst.lstrip("/")).rglob("dnf5.log"))
                hooks = [
                    (hook, float(took))
                    for log in logs
                    for hook, took in re.findall(r"rpm-bpf: (\w+) took ([\d.]+) s", log.read_text(errors="replace"))
                ]
                if not hooks:
                    raise SystemExit(f"the plugin did not run: no timing lines in {logs}")
                own.append(sum(took for _, took in hooks))
                if own[-1] == min(own):
                    best_hooks = hooks
            shutil.rmtree(root / inst.lstrip("/"), ignore_errors=True)
    best_off = min(times["disabled"])
    share = 100 * min(own) / best_off
    print(f"dnf5 install of {len(names)} packages ({label}) into a fresh installroot, best of {repeat}:")
    print(f"  wall clock, plugin disabled: {best_off:.3f} s ({_series(times['disabled'])})")
    print(f"  wall clock, plugin enabled:  {min(times['enabled']):.3f} s ({_series(times['enabled'])})")
    print(
        f"  the plugin's own hooks (timed inside dnf5, dnf5.log): {min(own):.3f} s ({_series(own)}) "
        f"= {share:.2f} % of the fastest transaction without it (target < {TARGET_SHARE} %): "
        f"{'met' if share < TARGET_SHARE else 'NOT met'}"
    )
    print("  by hook, in that run: " + ", ".join(f"{hook} {took:.4f} s" for hook, took in best_hooks))
    return share


def _names(rpms: list[Path]) -> list[str]:
    return sorted({p.name.rsplit("-", 2)[0] for p in rpms})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=HERE / "out" / "corpus-noautodeps")
    parser.add_argument(
        "--dpkg-corpus",
        type=Path,
        metavar="DIR",
        help="also 100 packages of this dpkg_corpus.py corpus (this machine's Debian packages "
        "repacked as RPMs: real sizes), as bench_verify.py's DNF 4 transaction",
    )
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    if not (args.corpus / "expected.json").exists():
        subprocess.run(
            [sys.executable, str(HERE / "corpus.py"), str(args.corpus), "--packages", "100", "--no-autodeps"],
            check=True,
        )
    synthetic = sorted((args.corpus / "rpms").glob("*.rpm"))
    workloads = [
        (f"synthetic, {sum(p.name.startswith('bpfpkg') for p in synthetic)} with BPF objects", synthetic),
        ("synthetic, none with BPF objects: the fixed cost", [p for p in synthetic if not p.name.startswith("bpfpkg")]),
    ]
    if args.dpkg_corpus:
        repacked = sorted((args.dpkg_corpus / "rpms").glob("deb-*.rpm"))
        good = sorted((args.dpkg_corpus / "rpms").glob("bpfpkg0000-*.rpm"))  # kind 0: follows the convention
        workloads += [
            ("repacked Debian packages, 1 with BPF objects", repacked[: 100 - len(good)] + good),
            ("repacked Debian packages, none with BPF objects", repacked[:100]),
        ]
    work = Path(tempfile.mkdtemp(prefix="rpm-bpf-dnf5-bench-", dir="/var/tmp"))
    try:
        root = _root(work)
        (root / "repo").mkdir()
        for path in {p for _, rpms in workloads for p in rpms}:
            shutil.copy(path, root / "repo")
        debroot.run_in(root, "createrepo_c", "-q", "/repo")
        for label, rpms in workloads:
            bench(root, _names(rpms), args.repeat, label)
    finally:
        subprocess.run(["rm", "-rf", "--", str(work)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
