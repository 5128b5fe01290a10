"""Tables I and II in the paper's form, read from run records.

- the methods with a place in the table (``table_places``, stored in each run record; see
  :mod:`petbench.grids.places`), in the order of their places, with their labels; in Table I also the
  methods that declare no place, after the others;
- PSNR [dB] ↑, SSIM ↑, NMSE ↓ as mean ± std over test subjects, pooled over every seed; with several
  seeds the std of the per-seed means is shown in parentheses;
- the best mean of each metric in bold (by the metric's direction);
- Table I: the parameter count; Table II: the component check marks (Baseline, DsMAE, DKD, DKL, from the
  ``components`` each method declares, stored in its run records);
- for every method, a two-sided paired Wilcoxon signed-rank test against the reference row (the method
  that declares ``table_reference``) per metric (``scipy.stats.wilcoxon``), pairs matched by test subject
  and seed.

All runs of one table must share a dataset (and its options), a DRF and a protocol.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from rich.table import Table
from rich.text import Text
from tabulate import tabulate

from ..errors import UserError
from ..results.formats import FORMATS, LATEX_ESCAPES
from ..results.leaderboard import conventions_line
from ..results.record import RunRecord
from .places import in_table, position, reference_method, table_label
from .table_notes import table_notes

DEFAULT_METRICS = ("psnr", "ssim", "nmse")
ROMAN = {1: "I", 2: "II"}


@dataclass
class Row:
    key: str  # method name, or name + options when one method ran with several option sets
    method: str
    label: str
    parameters: int | None
    runs: int
    seeds: list[int]
    components: dict[str, bool] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> mean, std, seed_std, n, p, best


@dataclass
class PaperTable:
    number: int
    dataset: str
    dataset_options: dict
    drf: int
    protocol: dict
    seeds: list[int]
    metrics: dict[str, dict]  # name -> stored info (direction, unit)
    rows: list[Row]
    reference: str | None  # key of the reference row (the method declaring table_reference), when present
    components: list[str] = field(default_factory=list)
    reference_method: str | None = None
    footnotes: list[str] = field(default_factory=list)  # what the rows ran (petbench.grids.table_notes)

    @property
    def reference_label(self) -> str | None:
        return next((row.label for row in self.rows if row.key == self.reference), None)

    @property
    def caption(self) -> str:
        reference = self.reference_label
        what = "Comparison with other methods" if self.number == 1 else \
            f"Ablation of {reference}'s components" if reference else "Ablation"
        return (f"Table {ROMAN[self.number]}. {what} on {self.dataset} (DRF {self.drf}, "
                f"{self.protocol.get('n_test', '?')} test subjects, seed{'s' if len(self.seeds) > 1 else ''} "
                f"{', '.join(map(str, self.seeds))}).")

    @property
    def note(self) -> str:
        parts = ["mean ± std over test subjects, pooled over seeds"]
        if len(self.seeds) > 1:
            parts.append("(in parentheses: std of the per-seed means)")
        parts.append("best in bold")
        if self.reference is not None:
            parts.append(f"p: two-sided paired Wilcoxon signed-rank test against {self.reference_label} "
                         "(pairs: subject, seed)")
        else:
            parts.append("no run of a reference method (table_reference): no significance tests")
        return "; ".join(parts) + ". Metrics: " + conventions_line(self.metrics) + "."


# -- building -----------------------------------------------------------------------------------------
def group_key(record: RunRecord) -> tuple:
    protocol = {k: v for k, v in record.data["protocol"].items() if k != "drf"}
    return (record.dataset, json.dumps(record.data["dataset"].get("options", {}), sort_keys=True, default=str),
            record.data["protocol"]["drf"], json.dumps(protocol, sort_keys=True))


def describe_group(key: tuple) -> str:
    dataset, options, drf, protocol = key
    options = json.loads(options)
    protocol = json.loads(protocol)
    shown = ",".join(f"{k}={v}" for k, v in options.items() if k != "data_root")
    return (f"{dataset}{f'[{shown}]' if shown else ''} DRF {drf} "
            f"(n_train={protocol.get('n_train')}, n_test={protocol.get('n_test')}, "
            f"n_unpaired={protocol.get('n_unpaired')}, split_seed={protocol.get('split_seed')})")


def table_records(records: list[RunRecord], number: int) -> list[RunRecord]:
    """The finished records that belong in Table ``number``, all from one dataset, DRF and protocol."""
    if number not in (1, 2):
        raise UserError(f"--table must be 1 or 2, not {number}")
    chosen = [r for r in records if in_table(r, number)]
    if not chosen:
        raise UserError(f"no finished runs of a method with a place in Table {ROMAN[number]} (table_places); "
                        f"run `petbench grid table{number} --dataset phantom` first")
    groups: dict[tuple, list[RunRecord]] = {}
    for record in chosen:
        groups.setdefault(group_key(record), []).append(record)
    if len(groups) > 1:
        listing = "; ".join(describe_group(k) for k in groups)
        raise UserError(f"Table {ROMAN[number]} needs runs of one dataset, DRF and protocol; found {len(groups)}: "
                        f"{listing}. Choose with --dataset/--drf, or keep other protocols in another --results folder")
    return chosen


def variant_labels(records: list[RunRecord], number: int, label_of: Callable[[RunRecord], str] | None = None
                   ) -> dict[str, tuple[str, str]]:
    """run id -> (row key, label). A method run with several option sets gets one row per set.
    ``label_of``: a record's printed name (default: its label in Table ``number``)."""
    label_of = label_of or (lambda record: table_label(record, number))
    by_method: dict[str, dict[str, dict]] = {}
    for record in records:
        options = json.dumps(record.data["method"].get("options", {}), sort_keys=True, default=str)
        by_method.setdefault(record.method, {})[options] = record.data["method"].get("options", {})
    result = {}
    for record in records:
        base = label_of(record)
        variants = by_method[record.method]
        options_text = json.dumps(record.data["method"].get("options", {}), sort_keys=True, default=str)
        if len(variants) == 1:
            result[record.run_id] = (record.method, base)
            continue
        mine = record.data["method"].get("options", {})
        differing = sorted(k for k in set().union(*variants.values())
                           if len({json.dumps(v.get(k), default=str) for v in variants.values()}) > 1)
        shown = ",".join(f"{k}={mine.get(k)}" for k in differing)
        result[record.run_id] = (f"{record.method} {options_text}", f"{base} [{shown}]")
    return result


def latest_per_seed(records: list[RunRecord], number: int) -> list[RunRecord]:
    """One record per (method variant, seed): the latest finished, should a results folder hold the same
    run under two identities (e.g. recorded with different metric lists)."""
    labels = variant_labels(records, number)
    latest: dict[tuple, RunRecord] = {}
    for record in records:
        key = (labels[record.run_id][0], record.data["config"]["seed"])
        current = latest.get(key)
        if current is None or (record.data.get("finished_at") or "") > (current.data.get("finished_at") or ""):
            latest[key] = record
    return [r for r in records if latest[(labels[r.run_id][0], r.data["config"]["seed"])] is r]


def build_paper_table(records: list[RunRecord], number: int, metrics: list[str] | None = None) -> PaperTable:
    chosen_reference = reference_method(records, number)
    records = latest_per_seed(table_records(records, number), number)
    labels = variant_labels(records, number)
    metric_info: dict[str, dict] = {}
    for record in records:
        for name, info in record.data.get("metrics", {}).items():
            metric_info.setdefault(name, info)
    if metrics:
        missing = [m for m in metrics if m not in metric_info]
        if missing:
            raise UserError(f"metric {missing[0]!r} is in no run of this table; recorded: {', '.join(metric_info)}")
        wanted = list(metrics)
    else:
        wanted = [m for m in DEFAULT_METRICS if m in metric_info] or list(metric_info)

    frames = []
    for record in records:
        rows = record.rows()
        rows = rows[rows["metric"].isin(wanted)].copy()
        rows["row"], rows["seed"] = labels[record.run_id][0], record.data["config"]["seed"]
        frames.append(rows)
    tidy = pd.concat(frames, ignore_index=True)
    tidy["subject"] = tidy["subject"].astype(str)

    keys: dict[str, dict] = {}
    for record in records:
        key, label = labels[record.run_id]
        entry = keys.setdefault(key, {"method": record.method, "label": label, "records": []})
        entry["records"].append(record)
    ordered = sorted(keys, key=lambda k: (position(keys[k]["records"][0], number), keys[k]["method"],
                                          keys[k]["label"]))

    reference = next((k for k in ordered if keys[k]["method"] == chosen_reference), None)
    components = component_columns([keys[k]["records"][0] for k in ordered]) if number == 2 else []
    rows = []
    for key in ordered:
        entry = keys[key]
        recs = entry["records"]
        params = [r.data["method"].get("parameters") for r in recs]
        seeds = sorted({r.data["config"]["seed"] for r in recs})
        row = Row(key=key, method=entry["method"], label=entry["label"], parameters=params[0] if params else None,
                  runs=len(recs), seeds=seeds,
                  components=components_of(recs[0], components) if number == 2 else {})
        for metric in wanted:
            values = tidy[(tidy["row"] == key) & (tidy["metric"] == metric)]
            per_seed = values.groupby("seed")["value"].mean()
            row.stats[metric] = {
                "mean": float(values["value"].mean()) if len(values) else math.nan,
                "std": float(values["value"].std(ddof=0)) if len(values) else math.nan,
                "seed_std": float(per_seed.std(ddof=0)) if len(per_seed) > 1 else None,
                "n": int(len(values)),
                "p": None if reference is None or key == reference else
                wilcoxon_p(tidy, key, reference, metric),
                "best": False,
            }
        rows.append(row)
    notes = table_notes([(row.key, row.label, keys[row.key]["records"]) for row in rows])
    for row in rows:
        row.label += notes.marks.get(row.key, "")
    for metric in wanted:
        higher = metric_info[metric]["higher_is_better"]
        means = [r.stats[metric]["mean"] for r in rows if not math.isnan(r.stats[metric]["mean"])]
        if means:
            best = max(means) if higher else min(means)
            for r in rows:
                r.stats[metric]["best"] = bool(np.isclose(r.stats[metric]["mean"], best, rtol=0, atol=1e-12))
    first = records[0]
    return PaperTable(number=number, dataset=first.dataset, dataset_options=first.data["dataset"].get("options", {}),
                      drf=first.data["protocol"]["drf"], protocol=first.data["protocol"],
                      seeds=sorted({r.data["config"]["seed"] for r in records}),
                      metrics={m: metric_info[m] for m in wanted}, rows=rows, reference=reference,
                      components=components, reference_method=chosen_reference if reference else None,
                      footnotes=notes.lines)


def wilcoxon_p(tidy: pd.DataFrame, key: str, reference: str, metric: str) -> float | None:
    """Two-sided paired Wilcoxon signed-rank test, pairs matched by (subject, seed)."""
    from scipy.stats import wilcoxon

    def values(row_key):
        part = tidy[(tidy["row"] == row_key) & (tidy["metric"] == metric)]
        return part.groupby(["subject", "seed"])["value"].mean()

    paired = pd.concat([values(key), values(reference)], axis=1, join="inner").dropna()
    if len(paired) == 0:
        return None
    differences = (paired.iloc[:, 0] - paired.iloc[:, 1]).to_numpy()
    if np.all(differences == 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            p = float(wilcoxon(paired.iloc[:, 0].to_numpy(), paired.iloc[:, 1].to_numpy()).pvalue)
        except ValueError:
            return None
    return None if math.isnan(p) else p


def component_columns(records: list[RunRecord]) -> list[str]:
    """The check-mark columns: Baseline, then every component the records declare, in their rows' order."""
    seen: list[str] = []
    for record in records:
        for name in (record.data["method"].get("components") or {}):
            if name not in seen:
                seen.append(name)
    return ["Baseline"] + seen


def components_of(record: RunRecord, columns: list[str]) -> dict[str, bool]:
    declared = record.data["method"].get("components") or {}
    return {name: True if name == "Baseline" else bool(declared.get(name, False)) for name in columns}


# -- rendering ----------------------------------------------------------------------------------------
def decimals_for(mean: float | None) -> int:
    """3 decimals as in the paper; more for a mean below 0.01 (two significant digits)."""
    if mean is None or not math.isfinite(mean) or mean == 0 or abs(mean) >= 0.01:
        return 3
    return min(8, 1 - math.floor(math.log10(abs(mean))))


def number_text(value: float | None, decimals: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{decimals}f}"


def params_text(parameters: int | None) -> str:
    if not parameters:
        return "–"
    millions = parameters / 1e6
    return f"{millions:.2f}" if millions >= 0.01 else f"{millions:.3g}"


def p_text(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def metric_title(name: str, info: dict) -> str:
    unit = f" [{info['unit']}]" if info.get("unit") else ""
    return f"{name.upper()}{unit} {'↑' if info['higher_is_better'] else '↓'}"


def text_cells(table: PaperTable, bold=("**", "**"), check="✓", pm="±", seed_fmt="({})") -> tuple[list, list]:
    header = ["Methods" if table.number == 1 else "Variant"]
    if table.number == 2:
        header += table.components
    header += [metric_title(m, info) for m, info in table.metrics.items()]
    if table.number == 1:
        header.append("Params [M]")
    if table.reference is not None:
        header += [f"p ({m.upper()})" for m in table.metrics]
    rows = []
    for row in table.rows:
        line = [row.label]
        if table.number == 2:
            line += [check if row.components.get(c) else "" for c in table.components]
        for metric in table.metrics:
            s = row.stats[metric]
            digits = decimals_for(s["mean"])
            text = f"{number_text(s['mean'], digits)} {pm} {number_text(s['std'], digits)}"
            if s["seed_std"] is not None:
                text += " " + seed_fmt.format(number_text(s["seed_std"], digits))
            line.append(f"{bold[0]}{text}{bold[1]}" if s["best"] else text)
        if table.number == 1:
            line.append(params_text(row.parameters))
        if table.reference is not None:
            line += ["–" if row.key == table.reference else p_text(row.stats[m]["p"]) for m in table.metrics]
        rows.append(line)
    return header, rows


def latex_escape(text: str) -> str:
    """Special characters escaped, the backslash included (our markers here are \\0-strings, kept)."""
    return "".join(LATEX_ESCAPES.get(c, c) for c in text)


def render_latex(table: PaperTable) -> str:
    header, rows = text_cells(table, bold=("\0B", "\0E"), check="\0C", pm="\0P", seed_fmt="\0S({})\0T")

    def tex(cell: str) -> str:
        cell = latex_escape(cell.replace("↑", "\0U").replace("↓", "\0D"))
        return (cell.replace("\0B", r"\textbf{").replace("\0E", "}").replace("\0C", r"\checkmark")
                .replace("\0P", r"$\pm$").replace("\0S", r"{\scriptsize ").replace("\0T", "}")
                .replace("\0U", r"$\uparrow$").replace("\0D", r"$\downarrow$").replace("<", r"$<$")
                .replace("±", r"$\pm$").replace("–", "--").replace("×", r"$\times$")
                .replace("†", r"$^\dagger$").replace("‡", r"$^\ddagger$").replace("§", r"\S{}")
                .replace("¶", r"\P{}").replace("‖", r"$^\|$"))

    align = "l" + "c" * (len(header) - 1)
    lines = [
        "% petbench compare --table " + str(table.number)
        + (r" (\checkmark needs \usepackage{amssymb})" if table.number == 2 else ""),
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{" + " ".join(tex(t) for t in (table.caption, table.note, *table.footnotes)) + "}",
        r"\label{tab:petbench-table" + str(table.number) + "}",
        r"\begin{tabular}{" + align + "}",
        r"\hline",
        " & ".join(tex(h) for h in header) + r" \\",
        r"\hline",
    ]
    lines += [" & ".join(tex(c) for c in row) + r" \\" for row in rows]
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def as_records(table: PaperTable) -> list[dict]:
    out = []
    for row in table.rows:
        entry: dict[str, Any] = {"method": row.method, "label": row.label, "dataset": table.dataset, "drf": table.drf,
                                 "seeds": " ".join(map(str, row.seeds)), "runs": row.runs,
                                 "parameters": row.parameters}
        for name in table.components:
            entry[name] = row.components.get(name, False)
        for metric, s in row.stats.items():
            for stat in ("mean", "std", "seed_std", "n", "p", "best"):
                entry[f"{metric}_{stat}"] = s[stat]
        out.append(entry)
    return out


def clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def render_paper_table(table: PaperTable, fmt: str):
    """A string, or a rich Table for ``table``."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "csv":
        return pd.DataFrame(as_records(table)).to_csv(index=False)
    if fmt == "json":
        data = {"table": table.number, "caption": table.caption, "note": table.note, "dataset": table.dataset,
                "dataset_options": table.dataset_options, "drf": table.drf, "protocol": table.protocol,
                "seeds": table.seeds, "metrics": table.metrics,
                "reference": table.reference_method,
                "components": table.components, "footnotes": table.footnotes,
                "rows": [{"method": r.method, "label": r.label, "parameters": r.parameters, "runs": r.runs,
                          "seeds": r.seeds, "components": r.components, "metrics": r.stats} for r in table.rows]}
        return json.dumps(clean(data), indent=2, default=str)
    if fmt == "markdown":
        header, rows = text_cells(table)
        body = tabulate(rows, headers=header, tablefmt="github", disable_numparse=True)
        return "\n\n".join([table.caption, body, table.note, *table.footnotes])
    if fmt == "latex":
        return render_latex(table)
    header, rows = text_cells(table, bold=("", ""))
    rich_table = Table(title=table.caption, caption="\n".join([table.note, *table.footnotes]))
    for title in header:
        rich_table.add_column(Text(title))
    for row, paper_row in zip(rows, table.rows):
        cells = []
        metric_start = 1 + (len(table.components) if table.number == 2 else 0)
        for index, cell in enumerate(row):
            metric_index = index - metric_start
            best = 0 <= metric_index < len(table.metrics) and paper_row.stats[list(table.metrics)[metric_index]]["best"]
            cells.append(Text(cell, style="bold green" if best else ""))
        rich_table.add_row(*cells)
    return rich_table
