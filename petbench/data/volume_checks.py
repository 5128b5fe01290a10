"""Degenerate volumes: data no method can learn from and no metric can score against."""
from __future__ import annotations

import numpy as np


def degenerate(volume: np.ndarray) -> str | None:
    """Why ``volume`` is bad data (non-finite voxels, all zero, one constant value), or None.

    A PET volume with no variation carries no image: training on it teaches nothing, and as a
    reference it makes SSIM 1.0 or NMSE undefined, so a dataset skips the subject."""
    volume = np.asarray(volume)
    if volume.size == 0:
        return "is empty (no voxels)"
    finite = np.isfinite(volume)
    if not finite.all():
        return f"contains {volume.size - int(np.count_nonzero(finite))} NaN or infinite voxels"
    low, high = float(volume.min()), float(volume.max())
    if low == high:
        return "is all zero" if high == 0 else f"is constant (every voxel {high:g})"
    return None
