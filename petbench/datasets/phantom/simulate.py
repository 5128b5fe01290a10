"""The physics chain: phantom -> standard-dose and low-dose PET images (docs/datasets.md).

PSF blur -> attenuated 2D parallel-beam projection of every slice -> scatter and randoms ->
Poisson counts (standard dose) -> binomial thinning with p = 1/DRF (low dose: a random subset of
the standard-dose events, exactly as list-mode subsampling) -> attenuation-corrected OSEM with
the background modelled -> Gaussian post-filter. Images come out in the phantom's SUV units.

Randomness comes from numpy generators keyed by (seed, index, purpose[, DRF]), so a subject is a
function of (seed, index) alone: a DRF's low dose does not depend on which other DRFs were asked for.
A subject is simulated with one torch thread whatever the caller's setting: float32 sums depend on
how they are split between threads, so this makes every volume the same bit for bit in the main
process, in a worker process of ``generate_subjects`` and on a machine with another core count.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...threads import one_thread
from .anatomy import BLOCK_SIZE, Anatomy, make_anatomy
from .filters import FWHM_PER_SIGMA, blur_axis, gaussian_blur
from .projector import get_projector
from .recon import osem, subset_sensitivity

STREAMS = {"anatomy": 0, "counts": 1, "thinning": 2}

# Standard-dose true counts per axial sinogram of the 128-slice block, calibrated per anatomy
# (docs/datasets.md): the brain's DRF-10 LPET lands on the S3PET paper's LPET row under the
# paper's metric convention; the torso's on NMSE ≈ 0.08 under the challenge convention.
CALIBRATED_COUNTS = {"brain": 1.2e5, "torso": 4.2e5}


@dataclass(frozen=True)
class Physics:
    """Acquisition and reconstruction settings (the defaults are calibrated for the brain)."""

    counts: float = CALIBRATED_COUNTS["brain"]  # mean true counts per axial sinogram, 128-slice block
    psf_fwhm_mm: float = 4.5
    scatter_fraction: float = 0.35  # scatter / (scatter + trues)
    scatter_fwhm_bins: float = 30.0  # radial blur of the trues, in bins of the 128³ block
    randoms_fraction: float = 0.15  # randoms / trues, spread uniformly over each sinogram
    iterations: int = 4
    subsets: int = 8
    post_filter_fwhm_mm: float = 4.0


@dataclass
class SimulatedSubject:
    spet: np.ndarray  # float32 [z, y, x], SUV
    lpet: dict[int, np.ndarray] = field(default_factory=dict)
    anatomy: Anatomy | None = None  # the ground truth it was simulated from


def stream(seed: int, index: int, purpose: str, *extra: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, STREAMS[purpose], *extra])


def simulate_subject(index: int, seed: int = 0, anatomy: str = "brain", size: int = BLOCK_SIZE,
                     drfs=(10,), physics: Physics = Physics(), device="cpu") -> SimulatedSubject:
    """Subject ``index`` of the phantom dataset with seed ``seed``: its SPET and LPET at ``drfs``."""
    if seed < 0 or index < 0:
        raise ValueError("seed and index must be non-negative")
    with one_thread():
        truth = make_anatomy(anatomy, size, stream(seed, index, "anatomy"), device)
        return simulate_scan(truth, drfs, physics, seed, index, device)


def simulate_scan(truth: Anatomy, drfs, physics: Physics, seed: int, index: int, device="cpu") -> SimulatedSubject:
    n_slices, n, _ = truth.activity.shape
    projector = get_projector(n, physics.subsets, str(device))
    pixel_cm = truth.spacing_mm[2] / 10

    activity = projector.to_pixels(gaussian_blur(truth.activity, physics.psf_fwhm_mm, truth.spacing_mm))
    attenuation = torch.exp(-projector.forward(projector.to_pixels(truth.mu)) * pixel_cm)
    trues = attenuation * projector.forward(activity)
    # Smaller blocks keep the 128-slice block's total counts, in fewer, thicker slices.
    counts_per_slice = physics.counts * BLOCK_SIZE / n_slices
    count_scale = counts_per_slice * n_slices / float(trues.sum())
    trues *= count_scale
    efficiency = attenuation * count_scale
    background = scatter(trues, projector.n_angles, physics, n) + randoms(trues, physics)

    standard = poisson(trues + background, stream(seed, index, "counts"))
    sensitivity = subset_sensitivity(projector, efficiency)
    result = SimulatedSubject(anatomy=truth, spet=reconstruct(
        projector, standard, efficiency, background, sensitivity, truth, physics))
    for drf in drfs:
        low = thin(standard, 1 / drf, stream(seed, index, "thinning", int(drf)))
        result.lpet[int(drf)] = reconstruct(projector, low, efficiency / drf, background / drf,
                                            [s / drf for s in sensitivity], truth, physics)
    return result


def scatter(trues: torch.Tensor, n_angles: int, physics: Physics, n: int) -> torch.Tensor:
    """The trues blurred radially, scaled so that scatter / (scatter + trues) = the scatter fraction."""
    sigma_bins = physics.scatter_fwhm_bins * n / BLOCK_SIZE / FWHM_PER_SIGMA
    blurred = blur_axis(trues.reshape(n_angles, -1, trues.shape[1]), 1, sigma_bins).reshape(trues.shape)
    wanted = physics.scatter_fraction / (1 - physics.scatter_fraction) * trues.sum()
    return blurred * (wanted / blurred.sum().clamp_min(1e-12))


def randoms(trues: torch.Tensor, physics: Physics) -> torch.Tensor:
    """Uniform over each slice's sinogram, a fixed fraction of that slice's trues."""
    per_bin = physics.randoms_fraction * trues.sum(0, keepdim=True) / trues.shape[0]
    return per_bin.expand_as(trues)


def poisson(mean: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    draws = rng.poisson(mean.double().cpu().numpy())
    return torch.from_numpy(draws.astype(np.float32)).to(mean.device)


def thin(counts: torch.Tensor, keep: float, rng: np.random.Generator) -> torch.Tensor:
    """Keep each recorded event with probability ``keep`` (Binomial(counts, keep))."""
    draws = rng.binomial(counts.cpu().numpy().astype(np.int64), keep)
    return torch.from_numpy(draws.astype(np.float32)).to(counts.device)


def reconstruct(projector, counts, efficiency, background, sensitivity, truth: Anatomy, physics: Physics) -> np.ndarray:
    image = osem(projector, counts, efficiency, background, physics.iterations, sensitivity)
    volume = gaussian_blur(projector.to_volume(image), physics.post_filter_fwhm_mm, truth.spacing_mm)
    return np.ascontiguousarray(volume.cpu().numpy(), dtype=np.float32)
