"""The challenge's SCORE against a recomputation written out from its evaluator's code.

The functions below follow felihong/wavelet-PET-denoising @037ac83b ``common/evaluation.py`` line by line
(``compute_nrmse``, ``compute_psnr``, ``compute_ssim``, ``compute_suv``, ``percentage_error``, the organ loop of
``_evaluate_single_local``, ``_get_local_MAPE``, ``_get_subject_SCORE``), with pandas' rows as dicts, the
radiomics features left out (pyradiomics does not install here) and old scikit-image's ``compare_ssim`` as
``structural_similarity(..., data_range=2)`` (the float range it took; docs/metrics.md)."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from petbench.data.subject import LabelMap
from petbench.metric import MetricContext
from petbench.metrics.challenge_score import challenge_mape, challenge_score, organ_psnr_error

ORGANS = ["liver", "heart", "kidneyRight", "kidneyLeft"]  # the evaluator's organ_list, labels 1..4


# -- the evaluator, written out ---------------------------------------------------------------------------
def compute_nrmse(real, pred):
    mse = np.mean(np.square(real - pred))
    return np.sqrt(mse) / (np.max(real) - np.min(real))


def compute_psnr(real, pred):
    return 20 * np.log10(np.max(real) / np.sqrt(np.mean(np.square(real - pred))))


def compute_ssim(real, pred):
    return structural_similarity(real / float(np.max(real)), pred / float(np.max(pred)), data_range=2)


def compute_suv(img, mask):
    volume = np.count_nonzero(mask)
    crop_idx = np.nonzero(mask)
    suv_mean = np.mean(img[crop_idx])
    suv_max = np.max(img[crop_idx])
    return suv_mean, suv_max, volume * suv_mean, compute_psnr(real=mask, pred=img)


def percentage_error(real, pred):
    return abs(pred - real) / abs(real) * 100


def evaluator_score(real, pred, sphere):
    suv_features = ["SUV_mean", "SUV_max", "TotalLesionMetabolism", "PSNR"]  # compute_suv's return order
    feature_count = 4 + 6  # SUV_feature_list + selected_feature_list
    organ_mapes = []
    for label, _organ in enumerate(ORGANS, start=1):
        organ_mask = np.where(sphere == label, sphere, 0)
        organ_mask = np.where(organ_mask != label, organ_mask, 1)
        row = {}
        for i, feature in enumerate(suv_features):
            row[feature] = percentage_error(real=compute_suv(real, organ_mask)[i], pred=compute_suv(pred, organ_mask)[i])
        total = 0
        for feature in suv_features:  # _get_local_MAPE's weights (the radiomics features, 0.05 each, absent)
            weight = 0.2 if "SUV" in feature else 0.15
            total += weight * row[feature]
        organ_mapes.append(total / feature_count)
    mape = np.mean(organ_mapes)  # groupby('PID').agg('mean')
    global_score = 0.4 * compute_psnr(real, pred) + 0.2 * compute_ssim(real, pred) - 0.4 * compute_nrmse(real, pred)
    return 0.5 * global_score + 0.5 * -mape, mape


# -- generated volumes ------------------------------------------------------------------------------------
def volumes(seed):
    rng = np.random.default_rng(seed)
    shape = (18, 20, 22)
    sphere = np.zeros(shape, np.int64)
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    for label in range(1, 5):
        centre = rng.uniform([3, 3, 3], np.array(shape) - 3)
        radius = rng.uniform(2.0, 4.5)
        sphere[(z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius ** 2] = label
    real = rng.gamma(2.0, 0.5, shape) + 2.0 * (sphere > 0)
    pred = np.clip(real + rng.normal(0, rng.uniform(0.05, 0.6), shape), 0, None)
    return real, pred, sphere


@pytest.mark.parametrize("seed", range(8))
def test_score_and_mape_equal_the_evaluators(seed):
    real, pred, sphere = volumes(seed)
    labels = LabelMap(sphere, {i: name for i, name in enumerate(ORGANS, start=1)})
    context = MetricContext(labels={"regions": labels})
    expected_score, expected_mape = evaluator_score(real, pred, sphere)
    assert challenge_mape(pred, real, context.for_pair()) == pytest.approx(expected_mape, rel=1e-10)
    assert challenge_score(pred, real, context.for_pair()) == pytest.approx(expected_score, rel=1e-9)


def test_organ_psnr_error_is_the_evaluators_mask_psnr_feature():
    real, pred, sphere = volumes(3)
    labels = LabelMap(sphere, {i: name for i, name in enumerate(ORGANS, start=1)})
    errors = []
    for label in range(1, 5):
        mask = (sphere == label).astype(float)
        errors.append(percentage_error(compute_psnr(mask, real), compute_psnr(mask, pred)))
    assert organ_psnr_error(pred, real, MetricContext(labels={"regions": labels})) == pytest.approx(np.mean(errors))


def test_only_the_evaluators_organs_count_and_without_them_it_does_not_apply():
    real, pred, sphere = volumes(1)
    phantom_like = LabelMap(sphere, {1: "liver", 2: "lung", 3: "kidneys", 4: "spine"})
    only = np.where(np.isin(sphere, (1, 3)), sphere, 0)
    same = LabelMap(only, {1: "liver", 3: "kidneys"})
    assert challenge_mape(pred, real, MetricContext(labels={"regions": phantom_like})) == \
        pytest.approx(challenge_mape(pred, real, MetricContext(labels={"regions": same})))
    brain = LabelMap(sphere, {1: "cortex", 2: "white_matter"})
    assert np.isnan(challenge_score(pred, real, MetricContext(labels={"regions": brain})))
    assert np.isnan(challenge_score(pred, real, MetricContext()))


def test_the_score_metrics_are_registered_with_their_directions():
    from petbench.testing.toys import isolated_host

    registry = isolated_host().metrics
    by_name = {name: registry.get(name) for name in ("challenge_score", "challenge_mape", "organ_psnr_error")}
    assert by_name["challenge_score"].higher_is_better and by_name["challenge_score"].needs == ("regions",)
    assert not by_name["challenge_mape"].higher_is_better and by_name["challenge_mape"].unit == "%"
    assert not by_name["organ_psnr_error"].higher_is_better
