"""`rpm-bpf repo-report`: the inventory of whole repositories, in text, JSON and HTML.

A createrepo_c repository of rpmbuild-built packages; the HTML page is
opened in a real headless browser (Debian's chromium), which runs its
script: the numbers it shows must be the JSON's, and its tables must sort.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rpm_bpf.samples.build import PkgFile, PkgSpec
from tests.support.builders import shipping
from tests.support.paths import REPO

pytestmark = pytest.mark.integration
ENV = dict(os.environ, PYTHONPATH=str(REPO))


@pytest.fixture(scope="module")
def compose(gate_repo, rpms, objects, bpfdir, tmp_path_factory) -> Path:
    """The gate tests' repository plus clashes of its own and a package squatting in the BPF directory."""
    path = tmp_path_factory.mktemp("compose")
    for rpm_path in gate_repo.glob("*.rpm"):
        shutil.copy(rpm_path, path)
    extra = [
        shipping("twin", objects.no_btf, f"{bpfdir}/shared.o"),  # lib64 against other-tool's lib64
        shipping("twin-noarch", objects.full, "/usr/lib/bpf/shared.o", noarch=True),  # lib against lib64
        # neither owns the directory nor requires its owner (AutoReqProv: no, so no generated Requires either)
        PkgSpec("squatter", autodeps=False, files=[PkgFile(f"{bpfdir}/squatter.o", objects.full)]),
        PkgSpec("named-like-bpf", files=[PkgFile("/usr/share/named/prog.bpf.o", objects.full)]),
    ]
    for spec in extra:
        shutil.copy(rpms.build(spec), path)
    subprocess.run(["createrepo_c", "-q", str(path)], check=True)
    return path


def _report(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "rpm_bpf", "repo-report", "--no-system-policy", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def doc(compose) -> dict:
    proc = _report("-f", "json", str(compose))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_inventory_json(doc, compose, bpfdir):
    counts = doc["counts"]
    assert counts["packages"] == len(list(compose.glob("*.rpm"))) == 8
    (clash,) = doc["clashes"]
    assert clash["bpf_name"] == "shared.o"
    assert clash["packages"] == ["other-tool-1.0-1.x86_64", "twin-1.0-1.x86_64", "twin-noarch-1.0-1.noarch"]
    assert {o["package"] for o in doc["objects"]} == {
        "other-tool-1.0-1.x86_64",
        "twin-1.0-1.x86_64",
        "twin-noarch-1.0-1.noarch",
        "squatter-1.0-1.x86_64",
    }
    assert {p["bpf_name"] for p in doc["provides"]} == {"announced.o", "shared.o"}  # squatter: no generator
    assert [u["package"] for u in doc["unowned"]] == ["squatter-1.0-1.x86_64"]
    outside = {(o["package"], o["path"]) for o in doc["outside"]}
    assert outside == {
        ("decoys-1.0-1.x86_64", "/usr/x86_64-linux-gnu/sys-root/usr/lib64/bpf/shared.o"),
        ("decoys-1.0-1.x86_64", "/usr/local/lib64/bpf/shared.o"),
        ("named-like-bpf-1.0-1.x86_64", "/usr/share/named/prog.bpf.o"),
    }
    assert counts == {
        "packages": 8,
        "packages_shipping_bpf": 5,
        "objects": 4,
        "bpf_provides": len(doc["provides"]),
        "name_clashes": 1,
        "objects_outside_bpfdir": 3,
        "packages_not_owning_bpfdir": 1,
    }


def test_inventory_text(compose):
    proc = _report(str(compose))
    assert proc.returncode == 0
    assert "       1  name clashes" in proc.stdout
    assert "clash: shared.o: other-tool-1.0-1.x86_64, twin-1.0-1.x86_64, twin-noarch-1.0-1.noarch" in proc.stdout


def _browser_dom(page: Path, fragment: str = "") -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium here (./setup.sh installs Debian's chromium)")
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", f"file://{page}{fragment}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "</html>" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def _rows(dom: str, table: str) -> list[list[str]]:
    body = re.search(rf'<table class="sortable" id="table-{table}">.*?<tbody>(.*?)</tbody>', dom, re.S).group(1)
    return [
        [html.unescape(cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_html_in_a_real_browser(doc, compose, tmp_path):
    page = tmp_path / "report.html"
    proc = _report("-f", "html", "-o", str(page), str(compose))
    assert proc.returncode == 0 and page.stat().st_size > 0
    text = page.read_text()
    assert "http://" not in text.replace("http-equiv", "") and "https://" not in text  # nothing to fetch
    dom = _browser_dom(page)
    shown = {key: int(value) for key, value in re.findall(r'id="count-(\w+)"><b>(\d+)</b>', dom)}
    assert shown == doc["counts"]
    assert _rows(dom, "clashes") == [
        ["shared.o", ", ".join(doc["clashes"][0]["packages"]), ", ".join(doc["clashes"][0]["where"])]
    ]
    paths = [row[1] for row in _rows(dom, "objects")]
    assert len(paths) == len(doc["objects"])
    # The page's own script sorts: descending by path, as asked in the address.
    ordered = _browser_dom(page, "#sort=objects:1:desc")
    assert [row[1] for row in _rows(ordered, "objects")] == sorted(paths, reverse=True) != paths
    assert 'aria-sort="descending">path</th>' in ordered


def test_hostile_names_are_escaped_in_html(rpms, objects, bpfdir, tmp_path):
    evil = rpms.build(PkgSpec("evil", files=[PkgFile(f"{bpfdir}/<iframe>x&y.o", objects.full)]))
    repo_dir = tmp_path / "evil-repo"
    repo_dir.mkdir()
    shutil.copy(evil, repo_dir)
    subprocess.run(["createrepo_c", "-q", str(repo_dir)], check=True)
    page = tmp_path / "evil.html"
    assert _report("-f", "html", "-o", str(page), str(repo_dir)).returncode == 0
    text = page.read_text()
    assert "<iframe>" not in text and "&lt;iframe&gt;x&amp;y.o" in text


def test_unreadable_repository_is_exit_2_and_the_others_reported(compose, tmp_path):
    proc = _report("-f", "json", str(tmp_path / "nothing-here"), str(compose))
    assert proc.returncode == 2 and proc.stderr.count("rpm-bpf: error:") == 1
    report = json.loads(proc.stdout)
    assert report["counts"]["name_clashes"] == 1 and report["input_errors"][0]["input"] == str(
        tmp_path / "nothing-here"
    )


def test_sboms_of_a_repository_validate(compose, doc, tmp_path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    in_bpfdir = sorted(o["path"] for o in doc["objects"])
    proc = _report("-f", "cyclonedx", str(compose))
    assert proc.returncode == 0, proc.stderr
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(proc.stdout) is None
    bom = json.loads(proc.stdout)
    assert bom["metadata"]["component"]["type"] == "data"
    nested = [(p, c) for p in bom["components"] for c in p.get("components", [])]
    assert sorted(c["name"] for _, c in nested) == in_bpfdir
    assert all(c["purl"] == p["purl"] and p["purl"].startswith("pkg:rpm/") for p, c in nested)
    assert all("hashes" not in c for _, c in nested)  # metadata has no file digests: none is made up
    page = tmp_path / "repo.spdx.json"
    proc = _report("-f", "spdx", "-o", str(page), str(compose))
    assert proc.returncode == 0, proc.stderr
    document = parse_file(str(page))
    assert validate_full_spdx_document(document) == []
    assert sorted(p.file_name for p in document.packages if p.spdx_id.startswith("SPDXRef-BPF-")) == in_bpfdir
