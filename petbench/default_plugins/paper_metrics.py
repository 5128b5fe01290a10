"""Metrics in the S3PET group's evaluation convention, to compare with the paper's tables.

``psnr_paper``, ``ssim_paper`` and ``nmse_paper`` are what ``gluucose/PCCGAN`` ``test.py`` computes,
argument order as called; ``psnr_paper_refmask`` and ``nmse_paper_refnorm`` put the reference where the
group's ``evaluate.py`` puts it (petbench/metrics/group.py has the details). They normalise every 64³
patch of each volume by its own min-max, which makes them volatile per volume and unfit for ranking.
``psnr_volume``, ``ssim_volume`` and ``nmse_volume`` are the group's slice-wise scripts (one min-max of the
whole volume; Aru321 ``cvtgan/test.py``, PCCGAN ``evaluate()``; petbench/metrics/group_volume.py).
"""
from petbench import Metric, hookimpl
from petbench.metrics.group import nmse_paper, nmse_paper_refnorm, psnr_paper, psnr_paper_refmask, ssim_paper
from petbench.metrics.group_volume import nmse_volume, psnr_volume, ssim_volume

PER_PATCH = "after per-64³-patch min-max normalisation"
PSNR_PAPER = Metric("psnr_paper", psnr_paper, higher_is_better=True, convention="paper", unit="dB",
                    description=f"PSNR {PER_PATCH}, data range 1, over the non-zero voxels of the prediction "
                                "(PCCGAN test.py as called)")
PSNR_PAPER_REFMASK = Metric("psnr_paper_refmask", psnr_paper_refmask, higher_is_better=True, convention="paper",
                            unit="dB", description=f"PSNR {PER_PATCH}, data range 1, over the non-zero voxels of "
                                                   "the reference (test.py with evaluate.py's order)")
SSIM_PAPER = Metric("ssim_paper", ssim_paper, higher_is_better=True, convention="paper",
                    description=f"per-slice 2D SSIM {PER_PATCH}, data range 2 (PCCGAN test.py)")
NMSE_PAPER = Metric("nmse_paper", nmse_paper, higher_is_better=False, convention="paper",
                    description=f"Σ(pred−ref)²/Σpred² {PER_PATCH} (PCCGAN test.py as called)")
NMSE_PAPER_REFNORM = Metric("nmse_paper_refnorm", nmse_paper_refnorm, higher_is_better=False, convention="paper",
                            description=f"Σ(pred−ref)²/Σref² {PER_PATCH} (test.py with evaluate.py's order)")


PER_VOLUME = "after min-max normalisation of the whole volume"
VOLUME = "paper-volume"
PSNR_VOLUME = Metric("psnr_volume", psnr_volume, higher_is_better=True, convention=VOLUME, unit="dB",
                     description=f"PSNR {PER_VOLUME}, data range 1, over the non-zero voxels of the reference "
                                 "(Aru321/GAN-for-PET-Reconstruction's test script, PCCGAN evaluate())")
SSIM_VOLUME = Metric("ssim_volume", ssim_volume, higher_is_better=True, convention=VOLUME,
                     description=f"per-slice 2D SSIM {PER_VOLUME}, data range 1 (Aru321/GAN-for-PET-Reconstruction's test script)")
NMSE_VOLUME = Metric("nmse_volume", nmse_volume, higher_is_better=False, convention=VOLUME,
                     description=f"Σ(pred−ref)²/Σref² {PER_VOLUME} (Aru321/GAN-for-PET-Reconstruction's test script)")


@hookimpl
def register_metrics(register):
    for metric in (PSNR_PAPER, PSNR_PAPER_REFMASK, SSIM_PAPER, NMSE_PAPER, NMSE_PAPER_REFNORM, PSNR_VOLUME,
                   SSIM_VOLUME, NMSE_VOLUME):
        register(metric)
