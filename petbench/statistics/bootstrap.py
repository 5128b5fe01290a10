"""The paired, hierarchical bootstrap: resample seeds, then test subjects within the resampled seeds,
and apply the same resample to every method, so that differences and ranks stay paired.

Every seed of a method is scored on the same test subjects (seeds and subjects are crossed, not
nested), so one replicate draws the subjects once and uses that draw in every drawn seed: a subject
that suits a method suits it in every seed. Drawing the subjects anew inside each drawn seed would
treat that as independent across seeds, shrink the subject share of the variance by the number of
seeds and make the intervals too narrow (measured: 80 % coverage of a nominal 95 % CI with 5 seeds,
see tests/test_statistics.py and docs/statistics.md).

The draw, for a seed ``seed``, ``S`` seeds and ``J`` subjects (the order is part of the contract; the
tests replay it with a plain numpy loop)::

    rng = numpy.random.default_rng(seed)
    seed_index = rng.integers(0, S, size=(B, S))      # seeds drawn with replacement
    subject_index = rng.integers(0, J, size=(B, J))   # subjects drawn with replacement, used in every drawn seed

Replicate ``b`` of a method is the mean over the ``S`` drawn seeds of the mean over the ``J`` drawn
subjects in that seed: the same statistic as the point estimate (:func:`..aggregate.summarize`'s
``mean``). Intervals are percentile intervals of the replicates (numpy's linear interpolation).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .aggregate import check_tidy

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class Resample:
    """One draw of seed and subject indices, shared by every method (and every metric) of a table."""

    seeds: tuple  # seed labels, sorted
    subjects: tuple  # subject labels, sorted
    seed_index: np.ndarray  # (B, S)
    subject_index: np.ndarray  # (B, J)
    resamples: int
    seed: int

    @property
    def description(self) -> str:
        return (f"paired hierarchical percentile bootstrap (seeds, then test subjects within the drawn seeds; "
                f"the same draw for every method and metric), B={self.resamples}, bootstrap seed {self.seed}")


def draw_resample(seeds, subjects, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Resample:
    """Indices into the sorted ``seeds`` and ``subjects`` labels (see the module's docstring)."""
    if resamples < 1:
        raise ValueError(f"the number of bootstrap resamples must be at least 1, not {resamples}")
    seeds, subjects = tuple(sorted(set(seeds))), tuple(sorted(set(subjects)))
    rng = np.random.default_rng(seed)
    seed_index = rng.integers(0, len(seeds), size=(resamples, len(seeds)))
    subject_index = rng.integers(0, len(subjects), size=(resamples, len(subjects)))
    return Resample(seeds, subjects, seed_index, subject_index, resamples, seed)


def resample_for(frame: pd.DataFrame, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Resample:
    """The resample of a tidy frame's seeds and subjects."""
    check_tidy(frame)
    return draw_resample(frame["seed"].unique(), frame["subject"].astype(str).unique(), resamples, seed)


def value_cube(frame: pd.DataFrame, metric: str, methods: list, resample: Resample) -> np.ndarray:
    """``(methods, seeds, subjects)`` array of ``metric``; NaN where a method has no value."""
    part = frame[frame["metric"] == metric]
    cube = np.full((len(methods), len(resample.seeds), len(resample.subjects)), np.nan)
    m_pos = {m: i for i, m in enumerate(methods)}
    s_pos = {s: i for i, s in enumerate(resample.seeds)}
    j_pos = {j: i for i, j in enumerate(resample.subjects)}
    means = part.assign(subject=part["subject"].astype(str)).groupby(["method", "seed", "subject"])["value"].mean()
    for (method, seed, subject), value in means.items():
        if method in m_pos and seed in s_pos and subject in j_pos:
            cube[m_pos[method], s_pos[seed], j_pos[subject]] = value
    return cube


def replicate_means(cube: np.ndarray, resample: Resample) -> np.ndarray:
    """``(methods, B)``: every method's statistic under every replicate of ``resample``."""
    out = np.empty((cube.shape[0], resample.resamples))
    seed_index = resample.seed_index[:, :, None]  # (B, S, 1) against subject_index (B, 1, J)
    subject_index = resample.subject_index[:, None, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN slice is a NaN replicate
        for m in range(cube.shape[0]):
            drawn = cube[m][seed_index, subject_index]  # (B, S, J)
            out[m] = np.nanmean(np.nanmean(drawn, axis=2), axis=1)
    return out


def metric_replicates(frame: pd.DataFrame, metric: str, methods: list, resample: Resample,
                      cache: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(cube, replicates)`` of ``metric`` (see :func:`value_cube`, :func:`replicate_means`); with a
    ``cache`` dict, computed once per (metric, methods) for one frame and resample."""
    key = (metric, tuple(methods))
    if cache is not None and key in cache:
        return cache[key]
    cube = value_cube(frame, metric, methods, resample)
    result = (cube, replicate_means(cube, resample))
    if cache is not None:
        cache[key] = result
    return result


def point_means(cube: np.ndarray) -> np.ndarray:
    """The statistic on the data as observed: mean over seeds of the mean over subjects."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.nanmean(cube, axis=2), axis=1)


def percentile_interval(replicates: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of the finite replicates (NaN, NaN when none)."""
    finite = np.asarray(replicates, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def confidence_intervals(frame: pd.DataFrame, resample: Resample, level: float = DEFAULT_LEVEL,
                         cache: dict | None = None) -> pd.DataFrame:
    """One row per (method, metric): ``mean`` (mean of per-seed means), ``ci_low``, ``ci_high``."""
    methods = list(dict.fromkeys(frame["method"]))
    rows = []
    for metric in dict.fromkeys(frame["metric"]):
        cube, replicates = metric_replicates(frame, metric, methods, resample, cache)
        point = point_means(cube)
        for i, method in enumerate(methods):
            low, high = percentile_interval(replicates[i], level)
            rows.append({"method": method, "metric": metric, "mean": float(point[i]), "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["method", "metric", "mean", "ci_low", "ci_high"])
