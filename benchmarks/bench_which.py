"""Benchmark: `rpm-bpf which` with 200 loaded programs, side by side with `bpftool prog show` alone.

    .venv/bin/python benchmarks/bench_which.py [--packages 50] [--repeat 5]     # root: loads programs

50 packages built by rpmbuild, each shipping one object with four programs
(clang-built, each program's code distinct, each with CO-RE relocations
resolved against the running kernel's BTF), installed by rpm into a fresh
root; every program loaded with bpftool (pinned under a bpffs directory of
its own, removed at the end). Times, whole processes: `bpftool -j -f prog
show` (what any answer starts from), `rpm-bpf which --root` cold (an empty
prediction cache: every object read, relocated and predicted), cold without
relocation (``--kernel-btf`` an empty file: what relocation costs is the
difference, its share printed) and warm (the cache filled). Checks that
every loaded program is traced to its package by its exact tag.
Targets: warm under 0.5 s, cold under 1 s.
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
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from rpm_bpf.samples import build as samples  # noqa: E402
from rpm_bpf.samples.build import PkgFile, PkgSpec  # noqa: E402
from rpm_bpf.sources import bpfdirs  # noqa: E402

RPM_BPF = str(REPO / ".venv" / "bin" / "rpm-bpf")
BPFFS = Path("/sys/fs/bpf")
TARGET = 0.5
TARGET_COLD = 1.0

OBJECT_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
struct task_struct { int pid; int tgid; } __attribute__((preserve_access_index));
enum pid_type { PIDTYPE_TGID = 9 };
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} hits_N SEC(".maps");
static __always_inline int count(__u32 key, __u64 step)
{
    __u64 *v = bpf_map_lookup_elem(&hits_N, &key);
    /* CO-RE, as most real programs: a field offset, a type's existence and an enumerator, for this kernel */
    step += bpf_core_field_offset(struct task_struct, tgid) + bpf_core_type_exists(struct task_struct);
    step += bpf_core_enum_value(enum pid_type, PIDTYPE_TGID);
    if (v)
        *v += step;
    return XDP_PASS;
}
SEC("xdp") int prog_N_a(struct xdp_md *ctx) { return count(0, N * 4 + 1); }
SEC("xdp") int prog_N_b(struct xdp_md *ctx) { return count(1, N * 4 + 2); }
SEC("xdp") int prog_N_c(struct xdp_md *ctx) { return count(2, N * 4 + 3); }
SEC("tc") int prog_N_d(struct __sk_buff *skb) { return count(3, N * 4 + 4) - 2; }
char LICENSE[] SEC("license") = "GPL";
"""


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - started, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_which: loading programs needs root", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="rpm-bpf-bench-which-", dir="/var/tmp"))
    pins = BPFFS / f"rpm-bpf-bench-{uuid.uuid4().hex[:8]}"
    try:
        bpfdir = bpfdirs.for_arch(bpfdirs.host_arch()).arch_dir
        specs = []
        for n in range(args.packages):
            obj = samples.compile_bpf(OBJECT_C.replace("N", str(n)), work / "objs" / f"obj{n}.bpf.o")
            specs.append(PkgSpec(f"bench-bpf{n:02d}", files=[PkgFile(f"{bpfdir}/bench{n:02d}.bpf.o", obj)]))
        built = samples.build_rpms(PkgSpec("bench-main", files=[]), work / "build", subpackages=specs)
        root = work / "root"
        root.mkdir()
        rpms = [str(p) for p in built if not p.name.startswith("bench-main")]
        subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", *rpms], check=True, capture_output=True)
        pins.mkdir()
        for n in range(args.packages):
            subprocess.run(
                [
                    "bpftool",
                    "prog",
                    "loadall",
                    str(root / bpfdir.lstrip("/") / f"bench{n:02d}.bpf.o"),
                    str(pins / f"o{n}"),
                ],
                check=True,
                capture_output=True,
            )
        show = ["bpftool", "-j", "-f", "prog", "show"]
        shows = [_timed(show)[0] for _ in range(args.repeat)]
        listed = json.loads(subprocess.run(show, capture_output=True, text=True, check=True).stdout)
        which = [RPM_BPF, "which", "--root", str(root), "-f", "json"]
        cold_times = []
        for k in range(args.repeat):
            env = dict(os.environ, XDG_CACHE_HOME=str(work / f"cache-cold-{k}"))  # empty each time
            cold_times.append(_timed(which, env)[0])
        no_btf = work / "no.btf"
        no_btf.write_bytes(b"")
        bare_times = []
        for k in range(args.repeat):
            env = dict(os.environ, XDG_CACHE_HOME=str(work / f"cache-bare-{k}"))
            bare_times.append(_timed([*which, "--kernel-btf", str(no_btf)], env)[0])
        warm_env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache-warm"))
        _timed(which, warm_env)  # fills the cache
        warm = [_timed(which, warm_env) for _ in range(args.repeat)]
        doc = json.loads(warm[-1][1].stdout)
    finally:
        shutil.rmtree(pins, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    ours = [p for p in doc["programs"] if p["name"].startswith("prog_")]
    traced = [
        p
        for p in ours
        if p["confidence"] in ("tag", "certain")
        and p["sources"][0]["package"].startswith(f"bench-bpf{p['name'].split('_')[1].zfill(2)}-")
    ]
    print(
        f"{len(listed)} programs loaded ({len(ours)} from {args.packages} packages' objects); "
        f"best of {args.repeat}, whole processes:"
    )
    print(f"  bpftool -j -f prog show           {min(shows):7.3f} s")
    cold, bare = min(cold_times), min(bare_times)
    print(f"  rpm-bpf which, cold (no cache)    {cold:7.3f} s")
    print(
        f"  rpm-bpf which, cold, no kernel BTF {bare:6.3f} s  "
        f"(CO-RE relocation: {cold - bare:.3f} s, {100 * (cold - bare) / cold:.0f} % of cold)"
    )
    print(
        f"  rpm-bpf which, warm               {min(t for t, _ in warm):7.3f} s  "
        f"(cache: {doc['cache']['hits']} hits, {doc['cache']['misses']} misses)"
    )
    print(f"traced to their package: {len(traced)}/{len(ours)}")
    best = min(t for t, _ in warm)
    print(f"target (warm < {TARGET} s): {'met' if best < TARGET else 'NOT met'}")
    print(f"target (cold < {TARGET_COLD} s): {'met' if cold < TARGET_COLD else 'NOT met'}")
    return 0 if len(traced) == len(ours) == 4 * args.packages else 1


if __name__ == "__main__":
    sys.exit(main())
