"""Synthetic repository metadata at distribution scale, written by createrepo_c's Python API.

    python benchmarks/repo_corpus.py [--packages 75000] [--files 3500000] [--seed 1] [--out DIR]

A Fedora-sized repository (~75,000 packages, ~3.5 million file entries,
filelists ~265 MB uncompressed) is too big to build from RPMs, so only its
metadata is made: primary.xml, filelists.xml and repomd.xml (gzip), with a
realistic file-count distribution (most packages small, a long tail of big
ones), a few hundred packages shipping BPF objects, decoys that a sloppy
search would report (sysroot copies of the BPF directories, /usr/lib64/bpfilter,
/usr/local/lib64/bpf, look-alike provides such as bpftool), and planted
objects that the benchmark's new build clashes with, in the three ways that
matter: /usr/lib64/bpf against /usr/lib64/bpf, /usr/lib/bpf against
/usr/lib/bpf, and /usr/lib/bpf (noarch) against /usr/lib64/bpf.

Cached under CACHE keyed by the parameters and this file's contents, so a
changed generator makes a new repository. ``planted.json`` lists the clash
names and the decoy paths.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

CACHE = Path("/var/cache/rpm-bpf-bench")
PLANTED = {  # name relative to the BPF directory -> (repository package, its BPF directory)
    "clash64/prog.bpf.o": ("planted-lib64", "/usr/lib64/bpf"),
    "clashnoarch/prog.bpf.o": ("planted-lib", "/usr/lib/bpf"),
    "clashmixed/prog.bpf.o": ("planted-mixed", "/usr/lib64/bpf"),
}
DECOYS = {
    "decoy-sysroot": ["/usr/x86_64-linux-gnu/sys-root/fc41/usr/lib64/bpf/clash64/prog.bpf.o"],
    "decoy-bpfilter": ["/usr/lib64/bpfilter/clash64/prog.bpf.o", "/usr/lib64/bpfilter"],
    "decoy-local": ["/usr/local/lib64/bpf/clash64/prog.bpf.o"],
    "decoy-run": ["/run/clashcache/pid"],  # /run/APP without a bpf-runtime(APP) provide claims nothing
}
# Application directories (bpf-cache(APP)): the repository package claiming one, by directory and provide.
PLANTED_CACHE = ("clashcache", "planted-cache")


_PREFIXES = (
    "/usr/share/{name}/resources",
    "/usr/lib/python3.13/site-packages/{name}",
    "/usr/share/doc/{name}",
    "/usr/include/{name}",
    "/usr/lib64/{name}/plugins",
    "/usr/share/locale-langpack/{name}",
)


def _key(packages: int, files: int, seed: int) -> str:
    source = Path(__file__).read_bytes()
    return hashlib.sha256(f"{packages}:{files}:{seed}:".encode() + source).hexdigest()[:12]


def _counts(rng: random.Random, packages: int, files: int) -> list[int]:
    """Files per package: a lognormal spread (most packages small, a few huge), scaled to ``files`` in all."""
    raw = [rng.lognormvariate(2.5, 1.4) for _ in range(packages)]
    scale = files / sum(raw)
    return [max(1, int(r * scale)) for r in raw]


def generate(out: Path, packages: int, files: int, seed: int) -> dict:
    import createrepo_c as cr

    rng = random.Random(seed)
    repodata = out / "repodata"
    repodata.mkdir(parents=True)
    primary = cr.PrimaryXmlFile(str(repodata / "primary.xml.gz"), cr.GZ)
    filelists = cr.FilelistsXmlFile(str(repodata / "filelists.xml.gz"), cr.GZ)
    primary.set_num_of_pkgs(packages)
    filelists.set_num_of_pkgs(packages)
    counts = _counts(rng, packages, files)
    bpf_every = max(1, packages // 300)  # a few hundred packages ship BPF objects
    roles = [*PLANTED, *DECOYS, "lookalike", "cache"]
    special = {i * (packages // (len(roles) + 1)): name for i, name in enumerate(roles, 1)}
    total_files = 0
    for index in range(packages):
        pkg = cr.Package()
        name = f"pkg{index:06d}"
        paths: list[str] = []
        provides = [(name, "EQ", "0", "1.0", "1", False)]
        arch = "x86_64"
        role = special.get(index)
        if role in PLANTED:
            name, root = PLANTED[role]
            arch = "noarch" if root == "/usr/lib/bpf" else "x86_64"
            paths += [f"{root}/{role}"]
            provides = [(name, "EQ", "0", "1.0", "1", False), (f"bpf({role})", None, None, None, None, False)]
        elif role in DECOYS:
            name = role
            paths += DECOYS[role]
        elif role == "lookalike":
            name = "bpftool-lookalike"
            provides += [
                ("bpftool", "EQ", "0", "7.5", "1", False),
                ("bpf-devel(x)", None, None, None, None, False),
                ("bpf-cachetool(clashcache)", None, None, None, None, False),
                ("libbpf.so.1()(64bit)", None, None, None, None, False),
            ]
        elif role == "cache":
            app, name = PLANTED_CACHE
            paths += [f"/var/cache/bpf/{app}"]
            provides = [(name, "EQ", "0", "1.0", "1", False), (f"bpf-cache({app})", None, None, None, None, False)]
        elif index % bpf_every == 0:
            objs = [f"/usr/lib64/bpf/{name}/prog{k}.bpf.o" for k in range(1 + index % 3)]
            paths += objs
            provides += [(f"bpf({p.removeprefix('/usr/lib64/bpf/')})", None, None, None, None, False) for p in objs]
        prefix = _PREFIXES[index % len(_PREFIXES)].format(name=name)
        paths += [f"{prefix}/part{k % 11}/file{k:05d}.data" for k in range(counts[index])]
        pkg.name, pkg.epoch, pkg.version, pkg.release, pkg.arch = name, "0", "1.0", "1", arch
        pkg.summary = pkg.description = f"synthetic package {name}"
        pkg.pkgId = hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()
        pkg.checksum_type = "sha256"
        pkg.location_href = f"Packages/{name}-1.0-1.{arch}.rpm"
        pkg.rpm_sourcerpm = f"{name}-1.0-1.src.rpm"
        pkg.provides = provides
        pkg.files = [(None, p.rsplit("/", 1)[0] + "/", p.rsplit("/", 1)[1]) for p in paths]
        primary.add_pkg(pkg)
        filelists.add_pkg(pkg)
        total_files += len(paths)
    primary.close()
    filelists.close()
    repomd = cr.Repomd()
    for kind, name in (("primary", "primary.xml.gz"), ("filelists", "filelists.xml.gz")):
        record = cr.RepomdRecord(kind, str(repodata / name))
        record.fill(cr.SHA256)
        record.rename_file()
        repomd.set_record(record)
    (repodata / "repomd.xml").write_text(repomd.xml_dump())
    manifest = {
        "packages": packages,
        "file_entries": total_files,
        "seed": seed,
        "planted": {name: list(where) for name, where in PLANTED.items()},
        "decoys": DECOYS,
        "planted_cache": list(PLANTED_CACHE),
    }
    (out / "planted.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def build(packages: int = 75_000, files: int = 3_500_000, seed: int = 1, out: Path | None = None) -> Path:
    out = out or CACHE / f"repo-{packages}-{_key(packages, files, seed)}"
    if (out / ".complete").exists():
        return out
    if out.exists():
        import shutil

        shutil.rmtree(out)
    started = time.monotonic()
    manifest = generate(out, packages, files, seed)
    print(
        f"repo_corpus: {manifest['packages']} packages, {manifest['file_entries']} file entries in "
        f"{time.monotonic() - started:.0f} s: {out}",
        file=sys.stderr,
    )
    (out / ".complete").touch()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", type=int, default=75_000)
    parser.add_argument("--files", type=int, default=3_500_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    print(build(args.packages, args.files, args.seed, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
