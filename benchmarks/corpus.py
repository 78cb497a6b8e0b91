"""Reproducible benchmark corpus: N realistic RPMs, about 1 % shipping BPF objects.

Packages are real rpmbuild output. Ordinary packages carry ~40 files: ELF
executables and libraries copied from this machine, Python modules, docs and
configuration. BPF packages carry clang-built objects, some placed right and
some with planted violations; ``expected.json`` lists every finding the
planted packages must produce, so the benchmark can check nothing was missed.

    python benchmarks/corpus.py OUTDIR [--packages 1000] [--bpf-share 0.01] [--seed 1] [--payload w3.zstdio]

Payloads are zstd by default, as Fedora's and openSUSE's are (level 3 to keep
the build short: zstd decompresses at about the same speed whatever the
level); ``--payload w9.gzdio`` gives the gzip -9 of rpm's old default.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rpm_bpf.samples import build as samples
from rpm_bpf.samples.build import PkgFile, PkgSpec
from rpm_bpf.sources import bpfdirs

FILES_PER_PACKAGE = 40
SUBPACKAGES_PER_SPEC = 100
PAYLOAD = "w3.zstdio"


def _is_small_elf(candidate: Path) -> bool:
    try:
        if candidate.is_file() and not candidate.is_symlink() and 4_000 < candidate.stat().st_size < 400_000:
            with candidate.open("rb") as f:
                return f.read(4) == b"\x7fELF"
    except OSError:
        pass
    return False


def _system_pool(rng: random.Random) -> tuple[list[Path], list[Path]]:
    """ELF files and text files of this machine, for realistic content."""
    elves = [candidate for candidate in sorted(Path("/usr/bin").iterdir()) if _is_small_elf(candidate)]
    texts = [
        candidate
        for candidate in sorted(Path("/usr/lib/python3.11").glob("*.py"))
        if candidate.stat().st_size < 120_000
    ]
    rng.shuffle(elves)
    rng.shuffle(texts)
    return elves[:200], texts[:300]


def _ordinary(name: str, rng: random.Random, elves: list[Path], texts: list[Path]) -> PkgSpec:
    files = [
        PkgFile(f"/usr/share/{name}", directory=True, mode=0o755),
        PkgFile(f"/usr/lib/python3/dist-packages/{name}", directory=True, mode=0o755),
    ]
    # Comprehensions draw from ``rng`` in the same order as loops would: the seed still gives the same corpus.
    files += [PkgFile(f"/usr/bin/{name}-tool{i}", rng.choice(elves), mode=0o755) for i in range(4)]
    files += [PkgFile(f"/usr/lib/python3/dist-packages/{name}/mod{i}.py", rng.choice(texts)) for i in range(14)]
    files += [PkgFile(f"/usr/share/{name}/data{i}.txt", rng.choice(texts)) for i in range(14)]
    files.append(PkgFile(f"/etc/{name}.conf", text=f"# {name} configuration\nenabled = yes\n", config=True))
    while len(files) < FILES_PER_PACKAGE:
        files.append(PkgFile(f"/usr/share/{name}/doc{len(files)}.md", rng.choice(texts)))
    return PkgSpec(name, files=files)


def build_objects(objs_dir: Path) -> dict[str, Path]:
    """The clang-built objects the planted packages carry."""
    full = samples.compile_bpf(samples.XDP_COUNTER_C, objs_dir / "full.bpf.o")
    return {
        "full": full,
        "bare": samples.compile_bpf(samples.NO_LICENSE_C, objs_dir / "bare.bpf.o", btf=False),
        "big": samples.compile_bpf(samples.XDP_COUNTER_C, objs_dir / "big.bpfeb.o", target="bpfeb"),
        "loader": samples.build_skeleton_loader(full, objs_dir / "skel" / "loader"),
    }


def planted_packages(count: int, objs: dict[str, Path], bpfdir: str) -> tuple[list[PkgSpec], list[dict]]:
    """``count`` planted BPF packages (every kind in turn) and the findings they must give."""
    specs: list[PkgSpec] = []
    expected: list[dict] = []
    for index in range(count):
        for spec, findings in _bpf_packages(index, objs, bpfdir):
            specs.append(spec)
            expected += [{"package": spec.name, "rule": r, "path": p} for r, p in findings]
    return specs, expected


def _bpf_packages(index: int, objs: dict[str, Path], bpfdir: str) -> list[tuple[PkgSpec, list[tuple[str, str]]]]:
    """Planted BPF packages and the (rule, path) findings each must give."""
    kind = index % 6
    name = f"bpfpkg{index:04d}"
    own = [PkgFile(f"{bpfdir}/{name}", directory=True, mode=0o755)]
    if kind == 0:  # follows the convention
        return [
            (
                PkgSpec(
                    name,
                    requires=["bpf-filesystem"],
                    files=[*own, PkgFile(f"{bpfdir}/{name}/prog.bpf.o", objs["full"])],
                ),
                [],
            )
        ]
    if kind == 1:  # misplaced
        path = f"/usr/share/{name}/prog.o"
        return [(PkgSpec(name, files=[PkgFile(path, objs["full"])]), [("bpf-object-outside-bpfdir", path)])]
    if kind == 2:  # writable, no license, no BTF
        path = f"{bpfdir}/{name}/bare.o"
        return [
            (
                PkgSpec(name, requires=["bpf-filesystem"], files=[*own, PkgFile(path, objs["bare"], mode=436)]),
                [("bpf-object-writable", path), ("bpf-object-no-license", path), ("bpf-object-no-btf", path)],
            )
        ]
    if kind == 3:  # two sources, one name
        path = f"{bpfdir}/shared-{index}.o"
        a = PkgSpec(name, requires=["bpf-filesystem"], files=[PkgFile(path, objs["full"])])
        b = PkgSpec(name + "-fork", requires=["bpf-filesystem"], files=[PkgFile(path, objs["full"])])
        return [(a, [("bpf-name-conflict", path)]), (b, [("bpf-name-conflict", path)])]
    if kind == 4:  # skeleton loader: information only
        path = f"/usr/bin/{name}-loader"
        return [(PkgSpec(name, files=[PkgFile(path, objs["loader"], mode=0o755)]), [("bpf-object-embedded", path)])]
    path = f"{bpfdir}/{name}/big.o"  # wrong byte order, %config
    return [
        (
            PkgSpec(name, requires=["bpf-filesystem"], files=[*own, PkgFile(path, objs["big"], config=True)]),
            [("bpf-endianness-mismatch", path), ("bpf-object-config", path)],
        )
    ]


def generate(
    out: Path, packages: int, bpf_share: float, seed: int, autodeps: bool = True, payload: str = PAYLOAD
) -> dict:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    rpm_dir = out / "rpms"
    rpm_dir.mkdir(exist_ok=True)
    build = out / "build"
    objs = build_objects(out / "objects")
    bpfdir = bpfdirs.for_arch(bpfdirs.host_arch()).arch_dir
    elves, texts = _system_pool(rng)

    specs: list[PkgSpec] = []
    expected: list[dict] = []
    n_bpf_slots = max(1, round(packages * bpf_share))
    bpf_slots = set(rng.sample(range(packages), n_bpf_slots))
    bpf_index = 0
    for i in range(packages):
        if len(specs) >= packages:
            break
        if i in bpf_slots:
            for spec, findings in _bpf_packages(bpf_index, objs, bpfdir):
                specs.append(spec)
                expected += [{"package": spec.name, "rule": r, "path": p} for r, p in findings]
            bpf_index += 1
        else:
            specs.append(_ordinary(f"pkg{i:05d}", rng, elves, texts))
    specs = specs[:packages]
    if not autodeps:
        # Installable by dnf into an empty root: no Requires on the libraries the ELF files link.
        for spec in specs:
            spec.autodeps = False
            spec.requires = [r for r in spec.requires if r != "bpf-filesystem"]
    expected = [e for e in expected if e["package"] in {s.name for s in specs}]

    started = time.monotonic()
    for start in range(0, len(specs), SUBPACKAGES_PER_SPEC):
        group = specs[start : start + SUBPACKAGES_PER_SPEC]
        main = PkgSpec(f"corpus{start // SUBPACKAGES_PER_SPEC:03d}", files=[])
        for built in samples.build_rpms(main, build, subpackages=group, payload=payload):
            if built.name.startswith("corpus"):
                continue  # the empty main package is not part of the corpus
            built.rename(rpm_dir / built.name)
        print(f"corpus: {min(start + SUBPACKAGES_PER_SPEC, len(specs))}/{len(specs)} packages built", file=sys.stderr)
    manifest = {
        "packages": len(specs),
        "bpf_packages": sum(1 for s in specs if s.name.startswith("bpfpkg")),
        "seed": seed,
        "payload": payload,
        "expected": expected,
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (out / "expected.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--bpf-share", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-autodeps", action="store_true", help="AutoReqProv: no (for install benchmarks)")
    parser.add_argument("--payload", default=PAYLOAD, help=f"rpmbuild's _binary_payload (default {PAYLOAD})")
    args = parser.parse_args()
    manifest = generate(
        args.out, args.packages, args.bpf_share, args.seed, autodeps=not args.no_autodeps, payload=args.payload
    )
    print(f"corpus: {manifest['packages']} packages ({manifest['bpf_packages']} with BPF) in {args.out}/rpms")


if __name__ == "__main__":
    main()
