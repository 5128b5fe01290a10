"""The S3PET group's evaluation convention against direct, slow re-implementations of each step and
against a transcription of ``cal`` in gluucose/PCCGAN ``test.py``, called as that script calls it."""
import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from petbench.metric import MetricContext, score_volume
from petbench.metrics.group import (nmse_paper, nmse_paper_refnorm, patch_normalize, patch_starts, psnr_paper,
                                    psnr_paper_refmask, slice_ssim, ssim_paper)
from petbench.plugins import get_plugin_manager
from petbench.testing.conformance import check_metric


def brute_force_normalize(volume, patch, stride, floor=0.01):
    """Cut, min-max each patch, put back by averaging overlaps, zero below the floor: as PCCGAN does."""
    starts = [patch_starts(n, min(patch, n), stride) for n in volume.shape]
    sizes = [min(patch, n) for n in volume.shape]
    total, count = np.zeros(volume.shape), np.zeros(volume.shape)
    for z in starts[0]:
        for y in starts[1]:
            for x in starts[2]:
                box = (slice(z, z + sizes[0]), slice(y, y + sizes[1]), slice(x, x + sizes[2]))
                cut = volume[box]
                span = cut.max() - cut.min()
                total[box] += (cut - cut.min()) / span if span > 0 else 0.0
                count[box] += 1
    result = total / count
    result[result < floor] = 0
    return result


def old_skimage_ssim_per_slice(x, y, data_range, window=7):
    """scikit-image < 0.19 ``compare_ssim`` per 2D slice: uniform filter, sample covariance, crop."""
    values = []
    for a, b in zip(x, y):
        filt = lambda v: uniform_filter(v, size=window)  # noqa: E731
        n = window * window
        ux, uy = filt(a), filt(b)
        vx = n / (n - 1) * (filt(a * a) - ux * ux)
        vy = n / (n - 1) * (filt(b * b) - uy * uy)
        vxy = n / (n - 1) * (filt(a * b) - ux * uy)
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
        pad = (window - 1) // 2
        values.append(s[pad:-pad, pad:-pad].mean())
    return float(np.mean(values))


@pytest.fixture
def volumes():
    rng = np.random.default_rng(0)
    ref = rng.gamma(2.0, 1.0, size=(70, 64, 80)) * np.linspace(0.2, 1, 80)
    pred = ref + rng.normal(0, 0.3, size=ref.shape)
    return pred, ref


def test_patch_starts_cover_the_axis():
    assert patch_starts(128) == [0, 16, 32, 48, 64]  # 125 patches of a 128³ block, as in the paper's code
    assert patch_starts(100) == [0, 16, 32, 36]  # one more patch flush with the end
    assert patch_starts(64) == [0]
    assert patch_starts(40, patch=40) == [0]


@pytest.mark.parametrize("patch,stride", [(64, 16), (16, 8)])
def test_patch_normalize_matches_cut_and_stitch(volumes, patch, stride):
    _, ref = volumes
    np.testing.assert_allclose(patch_normalize(ref, patch, stride), brute_force_normalize(ref, patch, stride),
                               atol=1e-5)  # computed in float32


def test_patch_normalize_range_and_floor(volumes):
    normalized = patch_normalize(volumes[1])
    assert normalized.min() == 0 and normalized.max() <= 1
    assert not ((normalized > 0) & (normalized < 0.01)).any()


def test_slice_ssim_matches_old_scikit_image(volumes):
    pred, ref = (patch_normalize(v).astype(np.float64) for v in volumes)
    assert slice_ssim(pred, ref, 2.0) == pytest.approx(old_skimage_ssim_per_slice(pred, ref, 2.0), rel=1e-9)


def pccgan_cal(predicted, real):
    """``cal(predicted_path, real_path)`` of PCCGAN test.py on arrays as ``medpy.io.load`` returns them
    (``[x, y, z]``): the stitched, normalised volumes. Old scikit-image's ``ssim(..., multichannel=True)``
    without data_range is ``channel_axis=-1`` with the float range, 2."""
    res, image_s = predicted, real
    y = np.nonzero(image_s)
    cur_psnr = peak_signal_noise_ratio(image_s[y], res[y], data_range=1.0)
    cur_ssim = structural_similarity(res, image_s, channel_axis=-1, data_range=2.0)
    cur_nmse = normalized_root_mse(image_s, res) ** 2
    return cur_psnr, cur_ssim, cur_nmse


def test_group_convention_is_test_py_as_called(volumes):
    """test.py calls ``cal(save_path_real, save_path_fake)``: the prediction goes in as ``real_path``."""
    pred, ref = volumes
    pred_n, ref_n = (brute_force_normalize(v, 64, 16).T for v in (pred, ref))  # medpy order [x, y, z]
    psnr_expected, ssim_expected, nmse_expected = pccgan_cal(ref_n, pred_n)
    assert psnr_paper(pred, ref) == pytest.approx(psnr_expected, rel=1e-5)  # float32 normalisation inside
    assert ssim_paper(pred, ref) == pytest.approx(ssim_expected, rel=1e-5)
    assert nmse_paper(pred, ref) == pytest.approx(nmse_expected, rel=1e-4)
    # The corrected orientation is the same code called the other way round (evaluate.py's order).
    psnr_ref, ssim_ref, nmse_ref = pccgan_cal(pred_n, ref_n)
    assert psnr_paper_refmask(pred, ref) == pytest.approx(psnr_ref, rel=1e-5)
    assert nmse_paper_refnorm(pred, ref) == pytest.approx(nmse_ref, rel=1e-4)
    assert ssim_ref == pytest.approx(ssim_expected, rel=1e-12)  # SSIM does not care
    assert abs(nmse_paper(pred, ref) - nmse_paper_refnorm(pred, ref)) > 1e-3  # the swap matters here


def test_psnr_and_nmse_formulas(volumes):
    pred, ref = volumes
    pred_n, ref_n = patch_normalize(pred).astype(np.float64), patch_normalize(ref).astype(np.float64)
    for mask_of, fn in ((pred_n, psnr_paper), (ref_n, psnr_paper_refmask)):
        inside = mask_of != 0
        assert not inside.all()  # the zeroed voxels are left out of the PSNR
        mse = np.mean((pred_n[inside] - ref_n[inside]) ** 2)
        assert fn(pred, ref) == pytest.approx(10 * np.log10(1 / mse))
    assert nmse_paper(pred, ref) == pytest.approx(np.sum((pred_n - ref_n) ** 2) / np.sum(pred_n ** 2))
    assert nmse_paper_refnorm(pred, ref) == pytest.approx(np.sum((pred_n - ref_n) ** 2) / np.sum(ref_n ** 2))


def test_normalisation_is_shared_within_a_pair_only(volumes, monkeypatch):
    import petbench.metrics.group as group

    pred, ref = volumes
    calls = []
    real = group.patch_normalize
    monkeypatch.setattr(group, "patch_normalize", lambda v: calls.append(1) or real(v))
    host = get_plugin_manager(entrypoints=False).metrics
    paper = [host.get(n) for n in host.names() if host.get(n).convention == "paper"]
    assert len(paper) == 5
    context = MetricContext()
    values = score_volume(paper, pred, ref, context)
    assert len(calls) == 2  # one per volume, for five metrics
    assert score_volume(paper, ref, ref, context)["nmse_paper"] == 0 and values["nmse_paper"] > 0
    assert len(calls) == 4


def test_perfect_prediction_and_invariance(volumes):
    pred, ref = volumes
    assert psnr_paper(ref, ref) == float("inf")
    assert nmse_paper(ref, ref) == 0
    assert ssim_paper(ref, ref) == pytest.approx(1.0)
    # Each volume is normalised on its own, so a positive scale and offset change nothing.
    for fn in (psnr_paper, ssim_paper, nmse_paper, psnr_paper_refmask, nmse_paper_refnorm):
        assert fn(3 * pred + 1, 0.5 * ref) == pytest.approx(fn(pred, ref), rel=1e-4)  # float32 inside


def test_worse_prediction_scores_worse(volumes):
    pred, ref = volumes
    noisier = pred + np.random.default_rng(1).normal(0, 0.5, size=ref.shape)
    assert psnr_paper(noisier, ref) < psnr_paper(pred, ref)
    assert ssim_paper(noisier, ref) < ssim_paper(pred, ref)
    assert nmse_paper(noisier, ref) > nmse_paper(pred, ref)


def test_registered_with_the_paper_convention():
    metrics = get_plugin_manager(entrypoints=False).metrics
    for name, higher in (("psnr_paper", True), ("ssim_paper", True), ("nmse_paper", False),
                         ("psnr_paper_refmask", True), ("nmse_paper_refnorm", False)):
        metric = metrics.get(name)
        assert metric.convention == "paper" and metric.higher_is_better is higher
        assert isinstance(metric(np.ones((8, 8, 8)) * 2, np.arange(512.0).reshape(8, 8, 8)), float)


@pytest.mark.parametrize("name", ["psnr_paper", "ssim_paper", "nmse_paper", "psnr_paper_refmask",
                                  "nmse_paper_refnorm"])
def test_pass_the_metric_conformance_checks(name):
    check_metric(name)
