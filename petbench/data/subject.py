"""One subject: a standard-dose volume and its low-dose volumes keyed by DRF."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LabelMap:
    """An integer ``[z, y, x]`` map on the subject's grid (0 = unlabelled) and the name of each value.

    Datasets name their maps by role (docs/metrics.md): ``"regions"`` (organs or brain structures),
    ``"lesions"`` (one value per lesion) and ``"background"`` (value 1: a uniform region).
    """

    array: np.ndarray
    names: dict[int, str]

    def mask(self, value: int) -> np.ndarray:
        return self.array == value

    def present(self) -> list[int]:
        """The named, non-zero values that label at least one voxel, in order."""
        counts = np.bincount(np.asarray(self.array, dtype=np.int64).ravel(), minlength=1)
        return [v for v in sorted(self.names) if v > 0 and v < len(counts) and counts[v] > 0]


@dataclass
class Subject:
    """A subject as a dataset yields it.

    Volumes are float32 arrays indexed ``[z, y, x]`` (axial slices along axis 0).
    ``affine`` is the 4x4 NIfTI affine of the same data stored in NIfTI order ``[x, y, z]``
    (see :func:`petbench.data.nifti.save_volume`); ``spacing`` is ``(dz, dy, dx)`` in mm.
    ``labels`` holds the label maps the dataset has for this subject (by role, see :class:`LabelMap`);
    ``spet`` may be ``None`` for a subject loaded without its standard dose (never happens for a
    test subject) and ``lpet`` may be empty for an unpaired standard-dose subject.
    """

    id: str
    spet: np.ndarray | None
    lpet: dict[int, np.ndarray] = field(default_factory=dict)
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    units: str = "a.u."
    meta: dict = field(default_factory=dict)
    labels: dict[str, LabelMap] = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        zooms = np.sqrt((np.asarray(self.affine)[:3, :3] ** 2).sum(axis=0))  # per NIfTI axis x, y, z
        return float(zooms[2]), float(zooms[1]), float(zooms[0])

    @property
    def shape(self) -> tuple[int, ...]:
        volume = self.spet if self.spet is not None else next(iter(self.lpet.values()))
        return tuple(volume.shape)
