"""Paired comparisons between the methods of one table: differences with bootstrap CIs (from the shared
resample), a Wilcoxon signed-rank test on per-subject values (each subject's mean over seeds), the
matched-pairs rank-biserial correlation, and Holm's correction over every comparison of the table."""
from __future__ import annotations

import math
import warnings
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import rankdata, wilcoxon
from statsmodels.stats.multitest import multipletests

from .aggregate import subject_means
from .bootstrap import DEFAULT_LEVEL, Resample, metric_replicates, percentile_interval, point_means

COMPARISON_COLUMNS = ["metric", "method", "other", "difference", "ci_low", "ci_high", "n_subjects", "p",
                      "p_holm", "rank_biserial"]


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (``statsmodels.stats.multitest.multipletests``); NaN stays NaN
    and is not counted as a comparison."""
    pvalues = np.asarray(pvalues, dtype=float)
    out = np.full(pvalues.shape, np.nan)
    finite = np.isfinite(pvalues)
    if finite.any():
        out[finite] = multipletests(pvalues[finite], method="holm")[1]
    return out


def rank_biserial(x, y) -> float:
    """The matched-pairs rank-biserial correlation of ``x - y`` (Kerby 2014): (R+ − R−) / (R+ + R−) with
    R± the sums of the ranks of |d| over positive/negative differences, zero differences left out (as
    the Wilcoxon test leaves them out). +1: x is larger in every pair; NaN when every difference is 0."""
    d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    d = d[np.isfinite(d) & (d != 0)]
    if not len(d):
        return float("nan")
    ranks = rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def wilcoxon_p(x, y) -> float:
    """Two-sided Wilcoxon signed-rank test of paired ``x``, ``y`` (``scipy.stats.wilcoxon``, zero
    differences dropped); 1.0 when every difference is 0, NaN with no pair."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if not len(x):
        return float("nan")
    if np.all(x == y):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            p = float(wilcoxon(x, y).pvalue)
        except ValueError:
            return float("nan")
    return p


def subject_table(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Subjects × methods of per-subject values (each subject's mean over seeds) of ``metric``."""
    return subject_means(frame[frame["metric"] == metric]).pivot_table(index="subject", columns="method",
                                                                       values="value")


def paired_subject_values(frame: pd.DataFrame, metric: str, method, other, wide: pd.DataFrame | None = None
                          ) -> pd.DataFrame:
    """Per-subject values (mean over seeds) of two methods, on the subjects both have."""
    wide = subject_table(frame, metric) if wide is None else wide
    if method not in wide or other not in wide:
        return pd.DataFrame(columns=[method, other])
    return wide[[method, other]].dropna()


def pairs_of(methods: list, reference=None, all_pairs: bool = False) -> list[tuple]:
    """(method, other) pairs: every method against ``reference``, or every pair (in table order)."""
    if all_pairs:
        return list(combinations(methods, 2))
    if reference is None:
        return []
    return [(m, reference) for m in methods if m != reference]


def comparisons(frame: pd.DataFrame, resample: Resample, *, reference=None, all_pairs: bool = False,
                level: float = DEFAULT_LEVEL, cache: dict | None = None) -> pd.DataFrame:
    """One row per (metric, method, other): ``difference`` = mean(method) − mean(other) (means of per-seed
    means) with its paired bootstrap CI (``ci_low``, ``ci_high``; the same resample for both), the
    Wilcoxon ``p`` on per-subject values, ``p_holm`` (Holm over every row returned: one table's family),
    ``rank_biserial`` (positive: method larger) and ``n_subjects`` (pairs in the test)."""
    methods = list(dict.fromkeys(frame["method"]))
    pairs = pairs_of(methods, reference, all_pairs)
    rows = []
    for metric in dict.fromkeys(frame["metric"]):
        cube, replicates = metric_replicates(frame, metric, methods, resample, cache)
        point = point_means(cube)
        wide = subject_table(frame, metric) if pairs else None
        for method, other in pairs:
            i, j = methods.index(method), methods.index(other)
            low, high = percentile_interval(replicates[i] - replicates[j], level)
            paired = paired_subject_values(frame, metric, method, other, wide)
            x, y = paired[method].to_numpy(float), paired[other].to_numpy(float)
            rows.append({"metric": metric, "method": method, "other": other, "difference": float(point[i] - point[j]),
                         "ci_low": low, "ci_high": high, "n_subjects": int(len(paired)), "p": wilcoxon_p(x, y),
                         "rank_biserial": rank_biserial(x, y)})
    table = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if c != "p_holm"])
    table.insert(8, "p_holm", holm(table["p"].to_numpy(float)) if len(table) else [])
    return table


def significant(p_holm: float, alpha: float = 0.05) -> bool:
    return p_holm is not None and not math.isnan(p_holm) and p_holm < alpha
