"""Per-subject distributions: one strip plot per metric (an SVG drawn here, no plotting library in
the page), one column per leaderboard row, one point per (run, subject) with a box of its quartiles.
Each point carries its subject's id: clicking it opens that subject in the image viewer."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .sections import esc

WIDTH_PER_COLUMN, HEIGHT, LEFT, BOTTOM, TOP = 72, 240, 56, 40, 12


def strip_plots(tidy: pd.DataFrame, metrics: dict[str, dict], order: list[tuple]) -> list[str]:
    """One SVG per metric. ``tidy``: the leaderboard's tidy rows (subject, metric, value, run_id, method,
    dataset, drf, seed); ``order``: the leaderboard's (dataset, drf, method) rows, left to right."""
    show_group = len({(d, f) for d, f, _ in order}) > 1
    return [one_plot(tidy[tidy["metric"] == metric], metric, info, order, show_group)
            for metric, info in metrics.items()]


def one_plot(rows: pd.DataFrame, metric: str, info: dict, order: list[tuple], show_group: bool) -> str:
    values = pd.to_numeric(rows["value"], errors="coerce")
    rows = rows.assign(value=values)[values.notna() & np.isfinite(values)]
    width = LEFT + WIDTH_PER_COLUMN * max(1, len(order)) + 10
    arrow = "↑" if info.get("higher_is_better") else "↓"
    unit = f" [{info['unit']}]" if info.get("unit") else ""
    title = f"{metric.upper()}{unit} {arrow}"
    parts = [f'<figure class="strip"><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
             f'role="img" aria-label="{esc(title)} per subject" data-metric="{esc(metric)}">']
    if rows.empty:
        parts.append(f'<text x="{LEFT}" y="40">no finite values</text></svg>'
                     f'<figcaption>{esc(title)}</figcaption></figure>')
        return "".join(parts)
    low, high = float(rows["value"].min()), float(rows["value"].max())
    if high == low:
        low, high = low - 0.5 * (abs(low) or 1), high + 0.5 * (abs(high) or 1)
    pad = 0.05 * (high - low)
    low, high = low - pad, high + pad
    plot_h = HEIGHT - BOTTOM - TOP

    def y_of(v: float) -> float:
        return TOP + plot_h * (1 - (v - low) / (high - low))

    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>')
    for tick in nice_ticks(low, high):
        y = y_of(tick)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{tick:g}</text>')
    for column, (dataset, drf, method) in enumerate(order):
        centre = LEFT + WIDTH_PER_COLUMN * (column + 0.5)
        mine = rows[(rows["dataset"] == dataset) & (rows["drf"] == drf) & (rows["method"] == method)]
        label = f"{method} ({dataset}, DRF {drf})" if show_group else method
        parts.append(f'<text class="label" x="{centre:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                     f'{esc(shorten(label, 14))}<title>{esc(label)}</title></text>')
        if mine.empty:
            continue
        q1, median, q3 = np.percentile(mine["value"].to_numpy(float), [25, 50, 75])
        half = WIDTH_PER_COLUMN * 0.3
        parts.append(f'<rect class="box" x="{centre - half:.1f}" y="{y_of(q3):.1f}" width="{2 * half:.1f}" '
                     f'height="{max(0.5, y_of(q1) - y_of(q3)):.1f}"/>'
                     f'<line class="median" x1="{centre - half:.1f}" x2="{centre + half:.1f}" '
                     f'y1="{y_of(median):.1f}" y2="{y_of(median):.1f}"/>')
        for index, point in enumerate(mine.sort_values(["seed", "subject"]).itertuples(index=False)):
            jitter = (((index * 0.618034) % 1) - 0.5) * WIDTH_PER_COLUMN * 0.5
            parts.append(f'<circle class="point" cx="{centre + jitter:.1f}" cy="{y_of(point.value):.1f}" r="3.5" '
                         f'data-subject="{esc(point.subject)}" data-run="{esc(point.run_id)}" tabindex="0">'
                         f'<title>{esc(point.subject)} (seed {esc(point.seed)}, {esc(point.run_id)}): '
                         f'{point.value:.4g}</title></circle>')
    parts.append(f'</svg><figcaption>{esc(title)}: one point per test subject and seed; box: quartiles, '
                 'line: median. Click a point to view that subject.</figcaption></figure>')
    return "".join(parts)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = high - low
    step = 10 ** math.floor(math.log10(span / count))
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [round(first + i * step, 12) for i in range(int((high - first) / step) + 1)]


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
