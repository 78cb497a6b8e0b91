"""Real sample BPF objects and RPMs, built on the spot with clang and rpmbuild.

Used by ``rpm-bpf demo``, the test suite and the benchmark corpus: every
object is compiled by clang and every package is built by rpmbuild, so what
rpm-bpf is tested on is what a distribution would feed it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from rpm_bpf.errors import RpmBpfError

# A realistic object: a BTF-defined map, two programs, a license.
XDP_COUNTER_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
    __u32 key = 0;
    __u64 *value = bpf_map_lookup_elem(&counters, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
    return XDP_PASS;
}

SEC("tc")
int tc_pass(struct __sk_buff *skb)
{
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# No license section: loads, but cannot use GPL-only helpers.
NO_LICENSE_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
    return XDP_DROP;
}
"""

# A user-space loader built from a libbpf skeleton: carries the object inside.
SKELETON_LOADER_C = r"""
#include <stdio.h>
#include "prog.skel.h"

int main(void)
{
    struct prog *skel = prog__open();
    if (!skel)
        return 1;
    printf("opened\n");
    prog__destroy(skel);
    return 0;
}
"""


# A light-skeleton loader (bpftool gen skeleton -L): libc only, no libbpf. With "load" as its argument it
# loads its programs for real (they go when it exits: nothing is pinned), prints 0 and waits for stdin to close.
LIGHT_LOADER_C = r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "prog.lskel.h"

int main(int argc, char **argv)
{
    struct prog *skel = prog__open();
    if (!skel)
        return 1;
    if (argc > 1 && strcmp(argv[1], "load") == 0) {
        int err = prog__load(skel);
        printf("%d\n", err);
        fflush(stdout);
        if (!err)
            while (getchar() != EOF)
                ;
    }
    prog__destroy(skel);
    return 0;
}
"""


class SampleBuildError(RpmBpfError, RuntimeError):
    """clang or rpmbuild failed; the message carries their output."""


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    # errors="replace": the tools echo file names, which need not be UTF-8
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise SampleBuildError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@cache
def _multiarch_include() -> str:
    triplet = _run(["gcc", "-dumpmachine"]).strip()
    return f"/usr/include/{triplet}"


def compile_bpf(source: str, out: Path, target: str = "bpf", btf: bool = True) -> Path:
    """Compile C source text to a BPF object with clang (``-g`` gives BTF)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_suffix(".c")
    src.write_text(source)
    cmd = ["clang", "-O2", "-target", target, "-I", _multiarch_include(), "-c", str(src), "-o", str(out)]
    if btf:
        cmd.insert(1, "-g")
    _run(cmd)
    return out


def build_skeleton_loader(bpf_object: Path, out: Path, static_libbpf: bool = False) -> Path:
    """Build an executable embedding ``bpf_object`` via ``bpftool gen skeleton``.

    ``static_libbpf``: libbpf linked in (libbpf.a), as libbpf-tools are; the
    executable then needs only libbpf's own libraries, libelf and zlib.
    """
    out = out.resolve()
    work = out.parent
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bpf_object, work / "prog.bpf.o")
    (work / "prog.skel.h").write_text(_run(["bpftool", "gen", "skeleton", str(work / "prog.bpf.o"), "name", "prog"]))
    (work / "loader.c").write_text(SKELETON_LOADER_C)
    libs = ["-Wl,-Bstatic", "-lbpf", "-Wl,-Bdynamic", "-lelf", "-lz"] if static_libbpf else ["-lbpf"]
    _run(["gcc", "-O2", "-o", str(out), str(work / "loader.c"), *libs], cwd=work)
    return out


def build_light_skeleton_loader(bpf_object: Path, out: Path) -> Path:
    """Build an executable carrying ``bpf_object`` as a light skeleton (``bpftool gen skeleton -L``): a
    loader program and a data blob, no ELF image; it links libc only."""
    out = out.resolve()
    work = out.parent
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bpf_object, work / "prog.bpf.o")
    header = _run(["bpftool", "gen", "skeleton", "-L", str(work / "prog.bpf.o"), "name", "prog"])
    (work / "prog.lskel.h").write_text(header)
    (work / "light.c").write_text(LIGHT_LOADER_C)
    _run(["gcc", "-O2", "-o", str(out), str(work / "light.c")], cwd=work)
    return out


@dataclass
class PkgFile:
    """One %files entry; ``source`` is copied to ``path`` in the buildroot."""

    path: str
    source: Path | None = None
    text: str | None = None
    mode: int = 0o644
    user: str = "root"
    group: str = "root"
    config: bool = False
    ghost: bool = False
    directory: bool = False
    linkto: str | None = None  # a symbolic link to this target
    hardlink_to: str | None = None  # a hard link to the file of this package path (staged before it)


@dataclass
class PkgSpec:
    name: str
    files: list[PkgFile] = field(default_factory=list)
    version: str = "1.0"
    release: str = "1"
    noarch: bool = False
    requires: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    obsoletes: list[str] = field(default_factory=list)
    summary: str = ""
    autodeps: bool = True  # False: AutoReqProv: no (installable without the libraries it links)


def _files_section(pkg: PkgSpec) -> str:
    lines = []
    for f in pkg.files:
        prefix = ""
        if f.directory:
            prefix = "%dir "
        if f.ghost:
            prefix += "%ghost "
        if f.config:
            prefix += "%config "
        mode = "-" if f.linkto is not None else f"{f.mode:04o}"  # a link's mode is not settable
        attr = f"%attr({mode},{f.user},{f.group}) "
        lines.append(f"{attr}{prefix}{f.path}")
    return "\n".join(lines)


def _stage(pkg: PkgSpec, root: Path) -> None:
    for f in pkg.files:
        target = root / f.path.lstrip("/")
        if f.directory:
            target.mkdir(parents=True, exist_ok=True)
            continue
        if f.ghost:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.linkto is not None:
            target.symlink_to(f.linkto)
            continue
        if f.hardlink_to is not None:
            os.link(root / f.hardlink_to.lstrip("/"), target)  # cp -a in %install keeps the set
            continue
        if f.source is not None:
            shutil.copyfile(f.source, target)
        else:
            target.write_text(f.text or "")
        target.chmod(f.mode)  # rpm's dependency generators look at the buildroot's modes


def _subpackage_preamble(sub: PkgSpec) -> str:
    return f"""
%package -n {sub.name}
Summary: {sub.summary or "rpm-bpf sample subpackage " + sub.name}
{"BuildArch: noarch" if sub.noarch else ""}
{"" if sub.autodeps else "AutoReqProv: no"}
{"".join(f"Requires: {r}" + chr(10) for r in sub.requires)}
{"".join(f"Provides: {p}" + chr(10) for p in sub.provides)}
{"".join(f"Obsoletes: {o}" + chr(10) for o in sub.obsoletes)}
%description -n {sub.name}
Sample subpackage built by rpm-bpf.
"""


def render_spec(main: PkgSpec, subpackages: Sequence[PkgSpec] = ()) -> str:
    """A spec that installs a staged tree; subpackages use ``-n`` names."""
    parts = [
        f"""Name: {main.name}
Version: {main.version}
Release: {main.release}
Summary: {main.summary or "rpm-bpf sample package " + main.name}
License: MIT
{"BuildArch: noarch" if main.noarch else ""}
{"" if main.autodeps else "AutoReqProv: no"}
{"".join(f"Requires: {r}" + chr(10) for r in main.requires)}
{"".join(f"Provides: {p}" + chr(10) for p in main.provides)}
{"".join(f"Obsoletes: {o}" + chr(10) for o in main.obsoletes)}
%description
Sample package built by rpm-bpf.

%install
cp -a %{{_sourcedir}}/root/. %{{buildroot}}/
"""
    ]
    parts += [_subpackage_preamble(sub) for sub in subpackages]
    parts.append(f"\n%files\n{_files_section(main)}\n")
    parts += [f"\n%files -n {sub.name}\n{_files_section(sub)}\n" for sub in subpackages]
    return "".join(parts)


def build_rpms(
    main: PkgSpec,
    workdir: Path,
    subpackages: Sequence[PkgSpec] = (),
    target: str | None = None,
    payload: str | None = None,
    defines: dict[str, str] | None = None,
) -> list[Path]:
    """Build ``main`` (and subpackages) with rpmbuild; return the binary RPMs.

    (``workdir`` may be relative: rpm macros get absolute paths.)

    rpm 4.18's brp-strip breaks on eBPF objects unless the rpm-bpf macros
    (their strip wrapper) are installed, which ./setup.sh does.
    """
    top = workdir.resolve() / f"{main.name}-{main.version}-{main.release}{'-' + target if target else ''}"
    if top.exists():
        shutil.rmtree(top)
    sources = top / "SOURCES"
    for pkg in [main, *subpackages]:
        _stage(pkg, sources / "root")
    (sources / "root").mkdir(parents=True, exist_ok=True)
    spec = top / f"{main.name}.spec"
    spec.write_text(render_spec(main, list(subpackages)))
    cmd = [
        "rpmbuild",
        "-bb",
        "--quiet",
        "--define",
        f"_topdir {top}",
        "--define",
        f"_sourcedir {sources}",
        # Samples are deliberately broken: the build-time policy of the rpm-bpf
        # macros (if installed) must not refuse them.
        "--define",
        "_bpf_policy off",
        "--define",
        "_binaries_in_noarch_packages_terminate_build 0",
    ]
    if payload:
        cmd += ["--define", f"_binary_payload {payload}"]
    for key, value in (defines or {}).items():
        cmd += ["--define", f"{key} {value}"]
    if target:
        cmd += ["--target", target]
    _run([*cmd, str(spec)])
    return sorted((top / "RPMS").rglob("*.rpm"))


def build_rpm(pkg: PkgSpec, workdir: Path, **kwargs: Any) -> Path:
    (rpm_path,) = build_rpms(pkg, workdir, **kwargs)
    return rpm_path
