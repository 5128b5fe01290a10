"""Speed of evaluation: the metrics of 20 test volumes of 128³ (the default protocol's test set).

Target (issue 14): the default metrics — psnr, ssim, nmse, the paper's Table I columns, and nrmse, the
challenge's third — in ≤ 10 s for 20 volumes on a 2-core CPU. Also measured: every built-in global metric
(with the group convention's five, which share one normalisation per volume) and the region and lesion
metrics on a label map. Run with ``python -m pytest benchmarks/test_metrics_speed.py`` (pytest-benchmark);
not part of the tests. The volumes are random (the metrics' cost does not depend on the content).
"""
import numpy as np
import pytest

from petbench.data.subject import LabelMap
from petbench.metric import MetricContext, score_volume
from petbench.plugins import get_plugin_manager

N_VOLUMES, SIZE, BUDGET_S = 20, 128, 10.0


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    ref = rng.gamma(2.0, 1.0, size=(SIZE,) * 3).astype(np.float32)
    return [(np.clip(ref + rng.normal(0, 0.3, ref.shape).astype(np.float32), 0, None), ref) for _ in range(2)]


@pytest.fixture(scope="module")
def metrics():
    host = get_plugin_manager(entrypoints=False).metrics
    return {name: host.get(name) for name in host.names()}


def score_all(pairs, metrics, context):
    for i in range(N_VOLUMES):
        pred, ref = pairs[i % len(pairs)]
        score_volume(metrics, pred, ref, context)


def test_default_metrics(benchmark, pairs, metrics):
    chosen = [metrics[n] for n in ("psnr", "ssim", "nrmse", "nmse")]
    benchmark.pedantic(score_all, args=(pairs, chosen, MetricContext()), rounds=1, iterations=1)
    benchmark.extra_info["budget_s"] = BUDGET_S
    assert benchmark.stats.stats.min <= BUDGET_S


def test_every_global_metric(benchmark, pairs, metrics):
    chosen = [m for m in metrics.values() if not m.needs]
    benchmark.extra_info["metrics"] = [m.name for m in chosen]
    benchmark.pedantic(score_all, args=(pairs, chosen, MetricContext()), rounds=1, iterations=1)


def test_region_and_lesion_metrics(benchmark, pairs, metrics):
    z, y, x = np.indices((SIZE,) * 3)
    regions = (1 + (x >= SIZE // 2) + 2 * (y >= SIZE // 2)).astype(np.uint8)  # four quadrants
    lesions = np.zeros(regions.shape, np.uint8)
    for k in range(1, 6):  # five 6³ lesions
        lesions[20 * k:20 * k + 6, 30:36, 20 * k:20 * k + 6] = k
    context = MetricContext(labels={"regions": LabelMap(regions, {v: f"q{v}" for v in range(1, 5)}),
                                    "lesions": LabelMap(lesions, {k: f"lesion {k}" for k in range(1, 6)}),
                                    "background": LabelMap((regions == 1).astype(np.uint8), {1: "q1"})})
    chosen = [m for m in metrics.values() if m.needs]
    benchmark.pedantic(score_all, args=(pairs, chosen, context), rounds=1, iterations=1)
