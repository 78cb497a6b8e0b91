"""Fixtures of the integration tests: real BPF objects (clang) and real RPMs (rpmbuild), built once per
session, and the repositories and BPF file system several test modules share.

Each fixture that needs a build tool says so with ``require`` when it is first used: a missing tool fails
the tests that need it (with how to install it), and nothing else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rpm_bpf.samples.build import NO_LICENSE_C, XDP_COUNTER_C, PkgFile, PkgSpec, build_rpms, compile_bpf
from rpm_bpf.sources import bpfdirs
from tests.support.builders import Objects, RpmFactory, compile_objects, shipping
from tests.support.dnf import BPFDIR, GOOD_OBJ, require_dnf
from tests.support.signing import SIGNED_OBJ, make_cert, make_gpg_key, rpmsign
from tests.support.toolchain import require

BPFFS = Path("/sys/fs/bpf")


# --- objects and packages, once per session ----------------------------------------


@pytest.fixture(scope="session")
def objects(tmp_path_factory) -> Objects:
    require("clang", "bpftool")  # and gcc, for the skeleton loader
    return compile_objects(tmp_path_factory.mktemp("objects"))


@pytest.fixture(scope="session")
def bpfdir() -> str:
    return bpfdirs.for_arch(bpfdirs.host_arch()).arch_dir


@pytest.fixture(scope="session")
def rpms(tmp_path_factory) -> RpmFactory:
    require("rpmbuild")
    return RpmFactory(tmp_path_factory.mktemp("rpms"))


# --- the DNF tests' repository (test_dnf_plugin, test_dnf5, test_native, test_transaction_check, ...) ---


@pytest.fixture(scope="module")
def dnf_repo(rpms, objects, tmp_path_factory) -> Path:
    """A createrepo_c repository: bpf-filesystem, xdp-good 1.0 and 2.0, packages clashing with it, a misplaced
    object, a runtime-only (ghost) user and a rival claiming its cache directory."""
    require_dnf()
    d = tmp_path_factory.mktemp("repo")
    own = [PkgFile(f"{BPFDIR}/xdp-good", directory=True, mode=0o755)]
    packages = [
        PkgSpec(
            "bpf-filesystem",
            files=[PkgFile(BPFDIR, directory=True, mode=0o755), PkgFile("/usr/lib/bpf", directory=True, mode=0o755)],
        ),
        PkgSpec("xdp-good", requires=["bpf-filesystem"], files=[*own, PkgFile(GOOD_OBJ, objects.full)]),
        PkgSpec(
            "xdp-good", version="2.0", requires=["bpf-filesystem"], files=[*own, PkgFile(GOOD_OBJ, objects.full_el)]
        ),
        PkgSpec("xdp-clash-same", requires=["xdp-good"], files=[PkgFile(GOOD_OBJ, objects.full)]),
        # Same name relative to the BPF directory, other path and bytes: rpm sees no file conflict.
        PkgSpec(
            "xdp-clash-diff",
            requires=["xdp-good"],
            files=[PkgFile("/usr/lib/bpf/xdp-good/counter.bpf.o", objects.no_btf)],
        ),
        # Built without dependency generators: no bpf() provides, only its files tell.
        PkgSpec("xdp-clash-noprov", requires=["xdp-good"], autodeps=False, files=[PkgFile(GOOD_OBJ, objects.full)]),
        PkgSpec("misplaced", files=[PkgFile("/usr/share/misplaced/prog.o", objects.full)]),
        PkgSpec(
            "runtime-user",
            files=[
                PkgFile("/var/cache/bpf/runtime-user", directory=True, mode=0o755),
                PkgFile("/var/cache/bpf/runtime-user/jit.o", ghost=True),
            ],
        ),
        # Owns runtime-user's cache directory too: bpfapp.attr gives both bpf-cache(runtime-user).
        PkgSpec("cache-rival", files=[PkgFile("/var/cache/bpf/runtime-user", directory=True, mode=0o755)]),
    ]
    for pkg in packages:
        for path in rpms.build_all(pkg):
            shutil.copy(path, d)
    subprocess.run(["createrepo_c", "-q", str(d)], check=True)
    return d


# --- the gate tests' builds and repository (test_gate, test_ci_gate, test_repo_report) ---


@pytest.fixture(scope="module")
def built(rpms, objects, bpfdir) -> dict[str, Path]:
    """The gate's RPMs by role: ``repo-*`` go into ``gate_repo``, ``new-*`` are the new builds checked against it."""
    full, other = objects.full, objects.no_btf
    specs = {
        "repo-owner": shipping("other-tool", full, f"{bpfdir}/shared.o"),
        "repo-legacy": PkgSpec("legacy", files=[PkgFile("/usr/share/legacy/old.o", full)]),  # the repo's old problem
        "repo-provider": PkgSpec(
            "provider-only",
            provides=["bpf(announced.o)"],
            files=[PkgFile("/usr/share/doc/provider-only/README", text="no object in the files\n")],
        ),
        "repo-decoys": PkgSpec(
            "decoys",
            files=[
                PkgFile("/usr/x86_64-linux-gnu/sys-root/usr/lib64/bpf/shared.o", full),
                PkgFile("/usr/lib64/bpfilter/shared.o", text="not the BPF directory\n"),
                PkgFile("/usr/local/lib64/bpf/shared.o", full),
            ],
        ),
        "new-clash": shipping("newcomer", other, f"{bpfdir}/shared.o"),
        "new-clash-1.1": shipping("newcomer", other, f"{bpfdir}/shared.o", version="1.1"),
        "new-upgrade": shipping("other-tool", other, f"{bpfdir}/shared.o", version="2.0"),
        "new-obsoleting": shipping("other-tool-ng", other, f"{bpfdir}/shared.o", obsoletes=["other-tool < 2"]),
        "new-announced": shipping("announcer", other, f"{bpfdir}/announced.o"),
        "new-clean": shipping("fresh", other, f"{bpfdir}/fresh/unique.o"),
    }
    return {key: rpms.build(spec) for key, spec in specs.items()}


@pytest.fixture(scope="module")
def gate_repo(built, tmp_path_factory) -> Path:
    """A createrepo_c repository of the gate's ``repo-*`` packages."""
    path = tmp_path_factory.mktemp("repo")
    for key, rpm_path in built.items():
        if key.startswith("repo-"):
            shutil.copy(rpm_path, path)
    subprocess.run(["createrepo_c", "-q", str(path)], check=True)
    return path


# --- the kernel (test_progtag, test_which) ---------------------------------------------


@pytest.fixture(scope="module")
def bpffs() -> Path:
    if os.geteuid() != 0 or shutil.which("bpftool") is None:
        pytest.skip("loading programs into the kernel needs root and bpftool")
    if not os.path.ismount(BPFFS):
        subprocess.run(["mount", "-t", "bpf", "bpf", str(BPFFS)], check=False)
    if not os.path.ismount(BPFFS):
        pytest.skip(f"no BPF filesystem at {BPFFS} and it cannot be mounted here")
    return BPFFS


# --- the trust tests' keys, certificates and signed packages (test_trust, test_dnf5, test_dnf_plugin) ---


@pytest.fixture(scope="session")
def kit(tmp_path_factory) -> dict:
    """Keys, a certificate, and the packages: P signed, P unsigned (other bytes), P signed by the attacker,
    P with fs-verity signatures, and Q without BPF content (unsigned)."""
    for tool in ("gpg", "rpmsign", "rpmbuild", "openssl"):
        require(tool)
    d = tmp_path_factory.mktemp("trust")
    distro_id, distro_key = make_gpg_key(d / "distro", "distro")
    evil_id, evil_key = make_gpg_key(d / "evil", "evil")
    verity = make_cert(d, "verity")
    other_cert = make_cert(d, "other")[1]
    good_obj = compile_bpf(XDP_COUNTER_C, d / "good.o")
    evil_obj = compile_bpf(NO_LICENSE_C, d / "evil.o")

    def build(tag: str, obj: Path | None, name: str = "P", path: str = SIGNED_OBJ) -> Path:
        out = d / tag
        out.mkdir()
        entry = PkgFile(path, obj) if obj is not None else PkgFile(path, text="no BPF here\n")
        built = build_rpms(PkgSpec(name, files=[entry]), out)[0]
        return Path(shutil.copy(built, d / f"{tag}.rpm"))

    pkgs = {
        "good": rpmsign(build("good", good_obj), d / "distro", "distro"),
        "unsigned": build("unsigned", evil_obj),
        "evilsigned": rpmsign(build("evilsigned", evil_obj), d / "evil", "evil"),
        "verity": rpmsign(build("verity", good_obj), d / "distro", "distro", verity=verity),
        "nobpf": build("nobpf", None, name="Q", path="/usr/share/q/README"),
    }
    fs = build_rpms(PkgSpec("bpf-filesystem", files=[PkgFile("/usr/lib64/bpf", directory=True, mode=0o755)]), d)
    pkgs["filesystem"] = fs[0]
    return {
        "dir": d,
        "distro_id": distro_id,
        "distro_key": distro_key,
        "evil_id": evil_id,
        "evil_key": evil_key,
        "verity_key": verity[0],
        "verity_cert": verity[1],
        "other_cert": other_cert,
        "pkgs": pkgs,
    }
