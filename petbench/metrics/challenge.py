"""The UDPET challenge's global metrics, as its evaluator computes them, and an NMSE.

Source: the participant copy of the challenge's evaluation code, felihong/wavelet-PET-denoising,
``common/evaluation.py`` (``compute_psnr``, ``compute_ssim``, ``compute_nrmse``; docs/metrics.md).
Every formula runs on the whole volume (air included) in its physical units; ``real`` there is
the reference, ``pred`` the prediction.

- PSNR = 20·log10(max(ref) / RMSE).
- SSIM = old scikit-image ``compare_ssim(ref / max(ref), pred / max(pred))`` with no ``data_range``:
  for float input that call took the dtype's range, −1…1, so the data range is 2; 3D, uniform 7³
  window, sample covariance.
- NRMSE = RMSE / (max(ref) − min(ref)).
- NMSE = Σ(pred−ref)² / Σref²: not the challenge's. The S3PET paper reports an NMSE (its Table I) but gives
  no formula; this one is inferred (the common definition; the group's code has two others, see group.py).

The volumes divided by their maximum are shared between metrics through the context.
"""
from __future__ import annotations

import numpy as np

from ..metric import MetricContext
from .ssim import mean_ssim

CHALLENGE_SSIM_RANGE = 2.0  # the float dtype range (−1, 1) old scikit-image used without data_range


def squared_error(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None) -> float:
    """Σ(pred−ref)², computed once per pair."""
    def compute():
        difference = pred - ref
        return float(np.dot(difference.ravel(), difference.ravel()))

    return context.shared("squared_error", compute) if context is not None else compute()


def rmse(pred, ref, context=None) -> float:
    return float(np.sqrt(squared_error(pred, ref, context) / ref.size))


def psnr(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
    """20·log10(max(ref) / RMSE) over the whole volume."""
    error = rmse(pred, ref, context)
    return float("inf") if error == 0 else float(20 * np.log10(float(ref.max()) / error))


def nrmse(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
    """RMSE / (max(ref) − min(ref))."""
    return rmse(pred, ref, context) / float(ref.max() - ref.min())


def nmse(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
    """Σ(pred−ref)² / Σref² (an inferred definition; the S3PET paper names NMSE without a formula)."""
    ref = np.asarray(ref, np.float64)
    return squared_error(np.asarray(pred, np.float64), ref, context) / float(np.dot(ref.ravel(), ref.ravel()))


def by_own_max(volume: np.ndarray) -> np.ndarray:
    """``volume / max(volume)``; an all-zero volume stays zero (the evaluator would give NaN)."""
    peak = float(volume.max())
    return volume / peak if peak > 0 else volume


def ssim(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None, window: int = 7) -> float:
    """3D SSIM of ref/max(ref) and pred/max(pred), uniform 7³ window, data range 2."""
    return mean_ssim(by_own_max(np.asarray(ref, np.float64)), by_own_max(np.asarray(pred, np.float64)),
                     CHALLENGE_SSIM_RANGE, window)
