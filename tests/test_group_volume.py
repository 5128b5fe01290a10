"""The group's slice-wise evaluation against a transcription of Aru321/GAN-for-PET-Reconstruction
``cvtgan/test.py`` (scikit-image calls as there, on a volume in medpy's ``[x, y, z]`` order)."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from petbench.metric import MetricContext
from petbench.metrics.group_volume import nmse_volume, psnr_volume, ssim_volume


def normalize(tests):  # cvtgan/test.py's normalize
    return (tests - tests.min()) / (tests.max() - tests.min())


def transcribed(pred_zyx, ref_zyx):
    image_s = normalize(np.transpose(ref_zyx, (2, 1, 0)))  # medpy.io.load gives [x, y, z]
    res = normalize(np.clip(np.transpose(pred_zyx, (2, 1, 0)), 0, None))  # inferred: normalised like the reference
    y = np.nonzero(image_s)
    psnr = peak_signal_noise_ratio(res[y], image_s[y], data_range=1)
    ssim = structural_similarity(res, image_s, channel_axis=-1, data_range=1)  # multichannel=True
    nmse = normalized_root_mse(image_s, res) ** 2
    return psnr, ssim, nmse


@pytest.mark.parametrize("seed", range(5))
def test_the_volume_convention_equals_cvtgan_test_py(seed):
    rng = np.random.default_rng(seed)
    shape = (12, 24, 20)
    ref = rng.gamma(2.0, 1.0, shape) * (rng.random(shape) > 0.3)  # air: zeros outside the body
    pred = ref + rng.normal(0, rng.uniform(0.1, 1.0), shape)  # some negative voxels
    scale = rng.uniform(0.5, 3)
    psnr, ssim, nmse = transcribed(pred, ref)
    context = MetricContext()
    assert psnr_volume(pred, ref, context) == pytest.approx(psnr, rel=1e-12)
    assert ssim_volume(pred, ref, context) == pytest.approx(ssim, rel=1e-12)
    assert nmse_volume(pred, ref, context) == pytest.approx(nmse, rel=1e-12)
    # one min-max of the whole volume: a positive scale of both volumes changes nothing
    assert psnr_volume(scale * pred, scale * ref) == pytest.approx(psnr, rel=1e-9)


def test_the_volume_convention_is_registered_beside_the_patch_one():
    from petbench.testing.toys import isolated_host

    metrics = isolated_host().metrics
    for name in ("psnr_volume", "ssim_volume", "nmse_volume"):
        assert metrics.get(name).convention == "paper-volume"
    assert metrics.get("psnr_paper").convention == "paper"
    assert metrics.get("nmse").convention == "inferred"
