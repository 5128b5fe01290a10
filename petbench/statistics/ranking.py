"""Rankings: per-metric ranks of the means, one consensus rank, the Friedman test over subjects with the
Nemenyi post-hoc test and critical difference (Demšar 2006), and the bootstrap distribution of every
method's rank (challengeR's rank stability, Wiesenfarth et al. 2021).

Rank 1 is the best, by each metric's direction. Ranks of means give ties the better rank (1, 1, 3);
the Friedman test's ranks within a subject give ties their average rank (as its formula needs).
Consensus rule: a method's consensus score is the mean of its per-metric ranks over the table's
metrics; the consensus rank ranks that score (lower is better, ties share the better rank).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import friedmanchisquare, f as f_distribution, rankdata, studentized_range

from .aggregate import subject_means
from .bootstrap import Resample, metric_replicates

CONSENSUS = "consensus"


def ranks_of(values, higher_is_better: bool) -> np.ndarray:
    """Competition ranks (1 = best, ties share the better rank); a NaN ranks last."""
    values = np.asarray(values, dtype=float)
    score = np.where(np.isnan(values), np.inf, -values if higher_is_better else values)
    return rankdata(score, method="min", axis=-1).astype(float)


def metric_ranks(summary: pd.DataFrame, directions: dict[str, bool]) -> pd.DataFrame:
    """From :func:`..aggregate.summarize`: one row per (method, metric) with ``rank`` of its ``mean``,
    plus rows with metric ``"consensus"``: ``score`` (mean per-metric rank) and its ``rank``."""
    rows = []
    methods = list(dict.fromkeys(summary["method"]))
    per_metric = {}
    for metric in dict.fromkeys(summary["metric"]):
        part = summary[summary["metric"] == metric].set_index("method").reindex(methods)
        ranks = ranks_of(part["mean"].to_numpy(float), directions[metric])
        per_metric[metric] = ranks
        rows += [{"method": m, "metric": metric, "score": float(v), "rank": float(r)}
                 for m, v, r in zip(methods, part["mean"], ranks)]
    if per_metric:
        score = np.mean(np.vstack(list(per_metric.values())), axis=0)
        rows += [{"method": m, "metric": CONSENSUS, "score": float(s), "rank": float(r)}
                 for m, s, r in zip(methods, score, ranks_of(score, higher_is_better=False))]
    return pd.DataFrame(rows, columns=["method", "metric", "score", "rank"])


def rank_distribution(frame: pd.DataFrame, resample: Resample, directions: dict[str, bool],
                      cache: dict | None = None) -> pd.DataFrame:
    """The rank of every method in every bootstrap replicate (the shared resample), per metric and for
    the consensus rule: one row per (method, metric, rank) with ``share`` = the fraction of replicates
    in which the method has that rank (rows with share 0 included, so every method has ranks 1..M)."""
    methods = list(dict.fromkeys(frame["method"]))
    per_metric = {}
    for metric in dict.fromkeys(frame["metric"]):
        replicates = metric_replicates(frame, metric, methods, resample, cache)[1]  # (M, B)
        per_metric[metric] = ranks_of(replicates.T, directions[metric])  # (B, M)
    if per_metric:
        score = np.mean(np.stack(list(per_metric.values())), axis=0)
        per_metric[CONSENSUS] = ranks_of(score, higher_is_better=False)
    rows = []
    for metric, ranks in per_metric.items():
        for i, method in enumerate(methods):
            counts = np.bincount(ranks[:, i].astype(int), minlength=len(methods) + 1)
            rows += [{"method": method, "metric": metric, "rank": r, "share": counts[r] / resample.resamples}
                     for r in range(1, len(methods) + 1)]
    return pd.DataFrame(rows, columns=["method", "metric", "rank", "share"])


def rank_one_share(distribution: pd.DataFrame, method, metric: str = CONSENSUS) -> float:
    part = distribution[(distribution["method"] == method) & (distribution["metric"] == metric)
                        & (distribution["rank"] == 1)]
    return float(part["share"].iloc[0]) if len(part) else float("nan")


def nemenyi_critical_difference(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """``(q_alpha, CD)``: q_alpha = the studentized range quantile for k groups (infinite df) / √2, and
    CD = q_alpha · √(k(k+1)/(6N)) (Demšar 2006, section 3.2.2)."""
    q = float(studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q, q * math.sqrt(k * (k + 1) / (6 * n))


@dataclass
class FriedmanResult:
    """A Friedman test over the blocks (subjects) of one metric, with the Nemenyi post-hoc test.

    ``chi2`` is Friedman's statistic as Demšar writes it (no tie correction); ``iman_davenport`` its
    F form with ``p_iman_davenport``; ``chi2_tie_corrected`` and ``p`` come from
    ``scipy.stats.friedmanchisquare`` (ties corrected): ``p`` is the p-value petbench reports."""

    metric: str
    methods: list
    mean_ranks: dict  # method -> mean rank over blocks (1 = best)
    n_blocks: int
    chi2: float
    iman_davenport: float
    p_iman_davenport: float
    chi2_tie_corrected: float
    p: float
    alpha: float
    q_alpha: float
    critical_difference: float
    posthoc: pd.DataFrame = field(repr=False)  # Nemenyi p-values, methods × methods (scikit-posthocs)

    @property
    def k(self) -> int:
        return len(self.methods)

    def cliques(self) -> list[list]:
        """Maximal groups of methods (by mean rank) whose mean ranks differ by less than the CD: the
        bars of a critical-difference diagram."""
        order = sorted(self.methods, key=lambda m: self.mean_ranks[m])
        groups = []
        for i, start in enumerate(order):
            group = [m for m in order[i:] if self.mean_ranks[m] - self.mean_ranks[start] < self.critical_difference]
            if len(group) > 1 and not any(set(group) <= set(g) for g in groups):
                groups.append(group)
        return groups

    def as_dict(self) -> dict:
        return {"metric": self.metric, "methods": list(self.methods), "mean_ranks": self.mean_ranks,
                "n_blocks": self.n_blocks, "chi2": self.chi2, "iman_davenport": self.iman_davenport,
                "p_iman_davenport": self.p_iman_davenport, "chi2_tie_corrected": self.chi2_tie_corrected,
                "p": self.p, "alpha": self.alpha, "q_alpha": self.q_alpha,
                "critical_difference": self.critical_difference,
                "nemenyi_p": {str(a): {str(b): float(self.posthoc.loc[a, b]) for b in self.methods}
                              for a in self.methods}}


def friedman_blocks(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Subjects × methods of per-subject values (mean over seeds), subjects with every method only."""
    means = subject_means(frame[frame["metric"] == metric])
    methods = list(dict.fromkeys(frame["method"]))
    wide = means.pivot_table(index="subject", columns="method", values="value")
    return wide.reindex(columns=methods).dropna()


def friedman_from_blocks(blocks: pd.DataFrame, higher_is_better: bool, metric: str = "",
                         alpha: float = 0.05) -> FriedmanResult | None:
    """The Friedman test of a blocks × methods table (None with fewer than 3 methods or 2 blocks)."""
    import scikit_posthocs

    n, k = blocks.shape
    if k < 3 or n < 2:
        return None
    values = blocks.to_numpy(float)
    ranks = rankdata(-values if higher_is_better else values, axis=1)  # ties: average rank
    mean_ranks = ranks.mean(axis=0)
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(mean_ranks ** 2) - k * (k + 1) ** 2 / 4)
    denominator = n * (k - 1) - chi2
    f_value = (n - 1) * chi2 / denominator if denominator > 0 else math.inf
    p_f = float(f_distribution.sf(f_value, k - 1, (k - 1) * (n - 1))) if math.isfinite(f_value) else 0.0
    if np.all(ranks == ranks[:, :1]):  # every block ties every method: nothing to test
        corrected, p = 0.0, 1.0
    else:
        result = friedmanchisquare(*values.T)
        corrected, p = float(result.statistic), float(result.pvalue)
    posthoc = scikit_posthocs.posthoc_nemenyi_friedman(pd.DataFrame(ranks, columns=list(blocks.columns)))
    q, cd = nemenyi_critical_difference(k, n, alpha)
    methods = list(blocks.columns)
    return FriedmanResult(metric=metric, methods=methods, mean_ranks=dict(zip(methods, map(float, mean_ranks))),
                          n_blocks=n, chi2=float(chi2), iman_davenport=float(f_value), p_iman_davenport=p_f,
                          chi2_tie_corrected=corrected, p=p, alpha=alpha, q_alpha=q, critical_difference=cd,
                          posthoc=posthoc.loc[methods, methods])


def friedman(frame: pd.DataFrame, metric: str, higher_is_better: bool, alpha: float = 0.05) -> FriedmanResult | None:
    """The Friedman test of ``metric`` over test subjects (blocks; each subject's mean over seeds)."""
    return friedman_from_blocks(friedman_blocks(frame, metric), higher_is_better, metric, alpha)
