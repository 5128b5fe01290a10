"""Attenuation-corrected OSEM for all slices at once."""
from __future__ import annotations

import torch

from .projector import ParallelBeamProjector


def subset_sensitivity(projector: ParallelBeamProjector, efficiency: torch.Tensor) -> list[torch.Tensor]:
    """Aᵀ efficiency for each subset: the images OSEM divides by."""
    return [projector.back(efficiency[rows], s).clamp_min_(1e-12) for s, rows in enumerate(projector.subset_rows)]


def osem(projector: ParallelBeamProjector, counts: torch.Tensor, efficiency: torch.Tensor,
         background: torch.Tensor, iterations: int = 4, sensitivity: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Reconstruct ``counts ~ Poisson(efficiency · A x + background)``.

    All arguments are sinograms ``(rows, slices)`` in subset order; ``efficiency`` holds the
    attenuation factors times the count scale, so the image ``x`` (pixels, slices) comes out in
    activity units, and the known ``background`` (scatter + randoms) is modelled, not subtracted.
    ``sensitivity`` (from :func:`subset_sensitivity`) may be passed to save recomputing it.
    """
    if sensitivity is None:
        sensitivity = subset_sensitivity(projector, efficiency)
    # A uniform start per slice with the right total; slices without counts stay at zero.
    net = (counts - background).clamp_min(0).sum(0)
    image = (net / sum(sensitivity).sum(0).clamp_min(1e-12)).expand(projector.n_pixels, -1).contiguous()
    for _ in range(iterations):
        for s, rows in enumerate(projector.subset_rows):
            expected = efficiency[rows] * projector.forward(image, s) + background[rows]
            ratio = counts[rows] / expected.clamp_min_(1e-12)
            image *= projector.back(efficiency[rows] * ratio, s) / sensitivity[s]
    return image
