"""Shared building blocks of the results tables: number formatting, metric titles, the ``--stats``
choice, and the statistics columns and notes every table adds from one
:class:`~petbench.statistics.Analysis` (so the leaderboard, Tables I–II and the report agree)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UserError
from ..statistics import CONSENSUS, Analysis
from ..statistics.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, DEFAULT_SEED
from .model import Cell, Column, TableModel, TableRow

#: the extra statistics a table can show (``--stats``); CSV and JSON always carry every number
STAT_CHOICES = {
    "ci": "the 95 % confidence interval of each mean (paired hierarchical bootstrap)",
    "diff": "the paired difference to the reference method with its 95 % CI",
    "holm": "Wilcoxon p-values against the reference, Holm-corrected, and the rank-biserial effect size",
    "rank": "per-metric and consensus ranks, and how often each method ranks first over bootstrap resamples",
    "friedman": "the Friedman test per metric with the Nemenyi critical difference (in the notes)",
}


@dataclass(frozen=True)
class StatsOptions:
    """What a table computes and shows beyond its default look."""

    shown: frozenset = frozenset()
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    level: float = DEFAULT_LEVEL
    alpha: float = 0.05  # of the tests and the critical difference
    reference: str | None = None  # a method name; default: the method declaring table_reference
    all_pairs: bool = False


def parse_stats(text: str | None) -> frozenset:
    """``"ci,holm,rank"`` -> those names; ``"all"`` -> every one; a bad name is a user error."""
    if not text:
        return frozenset()
    names = [n.strip() for n in text.split(",") if n.strip()]
    if "all" in names:
        return frozenset(STAT_CHOICES)
    unknown = [n for n in names if n not in STAT_CHOICES]
    if unknown:
        raise UserError(f"--stats {unknown[0]!r} is not a statistic; choose from {', '.join(STAT_CHOICES)} or all")
    return frozenset(names)


# -- numbers as text --------------------------------------------------------------------------------------
def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def decimals_for(mean: float | None) -> int:
    """3 decimals as in the paper; more for a mean below 0.01 (two significant digits)."""
    if missing(mean) or not math.isfinite(mean) or mean == 0 or abs(mean) >= 0.01:
        return 3
    return min(8, 1 - math.floor(math.log10(abs(mean))))


def number_text(value: float | None, decimals: int = 3) -> str:
    if missing(value):
        return "–"
    return f"{value:.{decimals}f}"


def p_text(p: float | None) -> str:
    if missing(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def p_phrase(p: float | None) -> str:
    """``p = 0.012`` or ``p < 0.001``."""
    if missing(p):
        return "p = –"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def percent_text(share: float | None) -> str:
    return "–" if missing(share) else f"{100 * share:.0f} %"


def metric_title(name: str, info: dict) -> str:
    unit = f" [{info['unit']}]" if info.get("unit") else ""
    return f"{name.upper()}{unit} {'↑' if info['higher_is_better'] else '↓'}"


def mean_text(stat: dict, digits: int) -> str:
    """``mean ± subject std``, then ``(seed std)`` with several seeds: the paper's look."""
    text = f"{number_text(stat.get('mean'), digits)} ± {number_text(stat.get('subject_std'), digits)}"
    if stat.get("n_seeds", 0) > 1:
        text += f" ({number_text(stat.get('seed_std'), digits)})"
    return text


def interval_text(low, high, digits: int) -> str:
    return "–" if missing(low) else f"[{number_text(low, digits)}, {number_text(high, digits)}]"


# -- the numbers of one (row, metric) ---------------------------------------------------------------------
STAT_FIELDS = ("mean", "subject_std", "seed_std", "n_seeds", "n_subjects", "ci_low", "ci_high")
COMPARISON_FIELDS = ("difference", "diff_ci_low", "diff_ci_high", "p", "p_holm", "rank_biserial")


def metric_numbers(analysis: Analysis, method, metric: str) -> dict:
    """Every number a table states about (method, metric), under stable names."""
    stat = analysis.stat(method, metric)
    out = {k: stat.get(k) for k in STAT_FIELDS}
    out["n_seeds"] = int(out["n_seeds"] or 0)
    out["n_subjects"] = int(out["n_subjects"] or 0)
    comparison = analysis.comparison(method, metric)
    for name in COMPARISON_FIELDS:
        source = {"diff_ci_low": "ci_low", "diff_ci_high": "ci_high"}.get(name, name)
        out[name] = None if comparison is None else comparison.get(source)
    out["rank"] = analysis.rank(method, metric)
    out["rank_one"] = analysis.rank_one(method, metric)
    return out


def flat_values(numbers: dict[str, dict], analysis: Analysis | None = None, method=None) -> dict:
    """``{metric: {field: v}}`` -> ``{metric_field: v}`` (CSV columns), with the consensus rank and its
    rank 1 share when ``analysis`` is given."""
    out = {f"{metric}_{k}": v for metric, fields in numbers.items() for k, v in fields.items()}
    if analysis is not None:
        out["consensus_rank"] = analysis.rank(method, CONSENSUS)
        out["consensus_rank_one"] = analysis.rank_one(method, CONSENSUS)
    return out


# -- columns ----------------------------------------------------------------------------------------------
def add_metric_columns(columns: list[Column], metrics: dict[str, dict]) -> None:
    columns += [Column(metric, metric_title(metric, info), "metric", metric) for metric, info in metrics.items()]


def statistics_columns(shown: frozenset, metrics: dict[str, dict], *, level: float, has_reference: bool,
                       reference_label: str | None, p_default: bool = False) -> list[Column]:
    """The columns of the statistics in ``shown`` (and the Holm p-values when ``p_default``)."""
    columns = []
    if "ci" in shown:
        columns += [Column(f"{m}_ci", f"{m.upper()} {int(level * 100)} % CI", "ci", m) for m in metrics]
    if "diff" in shown and has_reference:
        columns += [Column(f"{m}_diff", f"Δ{m.upper()} vs {reference_label} [CI]", "difference", m) for m in metrics]
    if ("holm" in shown or p_default) and has_reference:
        columns += [Column(f"{m}_p", f"p ({m.upper()})", "p", m) for m in metrics]
    if "holm" in shown and has_reference:
        columns += [Column(f"{m}_r", f"r ({m.upper()})", "effect", m) for m in metrics]
    if "rank" in shown:
        columns.append(Column("rank", "Rank", "rank"))
        if len(metrics) > 1:
            columns.append(Column("metric_ranks", "Ranks (" + "/".join(m.upper() for m in metrics) + ")", "rank"))
        columns.append(Column("rank_one", "Rank 1 in", "share"))
    return columns


def fill_statistics_cells(row: TableRow, analysis: Analysis, method, metrics: dict[str, dict]) -> None:
    """Every statistics cell of ``row`` (the columns shown pick from them)."""
    for metric in metrics:
        n = metric_numbers(analysis, method, metric)
        digits = decimals_for(n["mean"])
        row.cells[f"{metric}_ci"] = Cell(interval_text(n["ci_low"], n["ci_high"], digits), [n["ci_low"], n["ci_high"]])
        if missing(n["difference"]):
            row.cells[f"{metric}_diff"] = Cell("(reference)" if method == analysis.reference else "–")
        else:
            excludes = not missing(n["diff_ci_low"]) and not (n["diff_ci_low"] <= 0 <= n["diff_ci_high"])
            row.cells[f"{metric}_diff"] = Cell(
                f"{number_text(n['difference'], digits)} {interval_text(n['diff_ci_low'], n['diff_ci_high'], digits)}",
                {"difference": n["difference"], "ci": [n["diff_ci_low"], n["diff_ci_high"]]},
                marks=["ci_excludes_zero"] if excludes else [])
        significant = not missing(n["p_holm"]) and n["p_holm"] < analysis.alpha
        row.cells[f"{metric}_p"] = Cell(p_text(n["p_holm"]) + ("*" if significant else ""),
                                        {"p": n["p"], "p_holm": n["p_holm"]}, marks=["significant"] if significant else [])
        row.cells[f"{metric}_r"] = Cell("–" if missing(n["rank_biserial"]) else f"{n['rank_biserial']:+.2f}",
                                        n["rank_biserial"])
    consensus = analysis.rank(method, CONSENSUS)
    row.cells["rank"] = Cell("–" if missing(consensus) else f"{consensus:g}", consensus)
    ranks = [analysis.rank(method, m) for m in metrics]
    row.cells["metric_ranks"] = Cell("/".join("–" if missing(r) else f"{r:g}" for r in ranks), ranks)
    share = analysis.rank_one(method, CONSENSUS)
    row.cells["rank_one"] = Cell(percent_text(share), share)


def layout_note(seeds: int) -> str:
    """What a metric cell shows (the three levels kept apart)."""
    text = ("mean ± std over test subjects: the mean is the mean over seeds of each seed's mean over the test "
            "subjects, the std the std over test subjects within a seed, averaged over seeds")
    if seeds > 1:
        text += "; in parentheses: the std of the per-seed means (training-to-training spread)"
    return text + "; best in bold"


def statistics_notes(model: TableModel, analysis: Analysis, shown: frozenset, labels: dict, p_default: bool = False,
                     reference_label: str | None = None) -> None:
    """The notes naming the statistics used, and the warnings a reader needs."""
    parts = []
    if "ci" in shown or "diff" in shown:
        parts.append(f"CI: {analysis.resample.description}")
    if ("holm" in shown or p_default) and analysis.reference is not None and len(analysis.comparisons):
        parts.append(f"p: two-sided Wilcoxon signed-rank test against {reference_label} on per-subject values (each "
                     f"subject's mean over seeds), Holm-corrected over the {len(analysis.comparisons)} comparisons "
                     f"of this table; * p < {analysis.alpha:g}")
    if "holm" in shown and analysis.reference is not None:
        parts.append("r: matched-pairs rank-biserial correlation (+1: every subject higher than the reference)")
    if "rank" in shown:
        parts.append("Rank: consensus of the per-metric ranks of the means (mean rank, ranked again; 1 = best); "
                     f"Rank 1 in: share of the {analysis.resample.resamples} bootstrap resamples in which the method "
                     "ranks first by that rule")
    if parts:
        model.add_note("statistics", "; ".join(parts) + ".")
    if shown & {"diff", "holm"} and analysis.reference is None:
        model.add_note("statistics", "No reference method (none declares table_reference and no --reference was "
                                     "given): no differences or p-values; name one with --reference METHOD.")
    if "friedman" in shown:
        for metric, result in analysis.friedman.items():
            if result is None:
                model.add_note("statistics", f"{metric.upper()}: no Friedman test (it needs 3 or more methods "
                                             "with values on 2 or more common subjects).")
                continue
            model.add_note("statistics", friedman_sentence(result, labels))
    for warning in analysis.warnings:
        model.add_note("warning", f"Caution: {warning}.")


def friedman_sentence(result, labels: dict | None = None) -> str:
    labels = labels or {}
    order = sorted(result.methods, key=lambda m: result.mean_ranks[m])
    ranks = ", ".join(f"{labels.get(m, m)} {result.mean_ranks[m]:.2f}" for m in order)
    return (f"{result.metric.upper()}: Friedman χ²_F = {result.chi2:.2f} (N = {result.n_blocks} subjects, "
            f"k = {result.k}; tie-corrected {p_phrase(result.p)}; Iman–Davenport F_F = {result.iman_davenport:.2f}); "
            f"mean ranks {ranks}; Nemenyi CD = {result.critical_difference:.2f} at α = {result.alpha:g}.")


def fill_metric_cells(row: TableRow, analysis: Analysis, method, metrics: dict, best: dict[str, object]) -> dict:
    """The metric cells of ``row`` (mean ± subject std (seed std)); returns the numbers by metric."""
    numbers = {}
    for metric in metrics:
        n = metric_numbers(analysis, method, metric)
        numbers[metric] = n
        digits = decimals_for(n["mean"])
        text = "–" if missing(n["mean"]) else mean_text(n, digits)
        row.cells[metric] = Cell(text, n["mean"], best=method in best.get(metric, set()) and not missing(n["mean"]))
    return numbers


def best_methods(analysis: Analysis, metrics: dict[str, dict]) -> dict[str, set]:
    """metric -> the methods holding the best mean (by direction; ties share it)."""
    out = {}
    for metric, info in metrics.items():
        part = analysis.summary[analysis.summary["metric"] == metric].dropna(subset=["mean"])
        if not len(part):
            out[metric] = set()
            continue
        best = part["mean"].max() if info["higher_is_better"] else part["mean"].min()
        out[metric] = set(part.loc[(part["mean"] - best).abs() <= 1e-12, "method"])
    return out
