"""The one-parameter search every classical filter uses, on the paired training slices only.

A coarse geometric grid of ``points`` values from ``low`` to ``high``; then a finer geometric grid of
``refine`` values between the best value's two neighbours (the grid's end when the best is an end).
The objective is the mean squared error between the filtered LPET and the SPET over the fit slices, in the
host's normalised units (a lower MSE is a higher PSNR on those slices). Ties go to the smaller value.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def geometric(low: float, high: float, points: int) -> list[float]:
    return [float(v) for v in np.geomspace(low, high, points)] if points > 1 else [float(low)]


def fit_parameter(objective: Callable[[float], float], low: float, high: float, points: int, refine: int
                  ) -> tuple[float, float, list[tuple[float, float]]]:
    """``(best value, its objective, every (value, objective) tried in order)``."""
    tried: list[tuple[float, float]] = []

    def evaluate(values: list[float]) -> int:
        scores = [float(objective(v)) for v in values]
        tried.extend(zip(values, scores))
        return int(np.argmin(scores))  # the first of equal minima: the smaller value

    coarse = geometric(low, high, points)
    best = evaluate(coarse)
    if refine > 0 and len(coarse) > 1:
        left, right = coarse[max(best - 1, 0)], coarse[min(best + 1, len(coarse) - 1)]
        evaluate(geometric(left, right, refine))
    value, score = min(tried, key=lambda pair: (pair[1], pair[0]))
    return value, score, tried
