"""The second real-world corpus: newer Debian packages (sid, and trixie's systemd library) that ship BPF,
repacked file for file as RPMs as benchmarks/realworld_corpus.py repacks Debian 12's.

It holds the classes a header cannot announce:
  * programs that dlopen() libbpf (systemd: its core library, networkd, nsresourced; the only trace is a
    ``.note.dlopen`` ELF note, on libsystemd-shared, not on the files that hold the skeletons);
  * Go built with cgo and the external linker (pwru, delve: libmagic writes no "Go BuildID" for them, and
    their build info names no module);
  * Rust programs with their object in a section of its own (bpftop, rsched, udev-hid-bpf), unaligned
    skeletons (xdp-forward), objects without program sections (bpfilter);
and standalone objects outside the BPF directories (suricata's ``*.bpf``, udev-hid-bpf, opensnitch),
plus controls that load objects from files or ship none (iproute2, bpftool, libbpf1, udev).

The ground truth is not written here: tests/support/bytesearch.py counts every object by a byte search
that shares no code with rpm-bpf, at test time, on these very RPMs (sid moves; the counts move with it).

apt reads sid through a private tree under CACHE (sources list, lists, an empty dpkg status), with the
machine's own mirror and Debian's archive keyring (Signed-By): the machine's apt configuration is not
touched. The lists are refreshed when older than a week; the .debs are cached by file name, and the
RPMs keyed by the .deb names, so a new upload rebuilds the corpus.

    python benchmarks/realworld_sid_corpus.py [--out DIR]    # prints the RPM directory
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from realworld_corpus import CorpusUnavailable, cli, repack_all  # noqa: E402

CACHE = Path("/var/cache/rpm-bpf-realworld-sid")
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
REFRESH = 7 * 24 * 3600  # seconds before the package lists are read again
# What apt fetches: NAME (the candidate, sid's) or NAME/SUITE.
PACKAGES = (
    "systemd",
    "libsystemd-shared",
    "libsystemd-shared/trixie",
    "systemd-container",
    "udev",
    "xdp-tools",
    "libxdp1",
    "xdp-tests",
    "libbpf-tools",
    "suricata",
    "bpftop",
    "rsched",
    "bpfilter",
    "libbpftune0",
    "udev-hid-bpf",
    "opensnitch-ebpf-modules",
    "mimic",
    "network-manager",
    "libknot16",
    "rtc-testbench",
    "libdtrace2",
    "pwru",
    "delve",
    "librust-aya-obj-dev",
    "iproute2",
    "libbpf1",
    "bpftool",
)
__all__ = ["CorpusUnavailable", "build"]


def _mirror() -> str:
    from tests.support.debroot import RootUnavailable, apt_mirror

    try:
        return apt_mirror()
    except RootUnavailable as exc:
        raise CorpusUnavailable(str(exc)) from None


def _apt_options(cache: Path) -> list[str]:
    base = cache / "apt"
    return [
        f"-oDir::Etc::SourceList={base / 'etc' / 'sid.sources'}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State={base / 'state'}",
        f"-oDir::State::status={base / 'state' / 'status'}",
        f"-oDir::Cache={base / 'cache'}",
        "-oAPT::Architecture=amd64",
        "-oAPT::Architectures=amd64",
        "-oAcquire::Languages=none",
        "-q",
    ]


def _apt(cache: Path, *args: str, cwd: Path | None = None) -> str:
    if shutil.which("apt-get") is None:
        raise CorpusUnavailable("apt-get is not available")
    proc = subprocess.run(["apt-get", *_apt_options(cache), *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CorpusUnavailable(f"apt-get {' '.join(args[:2])} failed: {proc.stderr.strip()[-1500:]}")
    return proc.stdout


def _refresh(cache: Path) -> None:
    """The private apt tree, and its lists read again when they are older than REFRESH."""
    if not KEYRING.exists():
        raise CorpusUnavailable(f"{KEYRING} is missing (package debian-archive-keyring)")
    base = cache / "apt"
    for sub in ("etc", "state/lists/partial", "cache/archives/partial"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "state" / "status").touch()
    sources = (
        f"Types: deb\nURIs: {_mirror()}\nSuites: sid trixie\nComponents: main\nArchitectures: amd64\n"
        f"Signed-By: {KEYRING}\n"
    )
    source_file = base / "etc" / "sid.sources"
    stamp = base / "state" / "updated"
    changed = not source_file.exists() or source_file.read_text() != sources
    if changed:
        source_file.write_text(sources)
    if changed or not stamp.exists() or time.time() - stamp.stat().st_mtime > REFRESH:
        _apt(cache, "update")
        stamp.touch()


def download(cache: Path = CACHE) -> list[Path]:
    """The .debs of PACKAGES (the archive's current versions), downloaded once each."""
    _refresh(cache)
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    names = _file_names(cache)
    missing = [spec for spec, name in zip(PACKAGES, names, strict=True) if not (debs / name).exists()]
    if missing:
        if os.geteuid() == 0:  # apt's download sandbox user must be able to write there
            subprocess.run(["chown", "_apt:root", str(debs)], capture_output=True)
        _apt(cache, "download", *missing, cwd=debs)
    found = [debs / name for name in names]
    absent = [p.name for p in found if not p.exists()]
    if absent:
        raise CorpusUnavailable(f"apt-get download left no {', '.join(absent)}")
    return found


def _file_names(cache: Path) -> list[str]:
    """The .deb file name apt would fetch for each of PACKAGES, in order (one query for the candidates,
    one per NAME/SUITE)."""

    def uris(*specs: str) -> list[str]:
        listing = _apt(cache, "download", "--print-uris", *specs)
        return [line.split()[1] for line in listing.splitlines() if line.startswith("'")]

    plain = [spec for spec in PACKAGES if "/" not in spec]
    by_name = {name.split("_")[0]: name for name in uris(*plain)}
    names = []
    for spec in PACKAGES:
        found = uris(spec) if "/" in spec else [by_name.get(spec, "")]
        if len(found) != 1 or not found[0].startswith(spec.split("/")[0] + "_"):
            raise CorpusUnavailable(f"apt names no single .deb for {spec}: {found}")
        names.append(found[0])
    return names


def build(out: Path | None = None, cache: Path = CACHE) -> Path:
    """The directory of repacked RPMs (reused when the same .debs were repacked before). trixie's
    libsystemd-shared becomes deb-libsystemd-shared-trixie beside sid's."""
    debs = download(cache)
    renames = {
        deb.name: f"deb-{spec.split('/')[0]}-trixie"
        for spec, deb in zip(PACKAGES, debs, strict=True)
        if spec.endswith("/trixie")
    }
    return repack_all(debs, cache, out, renames)


if __name__ == "__main__":
    sys.exit(cli(build, "realworld_sid_corpus", __doc__))
