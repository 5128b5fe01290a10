"""Region and lesion metrics on a synthetic volume whose regions and lesion are known, against values
worked out by hand."""
import math

import numpy as np
import pytest

from petbench.data.subject import LabelMap
from petbench.default_plugins.metrics import METRICS
from petbench.metric import MetricContext, score_volume
from petbench.metrics.regions import lesion_rows

BY_NAME = {m.name: m for m in METRICS}


@pytest.fixture
def scene():
    """10³ voxels: region "left" (x < 5, SUV 2) holds a 2³ lesion of SUV 10; region "right" (x ≥ 5, SUV 4)
    is the uniform background. The prediction is 10 % high on the left, flattens the lesion to 8, and
    is 10 % low on the right with a ±0.36 checkerboard of noise."""
    shape = (10, 10, 10)
    z, y, x = np.indices(shape)
    regions = np.where(x < 5, 1, 2)
    lesions = np.zeros(shape, np.int64)
    lesions[2:4, 2:4, 2:4] = 1
    ref = np.where(x < 5, 2.0, 4.0)
    ref[lesions == 1] = 10.0
    pred = np.where(x < 5, 2.2, 3.6 + np.where((z + y + x) % 2 == 0, 0.36, -0.36))
    pred[lesions == 1] = 8.0
    context = MetricContext(labels={
        "regions": LabelMap(regions, {1: "left", 2: "right"}),
        "lesions": LabelMap(lesions, {1: "the lesion"}),
        "background": LabelMap((regions == 2).astype(np.uint8), {1: "right"}),
    })
    return pred, ref, context


def test_region_errors_are_the_challenges_percentage_errors(scene):
    pred, ref, context = scene
    # left: 492 voxels of 2 and 8 of 10 -> mean 2.128; predicted 492 of 2.2 and 8 of 8 -> 2.2928
    left_mean = abs(2.2928 - 2.128) / 2.128 * 100
    right_mean = abs(3.6 - 4.0) / 4.0 * 100  # the checkerboard averages out (250 + 250 voxels)
    values = score_volume(list(METRICS), pred, ref, context)
    assert values["suvmean_error"] == pytest.approx((left_mean + right_mean) / 2, rel=1e-9)
    # SUVmax: left 10 -> 8 (20 %), right 4 -> 3.96 (1 %)
    assert values["suvmax_error"] == pytest.approx((20 + 1) / 2, rel=1e-9)
    # TLM = voxels * SUVmean: on one mask its error is the SUVmean error, as in the challenge's code
    assert values["tlm_error"] == pytest.approx(values["suvmean_error"], rel=1e-12)


def test_lesion_recovery_and_contrast(scene):
    pred, ref, context = scene
    values = score_volume(list(METRICS), pred, ref, context)
    assert values["lesion_suvmax_recovery_error"] == pytest.approx(abs(8 / 10 - 1) * 100, rel=1e-9)
    # Its background is the left region around it: 2 in the reference, 2.2 predicted.
    contrast_ref, contrast_pred = 10 / 2 - 1, 8 / 2.2 - 1
    assert values["lesion_contrast_recovery_error"] == pytest.approx(abs(contrast_pred / contrast_ref - 1) * 100,
                                                                      rel=1e-9)
    (row,) = lesion_rows(pred, ref, context.label("lesions"), context.label("regions"))
    assert row.hot and row.voxels == 8 and row.background_ref == 2.0 and row.background_pred == pytest.approx(2.2)


def test_background_noise_is_the_coefficient_of_variation(scene):
    pred, ref, context = scene
    assert BY_NAME["background_cov"](pred, ref, context) == pytest.approx(0.36 / 3.6 * 100, rel=1e-9)


def test_a_cold_lesion_has_no_suvmax_recovery_but_a_contrast(scene):
    pred, ref, context = scene
    ref, pred = ref.copy(), pred.copy()
    lesion = context.label("lesions").array == 1
    ref[lesion], pred[lesion] = 1.0, 1.5  # hypometabolic: contrast -0.5 in the reference
    values = score_volume(list(METRICS), pred, ref, context)
    assert math.isnan(values["lesion_suvmax_recovery_error"])
    assert values["lesion_contrast_recovery_error"] == pytest.approx(abs((1.5 / 2.2 - 1) / (1 / 2 - 1) - 1) * 100)


def test_without_label_maps_region_metrics_do_not_apply(scene):
    pred, ref, _ = scene
    local = [m for m in METRICS if m.needs]
    assert {m.name for m in local} == {"suvmean_error", "suvmax_error", "tlm_error", "lesion_suvmax_recovery_error",
                                       "lesion_contrast_recovery_error", "background_cov", "organ_psnr_error",
                                       "challenge_mape", "challenge_score"}
    assert all(not m.higher_is_better for m in local if m.name != "challenge_score")  # a score, not an error
    assert score_volume(local, pred, ref, MetricContext()) == {}
    assert all(math.isnan(m(pred, ref)) for m in local)
    no_lesion = MetricContext(labels={"lesions": LabelMap(np.zeros(ref.shape, np.int64), {})})
    assert math.isnan(BY_NAME["lesion_suvmax_recovery_error"](pred, ref, no_lesion))  # a subject without lesions
