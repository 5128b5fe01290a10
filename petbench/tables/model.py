"""The table model: what a results table says, as data, before any format.

Every table petbench shows (``compare``, ``compare --table 1|2``, ``compare --by``, the HTML report)
is built once as a :class:`TableModel` and then rendered (:mod:`.render`): terminal, Markdown, LaTeX,
CSV, JSON, or a page. A renderer never computes a number; it lays out ``Cell.text`` and marks.

- :class:`Column`: a stable ``key`` (``psnr``, ``psnr_ci``, ``p_psnr``, ``rank``, …), a title and a kind;
- :class:`TableRow`: one row's cells by column key, its per-row :class:`Mark` s (footnote symbols such
  as a method variant, a re-implementation or an external result) and its numbers (``values``, flat,
  for CSV and JSON; ``data``, nested, for JSON only);
- :class:`Note`: a sentence under the table, with a ``kind`` (``layout``: what a cell shows;
  ``statistics``: the methods used; ``warning``; ``conventions``; ``options``; others may be added).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NOTE_KINDS = ("layout", "statistics", "warning", "conventions", "options", "marks")


@dataclass
class Mark:
    """A mark on a row, shown as ``symbol`` after the row's label with ``note`` as its footnote."""

    kind: str  # e.g. "variant", "reimplementation", "external"
    symbol: str
    note: str


@dataclass
class Column:
    key: str
    title: str
    kind: str = "text"  # label, metric, ci, difference, p, effect, rank, share, number, check, text
    metric: str | None = None


@dataclass
class Cell:
    text: str
    value: Any = None  # the number(s) behind the text, for JSON
    best: bool = False  # the best value of its column (bold)
    marks: list[str] = field(default_factory=list)  # e.g. "significant"


@dataclass
class TableRow:
    key: str
    label: str
    cells: dict[str, Cell] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # flat: one CSV column each
    data: dict[str, Any] = field(default_factory=dict)  # nested extras for JSON

    @property
    def shown_label(self) -> str:
        return self.label + "".join(mark.symbol for mark in self.marks)


@dataclass
class Note:
    kind: str
    text: str


@dataclass
class TableModel:
    name: str  # "leaderboard", "table1", "table2", "by-n_train-psnr", ...
    caption: str
    columns: list[Column]
    rows: list[TableRow]
    notes: list[Note] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # table-level content for JSON (metrics, statistics, …)

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)

    def row(self, key: str) -> TableRow:
        return next(r for r in self.rows if r.key == key)

    def add_note(self, kind: str, text: str) -> None:
        self.notes.append(Note(kind, text))

    def mark_row(self, key: str, mark: Mark) -> None:
        """Add ``mark`` to row ``key`` (its footnote is listed once, however many rows carry it)."""
        self.row(key).marks.append(mark)

    def footnotes(self) -> list[Mark]:
        """Every distinct row mark, in the order of first appearance."""
        seen: dict[tuple, Mark] = {}
        for row in self.rows:
            for mark in row.marks:
                seen.setdefault((mark.symbol, mark.note), mark)
        return list(seen.values())

    def note_lines(self) -> list[str]:
        """The footnotes of the row marks, then the notes, as printed under the table."""
        return [f"{m.symbol} {m.note}" for m in self.footnotes()] + [n.text for n in self.notes]

    def as_dict(self) -> dict:
        return {**self.data, "name": self.name, "caption": self.caption,
                "columns": [{"key": c.key, "title": c.title, "kind": c.kind, "metric": c.metric} for c in self.columns],
                "notes": [{"kind": n.kind, "text": n.text} for n in self.notes],
                "marks": [{"kind": m.kind, "symbol": m.symbol, "note": m.note} for m in self.footnotes()],
                "rows": [{**row.data, "key": row.key, "label": row.label,
                          "marks": [{"kind": m.kind, "symbol": m.symbol, "note": m.note} for m in row.marks],
                          "values": row.values,
                          "cells": {k: {"text": c.text, "value": c.value, "best": c.best, "marks": c.marks}
                                    for k, c in row.cells.items()}} for row in self.rows]}
