"""The RPM macros, the bpf() dependency generator and build-time enforcement, with real rpmbuild.

./setup.sh installs macros/ where the rpm-bpf-macros package would; the first
test makes sure those copies are this tree's, so every build here uses them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import rpm

from rpm_bpf.sources import bpfdirs
from rpm_bpf.sources.rpmfile import open_rpm

pytestmark = pytest.mark.integration
MACROS = Path(__file__).resolve().parents[2] / "macros"
RPMCONFIGDIR = rpm.expandMacro("%{_rpmconfigdir}")


def test_installed_macros_are_this_trees():
    pairs = {
        MACROS / "macros.bpf": Path(RPMCONFIGDIR) / "macros.d" / "macros.bpf",
        MACROS / "bpf.attr": Path(RPMCONFIGDIR) / "fileattrs" / "bpf.attr",
        MACROS / "bpfapp.attr": Path(RPMCONFIGDIR) / "fileattrs" / "bpfapp.attr",
        MACROS / "strip-bpf": Path(RPMCONFIGDIR) / "rpm-bpf" / "strip-bpf",
    }
    for source, installed in pairs.items():
        assert installed.exists(), f"{installed} missing: run ./setup.sh"
        assert installed.read_bytes() == source.read_bytes(), f"{installed} is stale: run ./setup.sh"


def _eval(expr: str, *defines: str) -> str:
    args = ["rpm"]
    for d in defines:
        args += ["--define", d]
    return subprocess.run([*args, "--eval", expr], capture_output=True, text=True, check=True).stdout.strip()


def test_directory_macros():
    assert _eval("%_bpfdir") == _eval("%{_libdir}") + "/bpf" == "/usr/lib64/bpf"
    assert _eval("%_bpfdir_noarch") == "/usr/lib/bpf"
    assert (
        subprocess.run(["rpm", "--target", "i686", "--eval", "%_bpfdir"], capture_output=True, text=True).stdout.strip()
        == "/usr/lib/bpf"
    )


@dataclass
class Build:
    proc: subprocess.CompletedProcess
    rpms: list[Path]

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr


SPEC_HEAD = """Name: {name}
Version: 1.0
Release: 1
Summary: macro test {name}
License: GPL-2.0-only
{extra}
%description
Test package for the rpm-bpf macros.

%install
{install}

%files
{files}
"""


def build(
    tmp_path: Path,
    name: str,
    install: str,
    files: str,
    sources: dict[str, Path | bytes],
    extra: str = "",
    defines: dict[str, str] | None = None,
    args: list[str] | tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Build:
    top = tmp_path / name
    src = top / "SOURCES"
    src.mkdir(parents=True)
    for filename, content in sources.items():
        if isinstance(content, Path):
            shutil.copyfile(content, src / filename)
        else:
            (src / filename).write_bytes(content)
    spec = top / f"{name}.spec"
    spec.write_text(SPEC_HEAD.format(name=name, install=install, files=files, extra=extra))
    cmd = ["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", f"_sourcedir {src}"]
    for key, value in (defines or {}).items():
        cmd += ["--define", f"{key} {value}"]
    proc = subprocess.run(
        cmd + list(args) + [str(spec)], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    return Build(proc, sorted((top / "RPMS").rglob("*.rpm")))


def _payload_sha256(rpm_path: Path, path: str) -> str:
    rpmfile = open_rpm(str(rpm_path), bpfdirs.for_arch)
    return hashlib.sha256(rpmfile.read({path})[path]).hexdigest()


def _qp(rpm_path: Path, *query: str) -> list[str]:
    out = subprocess.run(["rpm", "-qp", *query, str(rpm_path)], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def test_bpf_install_keeps_objects_bit_identical_and_provides_them(tmp_path, objects):
    b = build(
        tmp_path,
        "xdp-macro",
        install="%bpf_install %{_sourcedir}/counter.bpf.o\n%bpf_install -d xdp-macro %{_sourcedir}/sub.bpf.o",
        files="%{_bpfdir}/counter.bpf.o\n%dir %{_bpfdir}/xdp-macro\n%{_bpfdir}/xdp-macro/sub.bpf.o",
        sources={"counter.bpf.o": objects.full, "sub.bpf.o": objects.no_btf},
    )
    assert b.proc.returncode == 0, b.output
    (pkg,) = b.rpms
    # brp-strip ran (no override here); the strip wrapper kept the objects, BTF and all.
    assert _payload_sha256(pkg, "/usr/lib64/bpf/counter.bpf.o") == hashlib.sha256(objects.full.read_bytes()).hexdigest()
    assert (
        _payload_sha256(pkg, "/usr/lib64/bpf/xdp-macro/sub.bpf.o")
        == hashlib.sha256(objects.no_btf.read_bytes()).hexdigest()
    )
    modes = dict(line.split() for line in _qp(pkg, "--qf", "[%{FILENAMES} %{FILEMODES:octal}\n]"))
    assert modes["/usr/lib64/bpf/counter.bpf.o"] == "100644"
    provides = _qp(pkg, "--provides")
    assert "bpf(counter.bpf.o)" in provides and "bpf(xdp-macro/sub.bpf.o)" in provides
    assert "bpf-filesystem" in _qp(pkg, "--requires")
    assert not any(c.startswith("bpf(") for c in _qp(pkg, "--conflicts"))
    # The build-time check ran and found only the warning of the object without BTF.
    assert "W: bpf-object-no-btf /usr/lib64/bpf/xdp-macro/sub.bpf.o" in b.output


def test_bpf_install_mode_and_noarch(tmp_path, objects):
    b = build(
        tmp_path,
        "noarch-macro",
        extra="BuildArch: noarch",
        install="%bpf_install -m 0640 %{_sourcedir}/prog.bpfel.o %{_sourcedir}/prog.bpfeb.o",
        files="%{_bpfdir_noarch}/prog.bpfel.o\n%{_bpfdir_noarch}/prog.bpfeb.o",
        sources={"prog.bpfel.o": objects.full_el, "prog.bpfeb.o": objects.full_eb},
        # rpm 4.18 still calls eBPF arch-dependent (FIELD-NOTES); 4.20 does not.
        defines={"_binaries_in_noarch_packages_terminate_build": "0"},
    )
    assert b.proc.returncode == 0, b.output
    (pkg,) = b.rpms
    assert pkg.name.endswith(".noarch.rpm")
    modes = dict(line.split() for line in _qp(pkg, "--qf", "[%{FILENAMES} %{FILEMODES:octal}\n]"))
    assert modes == {"/usr/lib/bpf/prog.bpfel.o": "100640", "/usr/lib/bpf/prog.bpfeb.o": "100640"}
    assert {"bpf(prog.bpfel.o)", "bpf(prog.bpfeb.o)"} <= set(_qp(pkg, "--provides"))


def test_bpf_install_refuses_a_non_bpf_file(tmp_path, objects):
    b = build(
        tmp_path,
        "not-bpf",
        install="%bpf_install %{_sourcedir}/counter.bpf.o %{_sourcedir}/README.o",
        files="%{_bpfdir}/counter.bpf.o",
        sources={"counter.bpf.o": objects.full, "README.o": b"text\n"},
    )
    assert b.proc.returncode != 0
    assert "error: %bpf_install: " in b.output and "README.o: not an ELF file" in b.output
    assert b.rpms == []


def test_opt_in_conflicts(tmp_path, objects):
    install, files = "%bpf_install %{_sourcedir}/c.o", "%{_bpfdir}/c.o"
    off = build(tmp_path, "conflicts-off", install, files, {"c.o": objects.full})
    on = build(tmp_path, "conflicts-on", install, files, {"c.o": objects.full}, defines={"_bpf_conflicts": "1"})
    assert off.proc.returncode == 0 and on.proc.returncode == 0, on.output
    assert not any(c.startswith("bpf(") for c in _qp(off.rpms[0], "--conflicts"))
    assert "bpf(c.o)" in _qp(on.rpms[0], "--conflicts") and "bpf(c.o)" in _qp(on.rpms[0], "--provides")


MISPLACED = {
    "install": "mkdir -p %{buildroot}/usr/share/misplaced\n"
    "install -m 0644 %{_sourcedir}/prog.o %{buildroot}/usr/share/misplaced/prog.o",
    "files": "/usr/share/misplaced/prog.o",
}


def test_misplaced_object_fails_the_build_under_enforce(tmp_path, objects):
    b = build(tmp_path, "misplaced", sources={"prog.o": objects.full}, **MISPLACED)
    assert b.proc.returncode != 0
    assert "misplaced.x86_64: E: bpf-object-outside-bpfdir /usr/share/misplaced/prog.o" in b.output
    assert "Package check" in b.output and "failed" in b.output


def test_misplaced_object_only_warns_under_warn_and_passes_when_off(tmp_path, objects):
    warn = build(
        tmp_path, "misplaced-warn", sources={"prog.o": objects.full}, defines={"_bpf_policy": "warn"}, **MISPLACED
    )
    off = build(
        tmp_path, "misplaced-off", sources={"prog.o": objects.full}, defines={"_bpf_policy": "off"}, **MISPLACED
    )
    assert warn.proc.returncode == 0, warn.output
    assert "E: bpf-object-outside-bpfdir /usr/share/misplaced/prog.o" in warn.output
    assert off.proc.returncode == 0 and "bpf-object-outside-bpfdir" not in off.output


def test_waiver_in_a_build_policy_file(tmp_path, objects):
    policy = tmp_path / "waiver.toml"
    policy.write_text(
        '[[waiver]]\nrule = "bpf-object-outside-bpfdir"\npackage = "misplaced-waived"\n'
        'reason = "legacy layout until 2.0"\n'
    )
    b = build(
        tmp_path,
        "misplaced-waived",
        sources={"prog.o": objects.full},
        defines={"_bpf_policy_file": str(policy)},
        **MISPLACED,
    )
    assert b.proc.returncode == 0, b.output
    assert "1 waived" in b.output


def test_stock_strip_is_what_the_wrapper_prevents(tmp_path, objects):
    """Without the wrapper (the stock %__strip), rpm 4.18's brp-strip breaks on eBPF."""
    b = build(
        tmp_path,
        "stock-strip",
        install="%bpf_install %{_sourcedir}/c.o",
        files="%{_bpfdir}/c.o",
        sources={"c.o": objects.full},
        defines={"__strip": "/usr/bin/strip"},
    )
    if b.proc.returncode == 0:
        (pkg,) = b.rpms
        # A newer rpm or binutils that copes: then the object must still be intact.
        assert _payload_sha256(pkg, "/usr/lib64/bpf/c.o") == hashlib.sha256(objects.full.read_bytes()).hexdigest()
    else:
        assert "Unable to recognise the format of the input file" in b.output


def test_package_check_finds_a_light_skeleton_no_header_announces(tmp_path):
    """The rpmbuild package check is scan's default: a light-skeleton tool (links libc only) is reported."""
    from rpm_bpf.samples import build as samples
    from tests.support.programs import LIGHT_SKELETON_C

    obj = samples.compile_bpf(LIGHT_SKELETON_C, tmp_path / "multi.bpf.o")
    tool = samples.build_light_skeleton_loader(obj, tmp_path / "lskel" / "light-tool")
    b = build(
        tmp_path,
        "lighttool",
        sources={"light-tool": tool},
        install="install -D -m 0755 %{_sourcedir}/light-tool %{buildroot}/usr/bin/light-tool",
        files="/usr/bin/light-tool",
    )
    assert b.proc.returncode == 0, b.output
    assert "lighttool.x86_64: I: bpf-object-embedded /usr/bin/light-tool light skeleton loader at offset" in b.output
    assert "unsigned; found by payload" in b.output
