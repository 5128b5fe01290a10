"""Built-in metrics against the formulas written out independently in numpy."""
import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from petbench.default_plugins.metrics import nmse, psnr, ssim


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


def test_nmse_is_error_energy_over_reference_energy(pair):
    pred, ref = pair
    assert nmse(pred, ref) == pytest.approx(np.sum((pred - ref) ** 2) / np.sum(ref ** 2), rel=1e-12)
    assert nmse(ref, ref) == 0


def numpy_ssim(a, b, win=7):
    """skimage-style SSIM: uniform window, sample covariance, border of win//2 cropped."""
    a, b = a / a.max(), b / b.max()
    n = win ** a.ndim
    f = lambda v: uniform_filter(v, size=win)  # noqa: E731
    ua, ub = f(a), f(b)
    va = (f(a * a) - ua * ua) * n / (n - 1)
    vb = (f(b * b) - ub * ub) * n / (n - 1)
    vab = (f(a * b) - ua * ub) * n / (n - 1)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = (2 * ua * ub + c1) * (2 * vab + c2) / ((ua ** 2 + ub ** 2 + c1) * (va + vb + c2))
    pad = win // 2
    return s[pad:-pad, pad:-pad, pad:-pad].mean()


def test_ssim_matches_the_windowed_formula(pair):
    pred, ref = pair
    assert ssim(pred, ref) == pytest.approx(numpy_ssim(pred, ref), abs=1e-9)
    assert ssim(ref, ref) == pytest.approx(1.0)


def test_ssim_normalises_each_volume_by_its_own_max(pair):
    _, ref = pair
    assert ssim(3.0 * ref, ref) == pytest.approx(1.0)
