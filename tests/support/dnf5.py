"""DNF 5 in a Debian sid root: what the tests (test_dnf5) and the benchmark (benchmarks/bench_dnf5.py) share.

The root is made once by debootstrap and cached (tests/support/debroot.py);
``install_checkout`` puts this checkout's engine and both C++ shims into a copy of it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support import debroot
from tests.support.paths import REPO

DNF5_PACKAGES = [
    "dnf5",
    "python3-libdnf5",
    "rpm",
    "python3-rpm",
    "python3-pyelftools",
    "createrepo-c",
    "g++",
    "make",
    "pkg-config",
    "cmake",
    "dnf5-dev",
    "libdnf5-dev",
    "libdnf5-cli-dev",
    # libmodulemd-dev needs it and debootstrap does not pull it in by itself
    "gir1.2-glib-2.0-dev",
]
RPM_BPF_SCRIPT = "#!/usr/bin/python3\nimport sys\nfrom rpm_bpf.cli import main\nsys.exit(main())\n"
CONF = "/etc/dnf/libdnf5-plugins/bpf.conf"  # read from the host (here: the sid root), even with --installroot


def install_checkout(root: Path) -> subprocess.CompletedProcess:
    """This checkout's engine, its rpm-bpf command and both C++ shims (built with CMake there) into a sid root."""
    site = root / "usr/lib/python3/dist-packages"
    shutil.copytree(REPO / "rpm_bpf", site / "rpm_bpf", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "usr/bin/rpm-bpf").write_text(RPM_BPF_SCRIPT)
    (root / "usr/bin/rpm-bpf").chmod(0o755)
    shutil.copytree(REPO / "dnf5_plugin", root / "src")
    return debroot.run_in(
        root,
        "sh",
        "-c",
        "cmake -S /src -B /build -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_LIBDIR=lib/x86_64-linux-gnu && "
        "cmake --build /build && cmake --install /build && "
        "python3 -m compileall -q /usr/lib/python3/dist-packages/rpm_bpf",
        timeout=600,
    )
