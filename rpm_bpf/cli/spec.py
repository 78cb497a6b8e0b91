"""``rpm-bpf spec new``: spec files for BPF packages from the jinja2 templates in spec-templates/."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from pathlib import Path

from rpm_bpf.errors import RpmBpfError

KINDS = {
    "prebuilt": ["example.bpf.c"],
    "library-and-tools": ["example.bpf.c", "example-lib.c", "example-tool.c"],
}
_SOURCE_NAMES = {"example.bpf.c": "{name}.bpf.c", "example-lib.c": "{name}-lib.c", "example-tool.c": "{name}-tool.c"}


def template_dir() -> Path:
    """$RPM_BPF_TEMPLATES, the source tree's spec-templates/, or an installed copy (RPM or pip)."""
    candidates = [
        os.environ.get("RPM_BPF_TEMPLATES", ""),
        str(Path(__file__).resolve().parents[2] / "spec-templates"),
        "/usr/share/rpm-bpf/spec-templates",
        os.path.join(sys.prefix, "share", "rpm-bpf", "spec-templates"),
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "prebuilt.spec.j2").is_file():
            return Path(candidate)
    raise RpmBpfError("spec templates not found (set RPM_BPF_TEMPLATES)")


def render(
    name: str,
    kind: str,
    version: str = "1.0",
    summary: str | None = None,
    license: str = "GPL-2.0-only",
    packager: str = "Packager <packager@example.org>",
    noarch: bool = False,
) -> dict[str, str]:
    """File name -> content for the spec and its example sources."""
    import jinja2  # here, not at start-up: every rpm-bpf command would pay for it

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    values = {
        "name": name,
        "version": version,
        "license": license,
        "packager": packager,
        "summary": summary or f"BPF programs of {name}",
        "ident": re.sub(r"\W", "_", name),
        "noarch": noarch,
        "bpfdir_macro": "%{_bpfdir_noarch}" if noarch else "%{_bpfdir}",
        "date": dt.date.today().strftime("%a %b %d %Y"),
    }
    files = {f"{name}.spec": env.get_template(f"{kind}.spec.j2").render(values)}
    for template in KINDS[kind]:
        files[_SOURCE_NAMES[template].format(name=name)] = env.get_template(template + ".j2").render(values)
    return files


def cmd_spec_new(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", args.name):
        print(f"rpm-bpf: error: {args.name!r} is not a valid package name", file=sys.stderr)
        return 2
    if args.noarch and args.kind != "prebuilt":
        print("rpm-bpf: error: --noarch goes with --kind prebuilt", file=sys.stderr)
        return 2
    files = render(
        args.name,
        args.kind,
        version=args.version,
        summary=args.summary,
        license=args.license,
        packager=args.packager,
        noarch=args.noarch,
    )
    out = Path(args.output_dir)
    existing = [name for name in files if (out / name).exists()]
    if existing and not args.force:
        print(f"rpm-bpf: error: {', '.join(str(out / n) for n in existing)} exist (use --force)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for filename, content in files.items():
        (out / filename).write_text(content)
        print(out / filename)
    return 0


def configure_spec(spec: argparse.ArgumentParser) -> None:
    spec_sub = spec.add_subparsers(dest="spec_command", metavar="COMMAND", required=True)
    new = spec_sub.add_parser(
        "new",
        help="write NAME.spec (and example sources) that build as they are",
        description="Write NAME.spec and its example sources into DIR. prebuilt: one package "
        "shipping clang-built objects with %%bpf_install; library-and-tools: a "
        "library package owning its objects and a tools package (the "
        "libxdp/xdp-tools shape).",
    )
    new.add_argument("name", metavar="NAME")
    new.add_argument("--kind", choices=sorted(KINDS), default="prebuilt")
    new.add_argument("--noarch", action="store_true", help="arch-independent package shipping bpfel and bpfeb")
    new.add_argument("--version", default="1.0")
    new.add_argument("--summary")
    new.add_argument("--license", default="GPL-2.0-only")
    new.add_argument("--packager", default="Packager <packager@example.org>")
    new.add_argument("-o", "--output-dir", default=".", metavar="DIR")
    new.add_argument("--force", action="store_true", help="overwrite existing files")
    new.set_defaults(func=cmd_spec_new)
