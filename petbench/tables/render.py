"""Render a :class:`~.model.TableModel` (or several, e.g. ``compare --by``'s one per metric) as a
terminal table (rich), Markdown, LaTeX, CSV or JSON. Renderers lay out cells; they compute nothing."""
from __future__ import annotations

import json
import math

import pandas as pd
from rich.console import Group
from rich.table import Table
from rich.text import Text
from tabulate import tabulate

from ..errors import UserError
from .model import TableModel

FORMATS = ("table", "markdown", "latex", "csv", "json")

LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "$": r"\$",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "<": r"\textless{}",
                 ">": r"\textgreater{}", "|": r"\textbar{}"}
LATEX_SYMBOLS = {"↑": r"$\uparrow$", "↓": r"$\downarrow$", "±": r"$\pm$", "–": "--", "×": r"$\times$",
                 "✓": r"\checkmark", "†": r"$^\dagger$", "‡": r"$^\ddagger$", "*": r"$^*$", "§": r"\S{}",
                 "Δ": r"$\Delta$", "≥": r"$\geq$", "≤": r"$\leq$", "χ": r"$\chi$", "²": r"$^2$", "α": r"$\alpha$"}


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prints it: every special character escaped, control characters dropped (a
    method name such as ``\\immediate\\write18{...}`` is text, never a command)."""
    return "".join(LATEX_ESCAPES.get(c, c) for c in text if c.isprintable() or c == " ")


def latex_text(text: str) -> str:
    """Escaped, then our own symbols (arrows, ±, check marks, footnote marks) as LaTeX."""
    return "".join(LATEX_SYMBOLS.get(c, c) for c in latex_escape(text))


def clean(value):
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def text_grid(model: TableModel, bold=("**", "**")) -> tuple[list[str], list[list[str]]]:
    header = [c.title for c in model.columns]
    rows = []
    for row in model.rows:
        line = []
        for column in model.columns:
            if column.kind == "label":
                line.append(row.shown_label)
                continue
            cell = row.cells.get(column.key)
            text = cell.text if cell is not None else "–"
            line.append(f"{bold[0]}{text}{bold[1]}" if cell is not None and cell.best and bold[0] else text)
        rows.append(line)
    return header, rows


def markdown(model: TableModel, notes: bool = True) -> str:
    header, rows = text_grid(model)
    body = tabulate(rows, headers=header, tablefmt="github", disable_numparse=True)
    lines = model.note_lines() if notes else []
    return "\n\n".join(([model.caption] if model.caption else []) + [body] + (["\n".join(lines)] if lines else []))


def latex(model: TableModel, notes: bool = True) -> str:
    bold_on, bold_off = "\x01", "\x02"
    header, rows = text_grid(model, bold=(bold_on, bold_off))

    def cell(text: str) -> str:
        if len(text) >= 2 and text[0] == bold_on and text[-1] == bold_off:
            return r"\textbf{" + latex_text(text[1:-1]) + "}"
        return latex_text(text)

    notes = " ".join(latex_text(line) for line in model.note_lines()) if notes else ""
    lines = [f"% petbench: {model.name}" + (r" (\checkmark needs \usepackage{amssymb})"
                                            if any(c.kind == "check" for c in model.columns) else ""),
             r"\begin{table}[t]", r"\centering",
             *([r"\caption{" + " ".join(t for t in (latex_text(model.caption), notes) if t) + "}"]
               if model.caption or notes else []),
             r"\label{tab:petbench-" + "".join(c for c in model.name if c.isalnum() or c == "-") + "}",
             r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\hline",
             " & ".join(latex_text(h) for h in header) + r" \\", r"\hline"]
    lines += [" & ".join(cell(c) for c in row) + r" \\" for row in rows]
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def terminal(model: TableModel, notes: bool = True) -> Table:
    header, rows = text_grid(model, bold=("", ""))
    caption = "\n".join(model.note_lines()) if notes else ""
    table = Table(title=model.caption or None, caption=Text(caption) if caption else None, caption_justify="left")
    for title in header:
        table.add_column(Text(title))  # not markup: "PSNR [dB]" would lose its "[dB]"
    for row, line in zip(model.rows, rows):
        styled = []
        for column, text in zip(model.columns, line):
            cell = row.cells.get(column.key)
            styled.append(Text(text, style="bold green" if cell is not None and cell.best else ""))
        table.add_row(*styled)
    return table


def csv_rows(model: TableModel) -> list[dict]:
    return [{"key": row.key, "label": row.label, **row.values,
             "marks": " ".join(m.kind for m in row.marks)} for row in model.rows]


def render(models: TableModel | list[TableModel], fmt: str, *, notes: bool = True, single_json: bool = True):
    """A string, or a rich renderable for ``table``. Several models (one per metric) are stacked; in CSV
    they share one header with a ``table`` column, in JSON they are a list under ``tables``.
    ``notes=False``: the text formats leave out the notes (the caller prints them elsewhere)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    several = isinstance(models, list)
    models = models if several else [models]
    if fmt == "csv":
        rows = [({"table": m.name} if several else {}) | r for m in models for r in csv_rows(m)]
        return pd.DataFrame(rows).to_csv(index=False)
    if fmt == "json":
        data = [clean(m.as_dict()) for m in models]
        return json.dumps(data[0] if not several and single_json else {"tables": data}, indent=2, default=str)
    if fmt == "markdown":
        return "\n\n".join(markdown(m, notes) for m in models)
    if fmt == "latex":
        return "\n\n".join(latex(m, notes) for m in models)
    return terminal(models[0], notes) if not several else Group(*(terminal(m, notes) for m in models))
