"""The slice-wise variant of the S3PET group's evaluation: whole-volume min-max normalisation, no patches.

The group has at least three evaluation scripts. ``petbench.metrics.group`` is the 64³-patch one
(gluucose/PCCGAN ``test.py``). This module is the other family, which scores a volume assembled slice by
slice (as a 2D method predicts it) after one min-max normalisation of the whole volume:

- Aru321/GAN-for-PET-Reconstruction @387831a7 ``cvtgan/test.py`` (the CVT-GAN author's): ``normalize`` the
  reference volume to [0, 1] by its own min and max; PSNR = ``peak_signal_noise_ratio(res[y], ref[y],
  data_range=1)`` over ``y = np.nonzero(ref)``; SSIM = ``structural_similarity(res, ref, multichannel=True,
  data_range=1)``, i.e. 2D SSIM of each slice along the last axis (axial) averaged; NMSE =
  ``normalized_root_mse(ref, res) ** 2`` = Σ(ref−pred)² / Σref² on the whole volume.
- gluucose/PCCGAN @37e9842c ``evaluate.py`` ``evaluate()``: fills a 128³ volume slice by slice (from slice
  ``i_start=30``), each loaded batch min-max normalised by ``model/utils.py`` ``norm``, negative predictions set
  to 0, PSNR with ``data_range=1`` over the reference's non-zero voxels. As published it cannot run (its target
  line reads an undefined ``z``), its SSIM call passes the masked voxels as 1D vectors with a misspelt keyword,
  and its NMSE is ``normalized_root_mse(pred, ref) ** 2`` (Σpred² below); petbench follows ``cvtgan/test.py``
  for those two.

Inferred, not in that code: the prediction is normalised like the reference (``cvtgan/test.py`` leaves its
network's output, trained on normalised inputs, as it is: ``#res=normalize(res)``), after negative values are
set to 0 (``evaluate()``); the SSIM slices are axial (axis 0 of petbench's ``[z, y, x]``). The convention is
invariant to a positive scale and offset of each volume.
"""
from __future__ import annotations

import numpy as np

from ..metric import MetricContext
from .group import nmse_over, psnr_over, slice_ssim


def volume_normalize(volume: np.ndarray) -> np.ndarray:
    """``(v − min) / (max − min)`` over the whole volume (a constant volume maps to 0)."""
    volume = np.asarray(volume, np.float64)
    low, high = float(volume.min()), float(volume.max())
    return (volume - low) / (high - low) if high > low else np.zeros_like(volume)


def volume_pair(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None) -> tuple[np.ndarray, np.ndarray]:
    """The normalised prediction (negatives set to 0 first) and reference, once per pair."""
    def compute():
        return volume_normalize(np.clip(pred, 0, None)), volume_normalize(ref)

    return context.shared("group_volume.normalize", compute) if context is not None else compute()


def psnr_volume(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
    """10·log10(1 / MSE) over the non-zero voxels of the normalised reference."""
    pred_n, ref_n = volume_pair(pred, ref, context)
    return psnr_over(pred_n, ref_n, ref_n != 0)


def ssim_volume(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
    """Mean 2D SSIM of the axial slices of the normalised volumes, data range 1."""
    pred_n, ref_n = volume_pair(pred, ref, context)
    return slice_ssim(pred_n, ref_n, data_range=1.0)


def nmse_volume(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
    """Σ(ref−pred)² / Σref² of the normalised volumes."""
    pred_n, ref_n = volume_pair(pred, ref, context)
    return nmse_over(ref_n, pred_n)
