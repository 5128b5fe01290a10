"""Non-local means (scikit-image ``denoise_nl_means``) of each LPET slice; the filter strength h fitted."""
from __future__ import annotations

import numpy as np
from skimage.restoration import denoise_nl_means

from .base import ClassicalFilter


class NonLocalMeans(ClassicalFilter):
    name = "nlm"
    description = ("Non-local means (scikit-image, 5x5 patches, search distance 6, fast mode) of each LPET "
                   "slice; h fitted on the paired training slices.")
    display_name = "Non-local means"
    parameter = "h"
    unit = "normalised intensity"
    provenance_source = "skimage.restoration.denoise_nl_means"
    table_places = {1: 12}
    efficiency_place = 12
    defaults = {"h": None, "patch_size": 5, "patch_distance": 6, "search_low": 0.005, "search_high": 1.0,
                "search_points": 13, "refine_points": 7, "fit_slices": 256}
    presets = {"paper": {}, "quick": {}}
    test_options = {"fit_slices": 16, "search_points": 4, "refine_points": 3}

    def __init__(self, options=None, preset=None) -> None:
        super().__init__(options, preset)
        from ..option_checks import OptionChecker

        OptionChecker(f"method {self.name!r}", self.options).at_least(1, "patch_size", "patch_distance")

    def apply(self, slices: np.ndarray, value: float) -> np.ndarray:
        o = self.options
        return np.stack([denoise_nl_means(s, patch_size=o["patch_size"], patch_distance=o["patch_distance"],
                                          h=value, fast_mode=True) for s in slices])
