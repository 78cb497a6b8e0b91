"""``rpm-bpf demo``: build good, bad and corrupt packages on the spot, then scan them."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from rpm_bpf.flows.scan import scan
from rpm_bpf.report.formats import RENDERERS, Report, input_error_line
from rpm_bpf.rules.policy import Policy
from rpm_bpf.samples import build as samples
from rpm_bpf.samples.build import PkgFile, PkgSpec
from rpm_bpf.sources import bpfdirs


def build_demo_packages(out: Path) -> Path:
    """Build the demo set; return the directory of RPMs to scan."""
    objs = out / "objects"
    good_obj = samples.compile_bpf(samples.XDP_COUNTER_C, objs / "xdp_counter.bpf.o")
    bare_obj = samples.compile_bpf(samples.NO_LICENSE_C, objs / "xdp_drop.bpf.o", btf=False)
    be_obj = samples.compile_bpf(samples.XDP_COUNTER_C, objs / "xdp_counter.bpfeb.o", target="bpfeb")
    loader = samples.build_skeleton_loader(good_obj, objs / "skel" / "xdp-loader")
    bpfdir = bpfdirs.for_arch(bpfdirs.host_arch()).arch_dir
    rpms = out / "rpms"
    build = out / "build"
    rpms.mkdir(parents=True, exist_ok=True)
    packages = [
        # Follows the convention: own subdirectory, requires the directory owner.
        PkgSpec(
            "xdp-good",
            requires=["bpf-filesystem"],
            files=[
                PkgFile(f"{bpfdir}/xdp-good", directory=True, mode=0o755),
                PkgFile(f"{bpfdir}/xdp-good/xdp_counter.bpf.o", good_obj),
            ],
        ),
        # Misplaced, executable, %config, no license, no BTF.
        PkgSpec(
            "legacy-tracer", files=[PkgFile("/usr/share/legacy-tracer/xdp_drop.o", bare_obj, mode=0o755, config=True)]
        ),
        # Ships the same name as xdp-good, from another source package.
        PkgSpec(
            "xdp-fork",
            requires=["bpf-filesystem"],
            files=[
                PkgFile(f"{bpfdir}/xdp-good", directory=True, mode=0o755),
                PkgFile(f"{bpfdir}/xdp-good/xdp_counter.bpf.o", be_obj),
            ],
        ),
        # A libbpf skeleton loader: its embedded object is reported as information.
        PkgSpec("xdp-loader", files=[PkgFile("/usr/bin/xdp-loader", loader, mode=0o755)]),
    ]
    for pkg in packages:
        for rpm_path in samples.build_rpms(pkg, build):
            shutil.copy(rpm_path, rpms / rpm_path.name)
    # A truncated download: reported, the rest still scanned.
    good_rpm = next(rpms.glob("xdp-good-*.rpm"))
    data = good_rpm.read_bytes()
    (rpms / "truncated-1.0-1.x86_64.rpm").write_bytes(data[: len(data) // 2])
    return rpms


def run_demo(out: Path, fmt: str = "text") -> int:
    print(f"rpm-bpf demo: building sample packages with clang and rpmbuild in {out}/ ...", file=sys.stderr)
    rpms = build_demo_packages(out)
    print(f"rpm-bpf demo: rpm-bpf scan {rpms}", file=sys.stderr)
    result = scan([str(rpms)], Policy.load(system=None))
    report = Report("scan", result.packages, result.findings, result.errors)
    for err in report.errors:
        print(input_error_line(err), file=sys.stderr)
    sys.stdout.write(RENDERERS[fmt](report))
    print(
        f"rpm-bpf demo: exit status would be {report.exit_code} "
        "(the truncated RPM makes it 2; policy errors alone give 1)",
        file=sys.stderr,
    )
    return 0
