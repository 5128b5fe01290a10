"""Built-in metrics in the UDPET challenge convention (docs/metrics.md).

All three are computed on the whole re-stacked 3D volume in physical units:
PSNR = 20·log10(max(ref) / RMSE), NMSE = Σ(pred−ref)² / Σref², and 3D SSIM (7-voxel uniform
window) of each volume divided by its own maximum, with data range 1.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio

from petbench import Metric, hookimpl


def psnr(pred: np.ndarray, ref: np.ndarray) -> float:
    """20·log10(max(ref)/RMSE) over the whole volume (data range = the reference maximum)."""
    ref_t = torch.as_tensor(ref, dtype=torch.float64)
    return float(peak_signal_noise_ratio(torch.as_tensor(pred, dtype=torch.float64), ref_t,
                                         data_range=float(ref_t.max())))


def nmse(pred: np.ndarray, ref: np.ndarray) -> float:
    """Σ(pred−ref)² / Σref²."""
    pred, ref = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    return float(((pred - ref) ** 2).sum() / (ref ** 2).sum())


def ssim(pred: np.ndarray, ref: np.ndarray, window: int = 7) -> float:
    """3D SSIM of pred/max(pred) against ref/max(ref), data range 1.

    Uniform ``window``³ neighbourhoods, sample covariance and the border of ``window // 2``
    voxels left out, as scikit-image's ``structural_similarity`` does (torchmetrics' SSIM uses
    population covariance, so it is not used here).
    """
    x = torch.as_tensor(np.asarray(pred, np.float64))
    y = torch.as_tensor(np.asarray(ref, np.float64))
    x = x / x.max() if x.max() > 0 else x
    y = y / y.max() if y.max() > 0 else y
    window = min(window, *(d if d % 2 else d - 1 for d in x.shape))  # tiny volumes: the largest odd window that fits
    x, y = x[None, None], y[None, None]
    mean = lambda v: F.avg_pool3d(v, window, stride=1)  # noqa: E731 — valid region only = border cropped
    n = window ** 3
    cov_norm = n / (n - 1)
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


PSNR = Metric("psnr", psnr, higher_is_better=True, unit="dB",
              description="PSNR on the whole volume, data range = max of the reference (challenge convention)")
SSIM = Metric("ssim", ssim, higher_is_better=True,
              description="3D SSIM, 7-voxel window, each volume divided by its own max (challenge convention)")
NMSE = Metric("nmse", nmse, higher_is_better=False,
              description="Σ(pred−ref)²/Σref² on the whole volume (challenge convention)")


@hookimpl
def register_metrics(register):
    for metric in (PSNR, SSIM, NMSE):
        register(metric)
