"""A UDPET-like FDG head block: folded cortex, white matter, deep grey nuclei, cerebellum,
ventricles, skull, scalp, random lesions, drawn with a random pose (docs/datasets.md).

All positions are in mm in head coordinates (x: to the right, y: anterior, z: superior) with the
block centre at the origin; the head centre sits 6 mm above it, and the neck leaves the block at
the bottom.
"""
from __future__ import annotations

import numpy as np
import torch

from .anatomy import Anatomy, lookup, spacing_for
from .filters import smooth_noise
from .shapes import BodyGrid, Pose, Solid, random_point_in

REGIONS = ("air", "scalp", "skull", "csf", "grey_matter", "white_matter", "caudate", "putamen",
           "thalamus", "cerebellum", "brainstem")
MU_TISSUE, MU_BONE = 0.096, 0.15  # cm⁻¹ at 511 keV
SUV_OF_GREY_MATTER = 8.0

HEAD_Z = 6.0
HEAD_AXES = (70.0, 88.0, 84.0)  # scalp surface
SKULL_INNER, SKULL_OUTER = 0.84, 0.92  # as fractions of the head radius (≈ 7 mm of bone)
BRAIN_SURFACE = 0.81  # a thin CSF layer lies between the brain and the skull
CEREBRUM_CENTRE, CEREBRUM_AXES = (0.0, 2.0, HEAD_Z + 6), (63.0, 80.0, 66.0)


def make_brain(size: int, rng: np.random.Generator, device="cpu") -> Anatomy:
    spacing = spacing_for("brain", size)
    shape = (size, size, size)
    pose = Pose.random(rng, yaw_deg=8, pitch_deg=4, shift_mm=6, scale=0.08)
    grid = BodyGrid(shape, spacing, pose, device)
    code = {name: index for index, name in enumerate(REGIONS)}
    labels = torch.zeros(shape, dtype=torch.uint8, device=device)

    def paint(where: Solid | torch.Tensor, region: str) -> None:
        if isinstance(where, Solid):
            labels[where.box].masked_fill_(where.mask, code[region])
        else:
            labels.masked_fill_(where, code[region])

    head_radius = grid.radius((0, 0, HEAD_Z), HEAD_AXES)
    paint(head_radius < 1, "scalp")
    paint(grid.cylinder((0, -8), (48, 52), (-1e9, HEAD_Z - 40)), "scalp")  # neck
    paint((head_radius >= SKULL_INNER) & (head_radius < SKULL_OUTER) & (grid.z > HEAD_Z - 58), "skull")
    intracranial = head_radius < SKULL_INNER
    paint(intracranial, "csf")
    paint(intracranial & (grid.z < HEAD_Z - 45) & (grid.y > -10), "scalp")  # skull base, orbits
    paint_cerebrum(grid, head_radius, labels, code, rng)

    for side in (-1, 1):
        paint(grid.ellipsoid((side * 16, 12, HEAD_Z + 12), (5.5, 10, 8)), "caudate")
        paint(grid.ellipsoid((side * 26, 5, HEAD_Z + 2), (6, 14, 10)), "putamen")
        paint(grid.ellipsoid((side * 9, -12, HEAD_Z + 4), (8, 12, 8)), "thalamus")
        paint(grid.ellipsoid((side * 7, 0, HEAD_Z + 14), (5.5, 24, 9)), "csf")  # lateral ventricles
    paint(grid.ellipsoid((0, -6, HEAD_Z + 2), (2, 11, 8)), "csf")  # third ventricle

    paint(grid.ellipsoid((0, -46, HEAD_Z - 40), (50, 32, 22)) & (head_radius < BRAIN_SURFACE), "cerebellum")
    paint(grid.ellipsoid((0, -42, HEAD_Z - 38), (22, 14, 10)), "white_matter")  # cerebellar white matter
    paint(grid.ellipsoid((0, -16, HEAD_Z - 46), (12, 13, 34)), "brainstem")
    paint(grid.cylinder((0, -20), (7, 8), (-1e9, HEAD_Z - 60)), "brainstem")  # spinal cord

    grey = float(rng.uniform(0.9, 1.1))
    uptake = {
        "air": 0.0, "scalp": 0.125 * rng.uniform(0.8, 1.2), "skull": 0.05, "csf": 0.04,
        "grey_matter": grey, "white_matter": 0.25 * rng.uniform(0.85, 1.15),
        "caudate": 1.05 * grey, "putamen": 1.10 * grey, "thalamus": 0.95 * grey,
        "cerebellum": 0.85 * grey, "brainstem": 0.45,
    }
    activity = lookup(labels, [uptake[name] for name in REGIONS])
    mu = lookup(labels, [0.0 if name == "air" else MU_BONE if name == "skull" else MU_TISSUE for name in REGIONS])

    brain = labels >= code["grey_matter"]
    lesions = torch.zeros(shape, dtype=torch.uint8, device=device)
    for number in range(1, int(rng.integers(0, 4)) + 1):
        centre = random_point_in(brain, grid, rng)
        hot = rng.random() < 0.6
        factor = rng.uniform(1.3, 2.0) if hot else rng.uniform(0.3, 0.6)  # hot, or hypometabolic
        lesion = grid.sphere(centre, rng.uniform(3, 9)) & brain
        activity[lesion.box] *= torch.where(lesion.mask, float(factor), 1.0)
        lesions[lesion.box].masked_fill_(lesion.mask, number)

    activity *= (1 + 0.08 * smooth_noise(shape, spacing, 8, rng, device)).clamp_min_(0)
    return Anatomy(activity * SUV_OF_GREY_MATTER, mu, labels, REGIONS, spacing, lesions)


def paint_cerebrum(grid: BodyGrid, head_radius: torch.Tensor, labels: torch.Tensor, code: dict,
                   rng: np.random.Generator) -> None:
    """Cortex, white matter and sulcal CSF by depth below a folded surface.

    The surface and the grey/white boundary are moved by smooth random fields, so the cortex
    ribbon (6-12 mm at PET resolution) folds into gyri, and thin CSF clefts (sulci) cut into it.
    """
    box = grid.box_of([c - a for c, a in zip(CEREBRUM_CENTRE, CEREBRUM_AXES)],
                      [c + a for c, a in zip(CEREBRUM_CENTRE, CEREBRUM_AXES)])
    head_radius, z, x = head_radius[box], grid.z[box], grid.x[box]
    cerebrum_radius = grid.radius(CEREBRUM_CENTRE, CEREBRUM_AXES, box)
    inside = (cerebrum_radius < 1) & (head_radius < BRAIN_SURFACE) & (z > HEAD_Z - 50)
    shape = inside.shape
    depth = torch.minimum((1 - cerebrum_radius) * 66, (BRAIN_SURFACE - head_radius) * 80)  # mm, roughly
    depth += 2.5 * smooth_noise(shape, grid.spacing_mm, 14, rng, inside.device)  # gyri
    thickness = 11 + 1.5 * smooth_noise(shape, grid.spacing_mm, 30, rng, inside.device)
    thickness += 6 * smooth_noise(shape, grid.spacing_mm, 10, rng, inside.device)  # folds of the grey/white border
    sulci = smooth_noise(shape, grid.spacing_mm, 9, rng, inside.device).abs_() < 0.15
    region = labels[box]
    region.masked_fill_(inside & (depth > 0), code["grey_matter"])
    region.masked_fill_(inside & (depth >= thickness.clamp_(6, 18)), code["white_matter"])
    region.masked_fill_(inside & (depth <= 0), code["csf"])
    region.masked_fill_(inside & sulci & (depth < 0.85 * thickness), code["csf"])
    region.masked_fill_(inside & (x.abs() < 1.5) & (depth < 30), code["csf"])  # interhemispheric fissure
