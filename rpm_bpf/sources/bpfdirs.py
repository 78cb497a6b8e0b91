"""Where BPF objects belong, asked of rpm's own macros for each architecture.

``%_bpfdir``/``%_bpfdir_noarch`` win when the rpm-bpf macros are installed;
otherwise ``%{_libdir}/bpf`` and ``%{_prefix}/lib/bpf`` as the convention says.
"""

from __future__ import annotations

from collections import namedtuple
from functools import cache

import rpm

_ARCH_EXPR = "%{?_bpfdir}%{!?_bpfdir:%{_libdir}/bpf}"
_NOARCH_EXPR = "%{?_bpfdir_noarch}%{!?_bpfdir_noarch:%{_prefix}/lib/bpf}"

# Byte order is a property of the architecture that rpm's macros do not name.
_BIG_ENDIAN = frozenset(
    {
        "s390",
        "s390x",
        "ppc",
        "ppc64",
        "ppc64p7",
        "ppcpseries",
        "ppciseries",
        "sparc",
        "sparcv8",
        "sparcv9",
        "sparcv9v",
        "sparc64",
        "sparc64v",
        "m68k",
        "mips",
        "mips64",
        "mipsr6",
        "mips64r6",
        "aarch64_be",
        "armv5tejb",
        "armv4b",
        "hppa",
        "hppa1.0",
        "hppa1.1",
        "hppa2.0",
    }
)


class BpfDirs(namedtuple("BpfDirs", ("arch_dir", "noarch_dir"))):
    """%{_libdir}/bpf of an architecture, and %{_prefix}/lib/bpf."""

    __slots__ = ()
    arch_dir: str
    noarch_dir: str

    def allowed(self, noarch: bool) -> tuple[str, ...]:
        """Directories a package may ship objects in (subdirectories included)."""
        if noarch or self.arch_dir == self.noarch_dir:
            return (self.noarch_dir,)
        return (self.arch_dir, self.noarch_dir)

    @property
    def roots(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.arch_dir, self.noarch_dir)))


def host_arch() -> str:
    return str(rpm.expandMacro("%{_target_cpu}"))


_PLATFORM_SUFFIX = "-linux"


@cache
def known_arches() -> frozenset[str]:
    """The architectures this rpm has platform macros for (``%{_rpmconfigdir}/platform/ARCH-linux``).

    Only these are ever handed to ``rpm --target``: an architecture read from
    a package header is data, and an unknown one could be a macro.
    """
    import os
    import re

    try:
        names = os.listdir(os.path.join(rpm.expandMacro("%{_rpmconfigdir}"), "platform"))
    except OSError:
        names = []
    arches = {n.removesuffix(_PLATFORM_SUFFIX) for n in names if n.endswith(_PLATFORM_SUFFIX)}
    return frozenset(a for a in arches if re.fullmatch(r"[A-Za-z0-9_]+", a)) | {"noarch", "src", "nosrc"}


def is_known_arch(arch: str) -> bool:
    return arch in known_arches()


def is_arch_name(arch: str) -> bool:
    """Could be an architecture (``x86_64_v2``, ``ppc64le``): never a macro, an option or a path."""
    import re

    return re.fullmatch(r"[A-Za-z0-9_]{1,64}", arch) is not None


@cache
def for_arch(arch: str) -> BpfDirs:
    """The BPF directories rpm's macros give for ``arch`` (cached per process).

    An architecture rpm does not know gets the host's directories: it is
    never passed to rpm (and a package whose architecture is not even a name
    is refused, see rpmfile).
    """
    noarch_dir = rpm.expandMacro(_NOARCH_EXPR)
    host_dirs = BpfDirs(rpm.expandMacro(_ARCH_EXPR), noarch_dir)
    if arch in ("noarch", "src", "nosrc") or arch == host_arch() or not is_known_arch(arch):
        return host_dirs
    import subprocess  # only for foreign architectures

    try:
        # --target loads the platform macros of another architecture without
        # touching this process's macro context (which dnf may have set up).
        # The architecture is one of known_arches(): plain [A-Za-z0-9_], no option, no macro.
        out = subprocess.run(
            ["rpm", f"--target={arch}", "--eval", _ARCH_EXPR], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return BpfDirs(out, noarch_dir) if out.startswith("/") and "\n" not in out else host_dirs


def is_big_endian(arch: str) -> bool:
    return arch in _BIG_ENDIAN


def under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


def relative_name(path: str, roots: tuple[str, ...]) -> str | None:
    """Name of ``path`` relative to the BPF directory holding it, if any."""
    for root in roots:
        if path.startswith(root + "/"):
            return path[len(root) + 1 :]
    return None


def package_roots(arch: str) -> tuple[str, ...]:
    """The BPF directories of a package of ``arch`` as metadata names it (none when it is not even a name)."""
    return for_arch(arch).roots if is_arch_name(arch) else ()


def repository_roots() -> set[str]:
    """What a repository read for this host is searched for: the noarch and the host's BPF directories."""
    return {root for arch in ("noarch", host_arch()) for root in for_arch(arch).roots}
