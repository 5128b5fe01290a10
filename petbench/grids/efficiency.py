"""Metrics against a protocol axis: the label-efficiency curve (``n_train``), the unpaired-data curve
(``n_unpaired``) and the dose curve (``drf``), as a figure (``petbench figure efficiency``) and as a
table with one column per axis value (``petbench compare --by``).

Each point is a method variant's metric at one axis value: the mean over test subjects, pooled over
seeds, with the std over subjects and, with several seeds, the std of the per-seed means (the spread
the figure draws). The low-dose input (the ``lpet`` rows) is the reference: on the size axes it does
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
from rich.console import Group  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402
from tabulate import tabulate  # noqa: E402

from ..errors import UserError  # noqa: E402
from ..results.formats import FORMATS  # noqa: E402
from ..results.record import RunRecord  # noqa: E402
from .figures import save_png  # noqa: E402
from .places import curve_label, efficiency_position, position  # noqa: E402
from .spec import INPUT_METHOD  # noqa: E402
from .tables import DEFAULT_METRICS, decimals_for, latex_escape, metric_title, number_text, variant_labels  # noqa: E402

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


def build_curves(records: list[RunRecord], axis: str, metrics: list[str] | None = None) -> Curves:
    """The points of every method variant against ``axis`` (``n_train``, ``n_unpaired`` or ``drf``)."""
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

    frames = []
    for (row, x, seed), record in latest.items():
        rows = record.rows()
        rows = rows[rows["metric"].isin(wanted)].assign(row=row, x=x, seed=seed)
        frames.append(rows)
    tidy = pd.concat(frames, ignore_index=True)

    lines: dict[str, Line] = {}
    orders: dict[str, tuple] = {}
    for record in latest.values():
        row, label = labels[record.run_id]
        lines.setdefault(row, Line(row, record.method, label, record.method == INPUT_METHOD))
        orders.setdefault(row, line_order(record))
    for (row, x, metric), part in tidy.groupby(["row", "x", "metric"], dropna=False):
        per_seed = part.groupby("seed")["value"].mean()
        stats = {"mean": float(part["value"].mean()), "std": float(part["value"].std(ddof=0)),
                 "seed_std": float(per_seed.std(ddof=0)) if len(per_seed) > 1 else None,
                 "seeds": sorted(int(s) for s in per_seed.index), "n": int(len(part))}
        at = values if pd.isna(x) else [int(x)]
        for value in at:
            lines[row].points.setdefault(metric, {})[value] = stats
    ordered = sorted(lines.values(), key=lambda line: (orders[line.key], line.method, line.label))
    seeds = sorted({int(r.data["config"]["seed"]) for r in latest.values()})
    return Curves(axis=axis, values=values, dataset=setting["dataset"], setting=setting, seeds=seeds,
                  metrics={m: info[m] for m in wanted}, lines=ordered)


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
                ax.axhline(next(iter(points.values()))["mean"], color="0.4", ls="--", lw=1,
                           label=f"{reference.label} (input)")
            else:
                xs = sorted(points)
                ax.plot(xs, [points[x]["mean"] for x in xs], color="0.4", ls="--", lw=1, marker=".",
                        label=f"{reference.label} (input)")
        for line in curves.methods:
            points = line.points.get(metric, {})
            xs = sorted(points)
            if not xs:
                continue
            spread = [points[x]["seed_std"] for x in xs]
            ax.errorbar(xs, [points[x]["mean"] for x in xs],
                        yerr=None if all(s is None for s in spread) else [s or 0.0 for s in spread],
                        marker="o", ms=3.5, capsize=2.5, lw=1.2, label=line.label)
        if log_x:
            ax.set_xscale("log")
        ax.set_xticks(curves.values)
        ax.set_xticklabels([str(v) for v in curves.values])
        ax.minorticks_off()
        ax.set_xlabel(AXIS_TITLES[curves.axis])
        ax.set_title(metric_title(metric, info), fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    spread = "error bars: std of the per-seed means" if len(curves.seeds) > 1 else "one seed: no spread shown"
    fig.suptitle(f"{curves.describe(options=False)}: mean over test subjects; {spread}", fontsize=8.5)
    return fig, axes[0]


def efficiency_figure(records: list[RunRecord], out: Path, *, axis: str = "n_train",
                      metrics: list[str] | None = None, dpi: int = 150) -> dict:
    """Draw each metric (default: PSNR, SSIM and NMSE where recorded) against ``axis`` to ``out`` (PNG);
    returns what was drawn."""
    curves = build_curves(records, axis, metrics)
    fig, _ = draw_curves(curves)
    info = {"figure": "efficiency", "x": axis, "values": curves.values, "metrics": list(curves.metrics),
            "methods": [line.label for line in curves.methods],
            "reference": curves.reference.label if curves.reference else None, "seeds": curves.seeds,
            "dataset": curves.dataset, "panels": len(curves.metrics),
            "points": {line.label: {m: {str(x): p["mean"] for x, p in sorted(line.points.get(m, {}).items())}
                                    for m in curves.metrics} for line in curves.lines}}
    save_png(fig, out, info, dpi)
    return info


# -- table (compare --by) ---------------------------------------------------------------------------------
def column_title(axis: str, value: int) -> str:
    return f"{'DRF' if axis == 'drf' else axis} {value}"


def cell_text(stats: dict | None) -> str:
    if stats is None:
        return "–"
    digits = decimals_for(stats["mean"])
    text = f"{number_text(stats['mean'], digits)} ± {number_text(stats['std'], digits)}"
    if stats["seed_std"] is not None:
        text += f" ({number_text(stats['seed_std'], digits)})"
    return text


def best_values(curves: Curves, metric: str) -> dict[int, float]:
    higher = curves.metrics[metric]["higher_is_better"]
    best = {}
    for value in curves.values:
        means = [line.points[metric][value]["mean"] for line in curves.lines
                 if value in line.points.get(metric, {}) and not math.isnan(line.points[metric][value]["mean"])]
        if means:
            best[value] = max(means) if higher else min(means)
    return best


def text_rows(curves: Curves, metric: str, bold=("**", "**")) -> tuple[list[str], list[list[str]]]:
    header = ["Method"] + [column_title(curves.axis, v) for v in curves.values]
    best = best_values(curves, metric)
    rows = []
    for line in curves.lines:
        cells = [line.label + (" (input)" if line.is_input else "")]
        for value in curves.values:
            stats = line.points.get(metric, {}).get(value)
            text = cell_text(stats)
            is_best = stats is not None and value in best and math.isclose(stats["mean"], best[value], abs_tol=1e-12)
            cells.append(f"{bold[0]}{text}{bold[1]}" if is_best else text)
        rows.append(cells)
    return header, rows


def caption(curves: Curves, metric: str) -> str:
    return f"{metric_title(metric, curves.metrics[metric])} against {curves.axis} on {curves.describe()}."


NOTE = ("mean ± std over test subjects, pooled over seeds; in parentheses (several seeds): std of the per-seed "
        "means; best of each column in bold")


def as_records(curves: Curves) -> list[dict]:
    out = []
    for line in curves.lines:
        for metric in curves.metrics:
            for value in curves.values:
                stats = line.points.get(metric, {}).get(value)
                if stats is not None:
                    out.append({"method": line.method, "label": line.label, "input": line.is_input,
                                curves.axis: value, "metric": metric, **{k: v for k, v in stats.items() if k != "seeds"},
                                "seeds": " ".join(map(str, stats["seeds"]))})
    return out


def render_curves(curves: Curves, fmt: str):
    """``compare --by``: one table per metric, one row per method, one column per axis value; a string,
    or a rich renderable for ``table``."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "csv":
        return pd.DataFrame(as_records(curves)).to_csv(index=False)
    if fmt == "json":
        return json.dumps({"axis": curves.axis, "values": curves.values, "dataset": curves.dataset,
                           "setting": curves.setting, "seeds": curves.seeds, "metrics": curves.metrics,
                           "rows": as_records(curves)}, indent=2, default=str)
    if fmt == "markdown":
        blocks = []
        for metric in curves.metrics:
            header, rows = text_rows(curves, metric)
            blocks.append(f"{caption(curves, metric)}\n\n"
                          f"{tabulate(rows, headers=header, tablefmt='github', disable_numparse=True)}")
        return "\n\n".join(blocks) + f"\n\n{NOTE}."
    if fmt == "latex":
        blocks = []
        def tex(text: str) -> str:
            return (latex_escape(text).replace("\0B", r"\textbf{").replace("\0E", "}").replace("±", r"$\pm$")
                    .replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$").replace("–", "--"))

        for metric in curves.metrics:
            header, rows = text_rows(curves, metric, bold=("\0B", "\0E"))
            blocks.append(f"% {caption(curves, metric)}\n" + tabulate(
                [[tex(c) for c in row] for row in rows], headers=[tex(h) for h in header], tablefmt="latex_raw",
                disable_numparse=True))
        return "\n\n".join(blocks)
    tables = []
    for metric in curves.metrics:
        header, rows = text_rows(curves, metric, bold=("", ""))
        best = best_values(curves, metric)
        table = Table(title=caption(curves, metric), caption=NOTE)
        for title in header:
            table.add_column(Text(title))
        for line, row in zip(curves.lines, rows):
            styled = [Text(row[0])]
            for value, text in zip(curves.values, row[1:]):
                stats = line.points.get(metric, {}).get(value)
                is_best = stats is not None and value in best and math.isclose(stats["mean"], best[value],
                                                                                abs_tol=1e-12)
                styled.append(Text(text, style="bold green" if is_best else ""))
            table.add_row(*styled)
        tables.append(table)
    return Group(*tables)
