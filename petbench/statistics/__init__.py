"""Statistics of results: pure functions of a tidy frame (one row per method, seed, subject, metric) and
a bootstrap seed, so that the same call gives the same numbers in every table, figure and page.

- :mod:`.aggregate`: per-seed means, then mean and std across seeds; the subject spread apart;
- :mod:`.bootstrap`: the paired hierarchical bootstrap (seeds, then subjects) and its CIs;
- :mod:`.compare`: paired differences with CIs, Wilcoxon + Holm, rank-biserial effect size;
- :mod:`.ranking`: per-metric and consensus ranks, Friedman + Nemenyi, bootstrap rank distribution;
- :mod:`.analysis`: all of it for one table (:func:`analyse` -> :class:`Analysis`).
"""
from .aggregate import per_seed_means, subject_means, summarize
from .analysis import Analysis, analyse
from .bootstrap import Resample, confidence_intervals, draw_resample, replicate_means, resample_for, value_cube
from .compare import comparisons, holm, rank_biserial, wilcoxon_p
from .ranking import (CONSENSUS, FriedmanResult, friedman, friedman_from_blocks, metric_ranks,
                      nemenyi_critical_difference, rank_distribution)

__all__ = ["Analysis", "CONSENSUS", "FriedmanResult", "Resample", "analyse", "comparisons", "confidence_intervals",
           "draw_resample", "friedman", "friedman_from_blocks", "holm", "metric_ranks", "nemenyi_critical_difference",
           "per_seed_means", "rank_biserial", "rank_distribution", "replicate_means", "resample_for",
           "subject_means", "summarize", "value_cube", "wilcoxon_p"]
