"""The metric role: scores a predicted 3D volume against the reference volume."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Metric:
    """A named metric ``fn(pred, ref) -> float`` on ``[z, y, x]`` volumes in physical units.

    ``higher_is_better`` gives its direction (used to mark the best); ``convention`` says which
    evaluation convention it follows (e.g. "challenge" or "paper"); ``unit`` is shown in tables.
    """

    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool
    description: str = ""
    convention: str = "challenge"
    unit: str = ""

    def __call__(self, pred: np.ndarray, ref: np.ndarray) -> float:
        return float(self.fn(np.asarray(pred, dtype=np.float64), np.asarray(ref, dtype=np.float64)))
