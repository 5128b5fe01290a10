"""Leaderboards from run records: one row per (dataset, DRF, method) with, per metric, the mean over seeds
of the per-seed means over test subjects, the std over test subjects and the std of the per-seed means
kept apart, bootstrap CIs, comparisons against a reference and ranks (petbench.statistics), and the
table model every format renders (:func:`leaderboard_model`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..statistics import Analysis, analyse
from ..tables.cells import (StatsOptions, add_metric_columns, best_methods, fill_metric_cells, fill_statistics_cells,
                            flat_values, layout_note, metric_numbers, statistics_columns, statistics_notes)
from ..tables.model import Cell, Column, Note, TableModel, TableRow
from .record import RunRecord
from .table_notes import apply_to as apply_table_notes
from .tidy import tidy_frame

GROUP_KEYS = ["dataset", "drf", "method"]


@dataclass
class Leaderboard:
    """``table`` has one row per (dataset, drf, method) and columns ``<metric>_<field>`` for the fields
    of :func:`petbench.tables.cells.metric_numbers` (mean, subject_std, seed_std, n_seeds, n_subjects,
    ci_low, ci_high, and with a reference difference, diff_ci_low/high, p, p_holm, rank_biserial; rank,
    rank_one), plus ``runs`` and ``parameters``; ``metrics`` maps each metric to its stored description;
    ``analyses`` holds the statistics of each (dataset, drf) group."""

    table: pd.DataFrame
    metrics: dict[str, dict]
    analyses: dict[tuple, Analysis] = field(default_factory=dict)
    options: StatsOptions = field(default_factory=StatsOptions)
    records: list[RunRecord] = field(default_factory=list)  # the runs it pools (for the notes of what they ran)

    def best(self, metric: str) -> pd.Series:
        """True where the row holds the best mean of ``metric`` within its (dataset, drf) group."""
        direction_max = self.metrics[metric]["higher_is_better"]
        column = self.table[f"{metric}_mean"]
        group_best = column.groupby([self.table["dataset"], self.table["drf"]]).transform("max" if direction_max else "min")
        return column == group_best


def default_metrics(metric_info: dict[str, dict]) -> list[str]:
    """The metrics marked ``default`` (psnr, ssim, nmse: the paper's Table I columns); for records made
    before metrics carried that mark, the challenge-convention ones; else every recorded metric.
    Others are shown when asked for by name."""
    marked = [name for name, info in metric_info.items() if info.get("default")]
    if marked or any("default" in info for info in metric_info.values()):
        return marked or list(metric_info)
    challenge = [name for name, info in metric_info.items() if info.get("convention") == "challenge"]
    return challenge or list(metric_info)


def conventions_line(metric_info: dict[str, dict]) -> str:
    """Which convention each shown metric follows and what computed it, e.g.
    "psnr, ssim: challenge convention; nmse: inferred convention (computed by petbench==0.1.0)"."""
    by_convention: dict[str, list[str]] = {}
    for name, info in metric_info.items():
        by_convention.setdefault(info.get("convention") or "unstated", []).append(name)
    dists = sorted({info.get("dist") or info.get("plugin") or "" for info in metric_info.values()} - {""})
    line = "; ".join(f"{', '.join(names)}: {convention} convention" for convention, names in by_convention.items())
    return line + (f" (computed by {', '.join(dists)})" if dists else "")


def tidy_rows(records: list[RunRecord]) -> pd.DataFrame:
    """One row per (run, subject, metric) with the run's method, dataset, DRF and seed."""
    return tidy_frame(records)


def build_leaderboard(records: list[RunRecord], metrics: list[str] | None = None,
                      options: StatsOptions | None = None) -> Leaderboard:
    options = options or StatsOptions()
    metric_info: dict[str, dict] = {}
    for record in records:
        for name, info in record.data.get("metrics", {}).items():
            metric_info.setdefault(name, info)
    wanted = [m for m in (metrics or default_metrics(metric_info)) if m in metric_info]
    frame = tidy_frame(records, metrics=wanted)
    directions = {m: metric_info[m]["higher_is_better"] for m in wanted}
    runs = pd.Series([(r.dataset, r.data["protocol"]["drf"], r.method) for r in records]).value_counts()
    params = {(r.dataset, r.data["protocol"]["drf"], r.method): r.data["method"].get("parameters") for r in records}
    rows, analyses = [], {}
    for (dataset, drf), part in frame.groupby(["dataset", "drf"], sort=True):
        reference = options.reference
        analysis = analyse(part, directions, reference=reference, all_pairs=options.all_pairs,
                           resamples=options.resamples, seed=options.seed, level=options.level, alpha=options.alpha,
                           tests="friedman" in options.shown)
        analyses[(dataset, drf)] = analysis
        for method in sorted(analysis.methods):
            numbers = {m: metric_numbers(analysis, method, m) for m in analysis.metrics}
            rows.append({"dataset": dataset, "drf": drf, "method": method, **flat_values(numbers, analysis, method),
                         "runs": int(runs.get((dataset, drf, method), 0)),
                         "parameters": params.get((dataset, drf, method))})
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=GROUP_KEYS)
    return Leaderboard(table=table, metrics={m: metric_info[m] for m in wanted}, analyses=analyses, options=options,
                       records=records)


def leaderboard_model(board: Leaderboard) -> TableModel:
    """The leaderboard as a table model: Dataset/DRF columns when several groups, Method, one column per
    metric (mean ± subject std (seed std)), the statistics asked for, Params, Runs."""
    show_group = len(board.analyses) > 1
    shown = board.options.shown
    columns = ([Column("dataset", "Dataset"), Column("drf", "DRF")] if show_group else []) + \
        [Column("label", "Method", "label")]
    add_metric_columns(columns, board.metrics)
    references = {a.reference for a in board.analyses.values()} - {None}
    reference_label = next(iter(references)) if len(references) == 1 else "reference"
    columns += statistics_columns(shown, board.metrics, level=board.options.level, has_reference=bool(references),
                                  reference_label=reference_label)
    columns += [Column("params", "Params", "number"), Column("runs", "Runs", "number")]
    model = TableModel(name="leaderboard", caption="", columns=columns, rows=[], data={"metrics": board.metrics})
    statistics = {}
    for (dataset, drf), analysis in board.analyses.items():
        best = best_methods(analysis, board.metrics)
        part = board.table[(board.table["dataset"] == dataset) & (board.table["drf"] == drf)]
        for _, line in part.iterrows():
            method = line["method"]
            row = TableRow(key=f"{dataset}/{drf}/{method}", label=str(method), values=dict(line.items()),
                           data={"method": method, "dataset": dataset, "drf": drf})
            row.cells["dataset"], row.cells["drf"] = Cell(str(dataset)), Cell(str(drf))
            fill_metric_cells(row, analysis, method, board.metrics, best)
            fill_statistics_cells(row, analysis, method, board.metrics)
            params = line.get("parameters")
            row.cells["params"] = Cell(f"{params / 1e6:.2f}M" if params and params == params else "–", params)
            row.cells["runs"] = Cell(str(line["runs"]), int(line["runs"]))
            model.rows.append(row)
        statistics[f"{dataset}/{drf}"] = analysis.as_dict()
    seeds = max((int(a.summary["n_seeds"].max()) for a in board.analyses.values() if len(a.summary)), default=1)
    model.notes.append(Note("layout", layout_note(seeds) + "."))
    for analysis in board.analyses.values():
        statistics_notes(model, analysis, shown, {}, reference_label=analysis.reference)
    pooled: dict[str, list[RunRecord]] = {}
    for record in board.records:
        pooled.setdefault(f"{record.dataset}/{record.data['protocol']['drf']}/{record.method}", []).append(record)
    apply_table_notes(model, [(row.key, row.label, pooled.get(row.key, [])) for row in model.rows])
    model.notes.append(Note("conventions", f"metrics: {conventions_line(board.metrics)}."))
    model.notes = list({note.text: note for note in model.notes}.values())  # one note per sentence
    model.data["statistics"] = statistics
    return model
