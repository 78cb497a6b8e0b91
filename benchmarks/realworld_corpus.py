"""A real-world corpus: Debian 12 packages that ship eBPF, repacked file for file as RPMs.

Nobody here wrote these packages: C tools with libbpf skeletons linked
dynamically (xdp-tools, pcp, libknot, qemu) and statically (libbpf-tools),
a Go program embedding its object with go:embed (delve), standalone objects
in Debian's locations (libxdp1, ir-keytable's /lib/udev/rc_keymaps, xdp-tests),
BPF ELF files that are not deployed programs (cilium/ebpf's test data in a Go
-dev package, gcc-bpf's crt*.o), and controls that ship none (bpftool,
libbpf1). ``apt-get download`` fetches them (cached under CACHE, keyed by the
exact .deb file names, so a Debian point release rebuilds the corpus);
rpmbuild repacks each .deb's files, bytes and modes with rpm's own file
classes and dependency generators (Requires: libbpf.so.1, libelf.so.1...).

EXPECTED records, per package, what a gatekeeper should see: how many BPF
objects are embedded in which file (counted independently of rpm-bpf, by a
byte search for ELF headers with e_machine 247 that pyelftools parses as
ET_REL objects), which files draw an error and with which rule, and which
are reported at info level as not deployed programs.

    python benchmarks/realworld_corpus.py [--out DIR]    # prints the RPM directory
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from rpm_bpf.samples import build as samples  # noqa: E402
from rpm_bpf.samples.build import PkgFile, PkgSpec  # noqa: E402

CACHE = Path("/var/cache/rpm-bpf-realworld")
REPACK_VERSION = "1"  # bump when the repacking changes: cached corpora are rebuilt
PLAIN_PATH = re.compile(r"^/[A-Za-z0-9/._+@:,=~-]+$")  # what %files takes literally
BUILD_DEFINES = {
    "__os_install_post": "%{nil}",  # the bytes as Debian shipped them: no strip, no compression
    "debug_package": "%{nil}",
    "_build_id_links": "none",
    "_missing_build_ids_terminate_build": "0",
}
PAYLOAD = "w3.zstdio"  # zstd, as Fedora's (level 3 keeps the build short; zstd decompresses as fast at any level)

MULTIARCH_BPF = "/usr/lib/x86_64-linux-gnu/bpf"  # Debian's place; RPM distributions use %{_libdir}/bpf

# package -> expectations. "embedded": file -> number of objects in it, and
# the header signal that makes the default scan search it (None: only
# --embedded=all or --deep find it). "errors": (rule, path glob) that must be
# reported at error level, and nothing else may be. "info": (rule, path glob,
# how many files).
EXPECTED: dict[str, dict] = {
    "libxdp1": {"errors": [("bpf-object-outside-bpfdir", f"{MULTIARCH_BPF}/*.o")], "standalone": 15},
    "xdp-tools": {
        "embedded": {
            "/usr/sbin/xdp-bench": 9,
            "/usr/sbin/xdp-filter": 4,
            "/usr/sbin/xdp-loader": 4,
            "/usr/sbin/xdp-monitor": 5,
            "/usr/sbin/xdp-trafficgen": 5,
            "/usr/sbin/xdpdump": 4,
        },
        "signal": "libbpf-dynamic",
    },
    "xdp-tests": {
        "embedded": {"/usr/libexec/xdp-tools/test-tool": 4},
        "signal": "libbpf-dynamic",
        "errors": [("bpf-object-outside-bpfdir", "/usr/libexec/xdp-tools/*.o")],
        "standalone": 3,
    },
    "libbpf-tools": {
        "embedded": {
            f"/usr/sbin/{tool}": 1
            for tool in [
                "bashreadline",
                "bindsnoop",
                "biolatency",
                "biopattern",
                "biosnoop",
                "biostacks",
                "biotop",
                "bitesize",
                "cachestat",
                "capable",
                "cpudist",
                "cpufreq",
                "drsnoop",
                "execsnoop",
                "exitsnoop",
                "filelife",
                "filetop",
                "fsdist",
                "fsslower",
                "funclatency",
                "gethostlatency",
                "hardirqs",
                "javagc",
                "klockstat",
                "ksnoop",
                "llcstat",
                "mdflush",
                "mountsnoop",
                "numamove",
                "offcputime",
                "oomkill",
                "opensnoop",
                "readahead",
                "runqlat",
                "runqlen",
                "runqslower",
                "sigsnoop",
                "slabratetop",
                "softirqs",
                "solisten",
                "statsnoop",
                "syscount",
                "tcpconnect",
                "tcpconnlat",
                "tcplife",
                "tcprtt",
                "tcpstates",
                "tcpsynbl",
                "tcptop",
                "tcptracer",
                "vfsstat",
                "wakeuptime",
            ]
        },
        "signal": "libbpf-static",
    },
    "pcp": {
        "embedded": {
            f"/usr/lib/pcp/pmdas/bpf/modules/{m}.so": 1
            for m in [
                "bashreadline",
                "biolatency",
                "biosnoop",
                "execsnoop",
                "exitsnoop",
                "fsslower",
                "mountsnoop",
                "oomkill",
                "opensnoop",
                "runqlat",
                "statsnoop",
                "tcpconnect",
                "tcpconnlat",
                "vfsstat",
            ]
        },
        "signal": "libbpf-dynamic",
    },
    "libknot13": {"embedded": {"/usr/lib/x86_64-linux-gnu/libknot.so.13.0.0": 1}, "signal": "libbpf-dynamic"},
    "ir-keytable": {"errors": [("bpf-object-outside-bpfdir", "/lib/udev/rc_keymaps/protocols/*.o")], "standalone": 9},
    # Go, cilium/ebpf's bpf2go: libmagic writes no "Go BuildID" for this binary (it also carries a GNU
    # build id) and it needs nothing but libc: no header signal.
    "delve": {"embedded": {"/usr/bin/dlv": 1}, "signal": None},
    "golang-github-cilium-ebpf-dev": {
        "info": [("bpf-object-exempt-location", "/usr/share/gocode/src/*", 34)],
        "standalone": 34,
    },
    # crt*.o, and libgcc.a's 74 members (each a BPF ELF object: the byte search finds their headers)
    "gcc-bpf": {
        "info": [
            ("bpf-object-exempt-location", "/usr/lib/gcc/bpf/*", 2),
            ("bpf-archive-member", "/usr/lib/gcc/bpf/12/libgcc.a", 74),
        ],
        "standalone": 2,
    },
    "bpftool": {},
    "libbpf1": {},
}


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CorpusUnavailable(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return proc.stdout


class CorpusUnavailable(RuntimeError):
    """apt cannot reach the archive, or a tool is missing: the corpus cannot be made."""


def download(cache: Path = CACHE) -> list[Path]:
    """The .deb files of EXPECTED's packages (the archive's current versions), downloaded once."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") is None:
        raise CorpusUnavailable("apt-get is not available")
    found = []
    for name in EXPECTED:
        version = _run(["apt-cache", "policy", name]).partition("Candidate:")[2].split()[:1]
        if not version or version[0] == "(none)":
            raise CorpusUnavailable(f"apt knows no candidate for {name} (run apt-get update?)")
        epochless = version[0].split(":", 1)[-1]
        have = [p for p in debs.glob(f"{name}_*.deb") if p.name.split("_")[1].split("%3a")[-1] == epochless]
        if not have:
            _run(["apt-get", "download", "-q", name], cwd=debs)
            have = [p for p in debs.glob(f"{name}_*.deb") if p.name.split("_")[1].split("%3a")[-1] == epochless]
        if not have:
            raise CorpusUnavailable(f"apt-get download {name} left no {name}_{epochless}_*.deb")
        found.append(have[0])
    return found


def repack_spec(deb: Path, work: Path, rpm_name: str | None = None) -> PkgSpec:
    """The PkgSpec carrying the .deb's files: paths, bytes and modes as Debian ships them (as the RPM
    ``rpm_name``, default deb-NAME)."""
    name = deb.name.split("_")[0]
    tree = work / (rpm_name or name)
    tree.mkdir(parents=True)
    _run(["dpkg-deb", "-x", str(deb), str(tree)])
    arch = _run(["dpkg-deb", "-f", str(deb), "Architecture"]).strip()
    files: list[PkgFile] = []
    for top, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for entry in sorted(dirnames) + sorted(filenames):
            host = Path(top) / entry
            path = "/" + str(host.relative_to(tree))
            if not PLAIN_PATH.match(path):
                continue
            st = host.lstat()
            if stat.S_ISDIR(st.st_mode):
                continue  # the directories belong to the filesystem packages, as in Debian
            if stat.S_ISLNK(st.st_mode):
                files.append(PkgFile(path, linkto=os.readlink(host)))
            elif stat.S_ISREG(st.st_mode):
                files.append(PkgFile(path, source=host, mode=stat.S_IMODE(st.st_mode)))
    return PkgSpec(
        rpm_name or f"deb-{name}",
        files=files,
        noarch=arch == "all",
        summary=f"Debian package {deb.name} repacked by rpm-bpf's real-world corpus",
    )


def build(out: Path | None = None, cache: Path = CACHE) -> Path:
    """The directory of repacked RPMs (reused when the same .debs were repacked before)."""
    return repack_all(download(cache), cache, out)


def repack_all(debs: list[Path], cache: Path, out: Path | None = None, renames: dict[str, str] | None = None) -> Path:
    """The .debs repacked as RPMs into ``out`` (default: under ``cache``, keyed by the .deb file names).

    ``renames``: .deb file name -> RPM package name, for two versions of one package in a corpus."""
    renames = renames or {}
    key = hashlib.sha256(
        "\n".join([REPACK_VERSION, *sorted(p.name for p in debs), *sorted(renames.values())]).encode()
    ).hexdigest()[:12]
    out = out or cache / f"rpms-{key}"
    if (out / ".complete").exists():
        return out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="rpm-bpf-realworld-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        for deb in debs:
            spec = repack_spec(deb, work / "trees", renames.get(deb.name))
            (built,) = samples.build_rpms(spec, work / "build", payload=PAYLOAD, defines=BUILD_DEFINES)
            shutil.move(str(built), out / built.name)
    (out / ".complete").touch()
    return out


def cli(build_corpus: Callable[[Path | None], Path], prog: str, doc: str) -> int:
    """The command line of a corpus script: build it (or reuse it) and print the RPM directory."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="where the RPMs go (default: under the cache, reused)")
    args = parser.parse_args()
    try:
        print(build_corpus(args.out))
    except CorpusUnavailable as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli(build, "realworld_corpus", __doc__))
