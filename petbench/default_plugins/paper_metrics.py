"""Metrics in the S3PET group's evaluation convention, to compare with the paper's tables.

They normalise every 64³ patch of each volume by its own min-max (petbench/metrics_paper.py has
the details), which makes them volatile per volume and unfit for ranking; the challenge-convention
``psnr``/``ssim``/``nmse`` are the ones to rank by (docs/datasets.md).
"""
from petbench import Metric, hookimpl
from petbench.metrics_paper import nmse_paper, psnr_paper, ssim_paper

PSNR_PAPER = Metric("psnr_paper", psnr_paper, higher_is_better=True, convention="paper", unit="dB",
                    description="PSNR after per-64³-patch min-max normalisation, data range 1, "
                                "over the non-zero reference voxels (S3PET paper convention)")
SSIM_PAPER = Metric("ssim_paper", ssim_paper, higher_is_better=True, convention="paper",
                    description="per-slice 2D SSIM after per-64³-patch min-max normalisation, data range 2 "
                                "(S3PET paper convention)")
NMSE_PAPER = Metric("nmse_paper", nmse_paper, higher_is_better=False, convention="paper",
                    description="normalized_root_mse² after per-64³-patch min-max normalisation "
                                "(S3PET paper convention)")


@hookimpl
def register_metrics(register):
    for metric in (PSNR_PAPER, SSIM_PAPER, NMSE_PAPER):
        register(metric)
