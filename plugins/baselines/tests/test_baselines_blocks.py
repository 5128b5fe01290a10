"""The shared building blocks: shapes, image pool, GAN losses, region-adaptive norm."""
import pytest
import torch

from petbench_baselines.argan import spectrum_loss
from petbench_baselines.blocks import (CvTBlock, CvTStage, ImagePool, PatchGAN, ResnetBlock, ResnetGenerator,
                                       TransposedCvTStage, UNet, gan_loss, set_requires_grad)
from petbench_baselines.semipet import RegionAdaptiveNorm, region_map, ssim



@pytest.mark.parametrize("size", [32, 48, 64])
def test_unet_shapes_any_multiple_of_16(size):
    net = UNet(1, 1, num_downs=5, ngf=4)
    assert net(torch.rand(2, 1, size, size)).shape == (2, 1, size, size)


def test_unet_is_pix2pix_unet_128():
    net = UNet(1, 1, num_downs=7, ngf=64)
    drops = [i for i, d in enumerate(net.up_drops) if isinstance(d, torch.nn.Dropout)]
    assert drops == [4, 5]  # num_downs - 5 = 2 dropout levels between the innermost and the outer four
    assert [c.out_channels for c in net.down_convs] == [64, 128, 256, 512, 512, 512, 512]
    assert 41.5e6 < sum(p.numel() for p in net.parameters()) < 42.0e6  # pix2pix unet_128: 41.8M


@pytest.mark.parametrize("size,expected", [(32, 2), (64, 6), (128, 14)])
def test_patchgan_70x70_output_shape(size, expected):
    d = PatchGAN(2, ndf=4, n_layers=3)
    assert d(torch.rand(3, 2, size, size)).shape == (3, 1, expected, expected)


def test_patchgan_receptive_field_is_70():
    d = PatchGAN(1, ndf=2, n_layers=3).eval()
    x = torch.zeros(1, 1, 128, 128, requires_grad=True)
    d(x)[0, 0, 7, 7].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero()
    assert rows.max() - rows.min() + 1 == 70


def test_resnet_block_and_generator():
    block = ResnetBlock(8, "instance")
    x = torch.rand(2, 8, 16, 16)
    assert block(x).shape == x.shape
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=2)
    assert g(torch.rand(2, 1, 32, 32)).shape == (2, 1, 32, 32)
    assert g(torch.rand(1, 1, 30, 30)).shape == (1, 1, 30, 30)  # padded and cropped back


def test_cvt_blocks():
    x = torch.rand(2, 8, 16, 16)
    stage = CvTStage(8, 16, depth=2, heads=2)
    y = stage(x)
    assert y.shape == (2, 16, 8, 8)
    assert TransposedCvTStage(16, 8, depth=1, heads=4)(y).shape == (2, 8, 16, 16)
    block = CvTBlock(16, heads=4)
    tokens = torch.rand(2, 64, 16)
    assert block(tokens, 8, 8).shape == tokens.shape
    # keys and values are down-sampled 2x per axis by the stride-2 depth-wise projections
    assert block.attn.conv_k(torch.rand(1, 16, 8, 8)).shape[-2:] == (4, 4)
    assert block.attn.scale == pytest.approx(16 ** -0.5)  # full width, the CvT quirk


def test_image_pool_size_zero_passes_through():
    pool = ImagePool(0)
    x = torch.rand(3, 1, 4, 4, requires_grad=True)
    out = pool.query(x)
    assert torch.equal(out, x) and not out.requires_grad


def test_image_pool_fills_then_mixes_history():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: the new images come back
    assert len(pool) == 4
    queried = [100.0 + i for i in range(200)]
    returned = [pool.query(torch.full((1, 1, 1, 1), value)).item() for value in queried]
    from_history = [r for r, q in zip(returned, queried) if r != q]
    assert 60 < len(from_history) < 140  # about half are swapped for a stored image
    assert len(pool) == 4  # never grows past its size
    # a stored image is returned at most once, and only images seen before come back
    assert len(set(from_history)) == len(from_history)
    assert all(r in range(4) or r < q for r, q in zip(returned, queried) if r != q)


def test_image_pool_stores_detached_copies():
    pool = ImagePool(2)
    x = torch.ones(2, 1, 2, 2, requires_grad=True)
    pool.query(x * 2)
    assert all(not image.requires_grad for image in pool.images)


def test_gan_losses():
    ones, zeros = torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    assert gan_loss(ones, True, "lsgan") == 0 and gan_loss(zeros, False, "lsgan") == 0
    assert gan_loss(ones, False, "lsgan") == 1
    torch.manual_seed(0)
    for _ in range(20):  # PCCGAN smoothing: real target in [0.7, 1.2], fake in [0, 0.3]
        assert gan_loss(ones, True, "lsgan", smooth=True) <= 0.3 ** 2 + 1e-6
        assert gan_loss(zeros, False, "lsgan", smooth=True) <= 0.3 ** 2 + 1e-6
    big = torch.full((1, 1, 2, 2), 20.0)
    assert gan_loss(big, True, "bce") < 1e-6 and gan_loss(-big, False, "bce") < 1e-6
    with pytest.raises(ValueError):
        gan_loss(ones, True, "wgan")


def test_set_requires_grad():
    d = PatchGAN(1, ndf=2)
    set_requires_grad(d, False)
    assert not any(p.requires_grad for p in d.parameters())
    set_requires_grad([d], True)
    assert all(p.requires_grad for p in d.parameters())


def test_spectrum_loss():
    x = torch.rand(2, 1, 16, 16)
    assert spectrum_loss(x, x) == 0
    assert spectrum_loss(x, torch.roll(x, 3, dims=-1)) < 1e-5  # amplitude spectra ignore shifts
    assert spectrum_loss(x, x + 0.1) > 0


def test_region_map_and_region_adaptive_norm():
    lpet = torch.zeros(1, 1, 16, 16)
    lpet[..., 4:12, 4:12] = 0.3
    lpet[..., 6:10, 6:10] = 1.0
    regions = region_map(lpet, [0.1, 0.5], smooth=1)
    assert regions.shape == (1, 3, 16, 16) and torch.all(regions.sum(1) == 1)
    assert regions[0, 0, 0, 0] == 1 and regions[0, 1, 5, 5] == 1 and regions[0, 2, 8, 8] == 1
    norm = RegionAdaptiveNorm(4, 3)
    features = torch.randn(2, 4, 16, 16) * 3 + 5
    out = norm(features, regions.expand(2, -1, -1, -1))
    assert out.shape == features.shape
    inside = out[:, :, 6:10, 6:10]  # one region normalised by its own statistics (shrunk by one pixel)
    assert inside.mean().abs() < 0.3 and (inside.std() - 1).abs() < 0.3


def test_ssim():
    x = torch.rand(1, 1, 32, 32)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-5)
    assert ssim(x, torch.rand(1, 1, 32, 32)) < 0.5


class UpstreamImagePool:
    """A transcription of upstream's ``util/image_pool.py`` (junyanz/pytorch-CycleGAN-and-pix2pix), on ids."""

    def __init__(self, pool_size, rng):
        self.pool_size, self.num_imgs, self.images, self.rng = pool_size, 0, [], rng

    def query(self, images):
        return_images = []
        for image in images:
            if self.num_imgs < self.pool_size:
                self.num_imgs += 1
                self.images.append(image)
                return_images.append(image)
            else:
                p = self.rng.uniform(0, 1)
                if p > 0.5:
                    random_id = self.rng.randint(0, self.pool_size - 1)
                    tmp = self.images[random_id]
                    self.images[random_id] = image
                    return_images.append(tmp)
                else:
                    return_images.append(image)
        return return_images


#: batch sizes of successive queries: the pool (size 3) fills within a batch, then swaps within batches
QUERIES = [2, 2, 1, 3, 1]


def returned_ids(new_pool, trials):
    """Per trial (a fresh pool from ``new_pool()``, a function of a list of ids), the id (query order)
    of the image returned at every output position of the query sequence."""
    rows = []
    for _ in range(trials):
        pool_query = new_pool()
        next_id, row = 0, []
        for n in QUERIES:
            ids = list(range(next_id, next_id + n))
            next_id += n
            row += pool_query(ids)
        rows.append(row)
    return rows


def test_image_pool_has_upstreams_distribution():
    """For each returned position, the distribution of which earlier image comes back is upstream's
    (chi-square test of homogeneity, 4,000 trials each; mutations tried: swap probability 0.6, slots
    drawn from ``size - 1`` slots, a batch's swaps drawn against the pool as it was before the batch:
    each fails it)."""
    import random

    from scipy.stats import chi2_contingency

    trials = 4000
    rng = random.Random(0)

    def upstream():
        pool = UpstreamImagePool(3, rng)
        return lambda ids: pool.query(ids)

    def ours():
        pool = ImagePool(3)
        return lambda ids: [int(v) for v in pool.query(torch.tensor(ids, dtype=torch.float32).view(-1, 1, 1, 1)).view(-1)]

    torch.manual_seed(0)
    expected, got = returned_ids(upstream, trials), returned_ids(ours, trials)
    for position in range(sum(QUERIES)):
        values = sorted({row[position] for row in expected + got})
        table = [[sum(row[position] == v for row in sample) for v in values] for sample in (expected, got)]
        if len(values) > 1:
            p_value = chi2_contingency(table)[1]
            assert p_value > 1e-4, f"position {position}: p = {p_value:.2g}, counts {table}"
        else:
            assert table[0] == table[1]


def test_image_pool_state_round_trips_and_reads_the_list_format():
    torch.manual_seed(0)
    pool = ImagePool(3)
    pool.query(torch.rand(2, 1, 4, 4))
    state = pool.state_dict()
    assert [tuple(image.shape) for image in state["images"]] == [(1, 1, 4, 4)] * 2  # the earlier pool's format
    other = ImagePool(3)
    other.load_state_dict(state)
    assert len(other) == 2 and torch.equal(other.images, pool.images)
    torch.manual_seed(1)
    a = pool.query(torch.rand(3, 1, 4, 4))
    torch.manual_seed(1)
    b = other.query(torch.rand(3, 1, 4, 4))
    assert torch.equal(a, b) and torch.equal(pool.images, other.images)
