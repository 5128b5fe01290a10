"""What a table's rows ran, as marks and note lines generated from the run records.

Each method declares where its implementation comes from (``Method.provenance``, ``provenance_source``),
whether the run is a variant of its source that a reader must know about (``variant_note``), and options
every note states (``noted_options``); the host stores these with the run's options that differ from its
preset (``method.preset_differences``) in the run record (:func:`petbench.runner.method_extras`). From the
records of a table's rows this module builds:

- a mark per row whose method declared a ``variant_note`` ("†", "‡", ... one per distinct text), to put
  after the row's label, and the footnote that explains it;
- one line that says, for each provenance, which rows it covers (and which rows declared none);
- one line with every option that differs from the run's preset, every noted option, and what a method
  fitted from its training data (``method.fitted``, e.g. a post-filter's width).

It knows nothing of how a table is laid out: a table model passes ``(row key, label, records)`` per row
and places the marks and lines itself (``petbench.grids.tables`` does for Tables I and II).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..tables.model import Mark, Note, TableModel
from .record import RunRecord

#: the marks, in the order rows get them; more distinct footnotes than marks repeat them doubled
MARKS = ("†", "‡", "§", "¶", "‖", "#")

#: how a note names each declared provenance (the keys are ``petbench.method.PROVENANCES``)
PROVENANCE_WORDS = {
    "authors-code": "the authors' code",
    "port": "a port of published code",
    "reconstruction": "reconstructed from the paper (no code to follow)",
    "library": "a library's implementation",
}


@dataclass
class TableNotes:
    marks: dict[str, str] = field(default_factory=dict)  # row key -> mark after its label ("" for none)
    mark_notes: dict[str, str] = field(default_factory=dict)  # row key -> its footnote without the mark
    footnotes: list[str] = field(default_factory=list)  # "† Cycle-GAN: ...", in mark order
    provenance: str = ""  # one line, "" when no row declared anything
    options: str = ""  # one line, "" when every row ran its preset as it is and noted nothing

    @property
    def lines(self) -> list[str]:
        """Every note line, footnotes first."""
        return [*self.footnotes, *(line for line in (self.provenance, self.options) if line)]


def apply_to(model: TableModel, rows: Sequence[tuple[str, str, Sequence[RunRecord]]]) -> None:
    """Put the marks and note lines of ``rows`` (``(row key, label, records)``, in display order) on
    ``model``: a variant's mark after its row's label with its footnote, then the provenance and options
    lines, so every renderer (terminal, Markdown, LaTeX, CSV, JSON, the HTML report) shows them."""
    notes = table_notes(rows)
    for key, mark in notes.marks.items():
        if mark:
            model.mark_row(key, Mark("variant", mark, notes.mark_notes[key]))
    for kind, line in (("provenance", notes.provenance), ("options", notes.options)):
        if line:
            model.notes.append(Note(kind, line))


def mark_for(index: int) -> str:
    return MARKS[index % len(MARKS)] * (1 + index // len(MARKS))


def method_section(record: RunRecord) -> dict:
    info = record.data.get("method")
    return info if isinstance(info, dict) else {}


def text_of(value: Any) -> str:
    """An option value as a note shows it (strings bare, the rest as JSON)."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def table_notes(rows: Sequence[tuple[str, str, Sequence[RunRecord]]]) -> TableNotes:
    """Marks and note lines for a table whose rows are ``(row key, label, records)``, in display order.
    Every record of a row ran the same method with the same options; the first one speaks for the row."""
    notes = TableNotes()
    texts: dict[str, str] = {}  # footnote text -> its mark
    by_provenance: dict[str, list[str]] = {}
    undeclared: list[str] = []
    option_parts: list[str] = []
    for key, label, records in rows:
        if not records:
            notes.marks[key] = ""
            continue
        record = records[0]
        info = method_section(record)
        text = info.get("variant_note")
        if isinstance(text, str) and text.strip():
            if text not in texts:
                texts[text] = mark_for(len(texts))
                notes.footnotes.append(f"{texts[text]} {label}: {text.strip()}")
            notes.marks[key] = texts[text]
            notes.mark_notes[key] = f"{label}: {text.strip()}"
        else:
            notes.marks[key] = ""
        kind = info.get("provenance")
        if kind in PROVENANCE_WORDS:
            source = info.get("provenance_source")
            by_provenance.setdefault(kind, []).append(f"{label} ({source})" if isinstance(source, str) and source
                                                      else label)
        elif info.get("parameters"):  # a trained method that says nothing (an input row has no parameters)
            undeclared.append(label)
        mixed = len({json.dumps(method_section(r).get("options"), sort_keys=True, default=str) for r in records}) > 1
        part = "; ".join(p for p in ("its runs differ in their options" if mixed else options_part(record),
                                     fitted_part(records)) if p)
        if part:
            option_parts.append(f"{label}: {part}")
    listed = [f"{PROVENANCE_WORDS[kind]}: {', '.join(labels)}" for kind, labels in
              sorted(by_provenance.items(), key=lambda item: list(PROVENANCE_WORDS).index(item[0]))]
    if undeclared:
        listed.append(f"not declared: {', '.join(undeclared)}")
    if listed:
        notes.provenance = "Implementations: " + "; ".join(listed) + "."
    if option_parts:
        notes.options = "Options: " + "; ".join(option_parts) + "."
    return notes


def options_part(record: RunRecord) -> str:
    """``"preset quick; lambda_sup=0 (preset: 10.0); swap_decode=transferred"``: the run's preset, its
    options that differ from it, then the noted options at their values; "" when there is nothing to say."""
    info = method_section(record)
    differences = info.get("preset_differences")
    differences = differences if isinstance(differences, dict) else {}
    options = info.get("options") if isinstance(info.get("options"), dict) else {}
    noted = [key for key in info.get("noted_options") or () if isinstance(key, str) and key not in differences]
    parts = []
    for key in sorted(differences):
        entry = differences[key]
        if isinstance(entry, dict) and "run" in entry:
            parts.append(f"{key}={text_of(entry['run'])} (preset: {text_of(entry.get('preset'))})")
    parts += [f"{key}={text_of(options[key])}" for key in noted if key in options]
    if not parts:
        return ""
    preset = (record.data.get("config") or {}).get("preset")
    return (f"preset {preset}; " if isinstance(preset, str) else "") + ", ".join(parts)


def fitted_part(records: Sequence[RunRecord]) -> str:
    """``"fitted sigma=1.19 px"`` (a range over the row's seeds when they differ) from each record's
    ``method.fitted`` (``Method.fitted_parameters``): its numbers, with its ``unit`` when it gives one."""
    values: dict[str, list[float]] = {}
    unit = ""
    for record in records:
        fitted = method_section(record).get("fitted")
        if not isinstance(fitted, dict):
            continue
        unit = fitted.get("unit") if isinstance(fitted.get("unit"), str) else unit
        for key, value in fitted.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.setdefault(key, []).append(float(value))
    parts = []
    for key, numbers in values.items():
        low, high = min(numbers), max(numbers)
        shown = f"{low:.3g}" if low == high else f"{low:.3g}–{high:.3g}"
        shown += f" {unit}" if unit and unit != "normalised intensity" else ""
        parts.append(f"{key}={shown}" + ("" if low == high else f" over {len(numbers)} runs"))
    return ("fitted on the paired training subjects: " + ", ".join(parts)) if parts else ""


def labelled(rows: Iterable[tuple[str, str]], notes: TableNotes) -> dict[str, str]:
    """row key -> its label with its mark, for a table model that keeps labels apart from marks."""
    return {key: label + notes.marks.get(key, "") for key, label in rows}
