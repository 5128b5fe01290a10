"""Leaderboards from run records: one row per method, mean ± std over test subjects (pooled
over seeds), the best value of each metric marked by the metric's direction."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .record import RunRecord


@dataclass
class Leaderboard:
    """``table`` has one row per (dataset, drf, method) and columns ``<metric>_mean``,
    ``<metric>_std``; ``metrics`` maps each metric to its stored description (direction, unit)."""

    table: pd.DataFrame
    metrics: dict[str, dict]

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
    frames = []
    for record in records:
        rows = record.rows()
        rows["run_id"] = record.run_id
        rows["method"] = record.method
        rows["dataset"] = record.dataset
        rows["drf"] = record.data["protocol"]["drf"]
        rows["seed"] = record.data["config"]["seed"]
        frames.append(rows)
    columns = ["subject", "metric", "value", "run_id", "method", "dataset", "drf", "seed"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def build_leaderboard(records: list[RunRecord], metrics: list[str] | None = None) -> Leaderboard:
    metric_info: dict[str, dict] = {}
    for record in records:
        for name, info in record.data.get("metrics", {}).items():
            metric_info.setdefault(name, info)
    rows = tidy_rows(records)
    wanted = metrics or default_metrics(metric_info)
    rows = rows[rows["metric"].isin(wanted)]
    keys = ["dataset", "drf", "method"]
    table = pd.DataFrame(columns=keys)
    if len(rows):
        stats = rows.groupby(keys + ["metric"])["value"].agg(mean="mean", std=lambda v: v.std(ddof=0)).reset_index()
        # dropna=False: a metric that applies to no subject (all NaN) keeps its column, shown as "–"
        table = stats.pivot_table(index=keys, columns="metric", values=["mean", "std"], dropna=False)
        table.columns = [f"{metric}_{stat}" for stat, metric in table.columns]
        table = table.reset_index()
        counts = [(r.dataset, r.data["protocol"]["drf"], r.method) for r in records]
        runs = pd.Series(counts).value_counts()
        table["runs"] = [int(runs.get((d, f, m), 0)) for d, f, m in table[keys].itertuples(index=False)]
        params = {(r.dataset, r.data["protocol"]["drf"], r.method): r.data["method"].get("parameters") for r in records}
        table["parameters"] = [params.get(tuple(k)) for k in table[keys].itertuples(index=False)]
    return Leaderboard(table=table, metrics={m: metric_info[m] for m in wanted if m in metric_info})
