"""A system-sized corpus: this machine's Debian packages repacked as RPMs.

The synthetic corpus (corpus.py) has realistic file *types* but small
packages, so ``rpm -Va`` over it is far quicker than on a real system. This
corpus takes the file lists (``/var/lib/dpkg/info/*.list``) of a seeded random
sample of the Debian packages installed here and repacks each one's files,
bytes and modes as they are on disk, into an RPM built by rpmbuild (file
classes by rpm's own libmagic, zstd payload, no dependency generation so an
empty root can take them). Planted BPF packages (corpus.py) are added; their
expected findings go to ``expected.json``.

    python benchmarks/dpkg_corpus.py OUTDIR [--packages 300] [--bpf-packages 12] [--seed 1]

Files whose names rpm's %files syntax cannot carry literally (blanks, globs,
``%``, quotes, backslashes) and files another sampled package already
shipped are left out and counted. Only files, links and directories that
exist and can be read are taken.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402

from rpm_bpf.samples import build as samples  # noqa: E402
from rpm_bpf.samples.build import PkgFile, PkgSpec  # noqa: E402
from rpm_bpf.sources import bpfdirs  # noqa: E402

DPKG_INFO = Path("/var/lib/dpkg/info")
PACKAGES_PER_SPEC = 25
# What %files takes literally: anything else would need quoting/escaping.
PLAIN_PATH = re.compile(r"^/[A-Za-z0-9/._+@:,=~-]+$")
BUILD_DEFINES = {
    "__os_install_post": "%{nil}",  # keep the bytes as on disk: no strip, no compression of man pages
    "debug_package": "%{nil}",
    "_build_id_links": "none",  # several packages would own the same /usr/lib/.build-id links
    "_missing_build_ids_terminate_build": "0",
}
PAYLOAD = "w3.zstdio"


def installed_debs() -> list[str]:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${binary:Package}\\t${db:Status-Abbrev}\\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(line.split("\t")[0] for line in out.splitlines() if line.split("\t")[1].startswith("ii"))


def _file_list(deb: str) -> list[str]:
    for candidate in (DPKG_INFO / f"{deb}.list", DPKG_INFO / f"{deb.split(':')[0]}.list"):
        if candidate.exists():
            return candidate.read_text(errors="replace").splitlines()
    return []


def repack_spec(deb: str, taken: set[str], skipped: dict[str, int]) -> PkgSpec | None:
    """The PkgSpec carrying ``deb``'s files as they are on this disk."""
    files: list[PkgFile] = []
    dirs: set[str] = set()
    for listed in _file_list(deb):
        if listed in ("/.", "/"):
            continue
        # Merged /usr: /lib/x is /usr/lib/x on disk; ship it where it really is.
        path = os.path.join(os.path.realpath(os.path.dirname(listed)), os.path.basename(listed))
        if path in taken:
            skipped["already shipped"] += 1
            continue
        if not PLAIN_PATH.match(path):
            skipped["name not plain"] += 1
            continue
        try:
            st = os.lstat(path)
        except OSError:
            skipped["absent"] += 1
            continue
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            if path not in dirs:
                files.append(PkgFile(path, directory=True, mode=mode))
                dirs.add(path)
            continue  # directories may be shared between packages
        if stat.S_ISLNK(st.st_mode):
            files.append(PkgFile(path, linkto=os.readlink(path)))
        elif stat.S_ISREG(st.st_mode) and os.access(path, os.R_OK):
            files.append(PkgFile(path, source=Path(path), mode=mode))
        else:
            skipped["not a file, link or directory"] += 1
            continue
        taken.add(path)
    if not any(not f.directory for f in files):
        return None
    name = "deb-" + deb.split(":")[0]
    return PkgSpec(name, files=files, autodeps=False, summary=f"Debian package {deb} repacked by rpm-bpf's benchmark")


def generate(out: Path, packages: int, bpf_packages: int, seed: int) -> dict:
    rng = random.Random(seed)
    rpm_dir = out / "rpms"
    rpm_dir.mkdir(parents=True, exist_ok=True)
    build = out / "build"
    debs = installed_debs()
    sample = sorted(rng.sample(debs, min(packages, len(debs))))
    taken: set[str] = set()
    skipped = {"already shipped": 0, "name not plain": 0, "absent": 0, "not a file, link or directory": 0}
    specs = [spec for deb in sample if (spec := repack_spec(deb, taken, skipped)) is not None]

    objs = corpus.build_objects(out / "objects")
    bpfdir = bpfdirs.for_arch(bpfdirs.host_arch()).arch_dir
    planted, expected = corpus.planted_packages(bpf_packages, objs, bpfdir)
    for spec in planted:
        spec.autodeps = False
        spec.requires = []
    started = time.monotonic()
    groups = [specs[i : i + PACKAGES_PER_SPEC] for i in range(0, len(specs), PACKAGES_PER_SPEC)] + [planted]
    for number, group in enumerate(groups):
        main = PkgSpec(f"repack{number:03d}", files=[])
        for built in samples.build_rpms(main, build, subpackages=group, payload=PAYLOAD, defines=BUILD_DEFINES):
            if not built.name.startswith("repack"):
                built.rename(rpm_dir / built.name)
        shutil.rmtree(build, ignore_errors=True)  # the staged copies: as big as the corpus
        print(f"dpkg corpus: {number + 1}/{len(groups)} specs built", file=sys.stderr)
    size = sum(p.stat().st_size for p in rpm_dir.glob("*.rpm"))
    manifest = {
        "packages": len(specs),
        "bpf_packages": len(planted),
        "seed": seed,
        "files": len(taken),
        "skipped": skipped,
        "rpm_bytes": size,
        "installed_bytes": sum(f.source.stat().st_size for s in specs for f in s.files if f.source),
        "expected": expected,
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (out / "expected.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--packages", type=int, default=300, help="Debian packages to repack (default 300)")
    parser.add_argument("--bpf-packages", type=int, default=12, help="planted BPF packages (default 12)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    m = generate(args.out, args.packages, args.bpf_packages, args.seed)
    print(
        f"dpkg corpus: {m['packages']} repacked packages ({m['files']} files, "
        f"{m['installed_bytes'] / 1e9:.2f} GB installed) + {m['bpf_packages']} BPF packages in {args.out}/rpms; "
        f"skipped: {m['skipped']}"
    )


if __name__ == "__main__":
    main()
