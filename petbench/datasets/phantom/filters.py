"""Gaussian smoothing in physical units (separable, torch) and smooth random fields."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))


def blur_matrix(n: int, sigma_voxels: float, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """The ``n``×``n`` banded matrix of a Gaussian blur truncated at 3σ, zero outside the volume.

    Blurring by a matrix product is about ten times faster on a CPU than a 1-channel conv1d.
    """
    radius = max(1, int(math.ceil(3 * sigma_voxels)))
    offsets = torch.arange(n, dtype=torch.float64)
    offsets = offsets[:, None] - offsets[None, :]
    weights = torch.exp(-0.5 * (offsets / sigma_voxels) ** 2) * (offsets.abs() <= radius)
    norm = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float64) / sigma_voxels) ** 2).sum()
    return (weights / norm).to(dtype=dtype, device=device)


def blur_axis(volume: torch.Tensor, axis: int, sigma_voxels: float) -> torch.Tensor:
    """1D Gaussian blur of ``volume`` along ``axis``; zero outside the volume (activity ends there)."""
    if sigma_voxels < 0.2:  # narrower than a voxel: nothing to do
        return volume
    matrix = blur_matrix(volume.shape[axis], sigma_voxels, volume.dtype, volume.device)
    return torch.tensordot(matrix, volume, dims=([1], [axis])).movedim(0, axis)


def gaussian_blur(volume: torch.Tensor, fwhm_mm: float, spacing_mm) -> torch.Tensor:
    """3D Gaussian blur of a ``[z, y, x]`` volume with FWHM in mm and voxel sizes ``(dz, dy, dx)``."""
    if fwhm_mm <= 0:
        return volume
    for axis, spacing in enumerate(spacing_mm):
        volume = blur_axis(volume, axis, fwhm_mm / FWHM_PER_SIGMA / spacing)
    return volume.contiguous()


def smooth_noise(shape, spacing_mm, correlation_mm: float, rng: np.random.Generator,
                 device="cpu") -> torch.Tensor:
    """A smooth Gaussian random field with zero mean and (about) unit standard deviation.

    White noise on a coarse grid (nodes half a correlation length apart, so the field does not
    depend on the voxel size), smoothed and standardised there, then upsampled trilinearly.
    """
    extent = [n * s for n, s in zip(shape, spacing_mm)]
    coarse_shape = [max(4, int(math.ceil(2 * e / correlation_mm)) + 1) for e in extent]
    coarse = torch.from_numpy(rng.standard_normal(coarse_shape).astype(np.float32)).to(device)
    for axis in range(3):
        coarse = blur_axis(coarse, axis, 1.0)
    coarse = (coarse - coarse.mean()) / coarse.std().clamp_min(1e-12)
    return F.interpolate(coarse[None, None], size=tuple(shape), mode="trilinear", align_corners=True)[0, 0]
