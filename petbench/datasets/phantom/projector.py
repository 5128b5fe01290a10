"""A 2D parallel-beam PET projector as sparse CSR matrices, applied to all axial slices at once.

Each axial slice is an independent 2D acquisition with one radial bin per voxel and ``n`` angles
over 180°. The system matrix is pixel-driven with linear interpolation between the two nearest
bins and is restricted to the pixels inside the field-of-view circle. Slices are the columns of a
dense matrix, so one sparse matmul projects the whole volume (the reason it is fast on a CPU).

Angles are stored in subset order (subset 0's angles, then subset 1's, ...), so the sinogram rows
of one OSEM subset are a contiguous block and each subset has its own small CSR matrix and its
exact transpose.
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache

import torch


class ParallelBeamProjector:
    """Forward and back projection of ``(pixels_in_fov, slices)`` images for an ``n``×``n`` grid.

    Sinograms have shape ``(n_angles * n_bins, slices)``; rows are grouped by subset.
    Weights sum to 1 over the bins of each angle, so ``forward(mu) * pixel_size`` is a line integral.
    """

    def __init__(self, n: int, n_subsets: int = 8, device: str | torch.device = "cpu"):
        if n % n_subsets:
            raise ValueError(f"the number of angles ({n}) must be a multiple of the subsets ({n_subsets})")
        self.n = n
        self.n_angles = n
        self.n_bins = n
        self.n_subsets = n_subsets
        self.device = torch.device(device)

        centre = (n - 1) / 2
        coords = torch.arange(n, dtype=torch.float64) - centre
        y, x = torch.meshgrid(coords, coords, indexing="ij")
        # Pixels whose centre lies within (n-1)/2 of the centre always hit two valid bins.
        self.fov = (x ** 2 + y ** 2) <= centre ** 2
        self.fov_index = self.fov.flatten().nonzero().squeeze(1).to(self.device)
        x, y = x[self.fov], y[self.fov]
        n_pixels = x.numel()

        # Interleaved subsets: subset s holds angles s, s + n_subsets, s + 2 n_subsets, ...
        angle_order = torch.arange(n).reshape(n // n_subsets, n_subsets).t().flatten()
        self.subset_rows = [slice(s * self.rows_per_subset, (s + 1) * self.rows_per_subset)
                            for s in range(n_subsets)]
        self.forward_matrices, self.back_matrices = [], []
        angles_per_subset = n // n_subsets
        for s in range(n_subsets):
            subset_angles = angle_order[s * angles_per_subset:(s + 1) * angles_per_subset]
            theta = math.pi * subset_angles.double() / n
            u = x[:, None] * torch.cos(theta) + y[:, None] * torch.sin(theta) + centre  # (pixels, angles)
            lower = u.floor().clamp(0, n - 2)
            upper_weight = (u - lower).float()
            first_bin = lower.long() + torch.arange(angles_per_subset) * self.n_bins
            # Per pixel: (lower, upper) bin for each angle, already in increasing row order.
            rows = torch.stack([first_bin, first_bin + 1], dim=2).reshape(n_pixels, -1)
            values = torch.stack([1 - upper_weight, upper_weight], dim=2).reshape(n_pixels, -1)
            back = pixel_rows_csr(rows, values, self.rows_per_subset)
            self.back_matrices.append(back.to(self.device))
            self.forward_matrices.append(back.t().to_sparse_csr().to(self.device))  # the exact transpose
        self.n_pixels = n_pixels

    @property
    def rows_per_subset(self) -> int:
        return self.n_angles // self.n_subsets * self.n_bins

    # -- images <-> volumes ------------------------------------------------------------------
    def to_pixels(self, volume: torch.Tensor) -> torch.Tensor:
        """``[z, y, x]`` volume -> ``(pixels_in_fov, z)`` matrix (slices as columns)."""
        flat = volume.reshape(volume.shape[0], -1)
        return flat.index_select(1, self.fov_index).t().contiguous()

    def to_volume(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(pixels_in_fov, z)`` matrix -> ``[z, y, x]`` volume, zero outside the FOV circle."""
        n_slices = pixels.shape[1]
        flat = pixels.new_zeros(self.n * self.n, n_slices)
        flat.index_copy_(0, self.fov_index, pixels)
        return flat.t().reshape(n_slices, self.n, self.n)

    # -- projections -------------------------------------------------------------------------
    def forward(self, image: torch.Tensor, subset: int | None = None) -> torch.Tensor:
        if subset is not None:
            return self.forward_matrices[subset] @ image
        return torch.cat([matrix @ image for matrix in self.forward_matrices])

    def back(self, sinogram: torch.Tensor, subset: int | None = None) -> torch.Tensor:
        """The exact adjoint of :meth:`forward` (a full sinogram, or one subset's rows)."""
        if subset is not None:
            return self.back_matrices[subset] @ sinogram
        return sum(matrix @ sinogram[rows] for matrix, rows in zip(self.back_matrices, self.subset_rows))


def pixel_rows_csr(cols: torch.Tensor, values: torch.Tensor, n_cols: int) -> torch.Tensor:
    """A CSR matrix with one row per pixel and the same number of sorted entries in every row."""
    n_rows, per_row = cols.shape
    crow = torch.arange(0, n_rows * per_row + 1, per_row)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols.flatten(), values.flatten(), (n_rows, n_cols),
                                       check_invariants=False)


@lru_cache(maxsize=4)
def get_projector(n: int, n_subsets: int = 8, device: str = "cpu") -> ParallelBeamProjector:
    """Build once per process (about 0.4 s at n = 128) and reuse."""
    return ParallelBeamProjector(n, n_subsets, device)
