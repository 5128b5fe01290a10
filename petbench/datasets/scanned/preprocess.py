"""The block each volume is cut to before the host slices it (the paper: 128 x 128 x 128).

``fixed`` reproduces the S3PET group's crop of a Quadra volume (their ``dataprocess.py``, on the
SimpleITK array ``[z, y, x]`` with slices ordered along the slice normal): columns 166-293, rows
191-318 of the 440 x 440 matrix, and the last 128 slices but one -- the top of the field of view
(head and neck of a whole-body scan). For other sizes and matrices the block keeps the same offset
from the matrix centre (+35 rows, +10 columns at 128, scaled with the size). ``body`` centres the
block on the bounding box of the body (the largest connected region above 5 % of the 99.5th
percentile of the standard dose). ``none`` keeps the whole volume. A block reaching past the
volume is moved inside it; a volume smaller than the block is padded with zeros (background).
Low-dose volumes are always cut with their standard dose's block.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROP_MODES = ("fixed", "body", "none")
PAPER_SIZE = 128
PAPER_OFFSET_ROWS, PAPER_OFFSET_COLUMNS = 35, 10  # from the matrix centre, at size 128
BODY_FRACTION = 0.05
BODY_PERCENTILE = 99.5


@dataclass(frozen=True)
class Block:
    """A box in a ``[z, y, x]`` volume; a start below 0 or a stop past the end means zero padding."""

    start: tuple[int, int, int]
    size: tuple[int, int, int]

    def to_json(self) -> dict:
        return {"start": list(self.start), "size": list(self.size)}

    @classmethod
    def from_json(cls, data: dict) -> "Block":
        return cls(tuple(data["start"]), tuple(data["size"]))


def choose_block(mode: str, volume: np.ndarray, size: int) -> Block | None:
    """The block for ``mode`` (None for ``none``), decided on the standard-dose volume."""
    if mode == "none":
        return None
    if mode == "fixed":
        return paper_block(volume.shape, size)
    if mode == "body":
        return body_block(volume, size)
    raise ValueError(f"unknown crop mode {mode!r}")


def paper_block(shape, size: int = PAPER_SIZE) -> Block:
    nz, ny, nx = shape
    z0 = nz - 1 - size  # the group's [-1-128:-1]
    y0 = ny // 2 - size // 2 + round(PAPER_OFFSET_ROWS * size / PAPER_SIZE)
    x0 = nx // 2 - size // 2 + round(PAPER_OFFSET_COLUMNS * size / PAPER_SIZE)
    return Block((fit(z0, size, nz), fit(y0, size, ny), fit(x0, size, nx)), (size, size, size))


def body_block(volume: np.ndarray, size: int) -> Block:
    from scipy import ndimage

    threshold = BODY_FRACTION * float(np.percentile(volume, BODY_PERCENTILE))
    mask = volume > threshold
    labels, count = ndimage.label(mask)
    if count == 0 or threshold <= 0:
        centre = [n // 2 for n in volume.shape]
    else:
        largest = 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
        box = ndimage.find_objects((labels == largest).astype(np.int8))[0]
        centre = [(s.start + s.stop) // 2 for s in box]
    starts = tuple(fit(c - size // 2, size, n) for c, n in zip(centre, volume.shape))
    return Block(starts, (size, size, size))


def fit(start: int, size: int, length: int) -> int:
    """Move a block inside ``[0, length)``; centre it when it cannot fit (zero padding both sides)."""
    if size >= length:
        return -((size - length) // 2)
    return min(max(start, 0), length - size)


def crop(volume: np.ndarray, block: Block | None) -> np.ndarray:
    if block is None:
        return np.ascontiguousarray(volume, dtype=np.float32)
    out = np.zeros(block.size, dtype=np.float32)
    source, target = [], []
    for start, size, length in zip(block.start, block.size, volume.shape):
        lo, hi = max(start, 0), min(start + size, length)
        source.append(slice(lo, hi))
        target.append(slice(lo - start, hi - start))
    out[tuple(target)] = volume[tuple(source)]
    return out


def crop_affine(affine: np.ndarray, block: Block | None) -> np.ndarray:
    """The affine of the cropped volume: the origin moves to the block's first voxel."""
    affine = np.array(affine, dtype=np.float64)
    if block is not None:
        z0, y0, x0 = block.start
        affine[:3, 3] = affine[:3, :3] @ np.array([x0, y0, z0], dtype=np.float64) + affine[:3, 3]
    return affine


def describe(mode: str, size: int) -> str:
    if mode == "none":
        return "whole volumes (no crop)"
    if mode == "fixed":
        return f"fixed {size}^3 block at the top of the field of view (the S3PET group's Quadra crop)"
    return f"{size}^3 block centred on the body"
