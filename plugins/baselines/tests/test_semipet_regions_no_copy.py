"""SemiPET's region map without a host-to-device copy per forward: the same regions as torch.bucketize."""
import torch
import torch.nn.functional as F

from petbench_baselines.semipet import region_map


def reference(lpet, thresholds, smooth):
    """The map as it was computed before: torch.bucketize against a tensor of the thresholds."""
    x = F.avg_pool2d(lpet, smooth, 1, smooth // 2, count_include_pad=False) if smooth > 1 else lpet
    relative = x / x.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    index = torch.bucketize(relative, torch.tensor(sorted(thresholds)))
    return F.one_hot(index[:, 0], len(thresholds) + 1).permute(0, 3, 1, 2).float()


def test_region_map_equals_bucketize():
    lpet = torch.rand(3, 1, 24, 24, generator=torch.Generator().manual_seed(0)) ** 3
    for thresholds in ([0.1, 0.5], [0.5, 0.1], [0.3]):
        assert torch.equal(region_map(lpet, thresholds, smooth=5), reference(lpet, thresholds, 5))


def test_values_on_a_threshold_fall_in_the_lower_region():
    lpet = torch.tensor([0.05, 0.1, 0.3, 0.5, 0.7, 1.0]).reshape(1, 1, 1, 6)  # max 1: relative = lpet exactly
    got = region_map(lpet, [0.1, 0.5], smooth=1)
    assert got[0].argmax(dim=0).flatten().tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(got, reference(lpet, [0.1, 0.5], 1))
