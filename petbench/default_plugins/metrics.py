"""Built-in metrics: the UDPET challenge's global metrics, an NMSE (formula inferred), and region and
lesion quantitation where the dataset has label maps (docs/metrics.md)."""
from __future__ import annotations

from petbench import Metric, hookimpl
from petbench.metrics.challenge import nmse, nrmse, psnr, ssim
from petbench.metrics.challenge_score import challenge_mape, challenge_score, organ_psnr_error
from petbench.metrics.regions import (background_cov, lesion_contrast_recovery_error, lesion_suvmax_recovery_error,
                                      suvmax_error, suvmean_error, tlm_error)

__all__ = ["nmse", "nrmse", "psnr", "ssim"]

PSNR = Metric("psnr", psnr, higher_is_better=True, convention="challenge", unit="dB", default=True,
              description="20·log10(max ref / RMSE) on the whole volume (UDPET challenge)")
SSIM = Metric("ssim", ssim, higher_is_better=True, convention="challenge", default=True,
              description="3D SSIM of each volume divided by its own max, 7³ uniform window, data range 2, "
                          "as the challenge's compare_ssim call (UDPET challenge)")
NRMSE = Metric("nrmse", nrmse, higher_is_better=False, convention="challenge",
               description="RMSE / (max ref − min ref) on the whole volume (UDPET challenge)")
NMSE = Metric("nmse", nmse, higher_is_better=False, convention="inferred", default=True,
              description="Σ(pred−ref)²/Σref² on the whole volume (a formula petbench infers for the NMSE "
                          "column of the S3PET paper's Table I; the paper gives none)")

LOCAL = "challenge-local"
SUVMEAN_ERROR = Metric("suvmean_error", suvmean_error, higher_is_better=False, convention=LOCAL, unit="%",
                       needs=("regions",), description="|ΔSUVmean|/SUVmean·100 per region, averaged over the "
                                                       "regions (UDPET challenge's local metric)")
SUVMAX_ERROR = Metric("suvmax_error", suvmax_error, higher_is_better=False, convention=LOCAL, unit="%",
                      needs=("regions",), description="|ΔSUVmax|/SUVmax·100 per region, averaged over the "
                                                      "regions (UDPET challenge's local metric)")
TLM_ERROR = Metric("tlm_error", tlm_error, higher_is_better=False, convention=LOCAL, unit="%", needs=("regions",),
                   description="|ΔTLM|/TLM·100 per region, TLM = voxels·SUVmean (UDPET challenge's local metric; "
                               "equals suvmean_error on a shared mask)")
LESION_SUVMAX = Metric("lesion_suvmax_recovery_error", lesion_suvmax_recovery_error, higher_is_better=False,
                       convention="lesion", unit="%", needs=("lesions",),
                       description="|SUVmax pred/ref − 1|·100 per hot lesion, averaged over the lesions")
LESION_CONTRAST = Metric("lesion_contrast_recovery_error", lesion_contrast_recovery_error, higher_is_better=False,
                         convention="lesion", unit="%", needs=("lesions",),
                         description="|contrast recovery − 1|·100 per lesion (contrast = lesion mean / local "
                                     "background mean − 1), averaged over the lesions")
BACKGROUND_COV = Metric("background_cov", background_cov, higher_is_better=False, convention="lesion", unit="%",
                        needs=("background",),
                        description="std/mean·100 of the prediction in a uniform background region (noise)")

ORGAN_PSNR_ERROR = Metric("organ_psnr_error", organ_psnr_error, higher_is_better=False, convention=LOCAL, unit="%",
                          needs=("regions",),
                          description="|Δ local PSNR|/local PSNR·100 per organ (the challenge evaluator's compute_suv "
                                      "PSNR: 0/1 organ mask against the image), averaged over the organs")
CHALLENGE_MAPE = Metric("challenge_mape", challenge_mape, higher_is_better=False, convention=LOCAL, unit="%",
                        needs=("regions",),
                        description="the challenge evaluator's weighted local MAPE over its organs (liver, heart, "
                                    "kidneys), SUV features only: its six radiomics terms left out")
CHALLENGE_SCORE = Metric("challenge_score", challenge_score, higher_is_better=True, convention="challenge",
                         needs=("regions",),
                         description="0.5·(0.4·PSNR + 0.2·SSIM − 0.4·NRMSE) − 0.5·challenge_mape (the UDPET "
                                     "challenge evaluator's SCORE without its radiomics terms)")

METRICS = (PSNR, SSIM, NRMSE, NMSE, SUVMEAN_ERROR, SUVMAX_ERROR, TLM_ERROR, LESION_SUVMAX, LESION_CONTRAST,
           BACKGROUND_COV, ORGAN_PSNR_ERROR, CHALLENGE_MAPE, CHALLENGE_SCORE)


@hookimpl
def register_metrics(register):
    for metric in METRICS:
        register(metric)
