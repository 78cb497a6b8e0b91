"""Benchmark: `rpm-bpf verify` against `rpm -Va`, and a dnf transaction with and without the plugin.

    .venv/bin/python benchmarks/bench_verify.py [--corpus DIR] [--transaction 100] [--repeat 3] [--cold]
                                                [--synthetic-corpus DIR] [--synthetic-transaction-corpus DIR]

Workload (benchmarks/dpkg_corpus.py): 300 of this machine's Debian packages
repacked as RPMs, file for file (real sizes and kinds), plus 12 planted BPF
packages (14 RPMs). Built on first use into --corpus.

1. An installroot with all of them, installed with rpm. Times, whole
   processes on a warm page cache, interleaved, best of --repeat:
   `rpm -Va --root` and `rpm-bpf verify --root`. Target: verify under 1 %
   of rpm -Va's time. Every package is signed first (rpmsign, a gpg key
   made for the run), and `rpm-bpf verify --trusted-keys KEY` is timed in the
   same rounds: the header signature checks (one per package with BPF code)
   may add at most 50 % to verify. With --cold, again with the page cache dropped before
   each command. The fixed costs any Python front end pays (interpreter,
   import rpm, reading the rpmdb) are printed beside. With
   --synthetic-corpus (benchmarks/corpus.py, small packages), the same on
   300 of its packages as well.
2. A repository of --transaction packages (the first repacked packages, one
   of them swapped for a BPF package that follows the convention), installed
   by `dnf install` into a fresh installroot with the BPF plugin enabled and
   disabled, interleaved, best of --repeat; then the same without the BPF
   package. Target: the plugin adds under 2 %. The plugin's own time is
   read from dnf.log (it logs each hook's duration), since whole-transaction
   differences are inside the run-to-run noise.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
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


def _timed_cpu(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall-clock and CPU (user + system) seconds of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed, proc = _timed(cmd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, proc


def _series(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def _drop_caches() -> bool:
    """Empty the page cache (root only): the state of a system nobody has just verified."""
    try:
        subprocess.run(["sync"], check=True)
        DROP_CACHES.write_text("3\n")
        return True
    except OSError:
        return False


def _dpkg_corpus(path: Path) -> Path:
    if not (path / "expected.json").exists():
        subprocess.run([sys.executable, str(HERE / "dpkg_corpus.py"), str(path)], check=True)
    return path / "rpms"


def _signed_copies(rpms: list[Path], work: Path) -> tuple[list[Path], Path]:
    """Copies of ``rpms`` signed by rpmsign with a key made here; and the key's armored file."""
    home = work / "gnupg"
    home.mkdir(mode=0o700)
    (home / "batch").write_text(
        "%no-protection\nKey-Type: RSA\nKey-Length: 3072\nName-Real: Bench\nName-Email: bench@example.org\n"
        "Expire-Date: 0\n%commit\n"
    )
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run(["gpg", "--batch", "--gen-key", str(home / "batch")], env=env, check=True, capture_output=True)
    key = work / "bench.asc"
    key.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--armor", "--export", "bench@example.org"], env=env, check=True, capture_output=True
        ).stdout
    )
    signed = work / "signed"
    signed.mkdir()
    copies = [Path(shutil.copy(rpm, signed / rpm.name)) for rpm in rpms]
    subprocess.run(
        ["rpmsign", "--addsign", "--define", "_gpg_name bench@example.org", "--define", "__gpg /usr/bin/gpg"]
        + [str(c) for c in copies],
        env=env,
        stdin=subprocess.DEVNULL,
        check=True,
        capture_output=True,
    )
    return copies, key


def bench_verify(rpms: list[Path], repeat: int, label: str, cold: bool = False) -> float:
    root = Path(tempfile.mkdtemp(prefix="rpm-bpf-verify-root-"))
    work = Path(tempfile.mkdtemp(prefix="rpm-bpf-verify-keys-"))
    try:
        rpms, key = _signed_copies(rpms, work)
        trusted = ["--trusted-keys", str(key)]
        subprocess.run(["rpm", "--root", str(root), "--initdb"], check=True)
        subprocess.run(
            ["rpm", "--root", str(root), "-i", "--nodeps", "--replacefiles", "--noscripts", *map(str, rpms)],
            check=True,
            capture_output=True,
        )
        query = subprocess.run(
            ["rpm", "--root", str(root), "-qa", "--qf", "[%{FILESIZES}\n]"], capture_output=True, text=True
        ).stdout.split()
        size = sum(int(s) for s in query)
        rpm_times, bpf_times, sig_times = [], [], []
        for _ in range(repeat + 1):  # the first round warms the page cache for all three
            rpm_s, rpm_proc = _timed(["rpm", "--root", str(root), "-Va", "--nodeps", "--noscripts"])
            bpf_s, bpf_proc = _timed([str(RPM_BPF), "verify", "--root", str(root), "--no-system-policy"])
            sig_s, sig_proc = _timed([str(RPM_BPF), "verify", "--root", str(root), "--no-system-policy", *trusted])
            rpm_times.append(rpm_s)
            bpf_times.append(bpf_s)
            sig_times.append(sig_s)
        rpm_times, bpf_times, sig_times = rpm_times[1:], bpf_times[1:], sig_times[1:]
        print(f"installroot ({label}): {len(rpms)} packages (signed), {len(query)} files, {size / 1e9:.2f} GB")
        print(f"  warm page cache, best of {repeat}:")
        share = _compare(rpm_times, bpf_times, rpm_proc, bpf_proc)
        _compare_signatures(bpf_times, sig_times, sig_proc)
        if cold and _drop_caches():
            rpm_times, bpf_times = [], []
            for _ in range(repeat):
                _drop_caches()
                rpm_s, rpm_proc = _timed(["rpm", "--root", str(root), "-Va", "--nodeps", "--noscripts"])
                _drop_caches()
                bpf_s, bpf_proc = _timed([str(RPM_BPF), "verify", "--root", str(root), "--no-system-policy"])
                rpm_times.append(rpm_s)
                bpf_times.append(bpf_s)
            print(f"  cold page cache (dropped before each command), best of {repeat}:")
            _compare(rpm_times, bpf_times, rpm_proc, bpf_proc)
        _floor(root)
        return share
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def _compare_signatures(bpf_times: list[float], sig_times: list[float], sig_proc) -> float:
    added = 100 * (min(sig_times) / min(bpf_times) - 1)
    lines = sig_proc.stdout.strip().splitlines()
    print(
        f"    rpm-bpf verify --trusted-keys: {min(sig_times):.3f} s ({_series(sig_times)}; exit {sig_proc.returncode}: "
        f"{lines[-1] if lines else sig_proc.stderr.strip()[-200:]})"
    )
    print(
        f"    the signature checks add {added:.1f} % to rpm-bpf verify (target <= 50 %): "
        f"{'met' if added <= 50 else 'NOT met'}"
    )
    return added


def _compare(rpm_times: list[float], bpf_times: list[float], rpm_proc, bpf_proc) -> float:
    share = 100 * min(bpf_times) / min(rpm_times)
    print(
        f"    rpm -Va:         {min(rpm_times):.3f} s ({', '.join(f'{t:.3f}' for t in rpm_times)}; "
        f"exit {rpm_proc.returncode}, {len(rpm_proc.stdout.splitlines())} lines)"
    )
    print(
        f"    rpm-bpf verify:  {min(bpf_times):.3f} s ({', '.join(f'{t:.3f}' for t in bpf_times)}; "
        f"exit {bpf_proc.returncode}: {bpf_proc.stdout.strip().splitlines()[-1]})"
    )
    print(
        f"    rpm-bpf verify takes {share:.2f} % of rpm -Va's time (target < 1 %): {'met' if share < 1 else 'NOT met'}"
    )
    return share


def _floor(root: Path) -> None:
    """What a front end over librpm pays before verifying anything, on this machine.

    Finding BPF objects outside the BPF directories needs every header's file
    classes (the rpmdb has no index on them), so every header is read.
    """
    python = str(RPM_BPF.parent / "python")
    probes = {
        "interpreter start-up (python -c pass)": [python, "-c", "pass"],
        "start-up + import rpm": [python, "-c", "import rpm"],
        "start-up + import rpm + read every header of the rpmdb": [
            python,
            "-c",
            ("import rpm, sys; ts = rpm.TransactionSet(sys.argv[1]); ts.setVSFlags(-1); sum(1 for h in ts.dbMatch())"),
            str(root),
        ],
        "rpm -qa (librpm's own C tool, reading every header)": [
            "rpm",
            "--root",
            str(root),
            "-qa",
            "--nosignature",
            "--nodigest",
        ],
    }
    print("  fixed costs on this machine, warm, best of 5:")
    for label, cmd in probes.items():
        best = min(_timed(cmd)[0] for _ in range(5))
        print(f"    {label}: {best * 1000:.1f} ms")
    engine = [
        python,
        "-c",
        (
            "import sys, time; from rpm_bpf.flows.verify import verify; from rpm_bpf.rules.policy import Policy; "
            "p = Policy.load(system=None); t = time.perf_counter(); verify(sys.argv[1], p); "
            "print(time.perf_counter() - t)"
        ),
        str(root),
    ]
    best = min(float(_timed(engine)[1].stdout) for _ in range(5))
    print(f"    the verify engine itself (in-process, after imports): {best * 1000:.1f} ms")


def bench_transaction(rpms: list[Path], repeat: int, label: str) -> float:
    work = Path(tempfile.mkdtemp(prefix="rpm-bpf-dnf-"))
    try:
        repo = work / "repo"
        repo.mkdir()
        for rpm_path in rpms:
            shutil.copy(rpm_path, repo)
        subprocess.run(["createrepo_c", "-q", str(repo)], check=True)
        names = sorted({p.name.rsplit("-", 2)[0] for p in repo.glob("*.rpm")})
        size = sum(p.stat().st_size for p in repo.glob("*.rpm"))
        confs = {}
        for state in ("enabled", "disabled"):
            conf = work / f"conf-{state}"
            conf.mkdir()
            (conf / "bpf.conf").write_text(f"[main]\nenabled = {1 if state == 'enabled' else 0}\nmode = enforce\n")
            confs[state] = conf
        times: dict[str, list[float]] = {"enabled": [], "disabled": []}
        cpus: dict[str, list[float]] = {"enabled": [], "disabled": []}
        own: list[float] = []  # the plugin's own hooks, from dnf.log
        for i in range(repeat):
            # Alternate which goes first, and start each run with nothing left to write back.
            for state in ("disabled", "enabled") if i % 2 == 0 else ("enabled", "disabled"):
                subprocess.run(["sync"], check=True)
                root = work / f"root-{state}-{i}"
                cmd = [
                    "dnf",
                    "-y",
                    "-q",
                    f"--installroot={root}",
                    "--setopt=reposdir=/nonexistent",
                    f"--repofrompath=bench,{repo}",
                    "--setopt=bench.gpgcheck=0",
                    "--releasever=1",
                    f"--setopt=pluginpath={REPO / 'dnf_plugin'}",
                    f"--setopt=pluginconfpath={confs[state]}",
                    "install",
                    *names,
                ]
                elapsed, cpu, proc = _timed_cpu(cmd)
                if proc.returncode != 0:
                    raise SystemExit(f"dnf failed ({state}): {proc.stderr[-2000:]}")
                times[state].append(elapsed)
                cpus[state].append(cpu)
                if state == "enabled":
                    log = (root / "var/log/dnf.log").read_text(errors="replace")
                    hooks = re.findall(r"rpm-bpf: \w+ took ([\d.]+) s", log)
                    if not hooks:
                        raise SystemExit("the plugin did not run: no timing lines in dnf.log")
                    own.append(sum(float(m) for m in hooks))
                shutil.rmtree(root, ignore_errors=True)
        best_on, best_off = min(times["enabled"]), min(times["disabled"])
        cpu_on, cpu_off = min(cpus["enabled"]), min(cpus["disabled"])
        bpf = sum(1 for n in names if n.startswith("bpfpkg"))
        print(
            f"dnf install of {len(names)} packages ({label}; {bpf} with BPF objects; {size / 1e6:.0f} MB of RPMs) "
            f"into a fresh installroot (best of {repeat}, alternating order):"
        )
        print(f"  wall clock, plugin disabled: {best_off:.3f} s ({_series(times['disabled'])})")
        print(f"  wall clock, plugin enabled:  {best_on:.3f} s ({_series(times['enabled'])})")
        med_on, med_off = statistics.median(times["enabled"]), statistics.median(times["disabled"])
        print(
            f"    difference of the best runs {100 * (best_on - best_off) / best_off:+.1f} %, of the medians "
            f"{100 * (med_on - med_off) / med_off:+.1f} %; spread between runs of one configuration up to "
            f"{100 * max((max(v) - min(v)) / min(v) for v in times.values()):.1f} %"
        )
        print(f"  CPU (user+sys) of dnf, plugin disabled: {cpu_off:.3f} s ({_series(cpus['disabled'])})")
        print(f"  CPU (user+sys) of dnf, plugin enabled:  {cpu_on:.3f} s ({_series(cpus['enabled'])})")
        med_on, med_off = statistics.median(cpus["enabled"]), statistics.median(cpus["disabled"])
        print(
            f"    difference of the best runs {100 * (cpu_on - cpu_off) / cpu_off:+.1f} %, of the medians "
            f"{100 * (med_on - med_off) / med_off:+.1f} %; spread up to "
            f"{100 * max((max(v) - min(v)) / min(v) for v in cpus.values()):.1f} %"
        )
        own_share = 100 * min(own) / best_off
        print(
            f"  the plugin's own hooks (timed inside dnf, dnf.log): {min(own):.3f} s ({_series(own)}) "
            f"= {own_share:.2f} % of the fastest transaction without it (target < 2 %): "
            f"{'met' if own_share < 2 else 'NOT met'}"
        )
        return own_share
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=HERE / "out" / "dpkg-corpus")
    parser.add_argument(
        "--synthetic-corpus",
        type=Path,
        metavar="DIR",
        help="also verify an installroot of 300 packages of this corpus.py corpus",
    )
    parser.add_argument(
        "--synthetic-transaction-corpus",
        type=Path,
        metavar="DIR",
        help="also run the transaction on this corpus.py --no-autodeps corpus",
    )
    parser.add_argument("--transaction", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("verify", "transaction"), help="run one of the two benchmarks")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="also time both verifiers on a cold page cache (root: writes /proc/sys/vm/drop_caches)",
    )
    args = parser.parse_args()
    rpms = _dpkg_corpus(args.corpus)
    repacked = sorted(rpms.glob("deb-*.rpm"))
    planted = sorted(rpms.glob("bpfpkg*.rpm"))
    expected = json.loads((args.corpus / "expected.json").read_text())
    print(
        f"corpus: {expected['packages']} Debian packages repacked ({expected['installed_bytes'] / 1e9:.2f} GB), "
        f"{expected['bpf_packages']} BPF packages; left out: {expected['skipped']}"
    )
    if args.only != "transaction":
        bench_verify(repacked + planted, args.repeat, "repacked Debian packages", cold=args.cold)
    if args.synthetic_corpus and args.only != "transaction":
        small = sorted((args.synthetic_corpus / "rpms").glob("pkg*.rpm"))[:300]
        bench_verify(
            small + sorted((args.synthetic_corpus / "rpms").glob("bpfpkg*.rpm")), args.repeat, "synthetic corpus"
        )
    if args.only == "verify":
        return 0
    good = [p for p in planted if p.name.startswith("bpfpkg0000-")]  # kind 0: follows the convention
    bench_transaction(repacked[: args.transaction - len(good)] + good, args.repeat, "repacked Debian packages")
    bench_transaction(repacked[: args.transaction], args.repeat, "repacked Debian packages")
    if args.synthetic_transaction_corpus:
        bench_transaction(
            sorted((args.synthetic_transaction_corpus / "rpms").glob("*.rpm"))[: args.transaction],
            args.repeat,
            "synthetic corpus",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
