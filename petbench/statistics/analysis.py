"""Everything one table states about its methods, computed once from a tidy frame and a seed."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .aggregate import check_tidy, summarize
from .bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, DEFAULT_SEED, Resample, confidence_intervals, resample_for
from .compare import comparisons
from .ranking import CONSENSUS, FriedmanResult, friedman, metric_ranks, rank_distribution, rank_one_share

FEW_SUBJECTS = 5  # below this many test subjects a CI is flagged


@dataclass
class Analysis:
    """The statistics of one table (see docs/statistics.md).

    - ``summary``: :func:`..aggregate.summarize` joined with the bootstrap ``ci_low``/``ci_high``;
    - ``comparisons``: :func:`..compare.comparisons` (empty without a reference and without all pairs);
    - ``ranks``: :func:`..ranking.metric_ranks` (per metric and ``consensus``);
    - ``rank_distribution``: :func:`..ranking.rank_distribution`;
    - ``friedman``: metric -> :class:`..ranking.FriedmanResult` (None with fewer than 3 methods);
    - ``warnings``: sentences for the reader (a CI resting on one seed or on few subjects).
    """

    methods: list
    metrics: dict[str, bool]  # metric -> higher_is_better
    reference: object
    resample: Resample
    level: float
    alpha: float
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    ranks: pd.DataFrame
    rank_distribution: pd.DataFrame
    friedman: dict[str, FriedmanResult | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def stat(self, method, metric: str) -> dict:
        """The summary row of (method, metric) as a dict."""
        part = self.summary[(self.summary["method"] == method) & (self.summary["metric"] == metric)]
        return part.iloc[0].to_dict() if len(part) else {}

    def comparison(self, method, metric: str, other=None) -> dict | None:
        other = self.reference if other is None else other
        table = self.comparisons
        part = table[(table["method"] == method) & (table["other"] == other) & (table["metric"] == metric)]
        if len(part):
            return part.iloc[0].to_dict()
        swapped = table[(table["method"] == other) & (table["other"] == method) & (table["metric"] == metric)]
        if not len(swapped):
            return None
        row = swapped.iloc[0].to_dict()  # the same comparison seen from the other side
        return {**row, "method": method, "other": other, "difference": -row["difference"], "ci_low": -row["ci_high"],
                "ci_high": -row["ci_low"], "rank_biserial": -row["rank_biserial"]}

    def rank(self, method, metric: str = CONSENSUS) -> float:
        part = self.ranks[(self.ranks["method"] == method) & (self.ranks["metric"] == metric)]
        return float(part["rank"].iloc[0]) if len(part) else float("nan")

    def rank_one(self, method, metric: str = CONSENSUS) -> float:
        """The share of bootstrap replicates in which ``method`` ranks first."""
        return rank_one_share(self.rank_distribution, method, metric)

    @property
    def method_text(self) -> str:
        """One sentence naming every statistic used (for a table's notes and for JSON)."""
        text = (f"{int(self.level * 100)} % CI: {self.resample.description}; per-subject values for tests are "
                f"each subject's mean over seeds")
        if len(self.comparisons):
            text += ("; p: two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon), Holm-corrected over the "
                     f"{len(self.comparisons)} comparisons of this table (statsmodels); effect size: matched-pairs "
                     "rank-biserial correlation")
        text += ("; ranks: 1 = best by each metric's direction, consensus = rank of the mean per-metric rank; "
                 "rank 1 share: fraction of bootstrap replicates in which the method ranks first")
        if any(self.friedman.values()):
            text += ("; Friedman test over subjects (scipy.stats.friedmanchisquare) with the Nemenyi post-hoc "
                     "test (scikit-posthocs)")
        return text

    def as_dict(self) -> dict:
        return {"method": self.method_text, "bootstrap": {"resamples": self.resample.resamples,
                                                          "seed": self.resample.seed, "level": self.level,
                                                          "scheme": self.resample.description},
                "alpha": self.alpha, "reference": self.reference, "warnings": self.warnings,
                "friedman": {m: (r.as_dict() if r else None) for m, r in self.friedman.items()},
                "comparisons": self.comparisons.to_dict(orient="records"),
                "ranks": self.ranks.to_dict(orient="records"),
                "rank_distribution": self.rank_distribution.to_dict(orient="records")}


def reliability_warnings(summary: pd.DataFrame, comparisons: pd.DataFrame | None = None,
                         alpha: float = 0.05) -> list[str]:
    out = []
    one_seed = sorted({str(m) for m, n in zip(summary["method"], summary["n_seeds"]) if n == 1})
    if one_seed:
        every = len(one_seed) == summary["method"].nunique()
        out.append(f"{'every CI' if every else 'the CI of ' + ', '.join(one_seed)} rests on one seed: it shows "
                   "subject-to-subject spread only, not training-to-training spread")
    few = summary[(summary["n_subjects"] > 0) & (summary["n_subjects"] < FEW_SUBJECTS)]
    if len(few):
        n = int(few["n_subjects"].min())
        out.append(f"some CIs rest on fewer than {FEW_SUBJECTS} test subjects (as few as {n}): a percentile "
                   "bootstrap of so few values is too narrow; read them as rough")
    if comparisons is not None and len(comparisons):
        n = int(comparisons["n_subjects"].max())
        smallest = 2 / 2 ** n if n else 1.0  # the exact two-sided Wilcoxon test's smallest p (all signs alike)
        if smallest * len(comparisons) >= alpha:
            out.append(f"with {n} paired subjects the smallest possible Wilcoxon p is {smallest:.3g}, so after Holm "
                       f"over {len(comparisons)} comparisons none can fall below {alpha:g}: more test subjects are "
                       "needed for a significant difference")
    return out


def analyse(frame: pd.DataFrame, directions: dict[str, bool], *, reference=None, all_pairs: bool = False,
            resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, level: float = DEFAULT_LEVEL,
            alpha: float = 0.05, tests: bool = True) -> Analysis:
    """The statistics of a tidy frame (columns method, seed, subject, metric, value; see
    :mod:`..aggregate`). ``directions``: metric -> higher_is_better (its keys choose the metrics, in
    order). ``tests=False`` skips the Friedman tests (they need scikit-posthocs)."""
    check_tidy(frame)
    frame = frame[frame["metric"].isin(list(directions))].assign(subject=lambda f: f["subject"].astype(str))
    methods = list(dict.fromkeys(frame["method"]))
    resample = resample_for(frame, resamples, seed)
    summary = summarize(frame)
    cache: dict = {}  # every step reads the same replicates of each metric
    intervals = confidence_intervals(frame, resample, level, cache)
    summary = summary.merge(intervals[["method", "metric", "ci_low", "ci_high"]], on=["method", "metric"], how="left")
    if reference is not None and reference not in methods:
        reference = None
    pairs = comparisons(frame, resample, reference=reference, all_pairs=all_pairs, level=level, cache=cache)
    present = {m: d for m, d in directions.items() if m in set(frame["metric"])}
    ranks = metric_ranks(summary, present)
    distribution = rank_distribution(frame, resample, present, cache)
    tests_by_metric = {m: friedman(frame, m, d, alpha) for m, d in present.items()} if tests else {}
    return Analysis(methods=methods, metrics=present, reference=reference, resample=resample, level=level,
                    alpha=alpha, summary=summary, comparisons=pairs, ranks=ranks, rank_distribution=distribution,
                    friedman=tests_by_metric, warnings=reliability_warnings(summary, pairs, alpha))
