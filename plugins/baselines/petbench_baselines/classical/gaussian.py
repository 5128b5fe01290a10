"""Gaussian post-filter: each LPET slice smoothed by a 2D Gaussian of width sigma (pixels)."""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .base import ClassicalFilter


class GaussianFilter(ClassicalFilter):
    name = "gaussian"
    description = "Gaussian post-filter of each LPET slice; sigma [px] fitted on the paired training slices."
    display_name = "Gaussian filter"
    parameter = "sigma"
    unit = "px"
    provenance_source = "scipy.ndimage.gaussian_filter"
    table_places = {1: 11}
    efficiency_place = 11
    defaults = {"sigma": None, "search_low": 0.25, "search_high": 4.0, "search_points": 13, "refine_points": 9,
                "fit_slices": 1024}
    presets = {"paper": {}, "quick": {}}
    test_options = {"fit_slices": 64, "search_points": 5, "refine_points": 3}

    def apply(self, slices: np.ndarray, value: float) -> np.ndarray:
        # mode "nearest": the body does not fade into a zero border
        return gaussian_filter(slices, sigma=(0, value, value), mode="nearest", truncate=4.0)
