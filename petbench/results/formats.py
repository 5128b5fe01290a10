"""Render a leaderboard as a terminal table, Markdown, LaTeX, CSV or JSON."""
from __future__ import annotations

import json

import pandas as pd
from rich.table import Table
from rich.text import Text
from tabulate import tabulate

from ..errors import UserError
from .leaderboard import Leaderboard

FORMATS = ("table", "markdown", "latex", "csv", "json")


def metric_header(name: str, info: dict) -> str:
    arrow = "↑" if info["higher_is_better"] else "↓"
    unit = f" [{info['unit']}]" if info.get("unit") else ""
    return f"{name.upper()}{unit} {arrow}"


def cells(board: Leaderboard, bold: tuple[str, str]) -> tuple[list[str], list[list[str]]]:
    """Header and text cells; the best value of each metric wrapped in ``bold``."""
    table = board.table
    show_group = table[["dataset", "drf"]].drop_duplicates().shape[0] > 1
    header = (["Dataset", "DRF"] if show_group else []) + ["Method"]
    header += [metric_header(m, info) for m, info in board.metrics.items()] + ["Params", "Runs"]
    best = {m: board.best(m) for m in board.metrics}
    rows = []
    for i, row in table.iterrows():
        line = ([row["dataset"], str(row["drf"])] if show_group else []) + [row["method"]]
        for metric in board.metrics:
            if pd.isna(row.get(f"{metric}_mean")):  # the metric applies to none of these subjects
                line.append("–")
                continue
            digits = 4 if abs(row[f"{metric}_mean"]) < 10 else 2
            text = f"{row[f'{metric}_mean']:.{digits}f} ± {row[f'{metric}_std']:.{digits}f}"
            line.append(f"{bold[0]}{text}{bold[1]}" if best[metric][i] else text)
        params = row.get("parameters")
        line.append(f"{params / 1e6:.2f}M" if params and params == params else "–")  # NaN: not known (an import)
        line.append(str(row["runs"]))
        rows.append(line)
    return header, rows


def render(board: Leaderboard, fmt: str):
    """A string, or a rich Table for ``table``."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "csv":
        return board.table.to_csv(index=False)
    if fmt == "json":
        return json.dumps({"metrics": board.metrics, "rows": json.loads(board.table.to_json(orient="records"))}, indent=2)
    if fmt == "markdown":
        header, rows = cells(board, ("**", "**"))
        return tabulate(rows, headers=header, tablefmt="github", disable_numparse=True)
    if fmt == "latex":
        header, rows = cells(board, (BOLD_ON, BOLD_OFF))
        header = [latex_text(h) for h in header]
        rows = [[latex_text(c) for c in row] for row in rows]
        return tabulate(rows, headers=header, tablefmt="latex_raw", disable_numparse=True)
    header, rows = cells(board, ("[bold green]", "[/bold green]"))
    table = Table()
    for title in header:
        table.add_column(Text(title))  # not markup: "PSNR [dB]" would lose its "[dB]"
    for row in rows:
        table.add_row(*row)
    return table


LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "$": r"\$",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "<": r"\textless{}",
                 ">": r"\textgreater{}", "|": r"\textbar{}"}
LATEX_SYMBOLS = {"↑": r"$\uparrow$", "↓": r"$\downarrow$", "±": r"$\pm$", "–": "--", "×": r"$\times$"}
BOLD_ON, BOLD_OFF = "\x01", "\x02"  # around a cell's whole text; control characters are dropped from text


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prints it: every special character escaped, control characters dropped (a
    method name such as ``\\immediate\\write18{...}`` is text, never a command)."""
    return "".join(LATEX_ESCAPES.get(c, c) for c in text if c.isprintable() or c == " ")


def latex_text(cell: str) -> str:
    """A table cell: escaped, then our own symbols (arrows, ±) as LaTeX; a cell wrapped in
    ``BOLD_ON``/``BOLD_OFF`` in bold."""
    if len(cell) >= 2 and cell[0] == BOLD_ON and cell[-1] == BOLD_OFF:
        return r"\textbf{" + latex_text(cell[1:-1]) + "}"
    return "".join(LATEX_SYMBOLS.get(c, c) for c in latex_escape(cell))
