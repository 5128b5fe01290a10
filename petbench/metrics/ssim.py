"""Mean SSIM over uniform windows, computed as scikit-image's ``structural_similarity`` does.

Uniform ``window``-wide neighbourhoods (scipy's ``uniform_filter1d``, the filter scikit-image uses),
sample covariance (N/(N−1)), K1 = 0.01, K2 = 0.03, and the mean over the voxels whose window lies
inside the array (a border of ``window // 2`` left out). Only the filtering runs over the whole array;
the SSIM formula runs on the cropped interior, which makes it about twice as fast as scikit-image for
the same value (tests/test_metrics.py compares the two).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

K1, K2 = 0.01, 0.03


def largest_window(shape, axes, window: int) -> int:
    """``window``, or the largest odd window that fits along every axis of ``axes`` (tiny volumes)."""
    fits = min(n if n % 2 else n - 1 for n in (shape[a] for a in axes))
    return max(1, min(window, fits))


def mean_ssim(x: np.ndarray, y: np.ndarray, data_range: float, window: int = 7,
              axes: tuple[int, ...] | None = None) -> float:
    """Mean SSIM of ``x`` and ``y`` with windows over ``axes`` (default: all).

    ``axes=(1, 2)`` of a ``[z, y, x]`` volume is 2D SSIM of each axial slice, averaged over the slices:
    what scikit-image gives with ``channel_axis=0`` (every slice has as many windows).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"SSIM of volumes of shapes {x.shape} and {y.shape}")
    axes = tuple(range(x.ndim)) if axes is None else tuple(axes)
    window = largest_window(x.shape, axes, window)
    pad = window // 2

    def box_mean(volume: np.ndarray) -> np.ndarray:
        for axis in axes:
            uniform_filter1d(volume, window, axis=axis, output=volume)  # line by line: in place is safe
        inner = tuple(slice(pad, n - pad) if a in axes else slice(None) for a, n in enumerate(volume.shape))
        return volume[inner]

    mx, my = box_mean(x.copy()), box_mean(y.copy())
    mxx, myy, mxy = box_mean(x * x), box_mean(y * y), box_mean(x * y)
    n = window ** len(axes)
    sample = n / (n - 1) if n > 1 else 1.0
    vx = sample * (mxx - mx * mx)
    vy = sample * (myy - my * my)
    cxy = sample * (mxy - mx * my)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())
