"""Body coordinates with a random pose, and the simple solids the anatomies are drawn with.

A solid is evaluated only inside the box of voxels that can contain it, which keeps a 128³
phantom of a few dozen solids fast on a CPU.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

Box = tuple[slice, slice, slice]  # a [z, y, x] block of the volume


@dataclass
class Pose:
    """A rigid pose plus isotropic scale: world = R (scale · body) + shift, R = yaw ∘ pitch."""

    yaw_deg: float = 0.0  # about the body's superior axis
    pitch_deg: float = 0.0  # nodding, about the left-right axis
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # (x, y, z)
    scale: float = 1.0

    @classmethod
    def random(cls, rng: np.random.Generator, yaw_deg: float, pitch_deg: float, shift_mm: float,
               scale: float) -> "Pose":
        return cls(yaw_deg=float(rng.uniform(-yaw_deg, yaw_deg)),
                   pitch_deg=float(rng.uniform(-pitch_deg, pitch_deg)),
                   shift_mm=tuple(float(v) for v in rng.uniform(-shift_mm, shift_mm, size=3)),
                   scale=float(rng.uniform(1 - scale, 1 + scale)))

    def rotation(self) -> np.ndarray:
        yaw, pitch = math.radians(self.yaw_deg), math.radians(self.pitch_deg)
        about_z = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
        about_x = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
        return about_z @ about_x


@dataclass
class Solid:
    """A boolean ``mask`` over the ``box`` of the volume it lies in."""

    box: Box
    mask: torch.Tensor

    def __and__(self, full_mask: torch.Tensor) -> "Solid":
        """Restrict to a condition given on the whole volume."""
        return Solid(self.box, self.mask & full_mask[self.box])


class BodyGrid:
    """Body coordinates in mm (x: to the right, y: anterior, z: superior) of every voxel of a
    ``[z, y, x]`` block centred on the world origin, for a given pose."""

    def __init__(self, shape, spacing_mm, pose: Pose, device="cpu"):
        self.shape, self.spacing_mm, self.pose = tuple(shape), tuple(spacing_mm), pose
        axes = [(torch.arange(n, dtype=torch.float32, device=device) - (n - 1) / 2) * s
                for n, s in zip(shape, spacing_mm)]
        world_z, world_y, world_x = torch.meshgrid(*axes, indexing="ij")
        shifted = (world_x - pose.shift_mm[0], world_y - pose.shift_mm[1], world_z - pose.shift_mm[2])
        inverse = pose.rotation().T / pose.scale
        self.x, self.y, self.z = (sum(float(inverse[row, k]) * shifted[k] for k in range(3)) for row in range(3))

    def box_of(self, low_xyz, high_xyz) -> Box:
        """The voxel box holding the body-space box from ``low_xyz`` to ``high_xyz``."""
        corners = np.array(list(itertools.product(*zip(low_xyz, high_xyz))), dtype=float)
        corners = np.clip(corners, -1e4, 1e4)
        world = corners @ (self.pose.rotation() * self.pose.scale).T + np.array(self.pose.shift_mm)
        box = []
        for axis_xyz, axis_zyx in ((2, 0), (1, 1), (0, 2)):
            n, spacing = self.shape[axis_zyx], self.spacing_mm[axis_zyx]
            index = world[:, axis_xyz] / spacing + (n - 1) / 2
            box.append(slice(int(np.clip(math.floor(index.min()) - 1, 0, n)),
                             int(np.clip(math.ceil(index.max()) + 2, 0, n))))
        return tuple(box)

    def radius(self, centre, semi_axes, box: Box = (slice(None),) * 3) -> torch.Tensor:
        """Normalised ellipsoidal radius over ``box``: < 1 inside the axis-aligned ellipsoid."""
        (cx, cy, cz), (ax, ay, az) = centre, semi_axes
        squared = ((self.x[box] - cx) / ax).square_()
        squared += ((self.y[box] - cy) / ay).square_()
        squared += ((self.z[box] - cz) / az).square_()
        return squared.sqrt_()

    def ellipsoid(self, centre, semi_axes) -> Solid:
        box = self.box_of([c - a for c, a in zip(centre, semi_axes)], [c + a for c, a in zip(centre, semi_axes)])
        return Solid(box, self.radius(centre, semi_axes, box) < 1)

    def sphere(self, centre, radius_mm: float) -> Solid:
        return self.ellipsoid(centre, (radius_mm,) * 3)

    def cylinder(self, centre_xy, semi_axes_xy, z_range) -> Solid:
        """An elliptic cylinder along the body's z axis between ``z_range[0]`` and ``z_range[1]``."""
        (cx, cy), (ax, ay) = centre_xy, semi_axes_xy
        box = self.box_of((cx - ax, cy - ay, z_range[0]), (cx + ax, cy + ay, z_range[1]))
        x, y, z = self.x[box], self.y[box], self.z[box]
        inside = ((x - cx) / ax).square_() + ((y - cy) / ay).square_() < 1
        return Solid(box, inside & (z >= z_range[0]) & (z <= z_range[1]))


def random_point_in(mask: torch.Tensor, grid: BodyGrid, rng: np.random.Generator) -> tuple[float, float, float]:
    """Body coordinates of a voxel drawn uniformly from ``mask`` (for placing lesions)."""
    candidates = mask.flatten().nonzero().squeeze(1)
    pick = candidates[int(rng.integers(len(candidates)))]
    return tuple(float(axis.flatten()[pick]) for axis in (grid.x, grid.y, grid.z))
