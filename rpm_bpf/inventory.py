"""``rpm-bpf repo-report``: what a whole repository or compose ships under the BPF directories.

From metadata only (repodata.py): which packages ship BPF objects and where,
which provide ``bpf(NAME)``, the name clashes among them, files that look
like BPF objects outside the BPF directories (by name: metadata carries no
file types), and packages that put files in a BPF directory without owning
it or requiring its owner. For people who would rather look than read, the
same as a self-contained HTML page: counts at the top, sortable tables, no
network needed to view it (inline CSS and script; names escaped by jinja2).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from . import __version__, bpfdirs
from .bpfdirs import relative_name
from .findings import PackageRef
from .repodata import RepoContents

SCHEMA = "rpm-bpf/repo-report/v1"


def _roots(pkg: PackageRef) -> tuple[str, ...]:
    return bpfdirs.for_arch(pkg.arch).roots if bpfdirs.is_arch_name(pkg.arch) else ()


def build(repos: Iterable[RepoContents], owner_provides: tuple[str, ...]) -> dict[str, Any]:
    """The inventory as a JSON-ready document (schema ``SCHEMA``)."""
    repos = list(repos)
    objects: list[dict[str, Any]] = []
    provides: list[dict[str, Any]] = []
    outside: list[dict[str, Any]] = []
    unowned: list[dict[str, Any]] = []
    by_name: dict[str, dict[str, list[tuple[str, str]]]] = {}  # relname -> package name -> [(nevra, path)]
    for repo in repos:
        for pkg, paths in sorted(repo.files.items()):
            roots = _roots(pkg)
            for path in sorted(paths):
                rel = relative_name(path, roots)
                objects.append(
                    {"package": pkg.nevra, "name": pkg.name, "path": path, "bpf_name": rel, "repository": repo.label}
                )
                if rel is not None:
                    by_name.setdefault(rel, {}).setdefault(pkg.name, []).append((pkg.nevra, path))
            used = {root for root in roots for path in paths if path.startswith(root + "/")}
            requires = set(repo.requires.get(pkg, []))
            missing = sorted(
                root
                for root in used
                if root not in repo.owned.get(pkg, set())
                and root not in requires
                and not requires & set(owner_provides)
            )
            if missing:
                unowned.append(
                    {
                        "package": pkg.nevra,
                        "directories": missing,
                        "repository": repo.label,
                        "requires_known": pkg in repo.requires,
                    }
                )
        for pkg, names in sorted(repo.provides.items()):
            for name in sorted(set(names)):
                provides.append({"package": pkg.nevra, "bpf_name": name, "repository": repo.label})
                holders = by_name.setdefault(name, {})
                if not any(nevra == pkg.nevra for nevra, _ in holders.get(pkg.name, [])):
                    holders.setdefault(pkg.name, []).append((pkg.nevra, f"bpf({name})"))
        for pkg, paths in sorted(repo.outside.items()):
            outside.extend({"package": pkg.nevra, "path": path, "repository": repo.label} for path in sorted(paths))
    clashes = [
        {
            "bpf_name": name,
            "packages": sorted(nevra for entries in holders.values() for nevra, _ in entries),
            "where": sorted({where for entries in holders.values() for _, where in entries}),
        }
        for name, holders in sorted(by_name.items())
        if len(holders) > 1
    ]
    shipping = {o["package"] for o in objects} | {p["package"] for p in provides}
    return {
        "schema": SCHEMA,
        "tool": {"name": "rpm-bpf", "version": __version__},
        "repositories": [{"location": r.label, "packages": r.packages} for r in repos],
        "counts": {
            "packages": sum(r.packages for r in repos),
            "packages_shipping_bpf": len(shipping),
            "objects": sum(1 for o in objects if o["bpf_name"] is not None),
            "bpf_provides": len(provides),
            "name_clashes": len(clashes),
            "objects_outside_bpfdir": len(outside),
            "packages_not_owning_bpfdir": len(unowned),
        },
        "objects": objects,
        "provides": provides,
        "clashes": clashes,
        "outside": outside,
        "unowned": unowned,
    }


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_LABELS = {
    "packages": "packages in the repositories",
    "packages_shipping_bpf": "packages shipping BPF objects",
    "objects": "BPF objects in the BPF directories",
    "bpf_provides": "bpf(NAME) provides",
    "name_clashes": "name clashes",
    "objects_outside_bpfdir": "BPF-looking files outside the BPF directories (by name)",
    "packages_not_owning_bpfdir": "packages using a BPF directory without owning or requiring it",
}


def render_text(doc: dict[str, Any]) -> str:
    from .safetext import escape as e

    lines = [f"{doc['counts'][key]:8}  {label}" for key, label in _LABELS.items()]
    lines += [f"clash: {e(c['bpf_name'])}: {', '.join(e(p) for p in c['packages'])}" for c in doc["clashes"]]
    lines += [f"outside: {e(item['package'])}: {e(item['path'])}" for item in doc["outside"]]
    lines += [f"unowned: {e(item['package'])}: {', '.join(item['directories'])}" for item in doc["unowned"]]
    lines += [f"object: {e(item['package'])}: {e(item['path'])}" for item in doc["objects"]]
    return "\n".join(lines) + "\n"


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>rpm-bpf repository report</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
.counts { display: flex; flex-wrap: wrap; gap: .8em; margin: 1em 0; }
.count { border: 1px solid #ccc; border-radius: 6px; padding: .6em 1em; min-width: 10em; }
.count b { display: block; font-size: 1.8em; }
.count.bad b { color: #b00; }
table { border-collapse: collapse; margin: .5em 0 2em; width: 100%; }
th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: left; font-size: .9em; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
code { font-size: .95em; }
</style></head>
<body>
<h1>BPF objects in {{ doc.repositories | length }}
{{ "repository" if doc.repositories | length == 1 else "repositories" }}</h1>
<p>{% for r in doc.repositories %}<code>{{ r.location }}</code>
({{ r.packages }} packages){{ ", " if not loop.last }}{% endfor %}.
Generated by rpm-bpf {{ doc.tool.version }} from repository metadata only.</p>
<div class="counts">
{% for key, label in labels.items() %}<div class="count{{ ' bad' if key in bad and doc.counts[key] }}"
 id="count-{{ key }}"><b>{{ doc.counts[key] }}</b>{{ label }}</div>
{% endfor %}</div>
{% for section in sections %}
<h2 id="{{ section.id }}">{{ section.title }} ({{ section.rows | length }})</h2>
<table class="sortable" id="table-{{ section.id }}"><thead><tr>
{% for column in section.columns %}<th>{{ column }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in section.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% endfor %}
<script>
// Sortable tables: click a header; or open PAGE#sort=TABLE:COLUMN:asc|desc to start sorted.
function sortTable(table, column, descending) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = a.cells[column].textContent, y = b.cells[column].textContent;
    const nx = Number(x), ny = Number(y);
    const order = (x !== "" && y !== "" && !isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return descending ? -order : order;
  });
  rows.forEach(row => body.appendChild(row));
  Array.from(table.tHead.rows[0].cells).forEach((th, i) =>
    th.setAttribute("aria-sort", i === column ? (descending ? "descending" : "ascending") : "none"));
}
document.querySelectorAll("table.sortable").forEach(table => {
  Array.from(table.tHead.rows[0].cells).forEach((th, i) => th.addEventListener("click", () =>
    sortTable(table, i, th.getAttribute("aria-sort") === "ascending")));
});
const wanted = /^#sort=([\\w-]+):(\\d+):(asc|desc)$/.exec(location.hash);
if (wanted) {
  const table = document.getElementById("table-" + wanted[1]);
  if (table) sortTable(table, Number(wanted[2]), wanted[3] === "desc");
}
</script>
</body></html>
"""


def render_html(doc: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    sections = [
        {
            "id": "clashes",
            "title": "Name clashes",
            "columns": ["BPF name", "packages", "where"],
            "rows": [[c["bpf_name"], ", ".join(c["packages"]), ", ".join(c["where"])] for c in doc["clashes"]],
        },
        {
            "id": "objects",
            "title": "Objects in the BPF directories",
            "columns": ["package", "path", "BPF name"],
            "rows": [[o["package"], o["path"], o["bpf_name"] or ""] for o in doc["objects"]],
        },
        {
            "id": "provides",
            "title": "bpf(NAME) provides",
            "columns": ["package", "BPF name"],
            "rows": [[p["package"], p["bpf_name"]] for p in doc["provides"]],
        },
        {
            "id": "outside",
            "title": "BPF-looking files outside the BPF directories (by name)",
            "columns": ["package", "path"],
            "rows": [[o["package"], o["path"]] for o in doc["outside"]],
        },
        {
            "id": "unowned",
            "title": "Packages using a BPF directory without owning or requiring it",
            "columns": ["package", "directories"],
            "rows": [[u["package"], ", ".join(u["directories"])] for u in doc["unowned"]],
        },
    ]
    bad = {"name_clashes", "objects_outside_bpfdir", "packages_not_owning_bpfdir"}
    return env.from_string(_HTML).render(doc=doc, labels=_LABELS, sections=sections, bad=bad)
