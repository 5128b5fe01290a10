"""Pictures of a ranking: the critical-difference diagram of the Friedman/Nemenyi test (Demšar 2006,
``petbench figure cd``) and the bootstrap distribution of every method's rank as a blob plot
(challengeR, Wiesenfarth et al. 2021; ``petbench figure ranks``).

Both read the same :class:`petbench.statistics.Analysis` as the tables: that of Table I/II's rows with
``--table``, else that of every method in the (one) dataset and DRF of the records.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..errors import UserError  # noqa: E402
from ..results.leaderboard import default_metrics  # noqa: E402
from ..results.record import RunRecord  # noqa: E402
from ..results.tidy import tidy_frame  # noqa: E402
from ..statistics import CONSENSUS, Analysis, analyse  # noqa: E402
from ..tables.cells import StatsOptions, friedman_sentence, metric_title, p_phrase  # noqa: E402
from .figures import save_png  # noqa: E402
from .places import display_name  # noqa: E402


@dataclass
class Ranking:
    analysis: Analysis
    labels: dict  # analysis method -> shown name
    metrics: dict[str, dict]  # metric -> stored info
    describe: str  # what the runs are, for the title


def ranking_of(records: list[RunRecord], table: int | None, metrics: list[str] | None,
               options: StatsOptions) -> Ranking:
    """The analysis behind a ranking figure (Table I/II's rows with ``table``, else every method)."""
    if table is not None:
        from .tables import build_paper_table

        built = build_paper_table(records, table, metrics, StatsOptions(**{**options.__dict__,
                                                                           "shown": frozenset({"friedman"})}))
        return Ranking(built.analysis, {r.key: r.label for r in built.rows}, built.metrics,
                       f"Table {'I' if table == 1 else 'II'}: {built.dataset}, DRF {built.drf}")
    if not records:
        raise UserError("no finished runs to rank")
    groups = sorted({(r.dataset, r.data["protocol"]["drf"]) for r in records}, key=str)
    if len(groups) > 1:
        listing = ", ".join(f"{d} DRF {f}" for d, f in groups)
        raise UserError(f"a ranking needs runs of one dataset and DRF; found {listing}. Choose with --dataset/--drf")
    info: dict[str, dict] = {}
    for record in records:
        for name, entry in record.data.get("metrics", {}).items():
            info.setdefault(name, entry)
    wanted = list(metrics) if metrics else default_metrics(info)
    missing = [m for m in wanted if m not in info]
    if missing:
        raise UserError(f"metric {missing[0]!r} is in no recorded run; recorded: {', '.join(info)}")
    frame = tidy_frame(records, metrics=wanted)
    analysis = analyse(frame, {m: info[m]["higher_is_better"] for m in wanted}, resamples=options.resamples,
                       seed=options.seed, level=options.level, alpha=options.alpha)
    dataset, drf = groups[0]
    names = {r.method: display_name(r) for r in records}
    return Ranking(analysis, {m: names.get(m, str(m)) for m in analysis.methods}, {m: info[m] for m in wanted},
                   f"{dataset}, DRF {drf}")


# -- critical-difference diagram --------------------------------------------------------------------------------
def draw_cd(ax, result, labels: dict, title: str) -> None:
    """Demšar's diagram on ``ax``: the mean-rank axis (1 = best, on the left), each method hung from its
    mean rank, the critical difference as a bar, and thick bars joining methods that do not differ."""
    k = result.k
    order = sorted(result.methods, key=lambda m: result.mean_ranks[m])
    ax.set_xlim(0.5, k + 0.5)
    half = (k + 1) // 2
    ax.set_ylim(-(half + 1.2), 1.6)
    ax.axis("off")
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for tick in range(1, k + 1):
        ax.plot([tick, tick], [0, 0.12], color="black", lw=1)
        ax.text(tick, 0.22, str(tick), ha="center", va="bottom", fontsize=8)
    for i, method in enumerate(order):
        rank = result.mean_ranks[method]
        left = i < half
        depth = -(i + 1) if left else -(k - i)
        end = 0.55 if left else k + 0.45
        ax.plot([rank, rank, end], [0, depth, depth], color="0.25", lw=0.8)
        ax.text(end + (-0.05 if left else 0.05), depth, f"{labels.get(method, method)} ({rank:.2f})",
                ha="right" if left else "left", va="center", fontsize=8)
    for level, clique in enumerate(result.cliques()):
        low, high = min(result.mean_ranks[m] for m in clique), max(result.mean_ranks[m] for m in clique)
        y = -0.35 - 0.22 * level
        ax.plot([low - 0.03, high + 0.03], [y, y], color="black", lw=3, solid_capstyle="round")
    cd = result.critical_difference
    ax.plot([1, 1 + cd], [1.1, 1.1], color="firebrick", lw=1.6)
    for x in (1, 1 + cd):
        ax.plot([x, x], [1.0, 1.2], color="firebrick", lw=1.2)
    ax.text(1 + cd / 2, 1.25, f"CD = {cd:.2f} (Nemenyi, α = {result.alpha:g})", ha="center", va="bottom",
            fontsize=8, color="firebrick")
    ax.set_title(f"{title}\nFriedman χ²_F = {result.chi2:.2f}, {p_phrase(result.p)} (ties corrected), "
                 f"N = {result.n_blocks} subjects", fontsize=9)


def cd_figure(records: list[RunRecord], out: Path, *, table: int | None = None, metrics: list[str] | None = None,
              options: StatsOptions | None = None, alpha: float = 0.05, dpi: int = 150) -> dict:
    """One critical-difference diagram per metric to ``out`` (PNG); returns what was drawn."""
    ranking = ranking_of(records, table, metrics, StatsOptions(**{**(options or StatsOptions()).__dict__, "alpha": alpha}))
    results = {m: ranking.analysis.friedman.get(m) for m in ranking.metrics}
    drawable = {m: r for m, r in results.items() if r is not None}
    if not drawable:
        raise UserError("a critical-difference diagram needs 3 or more methods with values on 2 or more common "
                        f"test subjects; found {len(ranking.analysis.methods)} method(s)")
    k = max(r.k for r in drawable.values())
    fig, axes = plt.subplots(len(drawable), 1, figsize=(7.5, (1.0 + 0.32 * ((k + 1) // 2 + 2)) * len(drawable) + 0.4),
                             squeeze=False, layout="constrained")
    for ax, (metric, result) in zip(axes[:, 0], drawable.items()):
        draw_cd(ax, result, ranking.labels, f"{metric_title(metric, ranking.metrics[metric])}: {ranking.describe}")
    fig.text(0.5, 0.005, "mean rank over test subjects (each subject's mean over seeds), 1 = best;\nthick bars join "
             "methods whose mean ranks differ by less than the CD", fontsize=7, color="0.3", ha="center")
    info = {"figure": "cd", "metrics": list(drawable), "methods": [ranking.labels[m] for m in ranking.analysis.methods],
            "friedman": {m: {**r.as_dict(), "methods": [ranking.labels[x] for x in r.methods],
                             "mean_ranks": {ranking.labels[x]: v for x, v in r.mean_ranks.items()},
                             "cliques": [[ranking.labels[x] for x in c] for c in r.cliques()]}
                         for m, r in drawable.items()},
            "sentences": [friedman_sentence(r, ranking.labels) for r in drawable.values()],
            "skipped": [m for m in results if results[m] is None]}
    info["friedman"] = {m: {k2: v for k2, v in d.items() if k2 != "nemenyi_p"} for m, d in info["friedman"].items()}
    save_png(fig, out, info, dpi)
    return info


# -- bootstrap rank distribution (blob plot) --------------------------------------------------------------------
def rank_figure(records: list[RunRecord], out: Path, *, table: int | None = None, metrics: list[str] | None = None,
                options: StatsOptions | None = None, dpi: int = 150) -> dict:
    """For each metric and the consensus, a blob per (method, rank) whose area is the share of bootstrap
    resamples giving the method that rank, the observed rank marked, and the 95 % range of the ranks."""
    ranking = ranking_of(records, table, metrics, options or StatsOptions())
    analysis = ranking.analysis
    panels = list(ranking.metrics) + ([CONSENSUS] if len(ranking.metrics) > 1 else [])
    methods = sorted(analysis.methods, key=lambda m: (analysis.rank(m, CONSENSUS), str(ranking.labels[m])))
    k = len(methods)
    columns = min(2, len(panels))
    grid_rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(grid_rows, columns, figsize=(max(3.4, 0.55 * k + 1.8) * columns,
                                                          (3.0 + 0.12 * k) * grid_rows + 0.3),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    distribution = analysis.rank_distribution
    summary = {}
    for ax, panel in zip(axes.flat, panels):
        part = distribution[distribution["metric"] == panel]
        summary[panel] = {}
        for x, method in enumerate(methods):
            mine = part[part["method"] == method].sort_values("rank")
            shares = mine["share"].to_numpy(float)
            ranks = mine["rank"].to_numpy(int)
            shown = shares > 0
            ax.scatter(np.full(shown.sum(), x), ranks[shown], s=900 * shares[shown] / max(1, k / 4),
                       color="tab:blue", alpha=0.55, lw=0)
            cumulative = np.cumsum(shares)
            low = int(ranks[np.searchsorted(cumulative, 0.025)]) if len(ranks) else None
            high = int(ranks[min(len(ranks) - 1, np.searchsorted(cumulative, 0.975))]) if len(ranks) else None
            if low is not None:
                ax.plot([x, x], [low, high], color="black", lw=0.8)
            observed = analysis.rank(method, panel)
            ax.scatter([x], [observed], marker="x", color="black", s=22, lw=1)
            first = float(shares[ranks == 1].sum()) if len(ranks) else 0.0
            summary[panel][ranking.labels[method]] = {"rank": observed, "rank_one": first, "range": [low, high]}
        ax.set_xticks(range(k))
        ax.set_xticklabels([ranking.labels[m] for m in methods], rotation=40, ha="right", fontsize=8)
        ax.set_yticks(range(1, k + 1))
        ax.set_ylim(k + 0.6, 0.4)  # rank 1 on top
        ax.set_ylabel("rank (1 = best)")
        ax.grid(alpha=0.25)
        title = "consensus (mean of per-metric ranks)" if panel == CONSENSUS else \
            metric_title(panel, ranking.metrics[panel])
        ax.set_title(title, fontsize=9)
        for x, method in enumerate(methods):
            ax.text(x, 0.45, f"{100 * summary[panel][ranking.labels[method]]['rank_one']:.0f} %", ha="center",
                    va="top", fontsize=6.5, color="tab:blue")
    fig.suptitle(f"Rank stability, {ranking.describe}\nblob area: share of {analysis.resample.resamples} bootstrap "
                 "resamples (seeds, then subjects) giving that rank; ×: observed rank; bar: 95 % of the ranks; "
                 "number on top: rank 1 share", fontsize=8)
    info = {"figure": "ranks", "panels": panels, "methods": [ranking.labels[m] for m in methods],
            "resamples": analysis.resample.resamples, "seed": analysis.resample.seed, "ranks": summary,
            "warnings": analysis.warnings}
    save_png(fig, out, info, dpi)
    return info
