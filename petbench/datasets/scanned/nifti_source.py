"""NIfTI sources: read and checked once at the scan, read again when converted."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...data.nifti import load_volume
from ...data.volume_checks import degenerate
from ...errors import UserError
from .problems import SourceProblem
from .source_info import SourceInfo


def read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``([z, y, x] float32, affine)``; an unreadable file or a NaN raises :class:`SourceProblem`."""
    try:
        volume, affine = load_volume(path)
    except UserError as exc:
        # load_volume's message names the path; the problem line names it once already
        raise SourceProblem(path, str(exc).replace(f" {path}", "").replace(f"{path} ", "")) from None
    problem = degenerate(volume)  # NaNs, all zero, constant: bad data, the source is skipped
    if problem:
        raise SourceProblem(path, problem)
    return volume, affine


def scanner_from_voxel_size(affine: np.ndarray) -> str:
    """Without metadata, the voxel size tells the two UDPET scanners apart (Quadra 1.65 mm isotropic,
    uEXPLORER 1.667 x 1.667 x 2.886 mm)."""
    x, y, z = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    if np.allclose([x, y, z], 1.65, atol=0.01):
        return "quadra"
    if np.allclose([x, y, z], [1.6667, 1.6667, 2.886], atol=0.01):
        return "uexplorer"
    return "unknown"


def nifti_info(path: Path) -> SourceInfo:
    """Read the whole volume once (so NaNs and truncation are caught here) and describe it."""
    volume, affine = read_nifti(path)
    info = SourceInfo(shape=tuple(int(n) for n in volume.shape), affine=affine.tolist())
    info.scanner = scanner_from_voxel_size(info.affine_array)
    info.suv_missing = "NIfTI without a metadata CSV"
    return info


def nifti_volume(source) -> np.ndarray:
    """The voxels of a NIfTI :class:`~petbench.datasets.scanned.collection.Source`."""
    return read_nifti(source.path)[0]
