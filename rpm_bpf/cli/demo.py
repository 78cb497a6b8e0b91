"""``rpm-bpf demo``: sample packages built with clang and rpmbuild, then scanned."""

from __future__ import annotations

import argparse

from rpm_bpf.cli.options import EXIT_USAGE, add_format, error


def cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rpm_bpf.samples.build import SampleBuildError
    from rpm_bpf.samples.demo import run_demo

    try:
        return run_demo(Path(args.dir), args.format)
    except SampleBuildError as exc:
        error(f"building the demo packages failed: {exc}")
        return EXIT_USAGE


def configure(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--dir", default="demo-out", help="where to build (default: ./demo-out)")
    add_format(demo)
    demo.set_defaults(func=cmd_demo)
