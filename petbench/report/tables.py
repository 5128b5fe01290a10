"""The one adapter between the CLI's table objects and the page.

The page's leaderboard is :func:`petbench.results.leaderboard.build_leaderboard` rendered by
:func:`petbench.results.formats.cells` (the cells of ``compare --format markdown``), and Tables I/II are
:func:`petbench.grids.tables.build_paper_table` rendered by :func:`petbench.grids.tables.text_cells`
(those of ``compare --table N``). Each table also carries the CLI's ``--format json`` text of the same
object, embedded in the page, so a reader (and a test) can check that the two agree. Nothing here
computes a number: sort keys are the table object's own values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..results.formats import BOLD_OFF, BOLD_ON, cells, render
from ..results.leaderboard import Leaderboard, conventions_line
from ..results.record import RunRecord, pooled_setups

#: a record's marks as the page names them (issue 25: external records; issue 27: method marks)
MARK_TITLES = {"external": "external: imported predictions, not trained here",
               "variant": "variant: differs from the published method",
               "re-implementation": "re-implementation: not the authors' code",
               "merged": "merged from another results folder"}


@dataclass
class HtmlTable:
    key: str
    title: str
    header: list[str]
    rows: list[list[str]]                 # cell text, as the CLI prints it
    best: list[list[bool]]                # the CLI's bold cells
    sort_keys: list[list[float | str | None]]
    marks: list[list[str]]                # per row: the marks of its method's records
    notes: list[str] = field(default_factory=list)
    json_text: str = ""                   # the CLI's --format json of the same object
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


def unbold(cell: str) -> tuple[str, bool]:
    if len(cell) >= 2 and cell[0] == BOLD_ON and cell[-1] == BOLD_OFF:
        return cell[1:-1], True
    return cell, False


def number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def leaderboard_table(board: Leaderboard, records: list[RunRecord]) -> HtmlTable:
    header, text_rows = cells(board, (BOLD_ON, BOLD_OFF))
    table = board.table
    show_group = len(header) - len(board.metrics) - 3 == 2
    marks = method_marks(records)
    rows, best, keys, row_marks, methods = [], [], [], [], []
    for (_, row), line in zip(table.iterrows(), text_rows):
        texts, bolds = zip(*(unbold(c) for c in line)) if line else ((), ())
        rows.append(list(texts))
        best.append(list(bolds))
        sort = ([row["dataset"], number(row["drf"])] if show_group else []) + [row["method"]]
        sort += [number(row.get(f"{m}_mean")) for m in board.metrics]
        sort += [number(row.get("parameters")), number(row.get("runs"))]
        keys.append(sort)
        row_marks.append(marks.get(row["method"], []))
        methods.append(row["method"])
    notes = [f"mean ± std over test subjects, pooled over seeds; best in bold. Metrics: {conventions_line(board.metrics)}."]
    notes += [f"the {method!r} row pools runs with different settings ({', '.join(ids)})"
              for method, ids in pooled_setups(records).items()]
    return HtmlTable("leaderboard", "Leaderboard", header, rows, best, keys, row_marks, notes,
                     json_text=render(board, "json"), row_methods=methods)


def paper_html_table(table, records: list[RunRecord]) -> HtmlTable:
    """Table I or II (a :class:`petbench.grids.tables.PaperTable`) as the CLI prints it."""
    from ..grids.tables import render_paper_table, text_cells

    header, text_rows = text_cells(table, bold=(BOLD_ON, BOLD_OFF))
    marks = method_marks(records)
    rows, best, keys, row_marks = [], [], [], []
    for paper_row, line in zip(table.rows, text_rows):
        texts, bolds = zip(*(unbold(c) for c in line))
        rows.append(list(texts))
        best.append(list(bolds))
        sort: list = [paper_row.label]
        if table.number == 2:
            sort += [1.0 if paper_row.components.get(c) else 0.0 for c in table.components]
        sort += [number(paper_row.stats[m]["mean"]) for m in table.metrics]
        if table.number == 1:
            sort.append(number(paper_row.parameters))
        if table.reference is not None:
            sort += [number(paper_row.stats[m]["p"]) for m in table.metrics]
        keys.append(sort)
        row_marks.append(marks.get(paper_row.method, []))
    roman = {1: "I", 2: "II"}[table.number]
    return HtmlTable(f"table{table.number}", f"Table {roman}", header, rows, best, keys, row_marks,
                     [table.caption, table.note], json_text=render_paper_table(table, "json"),
                     row_methods=[r.method for r in table.rows])
