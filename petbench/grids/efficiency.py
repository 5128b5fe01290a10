"""Metrics against a protocol axis: the label-efficiency curve (``n_train``), the unpaired-data curve
(``n_unpaired``) and the dose curve (``drf``), as a figure (``petbench figure efficiency``) and as a
table with one column per axis value (``petbench compare --by``).

Each point is a method variant's metric at one axis value: the mean over seeds of the per-seed means
over test subjects, the std over subjects, the std of the per-seed means, and the 95 % confidence
interval of the paired hierarchical bootstrap (petbench.statistics; the band the figure draws and the
interval the table shows). The low-dose input (the ``lpet`` rows) is the reference: on the size axes it does
not depend on the axis (the same test subjects, nothing trained) and is one horizontal line; on the
DRF axis it is a dashed line.

All runs of one curve must agree on everything but the axis, the method and the seed: the dataset and
its options and the rest of the protocol, including the paired-train pool, so that every point has
the same test subjects and, across ``n_train``, the same unpaired subjects.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..errors import UserError  # noqa: E402
from ..results.record import RunRecord  # noqa: E402
from ..results.tidy import tidy_frame  # noqa: E402
from ..statistics import analyse  # noqa: E402
from ..tables.cells import (StatsOptions, decimals_for, interval_text, metric_numbers, metric_title,  # noqa: E402
                            number_text)
from ..tables.model import Cell, Column, Note, TableModel, TableRow  # noqa: E402
from ..tables.render import render  # noqa: E402
from .figures import save_png  # noqa: E402
from .places import curve_label, efficiency_position, position  # noqa: E402
from .spec import INPUT_METHOD  # noqa: E402
from .tables import DEFAULT_METRICS, variant_labels  # noqa: E402

AXES = ("n_train", "n_unpaired", "drf")
SIZE_AXES = ("n_train", "n_unpaired")  # the input does not depend on these
AXIS_TITLES = {"n_train": "paired training subjects (n_train)", "n_unpaired": "unpaired SPET subjects (n_unpaired)",
               "drf": "dose reduction factor (DRF)"}


def line_order(record: RunRecord) -> tuple:
    """Lines in the order of the methods' places in the label-efficiency grid, then Table I, then Table II."""
    return (efficiency_position(record), position(record, 1), position(record, 2))


@dataclass
class Line:
    key: str  # method name, or name + options when one method ran with several option sets
    method: str
    label: str
    is_input: bool
    points: dict[str, dict[int, dict]] = field(default_factory=dict)  # metric -> axis value -> stats


@dataclass
class Curves:
    axis: str
    values: list[int]  # the axis values, ascending
    dataset: str
    setting: dict  # what every run shares: dataset options and the protocol without the axis
    seeds: list[int]
    metrics: dict[str, dict]  # name -> stored info (direction, unit)
    lines: list[Line]
    options: StatsOptions = field(default_factory=StatsOptions)
    warnings: list[str] = field(default_factory=list)  # from the statistics of each axis value
    method_text: str = ""  # the statistics used (petbench.statistics.Analysis.method_text)

    @property
    def methods(self) -> list[Line]:
        return [line for line in self.lines if not line.is_input]

    @property
    def reference(self) -> Line | None:
        return next((line for line in self.lines if line.is_input), None)

    def describe(self, options: bool = True) -> str:
        options = ",".join(f"{k}={v}" for k, v in self.setting["options"].items() if k != "data_root") \
            if options else ""
        shown = ", ".join(f"{'DRF' if k == 'drf' else k} {v}" for k, v in self.setting["protocol"].items()
                          if k not in {"split_seed", "n_train_pool"} and v is not None)
        seeds = f"seed{'s' if len(self.seeds) > 1 else ''} {', '.join(map(str, self.seeds))}"
        return f"{self.dataset}{f'[{options}]' if options else ''} ({shown}; {seeds})"


# -- statistics -------------------------------------------------------------------------------------------
def protocol_value(protocol: dict, key: str):
    if key == "n_train_pool":  # the pool defaults to n_train (see petbench.data.protocol.Protocol)
        return protocol.get("n_train_pool", protocol.get("n_train"))
    return protocol.get(key)


def shared_setting(record: RunRecord, axis: str) -> dict:
    protocol = record.data["protocol"]
    keys = ["n_train", "n_test", "n_unpaired", "split_seed", "drf", "n_train_pool"]
    return {"dataset": record.dataset, "options": record.data["dataset"].get("options", {}),
            "protocol": {k: protocol_value(protocol, k) for k in keys if k != axis}}


def describe_setting(setting: dict) -> str:
    options = ",".join(f"{k}={v}" for k, v in setting["options"].items() if k != "data_root")
    protocol = ", ".join(f"{k}={v}" for k, v in setting["protocol"].items())
    return f"{setting['dataset']}{f'[{options}]' if options else ''} ({protocol})"


def build_curves(records: list[RunRecord], axis: str, metrics: list[str] | None = None,
                 options: StatsOptions | None = None) -> Curves:
    """The points of every method variant against ``axis`` (``n_train``, ``n_unpaired`` or ``drf``)."""
    options = options or StatsOptions()
    if axis not in AXES:
        raise UserError(f"--x/--by {axis!r} is not an axis; use {', '.join(AXES)}")
    if not records:
        raise UserError("no finished runs to compare")
    settings: dict[str, dict] = {}
    for record in records:
        setting = shared_setting(record, axis)
        settings.setdefault(json.dumps(setting, sort_keys=True, default=str), setting)
    if len(settings) > 1:
        listing = "; ".join(describe_setting(s) for s in settings.values())
        raise UserError(f"the runs differ in more than {axis}, the method and the seed ({len(settings)} settings: "
                        f"{listing}). Choose with --dataset/--drf, run the sizes as one grid (it gives every cell "
                        f"the same subjects), or keep other settings in another --results folder")
    (setting,) = settings.values()
    values = sorted({int(record.data["protocol"][axis]) for record in records})
    if len(values) < 2:
        hint = ("petbench grid table1 --dataset phantom --drf 4,10,20" if axis == "drf" else
                f"petbench grid label-efficiency --dataset phantom --{axis.replace('_', '-')} 2,5,10,30")
        name, plural = ("DRF", "DRFs") if axis == "drf" else (axis, f"{axis} values")
        raise UserError(f"every run has {name} {values[0]}: the curve needs runs at several {plural} (e.g. {hint})")

    info: dict[str, dict] = {}
    for record in records:
        for name, entry in record.data.get("metrics", {}).items():
            info.setdefault(name, entry)
    wanted = list(metrics) if metrics else [m for m in DEFAULT_METRICS if m in info] or list(info)
    missing = [m for m in wanted if m not in info]
    if missing:
        raise UserError(f"metric {missing[0]!r} is in no recorded run; recorded: {', '.join(info)}")

    labels = variant_labels(records, 1, curve_label)
    latest: dict[tuple, RunRecord] = {}  # one record per (variant, axis value, seed): the latest finished
    for record in records:
        is_input = record.method == INPUT_METHOD and axis in SIZE_AXES
        x = None if is_input else int(record.data["protocol"][axis])  # the input: the same at every size
        key = (labels[record.run_id][0], x, record.data["config"]["seed"])
        current = latest.get(key)
        if current is None or (record.data.get("finished_at") or "") > (current.data.get("finished_at") or ""):
            latest[key] = record

    lines: dict[str, Line] = {}
    orders: dict[str, tuple] = {}
    for record in latest.values():
        row, label = labels[record.run_id]
        lines.setdefault(row, Line(row, record.method, label, record.method == INPUT_METHOD))
        orders.setdefault(row, line_order(record))
    # the statistics of each axis value, with the input's runs (the same at every size) at every value
    directions = {m: info[m]["higher_is_better"] for m in wanted}
    warnings, method_text = [], ""
    for value in values:
        chosen = [(row, r) for (row, x, seed), r in latest.items() if x is None or x == value]
        if not chosen:
            continue
        keys = {r.run_id: row for row, r in chosen}
        frame = tidy_frame([r for _, r in chosen], key=lambda r: keys[r.run_id], metrics=wanted)
        analysis = analyse(frame, directions, resamples=options.resamples, seed=options.seed, level=options.level, alpha=options.alpha,
                           tests=False)
        method_text = analysis.method_text
        warnings += [w for w in analysis.warnings if w not in warnings]
        for row in analysis.methods:
            for metric in analysis.metrics:
                numbers = metric_numbers(analysis, row, metric)
                numbers["seeds"] = [int(s) for s in analysis.stat(row, metric).get("seeds", [])]
                if numbers["n_seeds"]:
                    lines[row].points.setdefault(metric, {})[value] = numbers
    ordered = sorted(lines.values(), key=lambda line: (orders[line.key], line.method, line.label))
    seeds = sorted({int(r.data["config"]["seed"]) for r in latest.values()})
    return Curves(axis=axis, values=values, dataset=setting["dataset"], setting=setting, seeds=seeds,
                  metrics={m: info[m] for m in wanted}, lines=ordered, options=options, warnings=warnings,
                  method_text=method_text)


# -- figure -----------------------------------------------------------------------------------------------
def draw_curves(curves: Curves):
    """A matplotlib figure: one panel per metric, one error-bar line per method, the input as a
    reference line. Returns ``(figure, axes)``."""
    n = len(curves.metrics)
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 3.7), squeeze=False, layout="constrained")
    log_x = min(curves.values) > 0
    for ax, (metric, info) in zip(axes[0], curves.metrics.items()):
        reference = curves.reference
        if reference is not None and metric in reference.points:
            points = reference.points[metric]
            if curves.axis in SIZE_AXES:
                point = next(iter(points.values()))
                ax.axhline(point["mean"], color="0.4", ls="--", lw=1, label=f"{reference.label} (input)")
                if point.get("ci_low") is not None and not math.isnan(point["ci_low"]):
                    ax.axhspan(point["ci_low"], point["ci_high"], color="0.5", alpha=0.12, lw=0)
            else:
                xs = sorted(points)
                ax.plot(xs, [points[x]["mean"] for x in xs], color="0.4", ls="--", lw=1, marker=".",
                        label=f"{reference.label} (input)")
        for line in curves.methods:
            points = line.points.get(metric, {})
            xs = sorted(points)
            if not xs:
                continue
            (drawn,) = ax.plot(xs, [points[x]["mean"] for x in xs], marker="o", ms=3.5, lw=1.2, label=line.label)
            low = [points[x]["ci_low"] for x in xs]
            high = [points[x]["ci_high"] for x in xs]
            if not any(v is None or math.isnan(v) for v in low + high):
                ax.fill_between(xs, low, high, color=drawn.get_color(), alpha=0.18, lw=0,
                                label=f"_{line.label} {int(curves.options.level * 100)} % CI")
        if log_x:
            ax.set_xscale("log")
        ax.set_xticks(curves.values)
        ax.set_xticklabels([str(v) for v in curves.values])
        ax.minorticks_off()
        ax.set_xlabel(AXIS_TITLES[curves.axis])
        ax.set_title(metric_title(metric, info), fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    band = f"bands: {int(curves.options.level * 100)} % CI\n(paired hierarchical bootstrap over seeds and subjects)"
    if len(curves.seeds) == 1:
        band += "\none seed: the bands show subject spread only"
    fig.suptitle(f"{curves.describe(options=False)}\nmean over seeds of the mean over test subjects; {band}",
                 fontsize=8)
    return fig, axes[0]


def efficiency_figure(records: list[RunRecord], out: Path, *, axis: str = "n_train",
                      metrics: list[str] | None = None, dpi: int = 150, options: StatsOptions | None = None) -> dict:
    """Draw each metric (default: PSNR, SSIM and NMSE where recorded) against ``axis`` to ``out`` (PNG);
    returns what was drawn."""
    curves = build_curves(records, axis, metrics, options)
    fig, _ = draw_curves(curves)
    info = {"figure": "efficiency", "x": axis, "values": curves.values, "metrics": list(curves.metrics),
            "methods": [line.label for line in curves.methods],
            "reference": curves.reference.label if curves.reference else None, "seeds": curves.seeds,
            "dataset": curves.dataset, "panels": len(curves.metrics),
            "points": {line.label: {m: {str(x): p["mean"] for x, p in sorted(line.points.get(m, {}).items())}
                                    for m in curves.metrics} for line in curves.lines},
            "ci": {line.label: {m: {str(x): [p["ci_low"], p["ci_high"]] for x, p in sorted(line.points.get(m, {}).items())}
                                for m in curves.metrics} for line in curves.lines},
            "statistics": curves.method_text, "warnings": curves.warnings}
    save_png(fig, out, info, dpi)
    return info


# -- table (compare --by) ---------------------------------------------------------------------------------
def column_title(axis: str, value: int) -> str:
    return f"{'DRF' if axis == 'drf' else axis} {value}"


def cell_text(stats: dict | None) -> str:
    """``mean [CI low, CI high]``."""
    if stats is None:
        return "–"
    digits = decimals_for(stats["mean"])
    return f"{number_text(stats['mean'], digits)} {interval_text(stats['ci_low'], stats['ci_high'], digits)}"


def best_values(curves: Curves, metric: str) -> dict[int, float]:
    higher = curves.metrics[metric]["higher_is_better"]
    best = {}
    for value in curves.values:
        means = [line.points[metric][value]["mean"] for line in curves.lines
                 if value in line.points.get(metric, {}) and not math.isnan(line.points[metric][value]["mean"])]
        if means:
            best[value] = max(means) if higher else min(means)
    return best


def caption(curves: Curves, metric: str) -> str:
    return f"{metric_title(metric, curves.metrics[metric])} against {curves.axis} on {curves.describe()}."


def note(curves: Curves) -> str:
    return (f"mean over seeds of the per-seed means over test subjects, [{int(curves.options.level * 100)} % CI]; "
            "best of each column in bold; CI: " + (curves.method_text.split("; per-subject")[0].split(": ", 1)[-1]
                                                   if curves.method_text else "bootstrap"))


def flat_records(curves: Curves) -> list[dict]:
    out = []
    for line in curves.lines:
        for metric in curves.metrics:
            for value in curves.values:
                stats = line.points.get(metric, {}).get(value)
                if stats is not None:
                    out.append({"method": line.method, "label": line.label, "input": line.is_input,
                                curves.axis: value, "metric": metric,
                                **{k: v for k, v in stats.items() if k != "seeds"},
                                "seeds": " ".join(map(str, stats["seeds"]))})
    return out


def curves_models(curves: Curves) -> list[TableModel]:
    """``compare --by``: one table model per metric, one row per method, one column per axis value."""
    models = []
    for metric in curves.metrics:
        best = best_values(curves, metric)
        columns = [Column("label", "Method", "label")] + [Column(str(v), column_title(curves.axis, v), "metric", metric)
                                                          for v in curves.values]
        model = TableModel(name=f"by-{curves.axis}-{metric}", caption=caption(curves, metric), columns=columns, rows=[],
                           data={"axis": curves.axis, "values": curves.values, "dataset": curves.dataset,
                                 "setting": curves.setting, "seeds": curves.seeds, "metric": metric,
                                 "metrics": curves.metrics, "statistics": curves.method_text})
        for line in curves.lines:
            row = TableRow(key=line.key, label=line.label + (" (input)" if line.is_input else ""),
                           data={"method": line.method, "input": line.is_input})
            for value in curves.values:
                stats = line.points.get(metric, {}).get(value)
                is_best = stats is not None and value in best and math.isclose(stats["mean"], best[value], abs_tol=1e-12)
                row.cells[str(value)] = Cell(cell_text(stats), stats, best=is_best)
                if stats is not None:
                    row.values.update({f"{value}_{k}": v for k, v in stats.items() if k != "seeds"})
            row.values = {"method": line.method, "input": line.is_input, **row.values}
            model.rows.append(row)
        model.notes.append(Note("layout", note(curves) + "."))
        for warning in curves.warnings:
            model.add_note("warning", f"Caution: {warning}.")
        models.append(model)
    return models


def render_curves(curves: Curves, fmt: str):
    """``compare --by``: one table per metric; CSV with one row per (method, metric, axis value), JSON with
    the axis, its values and those rows; a string, or a rich renderable for ``table``."""
    if fmt == "csv":
        return pd.DataFrame(flat_records(curves)).to_csv(index=False)
    if fmt == "json":
        return json.dumps({"axis": curves.axis, "values": curves.values, "dataset": curves.dataset,
                           "setting": curves.setting, "seeds": curves.seeds, "metrics": curves.metrics,
                           "statistics": curves.method_text, "warnings": curves.warnings,
                           "rows": flat_records(curves),
                           "tables": json.loads(render(curves_models(curves), "json", single_json=False))["tables"]},
                          indent=2, default=str)
    return render(curves_models(curves), fmt)
