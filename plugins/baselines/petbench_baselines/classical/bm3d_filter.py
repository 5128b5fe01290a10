"""BM3D (the ``bm3d`` package) of each LPET slice; the noise level sigma_psd fitted.

The package is an optional extra (``pip install petbench-baselines[bm3d]``) because of its licence; the
method is registered only where it is installed. BM4D, the volumetric form, would need the whole volume
at once, and the host predicts slice by slice, so the slices are filtered one by one (BM3D)."""
from __future__ import annotations

import importlib.util

import numpy as np

from .base import ClassicalFilter


def bm3d_available() -> bool:
    return importlib.util.find_spec("bm3d") is not None


class BM3DFilter(ClassicalFilter):
    name = "bm3d"
    description = "BM3D (bm3d package) of each LPET slice; sigma_psd fitted on the paired training slices."
    display_name = "BM3D (slice by slice)"
    parameter = "sigma_psd"
    unit = "normalised intensity"
    provenance_source = "the bm3d package (Mäkinen et al.)"
    table_places = {1: 13}
    efficiency_place = 13
    defaults = {"sigma_psd": None, "search_low": 0.005, "search_high": 0.5, "search_points": 9, "refine_points": 5,
                "fit_slices": 32}
    presets = {"paper": {}, "quick": {}}
    test_options = {"fit_slices": 4, "search_points": 3, "refine_points": 0}

    def apply(self, slices: np.ndarray, value: float) -> np.ndarray:
        import bm3d

        return np.stack([np.asarray(bm3d.bm3d(s, sigma_psd=value), dtype=np.float64) for s in slices])
