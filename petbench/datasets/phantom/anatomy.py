"""What a phantom anatomy is (activity, attenuation, labels, voxel size) and which ones exist."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Voxel size (dz, dy, dx) in mm of the 128³ block; other sizes keep the field of view.
BLOCK_SIZE = 128
BLOCK_SPACING_MM = {
    "brain": (1.65, 1.65, 1.65),  # the Quadra voxel: a 211 mm head block
    "torso": (6.0, 3.5, 3.5),  # neck to pelvis (768 mm) in a 448 mm transaxial field of view
}
ANATOMIES = tuple(BLOCK_SPACING_MM)


@dataclass
class Anatomy:
    """A ground-truth phantom on a ``[z, y, x]`` grid.

    ``activity`` is in SUV-like units, ``mu`` the 511 keV attenuation in cm⁻¹, ``labels`` the
    region of each voxel (names in ``regions``, 0 = air), ``lesions`` the lesion of each voxel
    (k for the k-th lesion drawn, 0 = none; where two overlap, the later one, as its activity).
    """

    activity: torch.Tensor
    mu: torch.Tensor
    labels: torch.Tensor
    regions: tuple[str, ...]
    spacing_mm: tuple[float, float, float]
    lesions: torch.Tensor | None = None

    def region_mask(self, name: str) -> torch.Tensor:
        return self.labels == self.regions.index(name)


def lookup(labels: torch.Tensor, values) -> torch.Tensor:
    """A volume with ``values[label]`` in each voxel."""
    table = torch.tensor(values, dtype=torch.float32, device=labels.device)
    return table[labels.long()]


def spacing_for(anatomy: str, size: int) -> tuple[float, float, float]:
    """Voxel size for a ``size``³ block: the 128³ block's field of view, bigger voxels."""
    return tuple(s * BLOCK_SIZE / size for s in BLOCK_SPACING_MM[anatomy])


def make_anatomy(anatomy: str, size: int, rng: np.random.Generator, device="cpu") -> Anatomy:
    """Draw one random subject of ``anatomy`` ("brain" or "torso") on a ``size``³ grid."""
    if anatomy == "brain":
        from .brain import make_brain

        return make_brain(size, rng, device)
    if anatomy == "torso":
        from .torso import make_torso

        return make_torso(size, rng, device)
    raise ValueError(f"unknown anatomy {anatomy!r}; choose one of {', '.join(ANATOMIES)}")
