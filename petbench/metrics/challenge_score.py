"""The UDPET challenge's combined SCORE, from its parts, as its evaluator computes it.

Source: felihong/wavelet-PET-denoising @037ac83b, ``common/evaluation.py`` (a participant's copy of the
challenge's evaluator; docs/metrics.md). Per subject:

- **global part**: ``0.4·PSNR + 0.2·SSIM − 0.4·NRMSE``, the evaluator's ``compute_psnr``,
  ``compute_ssim``, ``compute_nrmse`` (petbench's ``psnr``, ``ssim``, ``nrmse``);
- **local part**: ``−MAPE``. For each organ of its list (``liver, heart, kidneyRight, kidneyLeft``, the
  labels 1..4 of its masks) the evaluator computes, in reference and prediction, the SUV features of
  ``compute_suv`` (SUVmean, SUVmax, TLM = voxels · SUVmean, and a "PSNR" = ``compute_psnr(real=mask,
  pred=image)``: 20·log10(1 / RMSE(mask, image)) over the whole volume, the organ's 0/1 mask against the
  image) and six pyradiomics features, then the percentage error |pred − ref| / |ref| · 100 of each
  (``percentage_error``). ``_get_local_MAPE`` weighs them, SUVmean and SUVmax 0.2, TLM and PSNR 0.15, each
  radiomics feature 0.05, and divides the weighted sum by the number of features, 10; MAPE is the mean of
  that over the organs;
- ``SCORE = 0.5·global − 0.5·MAPE`` (``_get_subject_SCORE``).

Here the six radiomics features are left out (their terms are absent from the weighted sum, which is still
divided by 10, so MAPE is the evaluator's less its radiomics part); the organs are the regions of the
dataset's ``regions`` map whose names are the evaluator's organs (the phantom's torso: liver, heart and
both kidneys as one region stand in for the challenge's segmentations). The evaluator scores SUV; the
local "PSNR" depends on the units (the others do not), so it is the evaluator's only for data in SUV.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.subject import LabelMap
from ..metric import MetricContext
from .challenge import nrmse, psnr, ssim
from .regions import percentage_error

#: the evaluator's weights of the SUV features in ``_get_local_MAPE`` ('SUV' in the name: 0.2; TLM, PSNR: 0.15)
SUV_WEIGHTS = {"suv_mean": 0.2, "suv_max": 0.2, "psnr": 0.15, "tlm": 0.15}
#: its six radiomics features (weight 0.05 each), left out here
RADIOMICS_FEATURES = ("firstorder_RootMeanSquared", "firstorder_90Percentile", "firstorder_Median",
                      "glrlm_HighGrayLevelRunEmphasis", "glszm_ZonePercentage", "glcm_JointAverage")
#: what the weighted sum is divided by: len(SUV_feature_list + selected_feature_list)
FEATURE_COUNT = len(SUV_WEIGHTS) + len(RADIOMICS_FEATURES)
#: region names taken for the evaluator's organs (lower case, without "_" and " ")
ORGAN_NAMES = ("liver", "heart", "kidneyright", "kidneyleft", "kidneys", "kidney")


@dataclass
class OrganFeatures:
    name: str
    ref: dict[str, float]
    pred: dict[str, float]

    def errors(self) -> dict[str, float]:
        return {key: percentage_error(self.ref[key], self.pred[key]) for key in SUV_WEIGHTS}

    def weighted_error(self) -> float:
        """The evaluator's per-organ MAPE without the radiomics terms: Σ w·error / 10."""
        errors = self.errors()
        return sum(SUV_WEIGHTS[key] * errors[key] for key in SUV_WEIGHTS) / FEATURE_COUNT


def mask_psnr(mask: np.ndarray, image: np.ndarray) -> float:
    """``compute_psnr(real=mask, pred=image)``: 20·log10(max(mask) / RMSE(mask, image)), whole volume."""
    error = float(np.sqrt(np.mean(np.square(mask - image))))
    return float("inf") if error == 0 else float(20 * np.log10(float(mask.max()) / error))


def suv_features(image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """``compute_suv(image, mask)``: SUVmean, SUVmax, TLM (voxels · SUVmean) and the mask PSNR."""
    inside = mask != 0
    mean = float(image[inside].mean())
    return {"suv_mean": mean, "suv_max": float(image[inside].max()), "tlm": int(inside.sum()) * mean,
            "psnr": mask_psnr(mask, image)}


def organ_values(regions: LabelMap) -> list[tuple[str, int]]:
    """The regions that stand for the evaluator's organs: (name, label value), in label order."""
    present = set(regions.present())
    return [(name, value) for value, name in sorted(regions.names.items())
            if value in present and name.lower().replace("_", "").replace(" ", "") in ORGAN_NAMES]


def organ_features(pred: np.ndarray, ref: np.ndarray, regions: LabelMap | None) -> list[OrganFeatures]:
    if regions is None:
        return []
    pred, ref = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    rows = []
    for name, value in organ_values(regions):
        mask = (np.asarray(regions.array) == value).astype(np.float64)  # the evaluator's organ_mask: 0/1
        rows.append(OrganFeatures(name, suv_features(ref, mask), suv_features(pred, mask)))
    return rows


def shared_organs(pred, ref, context: MetricContext) -> list[OrganFeatures]:
    return context.shared("challenge_score.organs", lambda: organ_features(pred, ref, context.label("regions")))


def challenge_mape(pred, ref, context: MetricContext) -> float:
    """The evaluator's local MAPE [%] without its radiomics terms; NaN where no region is one of its organs."""
    rows = [r for r in shared_organs(pred, ref, context) if all(r.ref[k] != 0 for k in SUV_WEIGHTS)]
    return float(np.mean([r.weighted_error() for r in rows])) if rows else float("nan")


def organ_psnr_error(pred, ref, context: MetricContext) -> float:
    """|Δ local PSNR| / local PSNR · 100 per organ (the evaluator's ``compute_suv`` PSNR), mean over organs."""
    rows = [r for r in shared_organs(pred, ref, context) if r.ref["psnr"] != 0]
    return float(np.mean([r.errors()["psnr"] for r in rows])) if rows else float("nan")


def challenge_score(pred, ref, context: MetricContext) -> float:
    """0.5·(0.4·PSNR + 0.2·SSIM − 0.4·NRMSE) − 0.5·MAPE, as ``_get_subject_SCORE``."""
    mape = challenge_mape(pred, ref, context)
    if np.isnan(mape):
        return float("nan")
    global_part = 0.4 * psnr(pred, ref, context) + 0.2 * ssim(pred, ref, context) - 0.4 * nrmse(pred, ref, context)
    return 0.5 * global_part - 0.5 * mape
