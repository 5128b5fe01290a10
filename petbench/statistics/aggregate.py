"""Aggregation that keeps its levels apart: subjects within a seed, then seeds.

The input is a tidy frame, one row per (method, seed, subject, metric) with a ``value``; ``method`` is
whatever a table compares (a method, or a method with one option set).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

TIDY_COLUMNS = ("method", "seed", "subject", "metric", "value")


def check_tidy(frame: pd.DataFrame) -> None:
    missing = [c for c in TIDY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"a tidy frame needs columns {', '.join(TIDY_COLUMNS)}; missing {', '.join(missing)}")


def sample_std(values) -> float:
    """The sample standard deviation (ddof=1); NaN for fewer than two values."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def per_seed_means(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, metric, seed): ``mean`` over that seed's test subjects, their ``subject_std``
    (ddof=1) and ``n_subjects`` (NaN values, a metric that does not apply to a subject, are left out)."""
    check_tidy(frame)
    valid = frame.dropna(subset=["value"])
    grouped = valid.groupby(["method", "metric", "seed"], sort=False)["value"]
    out = grouped.agg(mean="mean", subject_std=sample_std, n_subjects="count").reset_index()
    return out


def subject_means(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, metric, subject): the subject's mean over seeds (``value``) and ``n_seeds``.
    This is the per-subject value of every paired test and of the Friedman test."""
    check_tidy(frame)
    valid = frame.dropna(subset=["value"])
    return (valid.groupby(["method", "metric", "subject"], sort=False)["value"]
            .agg(value="mean", n_seeds="count").reset_index())


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, metric) with the three levels kept apart:

    - ``mean``: the mean over seeds of the per-seed means over test subjects;
    - ``seed_std``: the std (ddof=1) of the per-seed means (NaN with one seed);
    - ``subject_std``: the std (ddof=1) over test subjects within a seed, averaged over seeds;
    - ``n_seeds``, ``n_subjects`` (distinct subjects with a value), ``seeds`` (sorted list).
    """
    seeds = per_seed_means(frame)
    rows = []
    order = list(dict.fromkeys(zip(frame["method"], frame["metric"])))
    counts = frame.dropna(subset=["value"]).groupby(["method", "metric"])["subject"].nunique()
    by_key = {key: part for key, part in seeds.groupby(["method", "metric"], sort=False)}
    for method, metric in order:
        part = by_key.get((method, metric))
        if part is None:  # the metric applies to no subject of this method
            rows.append({"method": method, "metric": metric, "mean": np.nan, "seed_std": np.nan,
                         "subject_std": np.nan, "n_seeds": 0, "n_subjects": 0, "seeds": []})
            continue
        rows.append({"method": method, "metric": metric, "mean": float(part["mean"].mean()),
                     "seed_std": sample_std(part["mean"]), "subject_std": float(np.nanmean(part["subject_std"]))
                     if part["subject_std"].notna().any() else np.nan,
                     "n_seeds": int(len(part)), "n_subjects": int(counts.get((method, metric), 0)),
                     "seeds": sorted(part["seed"].tolist())})
    return pd.DataFrame(rows, columns=["method", "metric", "mean", "seed_std", "subject_std", "n_seeds",
                                       "n_subjects", "seeds"])
