"""The evaluation convention of the S3PET group's public code (metrics ``psnr_paper``,
``ssim_paper``, ``nmse_paper``), kept to compare with the published numbers, not to rank methods.

Emulated from the group's public code ``gluucose/PCCGAN`` (``dataprocess/datamake3D.py`` cuts
the patches, ``test.py`` normalises, stitches and scores); docs/metrics.md and docs/datasets.md
show what it does to the numbers:

1. Each volume (prediction and reference separately) is cut into 64³ patches with stride 16
   (125 patches of a 128³ block); each patch is min-max normalised to [0, 1] on its own; the
   patches are put back by averaging where they overlap; values below 0.01 become 0.
2. PSNR = 10·log10(1 / MSE) over the voxels where the normalised reference is non-zero.
3. SSIM = per-axial-slice 2D SSIM (7×7 uniform window, sample covariance, border cropped) with
   data range 2, the float default of old scikit-image's ``compare_ssim(..., multichannel=True)``,
   averaged over slices.
4. NMSE = normalized_root_mse² = Σ(pred−ref)² / Σref² on the normalised volumes.

Choices where that code is not explicit: the reference is the standard dose (PSNR's mask and
NMSE's denominator), the SSIM slices are axial (the old ``multichannel`` call took the array's last
axis, whatever it was), and volumes whose sides are not 64 + 16k get one more patch flush with the
far end (a side shorter than 64 is one patch). Inputs are ``[z, y, x]`` arrays in any units: the
convention is invariant to a positive scale and offset of each volume.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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


def psnr_paper(pred: np.ndarray, ref: np.ndarray) -> float:
    """PSNR (data range 1) over the non-zero voxels of the patch-normalised reference."""
    pred_n, ref_n = patch_normalize(pred), patch_normalize(ref)
    inside = ref_n != 0
    if not inside.any():
        return float("nan")
    mse = float(np.mean((pred_n[inside] - ref_n[inside]) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def nmse_paper(pred: np.ndarray, ref: np.ndarray) -> float:
    """Σ(pred−ref)² / Σref² of the patch-normalised volumes (skimage normalized_root_mse²)."""
    pred_n, ref_n = patch_normalize(pred), patch_normalize(ref)
    denominator = float(np.sum(ref_n ** 2))
    return float(np.sum((pred_n - ref_n) ** 2) / denominator) if denominator > 0 else float("nan")


def ssim_paper(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean per-axial-slice 2D SSIM of the patch-normalised volumes, data range 2."""
    return slice_ssim(patch_normalize(pred), patch_normalize(ref), data_range=2.0)


def slice_ssim(pred: np.ndarray, ref: np.ndarray, data_range: float, window: int = 7) -> float:
    """2D SSIM of each ``[z]`` slice as old scikit-image computed it, averaged over slices.

    Uniform ``window``² neighbourhoods, sample covariance, K1 = 0.01, K2 = 0.03, and the border
    of ``window // 2`` pixels left out (pooling without padding does exactly that).
    """
    x = torch.as_tensor(np.asarray(pred, np.float64))[:, None]
    y = torch.as_tensor(np.asarray(ref, np.float64))[:, None]
    if min(x.shape[-2:]) < window:
        raise ValueError(f"slices of {tuple(x.shape[-2:])} are smaller than the {window}-pixel SSIM window")
    mean = lambda v: F.avg_pool2d(v, window, stride=1)  # noqa: E731
    n = window ** 2
    sample = n / (n - 1)
    mx, my = mean(x), mean(y)
    vx = sample * (mean(x * x) - mx * mx)
    vy = sample * (mean(y * y) - my * my)
    cxy = sample * (mean(x * y) - mx * my)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())
