"""A whole-body FDG trunk, neck to pelvis: liver, spleen, kidneys, heart, lungs, spine, bowel,
bladder and random lesions, drawn with a random pose (docs/datasets.md).

Positions are in mm in body coordinates (x: to the right, y: anterior, z: superior) with the
block centre at the origin. Uptake is relative to the liver, which is scaled to SUV 2.2.
"""
from __future__ import annotations

import numpy as np
import torch

from .anatomy import Anatomy, lookup, spacing_for
from .filters import smooth_noise
from .shapes import BodyGrid, Pose, Solid, random_point_in

REGIONS = ("air", "fat", "muscle", "lung", "liver", "spleen", "kidney", "myocardium", "blood", "spine",
           "bowel", "bladder")
MU_TISSUE, MU_BONE, MU_LUNG = 0.096, 0.15, 0.03  # cm⁻¹ at 511 keV
SUV_OF_LIVER = 2.2
NECK_BASE = 270.0  # mm: the trunk ends here and the neck goes on to the top of the block


def make_torso(size: int, rng: np.random.Generator, device="cpu") -> Anatomy:
    spacing = spacing_for("torso", size)
    shape = (size, size, size)
    pose = Pose.random(rng, yaw_deg=5, pitch_deg=2, shift_mm=10, scale=0.08)
    grid = BodyGrid(shape, spacing, pose, device)
    code = {name: index for index, name in enumerate(REGIONS)}
    labels = torch.zeros(shape, dtype=torch.uint8, device=device)

    def paint(where: Solid, region: str) -> None:
        labels[where.box].masked_fill_(where.mask, code[region])

    low = -1e4  # below the block
    paint(grid.cylinder((0, 0), (165, 105), (low, NECK_BASE)), "fat")
    paint(grid.cylinder((0, -10), (55, 55), (NECK_BASE, 1e4)), "fat")
    paint(grid.cylinder((0, 0), (150, 90), (low, NECK_BASE - 15)), "muscle")  # under 15 mm of fat
    paint(grid.cylinder((0, -10), (40, 40), (NECK_BASE - 15, 1e4)), "muscle")
    for side in (-1, 1):
        paint(grid.ellipsoid((side * 80, -5, 150), (60, 75, 115)), "lung")
    paint(grid.ellipsoid((25, 35, 95), (48, 42, 48)), "myocardium")
    paint(grid.ellipsoid((25, 35, 95), (36, 31, 37)), "blood")  # ventricles' blood pool
    paint(grid.cylinder((-15, -40), (12, 12), (-150, 200)), "blood")  # aorta
    paint(grid.ellipsoid((70, 15, 0), (85, 80, 75)), "liver")
    paint(grid.ellipsoid((-90, -35, 20), (35, 45, 50)), "spleen")
    paint(grid.ellipsoid((70, -55, -85), (28, 25, 55)), "kidney")
    paint(grid.ellipsoid((-70, -55, -70), (28, 25, 55)), "kidney")
    paint(grid.cylinder((0, -65), (18, 18), (low, 1e4)), "spine")  # vertebral bodies: marrow and bone

    bladder_scale = rng.uniform(0.7, 1.2)
    paint(grid.ellipsoid((0, 35, -330), (45 * bladder_scale, 38 * bladder_scale, 35 * bladder_scale)), "bladder")

    uptake = {  # relative to the liver; bowel loops get their own value below
        "air": 0.0, "fat": 0.12, "muscle": 0.32, "lung": 0.18, "liver": 1.0, "spleen": 0.85, "kidney": 1.8,
        "myocardium": rng.uniform(1, 4), "blood": 0.75, "spine": 0.75, "bowel": 0.0, "bladder": rng.uniform(4, 12),
    }
    activity = lookup(labels, [float(uptake[r]) for r in REGIONS])
    mu = lookup(labels, [0.0 if r == "air" else MU_BONE if r == "spine" else MU_LUNG if r == "lung" else MU_TISSUE
                         for r in REGIONS])

    abdomen = labels == code["muscle"]
    for _ in range(int(rng.integers(4, 9))):  # bowel loops
        centre = (rng.uniform(-100, 100), rng.uniform(-20, 60), rng.uniform(-280, -100))
        loop = grid.sphere(centre, rng.uniform(15, 30)) & abdomen
        paint(loop, "bowel")
        activity[loop.box] = torch.where(loop.mask, float(rng.uniform(0.5, 1.2)), activity[loop.box])

    body = (labels > code["fat"]) & (labels != code["bladder"])
    lesions = torch.zeros(shape, dtype=torch.uint8, device=device)
    for number in range(1, int(rng.integers(1, 6)) + 1):
        lesion = grid.sphere(random_point_in(body, grid, rng), rng.uniform(4, 12)) & body
        activity[lesion.box] = torch.where(lesion.mask, float(rng.uniform(2, 6)), activity[lesion.box])
        lesions[lesion.box].masked_fill_(lesion.mask, number)

    activity *= (1 + 0.08 * smooth_noise(shape, spacing, 15, rng, device)).clamp_min_(0)
    return Anatomy(activity * SUV_OF_LIVER, mu, labels, REGIONS, spacing, lesions)
