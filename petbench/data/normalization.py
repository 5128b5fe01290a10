"""The host's intensity normalisation, declared per dataset, fitted on training volumes only.

A single scale ``s`` per run maps physical units to network units (``x / s``) and back
(``y * s``). It is fitted on the paired-train standard-dose volumes, never on a test volume: the
host passes it only training subjects, and :class:`Guarded` volumes refuse to be read.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class Normalization:
    def fit(self, train_volumes: list[np.ndarray]) -> float:
        """Return the scale from training standard-dose volumes."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class TrainPercentile(Normalization):
    """Scale = the q-th percentile of all paired-train SPET voxels (robust to hot spots)."""

    q: float = 99.5

    def fit(self, train_volumes):
        values = np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in train_volumes])
        scale = float(np.percentile(values, self.q))
        return scale if scale > 0 else 1.0

    def describe(self):
        return f"divide by the {self.q}th percentile of the paired-train SPET voxels"


@dataclass(frozen=True)
class FixedScale(Normalization):
    """Scale = a constant declared by the dataset (e.g. an SUV ceiling)."""

    scale: float = 1.0

    def fit(self, train_volumes):
        return float(self.scale)

    def describe(self):
        return f"divide by the constant {self.scale}"
