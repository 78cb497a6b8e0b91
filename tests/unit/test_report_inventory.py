"""report/inventory.py: ``rpm-bpf repo-report``'s text, JSON and HTML, on a small inventory document."""

from __future__ import annotations

import copy
import html.parser
import json

from rpm_bpf.report.inventory import render_html, render_json, render_text

DOC = {
    "schema": "rpm-bpf/repo-report/v1",
    "tool": {"name": "rpm-bpf", "version": "0.1.0"},
    "repositories": [{"location": "https://repo.example/os/", "packages": 3}],
    "counts": {
        "packages": 3,
        "packages_shipping_bpf": 2,
        "objects": 2,
        "bpf_provides": 1,
        "name_clashes": 1,
        "objects_outside_bpfdir": 1,
        "packages_not_owning_bpfdir": 1,
    },
    "objects": [
        {"package": "one-1-1.x86_64", "name": "one", "path": "/usr/lib64/bpf/shared.o", "bpf_name": "shared.o",
         "repository": "https://repo.example/os/"},
        {"package": "two-1-1.x86_64", "name": "two", "path": "/usr/lib/bpf/shared.o", "bpf_name": "shared.o",
         "repository": "https://repo.example/os/"},
    ],
    "provides": [{"package": "one-1-1.x86_64", "bpf_name": "shared.o", "repository": "https://repo.example/os/"}],
    "clashes": [
        {"bpf_name": "shared.o", "packages": ["one-1-1.x86_64", "two-1-1.x86_64"],
         "where": ["/usr/lib/bpf/shared.o", "/usr/lib64/bpf/shared.o"]},
    ],
    "outside": [{"package": "three-1-1.noarch", "path": "/usr/share/three/prog.bpf.o",
                 "repository": "https://repo.example/os/"}],
    "unowned": [{"package": "two-1-1.x86_64", "directories": ["/usr/lib/bpf"],
                 "repository": "https://repo.example/os/", "requires_known": True}],
}  # fmt: skip


def test_text_counts_then_every_item():
    assert render_text(DOC).splitlines() == [
        "       3  packages in the repositories",
        "       2  packages shipping BPF objects",
        "       2  BPF objects in the BPF directories",
        "       1  bpf(NAME) provides",
        "       1  name clashes",
        "       1  BPF-looking files outside the BPF directories (by name)",
        "       1  packages using a BPF directory without owning or requiring it",
        "clash: shared.o: one-1-1.x86_64, two-1-1.x86_64",
        "outside: three-1-1.noarch: /usr/share/three/prog.bpf.o",
        "unowned: two-1-1.x86_64: /usr/lib/bpf",
        "object: one-1-1.x86_64: /usr/lib64/bpf/shared.o",
        "object: two-1-1.x86_64: /usr/lib/bpf/shared.o",
    ]


def _hostile() -> dict:
    doc = copy.deepcopy(DOC)
    doc["clashes"][0]["bpf_name"] = "shared\x1b[2J.o"
    doc["outside"][0]["path"] = "/usr/share/three/\nclash: forged.o"
    doc["objects"][0]["path"] = "/usr/lib64/bpf/\x07.o"
    doc["unowned"][0]["directories"] = ["/usr/lib/bpf/\x1b]0;owned\x07"]
    return doc


def test_text_escapes_names_from_packages():
    text = render_text(_hostile())
    assert "clash: shared\\x1b[2J.o: one-1-1.x86_64, two-1-1.x86_64" in text.splitlines()
    assert "outside: three-1-1.noarch: /usr/share/three/\\nclash: forged.o" in text.splitlines()
    assert "object: one-1-1.x86_64: /usr/lib64/bpf/\\a.o" in text.splitlines()


def test_text_escapes_unowned_directories():
    text = render_text(_hostile())
    assert "\x1b" not in text and "\x07" not in text
    assert "unowned: two-1-1.x86_64: /usr/lib/bpf/\\x1b]0;owned\\a" in text.splitlines()


def test_json_is_the_document():
    text = render_json(_hostile())
    assert text.endswith("\n") and json.loads(text) == _hostile()
    assert "\\u001b" in text  # JSON escapes control characters itself
    assert "é" in render_json({"name": "é"})  # ensure_ascii=False: UTF-8 names stay readable


class _Page(html.parser.HTMLParser):
    """The page's text by element id, its script and table cells."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        self.cells: list[str] = []
        self.tags: list[str] = []
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids[attrs["id"]] = ""
            self.classes[attrs["id"]] = attrs.get("class") or ""
        self._open.append((tag, attrs.get("id")))

    def handle_endtag(self, tag):
        while self._open:
            opened, _ = self._open.pop()
            if opened == tag:
                break

    def handle_data(self, data):
        for _tag, ident in self._open:
            if ident is not None:
                self.ids[ident] += data
        if self._open and self._open[-1][0] == "td":
            self.cells.append(data)


def test_html_page_is_self_contained_and_escaped():
    page_text = render_html(_hostile() | {"outside": [{"package": "<script>alert(1)</script>", "path": "/x\"y'"}]})
    page = _Page()
    page.feed(page_text)
    assert page.tags.count("script") == 1  # the page's own sorting script only
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_text
    assert "<script>alert(1)</script>" in page.cells
    assert "default-src 'none'" in page_text  # no network needed, none allowed
    assert "http://" not in page_text.replace("https://repo.example/os/", "")


def test_html_counts_and_sections():
    page = _Page()
    page.feed(render_html(DOC))
    assert page.ids["count-name_clashes"].startswith("1") and "bad" in page.classes["count-name_clashes"]
    assert page.ids["count-packages"].startswith("3") and "bad" not in page.classes["count-packages"]
    for section, rows in (("clashes", 1), ("objects", 2), ("provides", 1), ("outside", 1), ("unowned", 1)):
        assert section in page.ids and f"({rows})" in page.ids[section], section
    assert "one-1-1.x86_64, two-1-1.x86_64" in page.cells
    assert "/usr/lib/bpf/shared.o, /usr/lib64/bpf/shared.o" in page.cells


def test_html_of_an_empty_inventory():
    empty = DOC | {
        "counts": dict.fromkeys(DOC["counts"], 0),
        "objects": [],
        "provides": [],
        "clashes": [],
        "outside": [],
        "unowned": [],
        "repositories": [{"location": "/srv/a", "packages": 0}, {"location": "/srv/b", "packages": 0}],
    }
    page = _Page()
    page.feed(render_html(empty))
    assert page.cells == []
    assert "bad" not in page.classes["count-name_clashes"]
    assert "repositories" in render_html(empty).split("</h1>")[0]
