"""`rpm-bpf list` on a real installed root: the real-world corpus (Debian packages repacked as RPMs: libxdp's
objects, libbpf-tools' and xdp-tools' skeletons, a Go program, cilium/ebpf's test data) plus planted packages
built by rpmbuild (an object in the BPF directory with its bpf() provide, one outside it, one modified after
installation, one removed, a skeleton loader), all installed by rpm.

What ``list`` shows is checked against an independent byte search of the root's files (every ELF header with
e_machine 247 that pyelftools reads as a relocatable object); its SBOMs are checked by the validators of
cyclonedx-python-lib and spdx-tools; its HTML page is opened in headless chromium; the loaded join against
programs really loaded with bpftool (pins removed in a finalizer).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.integration.test_repo_report import _browser_dom, _rows
from tests.support import realworld
from tests.support.archives import gnu_archive
from tests.support.kernel import wait_freed, wait_held
from tests.support.paths import REPO

pytestmark = pytest.mark.integration
ENV = dict(os.environ, PYTHONPATH=str(REPO))
SCHEMA = json.loads((REPO / "rpm_bpf/data/list.schema.json").read_text())
OUTSIDE = "/usr/share/list-outside/probe.o"
EVIL_MEMBER = "m\udcff<b>.o"
NO_SIGNAL = {"/usr/bin/dlv"}  # delve: Go with cgo, no header signal (the default search skips it; --embedded=all)


@pytest.fixture(scope="module")
def root(rpms, objects, bpfdir, tmp_path_factory) -> Path:
    corpus = realworld.rpms()
    work = tmp_path_factory.mktemp("list-inputs")
    static = work / "liblist.a"  # a member name that is not UTF-8: data to every output, never a crash
    static.write_bytes(
        gnu_archive([("helpers.o", objects.full.read_bytes()), (EVIL_MEMBER, objects.no_btf.read_bytes())])
    )
    broken = work / "broken.bpf.o"
    broken.write_bytes(objects.full.read_bytes()[:200])  # eBPF by its header, but no section table
    planted = [
        PkgSpec(
            "bpf-filesystem",
            files=[PkgFile(bpfdir, directory=True, mode=0o755), PkgFile("/usr/lib/bpf", directory=True, mode=0o755)],
        ),
        PkgSpec(
            "list-good",
            requires=["bpf-filesystem"],
            files=[
                PkgFile(f"{bpfdir}/list-good", directory=True, mode=0o755),
                PkgFile(f"{bpfdir}/list-good/full.bpf.o", objects.full),
                PkgFile(f"{bpfdir}/list-good/broken.bpf.o", broken),
                PkgFile("/usr/lib64/liblist.a", static),
            ],
        ),
        PkgSpec("list-outside", files=[PkgFile(OUTSIDE, objects.no_btf)]),
        PkgSpec(
            "list-changed",
            requires=["bpf-filesystem"],
            files=[
                PkgFile(f"{bpfdir}/list-changed", directory=True, mode=0o755),
                PkgFile(f"{bpfdir}/list-changed/modified.bpf.o", objects.full_el),
                PkgFile(f"{bpfdir}/list-changed/removed.bpf.o", objects.no_license),
            ],
        ),
        PkgSpec("list-loader", files=[PkgFile("/usr/bin/list-loader", objects.loader, mode=0o755)]),
    ]
    path = tmp_path_factory.mktemp("list") / "root"
    path.mkdir()
    built = [str(rpms.build(spec)) for spec in planted] + [str(p) for p in sorted(corpus.glob("*.rpm"))]
    proc = subprocess.run(
        ["rpm", "--root", str(path), "-i", "--nodeps", "--noscripts", *built], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    modified = path / bpfdir.lstrip("/") / "list-changed/modified.bpf.o"
    data = bytearray(modified.read_bytes())
    at = data.index(b"GPL")
    data[at : at + 3] = b"BSD"  # the same size, other bytes: only the digest tells
    modified.write_bytes(bytes(data))
    (path / bpfdir.lstrip("/") / "list-changed/removed.bpf.o").unlink()
    return path


def _list(root: Path, *args: str, fmt: str = "json") -> tuple[subprocess.CompletedProcess, dict | None]:
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "list", "--no-system-policy", "--root", str(root), "-f", fmt, *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if fmt != "json":
        return proc, None
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    return proc, doc


def _byte_search(root: Path) -> set[tuple[str, int]]:
    """(path, offset) of every BPF ELF object in the root's regular files, found without rpm-bpf."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    found = set()
    for top, _dirs, files in os.walk(root):
        for name in files:
            host = Path(top) / name
            if not stat.S_ISREG(host.lstat().st_mode):
                continue
            data = host.read_bytes()
            at = data.find(b"\x7fELF")
            while at >= 0:
                machine = data[at + 18 : at + 20]
                if machine in (b"\xf7\x00", b"\x00\xf7"):
                    try:
                        parsed = ELFFile(io.BytesIO(data[at:]))
                        if parsed["e_machine"] == "EM_BPF" and parsed["e_type"] == "ET_REL" and parsed.num_sections():
                            found.add(("/" + str(host.relative_to(root)), at))
                    except (ELFError, ValueError, KeyError, OSError, AssertionError):
                        pass
                at = data.find(b"\x7fELF", at + 1)
    return found


def _shown(doc: dict) -> set[tuple[str, int]]:
    return {(o["path"], o["offset"] or 0) for o in doc["objects"] if o["disk"] != "missing"}


@pytest.fixture(scope="module")
def listed(root) -> dict:
    proc, doc = _list(root, "--offline", "--embedded", "all")
    assert proc.returncode == 1, proc.stderr  # the modified and the removed object are error-level findings
    return doc


def test_every_object_of_the_root_is_listed(root, listed):
    truth = _byte_search(root)
    assert len(truth) > 150  # the corpus is there: libxdp, libbpf-tools, pcp, cilium/ebpf's test data...
    assert _shown(listed) == truth
    # The default search (header signals) misses exactly the class that has none.
    _, default = _list(root, "--offline")
    assert _shown(listed) - _shown(default) == {(p, o) for p, o in truth if p in NO_SIGNAL}


def test_each_kind_of_object_is_described(listed, bpfdir):
    by_path = {(o["path"], o["offset"]): o for o in listed["objects"]}
    good = by_path[(f"{bpfdir}/list-good/full.bpf.o", None)]
    assert good["package"]["nevra"] == "list-good-1.0-1.x86_64" and good["kind"] == "standalone"
    assert good["bpf_name"] == "list-good/full.bpf.o" and "list-good/full.bpf.o" in good["bpf_provides"]
    assert not good["outside_bpfdir"] and good["disk"] == "ok" and good["license"] == "GPL" and good["btf"]
    assert {(p["name"], p["type"]) for p in good["programs"]} == {("xdp_count", "xdp"), ("tc_pass", "sched_cls")}
    assert all(len(p["tag"]) == 16 and len(p["tag_sha1"]) == 16 for p in good["programs"])
    assert good["packaged_digest"].startswith("sha256:") and good["loaded"] is None
    outside = by_path[(OUTSIDE, None)]
    assert outside["outside_bpfdir"] and outside["bpf_name"] is None and not outside["btf"]
    (embedded,) = [o for o in listed["objects"] if o["path"] == "/usr/bin/list-loader"]
    assert embedded["kind"] == "embedded" and embedded["offset"] > 0 and embedded["found_by"] == "libbpf-dynamic"
    # the skeleton carries the same object as list-good ships: the same programs, the same tags
    assert sorted(p["tag"] for p in embedded["programs"]) == sorted(p["tag"] for p in good["programs"])
    modified = by_path[(f"{bpfdir}/list-changed/modified.bpf.o", None)]
    assert modified["disk"] == "modified" and modified["license"] == "BSD"  # what is on disk now
    removed = by_path[(f"{bpfdir}/list-changed/removed.bpf.o", None)]
    assert removed["disk"] == "missing" and removed["sha256"] is None and removed["programs"] == []
    rules = {(f["rule"], f["path"]) for f in listed["findings"]}
    assert rules == {
        ("bpf-object-modified", f"{bpfdir}/list-changed/modified.bpf.o"),
        ("bpf-object-missing", f"{bpfdir}/list-changed/removed.bpf.o"),
    }
    # libbpf-tools: one skeleton per tool, CO-RE
    tools = [o for o in listed["objects"] if o["package"]["name"] == "deb-libbpf-tools"]
    assert len(tools) == 52 and all(o["core"] and o["found_by"] == "libbpf-static" for o in tools)
    # gcc-bpf's libgcc.a: its members are BPF objects (no programs: a library of BPF functions)
    members = [o for o in listed["objects"] if o["path"] == "/usr/lib/gcc/bpf/12/libgcc.a"]
    assert len(members) > 60 and all(o["kind"] == "archive member" and o["member"].endswith(".o") for o in members)
    assert len({o["member"] for o in members}) == len(members)
    assert listed["counts"]["objects"] == len(listed["objects"])
    assert listed["counts"]["changed"] == 2


def test_filters_and_packages(root, listed, bpfdir):
    _, outside = _list(root, "--offline", "--outside-bpfdir")
    assert outside["objects"] and all(o["outside_bpfdir"] for o in outside["objects"])
    assert {o["path"] for o in outside["objects"]} >= {OUTSIDE, "/usr/lib/x86_64-linux-gnu/bpf/xdp-dispatcher.o"}
    proc, one = _list(root, "--offline", "--package", "list-good", "deb-libxdp1")
    assert proc.returncode == 0
    assert {o["package"]["name"] for o in one["objects"]} == {"list-good", "deb-libxdp1"}
    proc, _ = _list(root, "--offline", "no-such-package")
    assert proc.returncode == 2 and "no-such-package: package is not installed" in proc.stderr
    proc, _ = _list(root, "--offline", "--loaded", fmt="text")  # contradictory: refused by name
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr


def test_text_in_rpm_style(root, bpfdir):
    proc, _ = _list(root, "--offline", "--package", "list-good", "--package", "list-changed", fmt="text")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert (
        f"{bpfdir}/list-good/full.bpf.o  list-good-1.0-1.x86_64 bpf(list-good/full.bpf.o): license GPL, BTF, CO-RE"
        in lines
    )
    assert any(line.startswith("    xdp  xdp_count  xdp  tag ") for line in lines)
    assert any("modified.bpf.o" in line and "MODIFIED" in line for line in lines)
    assert lines[-1].startswith("6 BPF objects (0 embedded, 2 in archives) in 2 packages")
    assert f"E: bpf-object-missing {bpfdir}/list-changed/removed.bpf.o" in proc.stderr
    assert f"E: bpf-object-modified {bpfdir}/list-changed/modified.bpf.o sha256 digest differs" in proc.stderr


def test_sboms_validate_and_name_every_object(root, listed):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    proc, _ = _list(root, "--offline", "--embedded", "all", fmt="cyclonedx")
    assert proc.returncode == 1 and "E: bpf-object-missing" in proc.stderr  # why it is 1, beside the SBOM
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(proc.stdout) is None
    bom = json.loads(proc.stdout)
    nested = [c for parent in bom["components"] for c in parent.get("components", [])]
    assert len(nested) == len(listed["objects"])
    by_name = {c["name"]: (parent, c) for parent in bom["components"] for c in parent.get("components", [])}
    good = next(o for o in listed["objects"] if o["path"].endswith("list-good/full.bpf.o"))
    parent, component = by_name[good["path"]]
    assert parent["purl"] == component["purl"] == "pkg:rpm/list-good@1.0-1?arch=x86_64"
    assert component["hashes"] == [{"alg": "SHA-256", "content": good["sha256"]}]
    assert component["version"] == "1.0-1" and component["type"] == "file"
    assert any(p["name"] == "rpm-bpf:program" and p["value"].startswith("xdp_count") for p in component["properties"])

    proc, _ = _list(root, "--offline", "--embedded", "all", fmt="spdx")
    assert proc.returncode == 1
    path = root.parent / "list.spdx.json"
    path.write_text(proc.stdout)
    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    objects = [p for p in document.packages if p.spdx_id.startswith("SPDXRef-BPF-")]
    assert len(objects) == len(listed["objects"])
    contains = {(r.spdx_element_id, r.related_spdx_element_id) for r in document.relationships}
    assert all(any(b == o.spdx_id for _, b in contains) for o in objects)  # each object is in its RPM


def test_html_page_in_a_real_browser(root, listed, tmp_path):
    page = tmp_path / "list.html"
    proc, _ = _list(root, "--offline", "--embedded", "all", "-o", str(page), fmt="html")
    assert proc.returncode == 1 and page.stat().st_size > 0
    dom = _browser_dom(page)
    import re

    shown = {key: int(value) for key, value in re.findall(r'id="count-(\w+)"><b>(\d+)</b>', dom)}
    assert shown == listed["counts"]
    rows = _rows(dom, "objects")
    assert len(rows) == len(listed["objects"])
    assert Counter(r[6] for r in rows) == Counter(o["disk"] for o in listed["objects"])
    # The page's own script sorts (by the disk column: plain lowercase words, which the browser's
    # localeCompare orders as Python does).
    ordered = [r[6] for r in _rows(_browser_dom(page, "#sort=objects:6:asc"), "objects")]
    assert ordered == sorted(ordered) != [r[6] for r in rows]


def test_loaded_programs_are_joined(root, bpffs, bpfdir):
    pins = bpffs / f"rpm-bpf-list-{uuid.uuid4().hex[:8]}"
    obj = root / bpfdir.lstrip("/") / "list-good/full.bpf.o"
    try:
        subprocess.run(["bpftool", "prog", "loadall", str(obj), str(pins)], capture_output=True, text=True, check=True)
        ids = {
            json.loads(
                subprocess.run(
                    ["bpftool", "-j", "prog", "show", "pinned", str(pin)], capture_output=True, text=True, check=True
                ).stdout
            )["id"]
            for pin in pins.iterdir()
        }
        proc, doc = _list(root, "--loaded")
        assert proc.returncode == 1, proc.stderr  # the findings of the changed package stand
        assert doc["loaded_checked"]
        by_path = {o["path"]: o for o in doc["objects"]}
        assert set(by_path[f"{bpfdir}/list-good/full.bpf.o"]["loaded"]) == ids
        # the loader embeds the same object: its programs have those tags too
        assert set(by_path["/usr/bin/list-loader"]["loaded"]) == ids
        assert all(o["loaded"] for o in doc["objects"])
    finally:
        shutil.rmtree(pins, ignore_errors=True)


def test_loaded_core_tool_is_joined_by_its_relocated_tags(root, bpffs):
    """A real CO-RE tool (Debian's softirqs) run from the root: its programs' tags are this kernel's once the
    CO-RE relocations are resolved, so the list joins them to the tool's object."""
    tool = subprocess.Popen([str(root / "usr/sbin/softirqs"), "600", "1"], stdout=subprocess.DEVNULL)
    held: dict[int, int] = {}
    try:
        held = wait_held([tool])
        proc, doc = _list(root, "--loaded", "--package", "deb-libbpf-tools")
        assert doc["loaded_checked"], proc.stderr
        (obj,) = [o for o in doc["objects"] if o["path"] == "/usr/sbin/softirqs"]
        assert set(obj["loaded"]) == set(held)
        assert not any(c.startswith("CO-RE") for p in obj["programs"] for c in p["caveats"])
    finally:
        tool.kill()
        tool.wait()
    assert not wait_freed(set(held))


def test_loaded_without_privilege_is_exit_2(root):
    """Root without capabilities (an empty bounding set) may read the root's files but not list programs."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to drop the capabilities")
    proc = subprocess.run(
        ["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-m", "rpm_bpf", "list",
         "--no-system-policy", "--root", str(root), "--loaded", "-f", "json"],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert "loaded BPF programs: reading the loaded BPF programs needs root" in proc.stderr
    assert json.loads(proc.stdout)["objects"] == []  # --loaded: nothing can be said loaded
    # Without --loaded, the same process lists everything and says in one note what it could not ask.
    proc = subprocess.run(
        ["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-m", "rpm_bpf", "list",
         "--no-system-policy", "--root", str(root), "--package", "list-good", "-f", "json"],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stderr.count("loaded programs were not looked up") == 1, proc.stderr
    assert json.loads(proc.stdout)["objects"][0]["loaded"] is None


def test_cache_saves_work_never_the_disk_check(root, bpfdir, tmp_path):
    env = dict(ENV, XDG_CACHE_HOME=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "rpm_bpf", "list", "--no-system-policy", "--offline", "--root", str(root)]
    runs = [
        subprocess.run([*command, "-f", "json", *extra], capture_output=True, text=True, env=env, timeout=600)
        for extra in ((), (), ("--no-cache",))
    ]
    docs = [json.loads(run.stdout) for run in runs]
    assert docs[0]["objects"] == docs[1]["objects"] == docs[2]["objects"]
    entries = list((tmp_path / "cache" / "rpm-bpf" / "progtags").iterdir())
    # one entry per content read (files searched and found empty have one too)
    read = {o["path"] for o in docs[0]["objects"] if o["disk"] != "missing"}
    contents = {hashlib.sha256((root / p.lstrip("/")).read_bytes()).digest() for p in read}
    assert len(entries) >= len(contents) > 100
    # The cache is read: an entry edited by hand shows (it can only ever describe the bytes of its key)...
    from rpm_bpf.flows.listing import CACHE_KEY

    target = root / bpfdir.lstrip("/") / "list-good/full.bpf.o"
    original = target.read_bytes()
    key = f"{CACHE_KEY}:{hashlib.sha256(original).hexdigest()}"
    entry = tmp_path / "cache" / "rpm-bpf" / "progtags" / (hashlib.sha256(key.encode()).hexdigest() + ".json")
    cached = json.loads(entry.read_text())
    cached["programs"][0]["description"]["license"] = "EDITED"
    entry.write_text(json.dumps(cached))
    shown = json.loads(subprocess.run([*command, "-f", "json"], capture_output=True, text=True, env=env).stdout)
    (good,) = [o for o in shown["objects"] if o["path"] == f"{bpfdir}/list-good/full.bpf.o"]
    assert good["license"] == "EDITED" and good["disk"] == "ok"
    # ...and one of another shape is a miss, described again (it used to be an internal error)
    cached["programs"][0] = {"member": None}
    entry.write_text(json.dumps(cached))
    proc = subprocess.run([*command, "-f", "json"], capture_output=True, text=True, env=env)
    (good,) = [o for o in json.loads(proc.stdout)["objects"] if o["path"] == f"{bpfdir}/list-good/full.bpf.o"]
    assert good["license"] == "GPL" and "internal error" not in proc.stderr
    # The object changes after the cache was filled: the bytes are read and compared every time.
    try:
        changed = bytearray(original)
        at = changed.index(b"GPL")
        changed[at : at + 3] = b"MIT"
        target.write_bytes(bytes(changed))
        proc = subprocess.run([*command, "-f", "json"], capture_output=True, text=True, env=env, timeout=600)
        (good,) = [o for o in json.loads(proc.stdout)["objects"] if o["path"] == f"{bpfdir}/list-good/full.bpf.o"]
        assert good["disk"] == "modified" and good["license"] == "MIT"
    finally:
        target.write_bytes(original)


def test_unparseable_objects_and_names_that_are_not_utf8(root, bpfdir, tmp_path):
    """A BPF ELF file that does not parse is listed undescribed (and said so), never dropped; a member name that
    is not UTF-8 reaches every format, written to a file too, without a crash."""
    for fmt in ("json", "html", "text", "cyclonedx", "spdx"):
        out = tmp_path / f"list.{fmt}"
        proc, _ = _list(root, "--offline", "--package", "list-good", "-o", str(out), "-f", fmt, fmt="text")
        assert proc.returncode == 0, (fmt, proc.stderr)
        assert f"{bpfdir}/list-good/broken.bpf.o: a BPF ELF file that cannot be parsed" in proc.stderr
        text = out.read_text(encoding="utf-8")  # valid UTF-8 whatever the names
        assert ("m" in text and "<b>.o" not in text.replace("&lt;b&gt;", "")) or fmt != "html"
    doc = json.loads((tmp_path / "list.json").read_text())
    by_where = {(o["path"], o["member"]): o for o in doc["objects"]}
    broken = by_where[(f"{bpfdir}/list-good/broken.bpf.o", None)]
    assert broken["programs"] == [] and broken["license"] is None and broken["disk"] == "ok" and broken["sha256"]
    evil = by_where[("/usr/lib64/liblist.a", EVIL_MEMBER)]  # JSON's \udcff escape gives the byte back
    assert evil["kind"] == "archive member" and by_where[("/usr/lib64/liblist.a", "helpers.o")]["programs"]
    assert "m\\xff<b>.o" in (tmp_path / "list.text").read_text()  # text escapes it as ls -b does
