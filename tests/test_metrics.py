"""The challenge's global metrics against independent numpy and scikit-image computations, and the
metric interface (context, two-argument metrics, degenerate references, shared work)."""
import math

import numpy as np
import pytest
from scipy.ndimage import uniform_filter
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from petbench import Metric
from petbench.data.subject import LabelMap, Subject
from petbench.default_plugins.metrics import METRICS, nmse, nrmse, psnr, ssim
from petbench.metric import MetricContext, score_volume
from petbench.metrics.ssim import mean_ssim
from petbench.plugins import get_plugin_manager


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    ref = rng.gamma(2.0, 1.0, size=(12, 14, 16))
    pred = ref + rng.normal(0, 0.3, size=ref.shape)
    return pred, ref


def test_psnr_is_20_log10_of_reference_max_over_rmse(pair):
    pred, ref = pair
    expected = 20 * np.log10(ref.max() / np.sqrt(np.mean((pred - ref) ** 2)))
    assert psnr(pred, ref) == pytest.approx(expected, rel=1e-6)
    assert psnr(pred, ref) == pytest.approx(peak_signal_noise_ratio(ref, pred, data_range=ref.max()), rel=1e-6)


def test_nrmse_is_rmse_over_the_reference_range(pair):
    pred, ref = pair
    expected = np.sqrt(np.mean((ref - pred) ** 2)) / (np.max(ref) - np.min(ref))
    assert nrmse(pred, ref) == pytest.approx(expected, rel=1e-6)
    assert nrmse(pred, ref) == pytest.approx(normalized_root_mse(ref, pred, normalization="min-max"), rel=1e-6)


def test_nmse_is_error_energy_over_reference_energy(pair):
    pred, ref = pair
    assert nmse(pred, ref) == pytest.approx(np.sum((pred - ref) ** 2) / np.sum(ref ** 2), rel=1e-12)
    assert nmse(ref, ref) == 0


def numpy_ssim(a, b, data_range, win=7):
    """SSIM written out: uniform window, sample covariance, border of win//2 cropped."""
    n = win ** a.ndim
    f = lambda v: uniform_filter(v, size=win)  # noqa: E731
    ua, ub = f(a), f(b)
    va = (f(a * a) - ua * ua) * n / (n - 1)
    vb = (f(b * b) - ub * ub) * n / (n - 1)
    vab = (f(a * b) - ua * ub) * n / (n - 1)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = (2 * ua * ub + c1) * (2 * vab + c2) / ((ua ** 2 + ub ** 2 + c1) * (va + vb + c2))
    pad = win // 2
    return s[(slice(pad, -pad),) * a.ndim].mean()


def test_ssim_is_compare_ssim_of_max_normalised_volumes_with_data_range_2(pair):
    pred, ref = pair
    expected = numpy_ssim(ref / ref.max(), pred / pred.max(), data_range=2.0)
    assert ssim(pred, ref) == pytest.approx(expected, rel=1e-6)
    by_skimage = structural_similarity(ref / ref.max(), pred / pred.max(), data_range=2.0, win_size=7)
    assert ssim(pred, ref) == pytest.approx(by_skimage, rel=1e-9)
    # Data range 1 (what petbench used to compute) is a different, lower number.
    assert ssim(pred, ref) > numpy_ssim(ref / ref.max(), pred / pred.max(), data_range=1.0) + 1e-3
    assert ssim(ref, ref) == pytest.approx(1.0)
    assert ssim(3.0 * ref, ref) == pytest.approx(1.0)  # each volume is divided by its own max


def test_windowed_ssim_per_slice_matches_scikit_image(pair):
    pred, ref = pair
    expected = structural_similarity(ref, pred, data_range=3.0, win_size=7, channel_axis=0)
    assert mean_ssim(ref, pred, 3.0, axes=(1, 2)) == pytest.approx(expected, rel=1e-9)


# -- the interface ------------------------------------------------------------------------------
def test_a_two_argument_metric_still_works(pair):
    pred, ref = pair
    mae = Metric("mae", lambda p, r: float(np.abs(p - r).mean()), higher_is_better=False, description="mae")
    context = MetricContext(spacing=(2.0, 2.0, 2.0))
    assert not mae.with_context
    assert mae(pred, ref) == pytest.approx(np.abs(pred - ref).mean())
    assert mae(pred, ref, context) == pytest.approx(np.abs(pred - ref).mean())
    assert score_volume([mae], pred, ref, context) == {"mae": pytest.approx(np.abs(pred - ref).mean())}


def test_a_three_argument_metric_gets_the_subject_context(pair):
    pred, ref = pair
    affine = np.diag([2.0, 3.0, 4.0, 1.0])  # NIfTI order x, y, z
    subject = Subject("s", ref.astype(np.float32), affine=affine, units="SUV")
    seen = {}

    def voxel_volume(p, r, context):
        seen["context"] = context
        dz, dy, dx = context.spacing
        return dz * dy * dx

    metric = Metric("voxel_ml", voxel_volume, higher_is_better=True, description="voxel volume")
    assert metric.with_context
    assert metric(pred, ref, MetricContext.from_subject(subject)) == pytest.approx(24.0)
    assert seen["context"].units == "SUV" and seen["context"].spacing == (4.0, 3.0, 2.0)


@pytest.mark.parametrize("reference", ["zeros", "constant", "nan", "inf"])
def test_no_metric_scores_a_degenerate_reference(reference):
    ref = {"zeros": np.zeros((10, 10, 10)), "constant": np.full((10, 10, 10), 3.0),
           "nan": np.full((10, 10, 10), np.nan), "inf": np.ones((10, 10, 10))}[reference]
    if reference == "inf":
        ref[3, 3, 3] = np.inf
    pred = ref.copy()  # a "perfect" prediction of a degenerate reference
    labels = LabelMap(np.ones((10, 10, 10), np.int64), {1: "body"})
    context = MetricContext(labels={"regions": labels, "lesions": labels, "background": labels})
    metrics = list(get_plugin_manager(entrypoints=False).metrics.entries)
    host = get_plugin_manager(entrypoints=False).metrics
    for name in metrics:
        assert math.isnan(host.get(name)(pred, ref, context)), name
    values = score_volume([host.get(n) for n in metrics], pred, ref, context)
    assert set(values) == set(metrics) and all(math.isnan(v) for v in values.values())


def test_score_volume_equals_one_call_per_metric_and_leaves_out_what_does_not_apply(pair):
    pred, ref = pair
    host = get_plugin_manager(entrypoints=False).metrics
    metrics = [host.get(name) for name in host.names()]
    together = score_volume(metrics, pred, ref, MetricContext())
    applicable = [m.name for m in metrics if not m.needs]
    assert list(together) == applicable  # region and lesion metrics need label maps
    for metric in metrics:
        if metric.name in together:
            assert together[metric.name] == metric(pred, ref)
        else:
            assert math.isnan(metric(pred, ref))


def test_what_metrics_share_is_not_carried_to_the_next_pair(pair):
    pred, ref = pair
    context = MetricContext()
    first = score_volume(list(METRICS), pred, ref, context)
    second = score_volume(list(METRICS), ref, ref, context)
    assert second["nmse"] == 0 and first["nmse"] > 0
    assert not context.memo  # the caller's context is left untouched


def test_metric_info_is_what_a_record_needs():
    info = next(m for m in METRICS if m.name == "suvmean_error").info()
    assert info == {"higher_is_better": False, "convention": "challenge-local", "unit": "%",
                    "description": info["description"], "needs": ["regions"], "default": False}
    assert [m.name for m in METRICS if m.default] == ["psnr", "ssim", "nmse"]  # the paper's Table I columns


def test_compare_shows_the_papers_columns_by_default():
    from petbench.results.leaderboard import default_metrics

    host = get_plugin_manager(entrypoints=False).metrics
    recorded = {name: host.get(name).info() for name in host.names()}
    assert sorted(default_metrics(recorded)) == ["nmse", "psnr", "ssim"]
    old = {"psnr": {"convention": "challenge"}, "psnr_paper": {"convention": "paper"}}  # a record made before
    assert default_metrics(old) == ["psnr"]
