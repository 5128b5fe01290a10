"""The building blocks: shapes, masking, JS divergence, decoupling and the token swap."""
import math

import pytest
import torch

from petbench_s3pet.bilateral import (DoseDecoder, Projector, Tokens, TransferModule, decouple, fuse, token_swap,
                                      upsample_factors)
from petbench_s3pet.dsmae import MaskedPatchHead, dsmae_loss, masked_count, random_masking
from petbench_s3pet.losses import js_divergence, masked_l1
from petbench_s3pet.vit import DoseEncoder, patchify, sincos_pos_embed, tokens_to_map, unpatchify


# -- shapes --------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("patch", [4, 8, 16])
def test_shapes_through_every_module(size, patch):
    b, dim, proj = 2, 32, 16
    grid = (size // patch, size // patch)
    n = grid[0] * grid[1]
    x = torch.rand(b, 1, size, size)
    encoder = DoseEncoder(patch, dim, depth=2, heads=4)
    assert patchify(x, patch).shape == (b, n, patch * patch)
    tokens = encoder(x)
    assert tokens.shape == (b, n, dim)
    head = MaskedPatchHead(dim, patch)
    mask = random_masking(b, n, 0.5)
    assert head(encoder, x, mask).shape == (b, n, patch * patch)
    inv, spec = Projector(dim, proj), Projector(dim, proj)
    split = decouple(tokens, inv, spec)
    assert split.invariant.shape == split.specific.shape == (b, n, proj)
    assert TransferModule(proj)(split.specific).shape == (b, n, proj)
    assert TransferModule(proj, hidden=24)(split.specific).shape == (b, n, proj)
    feature_map = fuse(split.invariant, split.specific, grid)
    assert feature_map.shape == (b, 2 * proj, *grid)
    assert fuse(split.invariant, split.specific, grid, "add").shape == (b, proj, *grid)
    decoder = DoseDecoder(2 * proj, [16, 8, 8, 8], patch)
    assert decoder(feature_map).shape == (b, 1, size, size)


@pytest.mark.parametrize("mode, layer", [("transpose", "ConvTranspose2d"), ("bilinear", "Upsample"),
                                         ("nearest", "Upsample")])
def test_decoder_has_four_conv_bn_relu_blocks_and_three_upsamplings(mode, layer):
    decoder = DoseDecoder(32, [16, 8, 8, 8], patch_size=8, upsample_mode=mode)
    kinds = [type(m).__name__ for m in decoder.blocks]
    assert kinds == ["Sequential", layer, "Sequential", layer, "Sequential", layer, "Sequential"]
    for block in decoder.blocks[::2]:
        assert [type(m).__name__ for m in block] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert decoder(torch.rand(2, 32, 4, 4)).shape == (2, 1, 32, 32)
    assert upsample_factors(8) == [2, 2, 2] and upsample_factors(16) == [4, 2, 2] and upsample_factors(4) == [2, 2, 1]


def test_patchify_round_trip_and_token_map_places_tokens_at_their_patch():
    x = torch.rand(2, 1, 32, 64)
    patches = patchify(x, 8)
    torch.testing.assert_close(unpatchify(patches, 8, (4, 8)), x, rtol=0, atol=0)
    mean_map = tokens_to_map(patches.mean(-1, keepdim=True), (4, 8))
    torch.testing.assert_close(mean_map, torch.nn.functional.avg_pool2d(x, 8))


def test_positional_embedding_is_fixed_and_distinct_per_position():
    pos = sincos_pos_embed(32, (4, 4))
    assert pos.shape == (16, 32)
    assert torch.cdist(pos, pos).add(torch.eye(16)).min() > 0.1
    assert not any(p.shape == pos.shape for p in DoseEncoder(8, 32, 1, 2).parameters())


# -- masking -------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.75, 0.9])
@pytest.mark.parametrize("n", [16, 64, 256])
def test_masking_hides_exactly_the_requested_fraction(ratio, n):
    mask = random_masking(32, n, ratio)
    assert mask.dtype == torch.bool and mask.shape == (32, n)
    assert (mask.sum(1) == masked_count(n, ratio)).all()
    assert masked_count(n, ratio) == round(n * ratio)


def test_masking_differs_between_samples_and_calls():
    torch.manual_seed(0)
    mask = random_masking(8, 64, 0.75)
    assert len({tuple(row.tolist()) for row in mask}) == 8
    assert not torch.equal(mask, random_masking(8, 64, 0.75))


def test_masked_pixels_never_reach_the_encoder():
    torch.manual_seed(0)
    encoder, head = DoseEncoder(8, 32, 2, 2), MaskedPatchHead(32, 8)
    x = torch.rand(2, 1, 32, 32)
    mask = random_masking(2, 16, 0.75)
    changed = unpatchify(torch.where(mask.unsqueeze(-1), torch.rand(2, 16, 64), patchify(x, 8)), 8, (4, 4))
    assert not torch.equal(changed, x)
    torch.testing.assert_close(head(encoder, changed, mask), head(encoder, x, mask))


def test_lpet_masked_more_than_spet_by_default():
    from petbench_s3pet import S3PET

    assert S3PET.defaults["mask_ratio_lpet"] > S3PET.defaults["mask_ratio_spet"]


def test_stage1_loss_covers_only_masked_patches():
    pred, target = torch.zeros(1, 4, 2), torch.tensor([[[1.0, 1.0], [3.0, 3.0], [0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, False, True, False]])
    assert masked_l1(pred, target, mask).item() == pytest.approx(0.5)
    assert masked_l1(pred, target).item() == pytest.approx(1.0)
    torch.manual_seed(0)
    encoder, head = DoseEncoder(8, 32, 1, 2), MaskedPatchHead(32, 8)
    loss, mask = dsmae_loss(encoder, head, torch.rand(2, 1, 32, 32), 0.75)
    assert loss.ndim == 0 and mask.sum().item() == 2 * 12


# -- JS divergence -------------------------------------------------------------------------
@pytest.mark.parametrize("axis", ["feature", "token"])
def test_js_is_zero_symmetric_and_bounded(axis):
    torch.manual_seed(0)
    a, b = torch.randn(3, 10, 16), torch.randn(3, 10, 16)
    assert js_divergence(a, a.clone(), axis).item() == pytest.approx(0.0, abs=1e-6)
    assert js_divergence(a, b, axis).item() == pytest.approx(js_divergence(b, a, axis).item(), abs=1e-6)
    assert 0.0 < js_divergence(a, b, axis).item() <= math.log(2)
    far = js_divergence(100 * a, 100 * b, axis).item()  # nearly disjoint one-hot distributions
    assert far <= math.log(2) + 1e-6 and far > 0.5


def test_js_softmax_axis_matters_and_temperature_sharpens():
    torch.manual_seed(0)
    a, b = torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    assert js_divergence(a, b, "feature") != pytest.approx(js_divergence(a, b, "token").item())
    assert js_divergence(a, b, tau=0.5) > js_divergence(a, b, tau=2.0)
    with pytest.raises(ValueError):
        js_divergence(a, b[:, :3])


# -- decoupling and the swap -----------------------------------------------------------------
def test_token_swap_exchanges_exactly_the_dose_specific_tokens():
    l_inv, l_spec, s_inv, s_spec = (torch.full((1, 4, 2), float(v)) for v in range(4))
    to_lpet, to_spet = token_swap(Tokens(l_inv, l_spec), Tokens(s_inv, s_spec))
    assert to_lpet.invariant is s_inv and to_lpet.specific is l_spec
    assert to_spet.invariant is l_inv and to_spet.specific is s_spec
