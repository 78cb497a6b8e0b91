"""rules/appdirs.py: who claims which application directory, what may be shipped there, how it is named,
and when a cache is stale, on in-memory packages."""

from __future__ import annotations

from rpm_bpf.model import PackageRef, app_provide, app_provide_claim, valid_app_name
from rpm_bpf.rules import appdirs
from rpm_bpf.rules.registry import Severity
from tests.support.bpfelf import bpf_object
from tests.support.fakepkg import FakePkg, bpf, directory, ghost, symlink, text

CACHE = "/var/cache/bpf"


def macro_pkg(name: str = "xdptool", app: str | None = None, kind: str = "cache", **kwargs) -> FakePkg:
    """A package as %bpf_cache_dir / %bpf_runtime_dir make it: the directory, a %ghost file, the provide."""
    app = app or name
    parent = CACHE if kind == "cache" else "/run"
    return FakePkg(
        [directory(f"{parent}/{app}"), ghost(f"{parent}/{app}/prog.o")],
        name=name,
        provides=[name, app_provide(kind, app)],
        **kwargs,
    )


def test_provide_names_are_parsed_strictly():
    assert app_provide_claim("bpf-cache(xdptool)") == ("cache", "xdptool")
    assert app_provide_claim("bpf-runtime(xdp-tool_2)") == ("runtime", "xdp-tool_2")
    # a package named bpf-runtime provides bpf-runtime(x86-64) = EVR about itself
    assert app_provide_claim("bpf-runtime(x86-64)") is None and app_provide_claim("bpf-cache(aarch-64)") is None
    for bad in ("bpf-cache()", "bpf-cache(../etc)", "bpf-cache(a/b)", "bpf-cache(a b)", "bpf-cache(-x)", "bpf(x)"):
        assert app_provide_claim(bad) is None, bad
    assert not valid_app_name(".") and not valid_app_name("x" * 201) and valid_app_name("systemd-networkd")


def test_claims_from_provides_and_owned_cache_directories():
    pkg = macro_pkg()
    (claim,) = pkg.check().apps
    assert claim.name == "bpf-cache(xdptool)" and claim.path == f"{CACHE}/xdptool"
    # owning a file in the cache claims it, without any provide
    owner = FakePkg([ghost(f"{CACHE}/other/x.o")], name="other")
    assert [c.name for c in owner.check().apps] == ["bpf-cache(other)"]
    # owning /run/APP alone claims nothing: /run is every daemon's
    assert FakePkg([directory("/run/httpd")], name="httpd").check().apps == []
    run = macro_pkg(kind="runtime")
    assert [(c.name, c.path) for c in run.check().apps] == [("bpf-runtime(xdptool)", "/run/xdptool")]


def test_two_packages_claiming_one_app_clash_and_versions_do_not():
    a, b = macro_pkg("alpha", app="shared"), macro_pkg("beta", app="shared")
    found = appdirs.conflicts(a.check().apps + b.check().apps)
    assert {(f.rule, f.package.name) for f in found} == {
        ("bpf-app-dir-conflict", "alpha"),
        ("bpf-app-dir-conflict", "beta"),
    }
    assert all(f.severity == Severity.ERROR for f in found)
    detail = next(f.detail for f in found if f.package.name == "alpha")
    assert "bpf-cache(shared) is also claimed by beta-1.0-1.x86_64" in detail
    newer = macro_pkg("alpha", app="shared", version="2.0")
    assert appdirs.conflicts(a.check().apps + newer.check().apps) == []
    # a cache and a run-time directory of one name are different things
    run = macro_pkg("beta", app="shared", kind="runtime")
    assert appdirs.conflicts(a.check().apps + run.check().apps) == []


def test_files_shipped_in_application_directories():
    pkg = FakePkg(
        [
            directory(f"{CACHE}/shipper"),
            text(f"{CACHE}/shipper/index.txt"),
            symlink(f"{CACHE}/shipper/latest", "index.txt"),
            ghost(f"{CACHE}/shipper/ok.o"),
            text("/run/shipper/pid"),
            text("/run/other/pid"),
        ],
        name="shipper",
        provides=[app_provide("runtime", "shipper")],
    )
    rules = FakePkg.rules(pkg.check())
    assert ("bpf-app-dir-file", f"{CACHE}/shipper/index.txt") in rules
    assert ("bpf-app-dir-file", f"{CACHE}/shipper/latest") in rules
    assert ("bpf-app-dir-file", "/run/shipper/pid") in rules
    assert ("bpf-app-dir-file", "/run/other/pid") not in rules  # not a directory it declares
    assert ("bpf-app-dir-file", f"{CACHE}/shipper/ok.o") not in rules  # %ghost
    # a BPF object there is reported once, by the placement rule
    obj = FakePkg([bpf(f"{CACHE}/shipper/prog.o", bpf_object())], name="shipper")
    rules = FakePkg.rules(obj.check())
    assert ("bpf-object-outside-bpfdir", f"{CACHE}/shipper/prog.o") in rules
    assert not any(rule == "bpf-app-dir-file" for rule, _ in rules)


def test_directory_names_after_the_package_or_a_provide():
    assert not any(f.rule == "bpf-app-dir-unnamed" for f in macro_pkg().check().findings)
    generic = macro_pkg("xdptool", app="cache")
    (found,) = [f for f in generic.check().findings if f.rule == "bpf-app-dir-unnamed"]
    assert found.severity == Severity.WARNING and found.path == f"{CACHE}/cache"
    # the source package's name and other provides count
    sub = macro_pkg("xdptool-libs", app="xdptool", sourcerpm="xdptool-1.0-1.src.rpm")
    assert not any(f.rule == "bpf-app-dir-unnamed" for f in sub.check().findings)
    alias = FakePkg([directory(f"{CACHE}/xdp")], name="xdptool", provides=["xdp"])
    assert not any(f.rule == "bpf-app-dir-unnamed" for f in alias.check().findings)


def test_stale_and_left_behind():
    assert appdirs.stale_reason(None, 100, 100) is None  # empty cache: nothing to remove
    assert appdirs.stale_reason(150, 100, 120) is None
    assert "package was installed" in appdirs.stale_reason(90, 100, None)
    assert "running kernel" in appdirs.stale_reason(110, 100, 120)
    assert appdirs.stale_reason(110, 100, None) is None
    ref = PackageRef("xdptool", None, "1.0", "1", "x86_64", "rpmdb")
    finding = appdirs.stale(ref, f"{CACHE}/xdptool", "written before the running kernel was installed")
    assert finding.rule == "bpf-cache-stale" and finding.severity == Severity.WARNING
    left = appdirs.left_behind(f"{CACHE}/gone", "a directory")
    assert left.rule == "bpf-cache-left-behind" and left.package is None and "clean-cache" in left.detail


def test_a_bpf_applications_files_in_run_are_judged_and_other_packages_are_not():
    tool = FakePkg(
        [bpf("/usr/lib64/bpf/tool/prog.o", bpf_object()), text("/run/tool/state"), ghost("/run/tool/ok")],
        name="tool",
        requires=["bpf-filesystem"],
    )
    rules = FakePkg.rules(tool.check())
    assert ("bpf-app-dir-file", "/run/tool/state") in rules and ("bpf-app-dir-file", "/run/tool/ok") not in rules
    daemon = FakePkg([text("/run/daemon/state")], name="daemon")
    assert FakePkg.rules(daemon.check()) == set()
