"""The one adapter between the CLI's table model and the page.

The page's leaderboard is :func:`petbench.results.leaderboard.leaderboard_model` and Tables I/II are
:func:`petbench.grids.tables.paper_table_model`: the very :class:`~petbench.tables.model.TableModel`
objects that ``petbench compare`` renders. This module lays their cells out as HTML rows; each table
also carries the CLI's ``--format json`` of the same model, embedded in the page, so a reader (and a
test) can check that the two agree. Nothing here computes a number: sort keys are the cells' values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..results.record import RunRecord, pooled_setups
from ..tables.model import TableModel
from ..tables.render import render

#: marks a record carries itself (issue 25: external records; issue 27: method marks), as the page names them
MARK_TITLES = {"external": "external: imported predictions, not trained here",
               "variant": "variant: differs from the published method",
               "re-implementation": "re-implementation: not the authors' code",
               "reimplementation": "re-implementation: not the authors' code",
               "merged": "merged from another results folder"}


@dataclass
class Badge:
    text: str
    title: str


@dataclass
class HtmlTable:
    key: str
    title: str
    header: list[str]
    rows: list[list[str]]                 # cell text, as the CLI prints it (the label without mark symbols)
    best: list[list[bool]]                # the CLI's bold cells
    sort_keys: list[list[float | str | None]]
    badges: list[list[Badge]]             # per row: its marks
    notes: list[str] = field(default_factory=list)
    json_text: str = ""                   # the CLI's --format json of the same model
    row_methods: list[str] = field(default_factory=list)


def marks_of(record: RunRecord) -> list[str]:
    """What a record says about where its numbers come from: ``external`` (imported predictions),
    ``merged``, and the method's own marks (``variant``, ``re-implementation``) when it declares them."""
    data = record.data
    marks: list[str] = []
    provenance = data.get("provenance")
    if isinstance(provenance, dict):
        kind = provenance.get("kind")
        if isinstance(kind, str) and kind in ("external", "merged"):
            marks.append(kind)
    declared = data.get("method", {}).get("marks")
    if isinstance(declared, dict):
        declared = [name for name, on in declared.items() if on]
    if isinstance(declared, (list, tuple)):
        marks += [m for m in declared if isinstance(m, str) and m and m not in marks]
    return marks


def method_marks(records: list[RunRecord]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for record in records:
        entry = found.setdefault(record.method, [])
        entry += [m for m in marks_of(record) if m not in entry]
    return found


def sort_key(value) -> float | str | None:
    """A cell's value as one sortable number: an interval by its low end, a p-value pair by the corrected p."""
    if isinstance(value, dict):
        value = value.get("p_holm", value.get("difference"))
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return None if math.isnan(float(value)) else float(value)
    return None


def html_table(model: TableModel, title: str, records: list[RunRecord], method_of=lambda row: row.label) -> HtmlTable:
    """``model`` laid out for the page; ``method_of(row)``: the method whose records' marks the row shows
    (the model's own marks come first; a record's mark the model already names is not repeated)."""
    marks = method_marks(records)
    header = [c.title for c in model.columns]
    rows, best, keys, badges, methods = [], [], [], [], []
    for row in model.rows:
        texts, bolds, sorts = [], [], []
        for column in model.columns:
            if column.kind == "label":
                texts.append(row.label)
                bolds.append(False)
                sorts.append(row.label)
                continue
            cell = row.cells.get(column.key)
            texts.append(cell.text if cell is not None else "–")
            bolds.append(bool(cell is not None and cell.best))
            sorts.append(sort_key(cell.value) if cell is not None else None)
        method = method_of(row)
        row_badges = [Badge(m.symbol, f"{m.kind}: {m.note}") for m in row.marks]
        named = {m.kind for m in row.marks}
        row_badges += [Badge(m, MARK_TITLES.get(m, m)) for m in marks.get(method, []) if m not in named]
        rows.append(texts)
        best.append(bolds)
        keys.append(sorts)
        badges.append(row_badges)
        methods.append(str(method))
    notes = ([model.caption] if model.caption else []) + model.note_lines()
    if model.name == "leaderboard":
        notes += [f"the {method!r} row pools runs with different settings ({', '.join(ids)})"
                  for method, ids in pooled_setups(records).items()]
    return HtmlTable(model.name, title, header, rows, best, keys, badges, notes,
                     json_text=render(model, "json"), row_methods=methods)
