"""The self-contained HTML page of the reports (``repo-report``, ``list``): counts, then sortable tables.

The page needs no network to view (inline CSS and script, a Content Security
Policy that forbids fetching anything); every name is escaped by jinja2's
autoescape.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{{ title }}</title>
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
<h1>{{ heading }}</h1>
<p>{% for text, code in intro %}{% if code %}<code>{{ text }}</code>{% else %}{{ text }}{% endif %}{% endfor %}</p>
<div class="counts">
{% for key, label in labels.items() %}<div class="count{{ ' bad' if key in bad and counts[key] }}"
 id="count-{{ key }}"><b>{{ counts[key] }}</b>{{ label }}</div>
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


def render(
    title: str,
    heading: str,
    intro: Sequence[tuple[str, bool]],
    labels: Mapping[str, str],
    counts: Mapping[str, int],
    bad: Collection[str],
    sections: Sequence[Mapping[str, Any]],
) -> str:
    """The page. ``intro``: (text, shown as code) segments; ``labels``: count key -> label, in order; ``bad``:
    the counts shown in red when not 0; ``sections``: dicts of id, title, columns and rows (lists of cells)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_PAGE).render(
        title=title, heading=heading, intro=intro, labels=labels, counts=counts, bad=bad, sections=sections
    )
