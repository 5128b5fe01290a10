"""Quantitation where clinicians look: regions, lesions and background noise, from label maps.

Region statistics follow the UDPET challenge's evaluator (felihong/wavelet-PET-denoising,
``common/evaluation.py``: ``compute_suv`` and ``percentage_error``): in each region, SUVmean, SUVmax
and TLM = (number of voxels) · SUVmean, and the error of each is |pred − ref| / |ref| · 100.
The challenge averages the errors over its organs; petbench averages over every named region of
the ``"regions"`` map that has voxels (a region whose reference value is 0 is left out).

Lesions (``"lesions"`` map, one value per lesion) are compared with their local background: the
voxels of the lesion's bounding box grown by ``RING`` voxels that lie outside every lesion grown by
``MARGIN`` voxels (the spill-out of the blur) and, when there is a ``"regions"`` map, in the region
that holds most of the lesion. With L and B the mean inside the lesion and in its background:

- SUVmax recovery = max(pred in lesion) / max(ref in lesion), for hot lesions (L_ref > B_ref);
- contrast = L / B − 1, and contrast recovery = contrast(pred) / contrast(ref), for lesions whose
  reference contrast is at least ``MIN_CONTRAST`` in size (hot or cold).

Background noise is the coefficient of variation std / mean (population std) of the prediction in
the ``"background"`` map (a uniform region the dataset chooses). All per-pair tables are computed
once and shared between the metrics through the context.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..data.subject import LabelMap
from ..metric import MetricContext

RING = 4  # voxels: how far around a lesion its background is taken
MARGIN = 2  # voxels: kept free around every lesion (partial volume, spill-out)
MIN_CONTRAST = 0.1  # |L/B − 1| of the reference below which a contrast ratio is too unstable to report


def percentage_error(real: float, pred: float) -> float:
    """The challenge's ``percentage_error``: |pred − real| / |real| · 100."""
    return abs(pred - real) / abs(real) * 100


@dataclass
class RegionRow:
    name: str
    voxels: int
    mean_ref: float
    mean_pred: float
    max_ref: float
    max_pred: float

    @property
    def tlm_ref(self) -> float:
        return self.voxels * self.mean_ref

    @property
    def tlm_pred(self) -> float:
        return self.voxels * self.mean_pred


def smallest_unsigned(labels: np.ndarray) -> np.ndarray:
    """The labels as uint8 or uint16 when they fit, so that sorting them is a radix sort."""
    labels = np.asarray(labels)
    top = int(labels.max()) if labels.size else 0
    for dtype in (np.uint8, np.uint16):
        if top <= np.iinfo(dtype).max and (labels.dtype.kind == "u" or labels.min() >= 0):
            return labels.astype(dtype, copy=False)
    return labels.astype(np.int64, copy=False)


def region_rows(pred: np.ndarray, ref: np.ndarray, regions: LabelMap) -> list[RegionRow]:
    """SUVmean, SUVmax and voxel count of every named region with voxels.

    The voxels are sorted by label once; each region is then one contiguous run, reduced with
    ``np.add.reduceat`` and ``np.maximum.reduceat`` (several times faster than ``scipy.ndimage``'s
    per-label maximum, which sorts the values).
    """
    flat = smallest_unsigned(regions.array).ravel()
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ordered)) + 1))
    value_of_run = ordered[starts]
    counts = np.diff(np.concatenate((starts, [ordered.size])))
    stats = {}
    for key, volume in (("ref", ref), ("pred", pred)):
        values = np.asarray(volume, np.float64).ravel()[order]
        stats[key] = (np.add.reduceat(values, starts) / counts, np.maximum.reduceat(values, starts))
    run_of = {int(v): i for i, v in enumerate(value_of_run)}
    rows = []
    for value in sorted(regions.names):
        i = run_of.get(value)
        if value <= 0 or i is None:
            continue
        rows.append(RegionRow(regions.names[value], int(counts[i]), float(stats["ref"][0][i]),
                              float(stats["pred"][0][i]), float(stats["ref"][1][i]), float(stats["pred"][1][i])))
    return rows


def shared_region_rows(pred, ref, context: MetricContext) -> list[RegionRow]:
    return context.shared("regions.rows", lambda: region_rows(pred, ref, context.label("regions")))


def mean_or_nan(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def suvmean_error(pred, ref, context: MetricContext) -> float:
    rows = shared_region_rows(pred, ref, context)
    return mean_or_nan([percentage_error(r.mean_ref, r.mean_pred) for r in rows if r.mean_ref != 0])


def suvmax_error(pred, ref, context: MetricContext) -> float:
    rows = shared_region_rows(pred, ref, context)
    return mean_or_nan([percentage_error(r.max_ref, r.max_pred) for r in rows if r.max_ref != 0])


def tlm_error(pred, ref, context: MetricContext) -> float:
    """Total lesion metabolism error. On one mask it equals the SUVmean error (the voxel count cancels),
    as it does in the challenge's evaluator."""
    rows = shared_region_rows(pred, ref, context)
    return mean_or_nan([percentage_error(r.tlm_ref, r.tlm_pred) for r in rows if r.tlm_ref != 0])


@dataclass
class LesionRow:
    name: str
    voxels: int
    max_ref: float
    max_pred: float
    mean_ref: float
    mean_pred: float
    background_ref: float  # NaN when the lesion has no background voxels
    background_pred: float

    @property
    def hot(self) -> bool:
        return bool(self.mean_ref > self.background_ref)

    @property
    def suvmax_recovery(self) -> float:
        return self.max_pred / self.max_ref if self.max_ref > 0 else float("nan")

    @property
    def contrast_ref(self) -> float:
        return self.mean_ref / self.background_ref - 1 if self.background_ref > 0 else float("nan")

    @property
    def contrast_pred(self) -> float:
        return self.mean_pred / self.background_pred - 1 if self.background_pred > 0 else float("nan")

    @property
    def contrast_recovery(self) -> float:
        if not abs(self.contrast_ref) >= MIN_CONTRAST:  # also NaN
            return float("nan")
        return self.contrast_pred / self.contrast_ref


def lesion_rows(pred: np.ndarray, ref: np.ndarray, lesions: LabelMap, regions: LabelMap | None) -> list[LesionRow]:
    """Each lesion's SUVmax, mean and local background mean, computed inside the lesion's grown box."""
    labels = np.asarray(lesions.array)
    values = lesions.present()
    boxes = ndimage.find_objects(smallest_unsigned(labels)) if values else []
    rows = []
    nan = float("nan")
    for value in values:
        box = grown(boxes[value - 1], RING, labels.shape)
        wider = grown(boxes[value - 1], RING + MARGIN, labels.shape)  # dilation near the box's edge is exact
        inner = tuple(slice(b.start - w.start, b.stop - w.start) for b, w in zip(box, wider))
        near_lesions = ndimage.binary_dilation(labels[wider] > 0, iterations=MARGIN)[inner]
        inside = labels[box] == value
        background = ~near_lesions
        if regions is not None:
            host_labels = np.asarray(regions.array)[box]
            host = int(np.bincount(host_labels[inside].astype(np.int64).ravel()).argmax())
            background &= host_labels == host
        ref_box, pred_box = ref[box], pred[box]
        has_background = bool(background.any())
        rows.append(LesionRow(
            lesions.names.get(value, f"lesion {value}"), int(inside.sum()),
            float(ref_box[inside].max()), float(pred_box[inside].max()), float(ref_box[inside].mean()),
            float(pred_box[inside].mean()),
            float(ref_box[background].mean()) if has_background else nan,
            float(pred_box[background].mean()) if has_background else nan))
    return rows


def grown(box: tuple[slice, ...], by: int, shape) -> tuple[slice, ...]:
    return tuple(slice(max(0, s.start - by), min(n, s.stop + by)) for s, n in zip(box, shape))


def shared_lesion_rows(pred, ref, context: MetricContext) -> list[LesionRow]:
    return context.shared("regions.lesions", lambda: lesion_rows(pred, ref, context.label("lesions"),
                                                                 context.label("regions")))


def lesion_suvmax_recovery_error(pred, ref, context: MetricContext) -> float:
    """Mean over hot lesions of |SUVmax recovery − 1| · 100."""
    rows = [r for r in shared_lesion_rows(pred, ref, context) if r.hot and np.isfinite(r.suvmax_recovery)]
    return mean_or_nan([abs(r.suvmax_recovery - 1) * 100 for r in rows])


def lesion_contrast_recovery_error(pred, ref, context: MetricContext) -> float:
    """Mean over lesions with a measurable contrast of |contrast recovery − 1| · 100."""
    recoveries = [r.contrast_recovery for r in shared_lesion_rows(pred, ref, context)]
    return mean_or_nan([abs(c - 1) * 100 for c in recoveries if np.isfinite(c)])


def background_cov(pred, ref, context: MetricContext) -> float:
    """100 · std / mean of the prediction in the background region (population std)."""
    inside = np.asarray(context.label("background").array) > 0
    values = pred[inside]
    if values.size < 2 or values.mean() <= 0:
        return float("nan")
    return float(values.std() / values.mean() * 100)
