"""The HTML of the page: sections in reading order, the tables as the CLI prints them, the viewer's
controls, and petbench's own CSS and JavaScript inlined (``static/``), so the file works offline."""
from __future__ import annotations

import json
from importlib import resources

from .sections import Section, esc, json_for_script
from .tables import HtmlTable


def static_text(name: str) -> str:
    return resources.files("petbench.report").joinpath("static", name).read_text(encoding="utf-8")


def table_html(table: HtmlTable) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in table.header)
    lines = []
    for texts, bolds, keys, badges, method in zip(table.rows, table.best, table.sort_keys, table.badges,
                                                   table.row_methods or [""] * len(table.rows)):
        cells = []
        for index, (text, bold, key) in enumerate(zip(texts, bolds, keys)):
            sort = "" if key is None else (repr(float(key)) if isinstance(key, (int, float)) else str(key))
            marks = "".join(f'<span class="mark" title="{esc(b.title)}">{esc(b.text)}</span>'
                            for b in badges) if index == 0 else ""
            best = ' class="best"' if bold else ""
            cells.append(f'<td data-sort="{esc(sort)}"{best}>'
                         f'<span class="cell">{esc(text)}</span>{marks}</td>')
        lines.append(f'<tr data-method="{esc(method)}">{"".join(cells)}</tr>')
    body = "\n".join(lines)
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in table.notes)
    return (f'<div class="scroll"><table class="sortable" id="{esc(table.key)}-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table></div>{notes}'
            f'<details><summary>the same table as <code>--format json</code></summary>'
            f'<script type="application/json" id="{esc(table.key)}-json">{json_for_script(table.json_text)}</script>'
            f'<p class="note">embedded in this page as <code>#{esc(table.key)}-json</code></p></details>')


VIEWER_CONTROLS = """
<div id="viewer" data-slice="">
<div class="controls">
  <label>subject <select id="subject-select"></select></label>
  <label>axial slice <input type="range" id="slice-z" min="0" max="0" value="0"><output id="slice-z-label"></output></label>
  <label>coronal <input type="range" id="slice-y" min="0" max="0" value="0"><output id="slice-y-label"></output></label>
  <label>sagittal <input type="range" id="slice-x" min="0" max="0" value="0"><output id="slice-x-label"></output></label>
</div>
<div class="controls">
  <label>SUV window from <input type="range" id="window-lo" min="0" max="1" step="0.01" value="0"></label>
  <label>to <input type="range" id="window-hi" min="0" max="1" step="0.01" value="1"><output id="window-label"></output></label>
  <label>error window to <input type="range" id="error-hi" min="0" max="1" step="0.01" value="0.5"><output id="error-label"></output></label>
  <label>zoom <select id="zoom"><option value="1">1×</option><option value="2">2×</option><option value="4">4×</option><option value="8">8×</option></select></label>
  <label><select id="lesion-select" disabled><option value="">no known lesions</option></select></label>
</div>
<p id="viewer-note"></p>
<div id="viewer-grid"></div>
</div>
"""


def viewer_html(payload: dict) -> str:
    data = json_for_script(json.dumps(payload, separators=(",", ":")))
    return (VIEWER_CONTROLS + f'<script type="application/json" id="petbench-volumes">{data}</script>'
            '<p class="note">One shared window for every column; click an image to move the other planes (and the '
            'zoom centre) there. Images are 8-bit copies (one grey step = the subject\'s largest value / 255), '
            'downsampled for the page; the numbers in the tables come from the full-precision volumes.</p>')


def page_html(title: str, header: str, sections: list[Section]) -> str:
    nav = "".join(f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(s.html() for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{esc(title)}</title>
<style>{static_text("report.css")}</style>
</head>
<body>
<header><h1>{esc(title)}</h1><p class="note">{header}</p><nav>{nav}</nav></header>
{body}
<script>{static_text("report.js")}</script>
</body>
</html>
"""
