"""The evaluation convention of the S3PET group's public code, kept to compare with the published
numbers, not to rank methods.

Source: ``gluucose/PCCGAN``, ``test.py``, ``evaluate.py`` and ``model/utils.py`` at commit 37e9842c (the one
version of ``test.py`` in the public history), ``dataprocess/datamake3D.py`` at a202ecc0:
``datamake3D.py`` cuts each 128³ volume
into 125 patches of 64³ at stride 16, ``test.py`` normalises each patch (``model/utils.py`` ``norm``),
stitches the patches back (``concat``) and scores the stitched volumes (``cal``). docs/metrics.md
shows what each step does to the numbers.

1. Each volume is cut into 64³ patches with stride 16; each patch is min-max normalised to [0, 1]
   on its own; the patches are put back by averaging where they overlap; values below 0.01 become 0.
2. ``test.py`` defines ``cal(predicted_path, real_path)`` but calls it as ``cal(save_path_real,
   save_path_fake)``, so inside ``cal`` the names are swapped: the PSNR mask is the non-zero voxels of
   the normalised *prediction* and the NMSE denominator is Σpred². ``psnr_paper`` and ``nmse_paper``
   do exactly that. ``psnr_paper_refmask`` and ``nmse_paper_refnorm`` put the reference where the
   group's validation code (``evaluate.py``, ``evaluateMulti``) puts it: mask and denominator from
   the reference.
3. PSNR = skimage ``peak_signal_noise_ratio(data_range=1)`` = 10·log10(1 / MSE) over the mask.
4. SSIM = ``structural_similarity(ref, pred, multichannel=True)`` without ``data_range``: 2D SSIM of
   each slice along the array's last axis (7×7 uniform window, sample covariance, border cropped),
   averaged, with data range 2 (the float dtype range of scikit-image ≤ 0.19; later versions refuse
   the call). SSIM is symmetric, so the swap does not change it.
5. NMSE = ``normalized_root_mse(a, b) ** 2`` = Σ(a−b)² / Σa² on the normalised volumes.

Inferred, not in that code: the patches of the prediction are min-max normalised like the
reference's (``test.py`` saves the network's output, trained on normalised patches, as it is); the
SSIM slices are axial (``medpy.io.load`` returns ``[x, y, z]``, whose last axis is the slice axis
of an axial series; petbench's ``[z, y, x]`` slices along axis 0); volumes whose sides are not
64 + 16k get one more patch flush with the far end (a side shorter than 64 is one patch).
Inputs are ``[z, y, x]`` arrays in any units: the convention is invariant to a positive scale and
offset of each volume. The two normalised volumes are computed once per pair and shared by the
metrics of this convention through the context.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from ..metric import MetricContext

PATCH, STRIDE, FLOOR = 64, 16, 0.01


def patch_starts(length: int, patch: int = PATCH, stride: int = STRIDE) -> list[int]:
    """Start indices of the patches along one axis (the last one flush with the end)."""
    patch = min(patch, length)
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] + patch < length:
        starts.append(length - patch)
    return starts


def window_reduce(volume: np.ndarray, axis: int, starts: list[int], patch: int, reduce) -> np.ndarray:
    """``reduce`` (np.min or np.max) over each window along ``axis``; that axis becomes the windows."""
    before = (slice(None),) * axis
    slabs = [reduce(volume[before + (slice(s, s + patch),)], axis=axis) for s in starts]
    return np.stack(slabs, axis=axis)


def coverage(length: int, starts: list[int], patch: int) -> np.ndarray:
    """(length, n_patches) matrix: 1 where a voxel lies in a patch."""
    index = np.arange(length)[:, None]
    starts = np.asarray(starts)[None, :]
    return ((index >= starts) & (index < starts + patch)).astype(np.float32)


def patch_normalize(volume: np.ndarray, patch: int = PATCH, stride: int = STRIDE, floor: float = FLOOR) -> np.ndarray:
    """Per-patch min-max normalisation with overlap averaging, then values below ``floor`` set to 0.

    Computed in float32 without cutting patches out, so a whole-body volume fits in memory.
    """
    volume = np.asarray(volume, dtype=np.float32)
    sizes = [min(patch, n) for n in volume.shape]
    starts = [patch_starts(n, p, stride) for n, p in zip(volume.shape, sizes)]
    low, high = volume, volume
    for axis in (2, 1, 0):  # a box min/max is separable: reduce one axis at a time
        low = window_reduce(low, axis, starts[axis], sizes[axis], np.min)
        high = window_reduce(high, axis, starts[axis], sizes[axis], np.max)
    low, high = low.astype(np.float64), high.astype(np.float64)
    span = high - low
    scale = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0)  # a flat patch maps to 0

    # Σ over the patches covering a voxel of (v - low)·scale = v·Σscale − Σ(low·scale); then / count.
    covers = [coverage(n, s, p) for n, s, p in zip(volume.shape, starts, sizes)]

    def spread(per_patch: np.ndarray) -> np.ndarray:
        return np.einsum("ai,bj,ck,ijk->abc", *covers, per_patch.astype(np.float32), optimize=True)

    count_z, count_y, count_x = (cover.sum(axis=1).astype(np.float32) for cover in covers)
    normalized = spread(scale)
    normalized *= volume
    normalized -= spread(low * scale)
    normalized /= count_z[:, None, None] * count_y[None, :, None] * count_x[None, None, :]
    normalized[normalized < floor] = 0.0
    return normalized


def normalized_pair(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None) -> tuple[np.ndarray, np.ndarray]:
    """The patch-normalised prediction and reference (float64), once per pair."""
    def compute():
        return patch_normalize(pred).astype(np.float64), patch_normalize(ref).astype(np.float64)

    return context.shared("group.patch_normalize", compute) if context is not None else compute()


def psnr_over(a: np.ndarray, b: np.ndarray, inside: np.ndarray) -> float:
    if not inside.any():
        return float("nan")
    difference = a[inside] - b[inside]
    mse = float(np.dot(difference, difference)) / difference.size
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def nmse_over(truth: np.ndarray, test: np.ndarray) -> float:
    """skimage ``normalized_root_mse(truth, test) ** 2`` = Σ(truth−test)² / Σtruth²."""
    denominator = float(np.dot(truth.ravel(), truth.ravel()))
    difference = (truth - test).ravel()
    return float(np.dot(difference, difference)) / denominator if denominator > 0 else float("nan")


def psnr_paper(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
    """As ``test.py`` computes it: data range 1 over the non-zero voxels of the normalised *prediction*."""
    pred_n, ref_n = normalized_pair(pred, ref, context)
    return psnr_over(pred_n, ref_n, pred_n != 0)


def psnr_paper_refmask(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
    """As ``test.py`` with ``evaluate.py``'s argument order: over the non-zero voxels of the normalised reference."""
    pred_n, ref_n = normalized_pair(pred, ref, context)
    return psnr_over(pred_n, ref_n, ref_n != 0)


def nmse_paper(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
    """As ``test.py`` computes it: Σ(pred−ref)² / Σpred² of the normalised volumes."""
    pred_n, ref_n = normalized_pair(pred, ref, context)
    return nmse_over(pred_n, ref_n)


def nmse_paper_refnorm(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
    """As ``test.py`` with ``evaluate.py``'s argument order: Σ(pred−ref)² / Σref² of the normalised volumes."""
    pred_n, ref_n = normalized_pair(pred, ref, context)
    return nmse_over(ref_n, pred_n)


def ssim_paper(pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
    """Mean per-axial-slice 2D SSIM of the normalised volumes, data range 2."""
    pred_n, ref_n = normalized_pair(pred, ref, context)
    return slice_ssim(ref_n, pred_n, data_range=2.0)


def slice_ssim(x: np.ndarray, y: np.ndarray, data_range: float, window: int = 7) -> float:
    """2D SSIM of each ``[z]`` slice as scikit-image computes it (``channel_axis=0``), averaged."""
    if min(x.shape[-2:]) < window:
        raise ValueError(f"slices of {tuple(x.shape[-2:])} are smaller than the {window}-pixel SSIM window")
    return float(structural_similarity(x, y, win_size=window, data_range=data_range, channel_axis=0))
