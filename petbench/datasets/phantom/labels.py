"""The phantom's label maps for region and lesion metrics, made from its exact anatomy.

``regions`` groups the generator's tissue labels into the structures clinicians read (brain: grey
and white matter, striatum = caudate + putamen, thalamus, cerebellum, and the rest of the head as
background tissue; torso: liver, kidneys, lungs, heart = myocardium, spine, and the rest of the body
as background tissue). ``lesions`` is every lesion drawn, one value each. ``background`` is the
uniform region the noise is measured in (white matter of the cerebrum for the brain, the liver for
the torso), eroded by ``EROSION`` voxels and kept ``EROSION`` voxels away from every lesion, so
partial volume at its edges does not count as noise.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ...data.subject import LabelMap
from .brain import REGIONS as BRAIN_REGIONS
from .torso import REGIONS as TORSO_REGIONS

SCORED = {  # scored structure -> the generator's tissue labels it is made of
    "brain": {"grey_matter": ("grey_matter",), "white_matter": ("white_matter",),
              "striatum": ("caudate", "putamen"), "thalamus": ("thalamus",), "cerebellum": ("cerebellum",),
              "background_tissue": ("scalp", "skull", "csf", "brainstem")},
    "torso": {"liver": ("liver",), "kidneys": ("kidney",), "lungs": ("lung",), "heart": ("myocardium",),
              "spine": ("spine",),
              "background_tissue": ("fat", "muscle", "spleen", "blood", "bowel", "bladder")},
}
TISSUES = {"brain": BRAIN_REGIONS, "torso": TORSO_REGIONS}
BACKGROUND = {"brain": "white_matter", "torso": "liver"}
EROSION = 2  # voxels


def scored_regions(anatomy: str, tissue: np.ndarray) -> LabelMap:
    """The ``regions`` map: each voxel's scored structure (0 = air or not scored)."""
    tissues = TISSUES[anatomy]
    table = np.zeros(len(tissues), dtype=np.uint8)
    names = {}
    for value, (name, parts) in enumerate(SCORED[anatomy].items(), start=1):
        names[value] = name
        for part in parts:
            table[tissues.index(part)] = value
    return LabelMap(table[np.asarray(tissue, dtype=np.int64)], names)


def background_region(anatomy: str, tissue: np.ndarray, lesions: np.ndarray) -> LabelMap:
    inside = np.asarray(tissue) == TISSUES[anatomy].index(BACKGROUND[anatomy])
    inside = ndimage.binary_erosion(inside, iterations=EROSION)
    if lesions.any():
        inside &= ~ndimage.binary_dilation(lesions > 0, iterations=EROSION)
    return LabelMap(inside.astype(np.uint8), {1: BACKGROUND[anatomy]})


def label_maps(anatomy: str, tissue: np.ndarray, lesions: np.ndarray) -> dict[str, LabelMap]:
    """The ``regions``, ``lesions`` and ``background`` maps of one subject (``[z, y, x]`` arrays)."""
    lesions = np.asarray(lesions, dtype=np.uint8)
    numbers = [int(v) for v in np.unique(lesions) if v > 0]
    return {"regions": scored_regions(anatomy, tissue),
            "lesions": LabelMap(lesions, {v: f"lesion {v}" for v in numbers}),
            "background": background_region(anatomy, tissue, lesions)}
