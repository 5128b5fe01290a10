"""One subject: a standard-dose volume and its low-dose volumes keyed by DRF."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Subject:
    """A subject as a dataset yields it.

    Volumes are float32 arrays indexed ``[z, y, x]`` (axial slices along axis 0).
    ``affine`` is the 4x4 NIfTI affine of the same data stored in NIfTI order ``[x, y, z]``
    (see :func:`petbench.data.nifti.save_volume`); ``spacing`` is ``(dz, dy, dx)`` in mm.
    ``spet`` may be ``None`` for a subject loaded without its standard dose (never happens for a
    test subject) and ``lpet`` may be empty for an unpaired standard-dose subject.
    """

    id: str
    spet: np.ndarray | None
    lpet: dict[int, np.ndarray] = field(default_factory=dict)
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    units: str = "a.u."
    meta: dict = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        zooms = np.sqrt((np.asarray(self.affine)[:3, :3] ** 2).sum(axis=0))  # per NIfTI axis x, y, z
        return float(zooms[2]), float(zooms[1]), float(zooms[0])

    @property
    def shape(self) -> tuple[int, ...]:
        volume = self.spet if self.spet is not None else next(iter(self.lpet.values()))
        return tuple(volume.shape)
