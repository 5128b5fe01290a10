"""Optional label NIfTIs a user supplies for the region and lesion metrics (docs/folder-dataset.md)::

    ROOT/labels/<subject>/regions.nii.gz      organs or structures, one integer per region (0 = none)
    ROOT/labels/<subject>/lesions.nii.gz      one integer per lesion; a 0/1 mask is split into its
                                              connected components, one lesion each
    ROOT/labels/<subject>/background.nii.gz   a uniform region for the noise (any non-zero voxel)
    ROOT/labels/<role>.json                   names of the values, e.g. {"1": "liver", "2": "spleen"};
                                              ROOT/labels/<subject>/<role>.json overrides it

Each map must lie on the subject's standard-dose grid as stored (same shape and affine, within
0.01 mm, before any crop); it is cut with the volumes' crop and cached. Any file may be left out;
a subject without a ``labels/`` folder simply has no label maps. A bad file is an error naming it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from ...data.nifti import load_volume
from ...data.subject import LabelMap
from ...errors import UserError
from .cache import ConversionCache, source_signature
from .preprocess import Block, crop, crop_affine
from .source_info import SourceInfo

LABELS_DIR = "labels"
ROLES = ("regions", "lesions", "background")
AFFINE_TOLERANCE_MM = 1e-2


def label_files(labels_root: Path, subject_id: str) -> dict[str, Path]:
    folder = labels_root / subject_id
    found = {}
    for role in ROLES:
        for suffix in (".nii.gz", ".nii"):
            if (folder / f"{role}{suffix}").is_file():
                found[role] = folder / f"{role}{suffix}"
                break
    return found


def value_names(labels_root: Path, subject_id: str, role: str, values: list[int]) -> dict[int, str]:
    """Names of ``values`` from the subject's or the shared ``<role>.json``, else ``"<role> <value>"``."""
    default = {"lesions": "lesion", "regions": "region", "background": "background"}[role]
    names = {v: f"{default} {v}" for v in values}
    for path in (labels_root / f"{role}.json", labels_root / subject_id / f"{role}.json"):
        if not path.is_file():
            continue
        try:
            listed = json.loads(path.read_text(encoding="utf-8"))
            names.update({int(k): str(v) for k, v in listed.items()})
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            raise UserError(f"{path}: not a JSON object of value -> name, e.g. {{\"1\": \"liver\"}} ({exc})") from None
    return {v: names[v] for v in values}


def read_label_volume(path: Path, role: str, info: SourceInfo, dataset: str) -> np.ndarray:
    """The full-grid label map, checked against the standard dose's grid."""
    volume, affine = load_volume(path)
    if tuple(volume.shape) != tuple(info.shape):
        raise UserError(f"{dataset}: label map {path} has shape (z, y, x) {tuple(volume.shape)}, the standard dose "
                        f"{tuple(info.shape)}; it must lie on the standard dose's grid")
    if not np.allclose(affine, info.affine_array, atol=AFFINE_TOLERANCE_MM):
        raise UserError(f"{dataset}: label map {path} has another voxel grid (spacing/position/orientation) than the "
                        "standard dose; resample it onto the standard dose's grid (nearest neighbour)")
    if not np.all(np.isfinite(volume)) or volume.min() < 0 or not np.array_equal(volume, np.rint(volume)):
        raise UserError(f"{dataset}: label map {path} must hold non-negative integers")
    if role == "background":
        return (volume > 0).astype(np.float32)
    if role == "lesions" and volume.max() == 1:  # a binary mask: one lesion per connected component
        components, _ = ndimage.label(volume > 0)
        return components.astype(np.float32)
    return volume


def read_label_maps(labels_root: Path, subject_id: str, info: SourceInfo, block: Block | None,
                    cache: ConversionCache, dataset: str) -> dict[str, LabelMap]:
    """The subject's label maps by role, cut like its volumes (empty when it has none)."""
    maps = {}
    for role, path in label_files(labels_root, subject_id).items():
        key = {"labels": source_signature(path), "role": role, "block": block.to_json() if block else None}
        cached = cache.get_volume(key)
        if cached is not None:
            cut = cached[0]
        else:
            cut = crop(read_label_volume(path, role, info, dataset), block)
            cache.put_volume(key, cut, crop_affine(info.affine_array, block), {"role": role, "source": str(path)})
        array = np.rint(cut).astype(np.int32)
        values = [int(v) for v in np.unique(array) if v > 0]
        maps[role] = LabelMap(array, value_names(labels_root, subject_id, role, values))
    return maps
