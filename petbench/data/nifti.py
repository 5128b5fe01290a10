"""NIfTI in and out for ``[z, y, x]`` volumes (NIfTI stores ``[x, y, z]``)."""
from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from ..atomic import atomic_path
from ..errors import UserError


def affine_from_spacing(spacing_zyx, origin_xyz=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A diagonal NIfTI affine for voxel sizes ``(dz, dy, dx)`` in mm."""
    dz, dy, dx = spacing_zyx
    affine = np.diag([dx, dy, dz, 1.0])
    affine[:3, 3] = origin_xyz
    return affine


def save_volume(path: str | os.PathLike, volume_zyx: np.ndarray, affine: np.ndarray,
                units: str = "", dtype=np.float32) -> None:
    """Write atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.ascontiguousarray(np.asarray(volume_zyx, dtype=dtype).transpose(2, 1, 0)), affine)
    image.header.set_xyzt_units("mm")
    if units:
        image.header["descrip"] = units.encode()[:79]
    suffix = ".nii.gz" if path.name.endswith(".gz") else ".nii"  # nibabel picks compression by suffix
    with atomic_path(path, suffix) as tmp:
        nib.save(image, tmp)


def load_volume(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI volume as ``([z, y, x] float32, affine)``; a bad file is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"missing file {path}")
    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:
        raise UserError(f"unreadable NIfTI file {path} ({type(exc).__name__}: {exc}); replace or remove it") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise UserError(f"{path} holds a {data.ndim}-D image; a 3-D volume is expected")
    return np.ascontiguousarray(data.transpose(2, 1, 0)), np.asarray(image.affine, dtype=np.float64)
