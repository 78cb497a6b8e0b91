"""rpmbuild-facing commands behind the macros: ``install-objects`` and ``rpm-deps``.

They are front ends like the rest of the CLI: what is a BPF object and what
its name relative to the BPF directory is come from the engine.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _fail(message: str) -> None:
    print(f"error: %bpf_install: {message}", file=sys.stderr)


def cmd_install_objects(args: argparse.Namespace) -> int:
    """%bpf_install: validate every object first, then install all of them."""
    try:
        mode = int(args.mode, 8)
    except ValueError:
        _fail(f"invalid mode {args.mode!r} (expected octal, e.g. 0644)")
        return EXIT_USAGE
    if args.subdir and (os.path.isabs(args.subdir) or ".." in args.subdir.split("/")):
        _fail(f"-d {args.subdir}: must be a relative path inside the BPF directory")
        return EXIT_USAGE
    from rpm_bpf.bpf import elf

    payloads: list[tuple[str, bytes]] = []
    status = EXIT_OK
    for path in args.files:
        if os.path.islink(path) and not os.path.exists(path):
            _fail(f"{path}: broken symbolic link")
            status = EXIT_FAIL
            continue
        try:
            with open(path, "rb") as stream:
                data = stream.read()
        except OSError as exc:
            _fail(f"{path}: {exc.strerror}")
            status = EXIT_FAIL
            continue
        try:
            info = elf.inspect(data, path)
        except elf.BpfElfError as exc:
            _fail(f"{exc}: not a BPF object (rule bpf-object-invalid)")
            status = EXIT_FAIL
            continue
        if not info.is_relocatable:
            _fail(f"{path}: ELF type {info.elf_type}, not a relocatable BPF object (rule bpf-object-invalid)")
            status = EXIT_FAIL
            continue
        payloads.append((path, data))
    if status != EXIT_OK:
        return status
    target_dir = os.path.join(args.dest, args.subdir) if args.subdir else args.dest
    os.makedirs(target_dir, mode=0o755, exist_ok=True)
    for path, data in payloads:
        target = os.path.join(target_dir, os.path.basename(path))
        if os.path.lexists(target):
            os.unlink(target)  # never write through a symlink left in the buildroot
        with open(target, "wb") as out:
            out.write(data)
        os.chmod(target, mode)
        print(f"%bpf_install: {path} -> {target} ({mode:04o})")
    return EXIT_OK


def cmd_rpm_deps(args: argparse.Namespace) -> int:
    """File attribute generator: file names on stdin, dependencies on stdout."""
    from rpm_bpf.model import bpf_provide
    from rpm_bpf.sources.bpfdirs import relative_name

    kind = args.kind
    if kind == "conflicts" and args.enabled.strip() not in ("1", "yes", "true"):
        return EXIT_OK
    if kind == "app-provides":
        return _app_provides(args)
    if not args.bpfdir:
        print("rpm-bpf: error: rpm-deps: --bpfdir is required", file=sys.stderr)
        return EXIT_USAGE
    buildroot = os.path.normpath(args.buildroot) if args.buildroot else ""
    roots = tuple(dict.fromkeys(os.path.normpath(d) for d in args.bpfdir))
    for line in sys.stdin:
        path = line.rstrip("\n")
        if not path:
            continue
        if args.multifile:
            print(f";{path}")
        installed = path[len(buildroot) :] if buildroot and path.startswith(buildroot + "/") else path
        name = relative_name(installed, roots)
        if name is None:
            continue
        if kind == "requires":
            print("bpf-filesystem")
        else:
            print(bpf_provide(name))
    return EXIT_OK


def _app_provides(args: argparse.Namespace) -> int:
    """bpfapp.attr's generator: ``bpf-cache(APP)`` for /var/cache/bpf/APP and the tmpfiles.d files of
    %bpf_cache_dir / %bpf_runtime_dir (``bpf-KIND-APP.conf``); names that are not APP names give nothing."""
    from rpm_bpf.model import app_provide, valid_app_name

    buildroot = os.path.normpath(args.buildroot) if args.buildroot else ""
    cachedir, tmpfiles = os.path.normpath(args.cachedir), os.path.normpath(args.tmpfilesdir)
    for line in sys.stdin:
        path = line.rstrip("\n")
        if not path:
            continue
        if args.multifile:
            print(f";{path}")
        installed = path[len(buildroot) :] if buildroot and path.startswith(buildroot + "/") else path
        parent, _, base = installed.rpartition("/")
        if parent == cachedir and valid_app_name(base):
            print(app_provide("cache", base))
        elif parent == tmpfiles and base.endswith(".conf"):
            for kind in ("cache", "runtime"):
                app = base.removeprefix(f"bpf-{kind}-").removesuffix(".conf")
                if base.startswith(f"bpf-{kind}-") and valid_app_name(app):
                    print(app_provide(kind, app))
    return EXIT_OK


def cmd_rpmlint_enable(args: argparse.Namespace) -> int:
    """Write rpmlint's drop-in that adds BPFCheck to Checks (for pip installs; the RPM ships it)."""
    from pathlib import Path

    if args.user:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    else:
        base = Path("/etc/xdg")
    target = base / "rpmlint" / "bpf.toml"
    text = '# Written by rpm-bpf rpmlint-enable: run BPFCheck in every rpmlint invocation.\nChecks = ["BPFCheck"]\n'
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except OSError as exc:
        print(f"rpm-bpf: error: {target}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    # Asked of a child interpreter: rpm-bpf itself never imports rpmlint.
    import subprocess

    probe = subprocess.run(
        [sys.executable, "-c", "import rpmlint.checks.BPFCheck"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["cannot import it"])[-1]
        print(
            f"rpm-bpf: warning: wrote {target}, but this Python's rpmlint cannot import BPFCheck ({reason})",
            file=sys.stderr,
        )
        return EXIT_FAIL
    print(target)
    return EXIT_OK


def configure_rpmlint_enable(enable: argparse.ArgumentParser) -> None:
    enable.description = (
        'Write rpmlint/bpf.toml (Checks = ["BPFCheck"]) into /etc/xdg, or with '
        "--user into $XDG_CONFIG_HOME; rpmlint merges it into its Checks list."
    )
    enable.add_argument("--user", action="store_true", help="only for this user")
    enable.set_defaults(func=cmd_rpmlint_enable)


def configure_install_objects(install: argparse.ArgumentParser) -> None:
    install.description = (
        "Validate BPF objects with the ELF inspection and install them with MODE into "
        "DEST[/SUBDIR]. Nothing is installed when any file is not a valid BPF object."
    )
    install.add_argument("--dest", required=True, help="%%{buildroot}%%{_bpfdir} (or the noarch directory)")
    install.add_argument("--subdir", default="", help="subdirectory of the BPF directory")
    install.add_argument("--mode", default="0644", help="file mode (default 0644)")
    install.add_argument("files", nargs="+", metavar="FILE")
    install.set_defaults(func=cmd_install_objects)


def configure_rpm_deps(deps: argparse.ArgumentParser) -> None:
    kinds = deps.add_mutually_exclusive_group(required=True)
    for kind in ("provides", "requires", "conflicts", "app-provides"):
        kinds.add_argument(f"--{kind}", dest="kind", action="store_const", const=kind)
    deps.add_argument("--buildroot", default="")
    deps.add_argument("--bpfdir", action="append", help="a BPF directory (repeatable; all but --app-provides)")
    deps.add_argument("--cachedir", default="/var/cache/bpf", help="for --app-provides: %%{_bpf_cachedir}")
    deps.add_argument("--tmpfilesdir", default="/usr/lib/tmpfiles.d", help="for --app-provides: %%{_bpf_tmpfilesdir}")
    deps.add_argument("--enabled", default="0", help="for --conflicts: the value of %%_bpf_conflicts")
    deps.add_argument("--multifile", action="store_true", help="rpm >= 4.20 multifile protocol")
    deps.set_defaults(func=cmd_rpm_deps)
