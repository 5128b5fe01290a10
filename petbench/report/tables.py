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


def marks_of(record: RunRecord) -> list[Badge]:
    """What a record says about where its numbers come from: ``external`` (imported predictions, issue 25's
    ``provenance.kind``), ``merged``, ``re-implementation`` (the method's declared ``provenance`` is not the
    authors' code, issue 27), ``variant`` (its ``variant_note``), and any ``marks`` a method stores itself."""
    data = record.data
    method = data.get("method") if isinstance(data.get("method"), dict) else {}
    found: dict[str, str] = {}
    provenance = data.get("provenance")
    kind = provenance.get("kind") if isinstance(provenance, dict) else None
    if kind in ("external", "merged") or method.get("external") is True:
        found["external" if kind != "merged" else "merged"] = MARK_TITLES["external" if kind != "merged" else "merged"]
    declared = method.get("provenance")
    if isinstance(declared, str) and declared in ("port", "reconstruction", "library"):
        source = method.get("provenance_source")
        found["re-implementation"] = f"re-implementation ({declared})" + (f": {source}" if isinstance(source, str) else "")
    if isinstance(method.get("variant_note"), str) and method["variant_note"]:
        found["variant"] = f"variant: {method['variant_note']}"
    marks = method.get("marks")
    if isinstance(marks, dict):
        marks = [name for name, on in marks.items() if on]
    if isinstance(marks, (list, tuple)):
        for mark in marks:
            if isinstance(mark, str) and mark:
                found.setdefault(mark, MARK_TITLES.get(mark, mark))
    return [Badge(text, title) for text, title in found.items()]


def method_marks(records: list[RunRecord]) -> dict[str, list[Badge]]:
    found: dict[str, dict[str, Badge]] = {}
    for record in records:
        entry = found.setdefault(record.method, {})
        for badge in marks_of(record):
            entry.setdefault(badge.text, badge)
    return {method: list(badges.values()) for method, badges in found.items()}


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
        named = {m.kind.replace("-", "") for m in row.marks}  # the model's "reimplementation" is our "re-implementation"
        row_badges += [b for b in marks.get(method, []) if b.text.replace("-", "") not in named]
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
