"""Cycle-GAN's ``reference`` preset against upstream, layer by layer.

The upstream facts are transcribed from junyanz/pytorch-CycleGAN-and-pix2pix: ``models/networks.py``
(``ResnetGenerator``: c7s1-ngf, two stride-2 downs, n_blocks ResnetBlocks, two ConvTranspose2d(k3, s2, p1,
output_padding=1) ups, c7s1-out, **Tanh**; ``NLayerDiscriminator(n_layers=3)``; ``get_norm_layer('instance')``
= ``InstanceNorm2d(affine=False, track_running_stats=False)``, and every conv has a bias when the norm is
InstanceNorm; ``lr_policy='linear'``: ``1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1)``),
``models/cycle_gan_model.py`` (LSGAN, cycle 10, identity 0.5 x 10, pool 50, Adam(2e-4, 0.5)), the options
(``n_epochs=100``, ``n_epochs_decay=100``, ``batch_size=1``, ``init_type='normal'``, ``init_gain=0.02``,
``no_dropout``), and ``data/unaligned_dataset.py`` (``__len__ = max(A_size, B_size)``, images mapped to [-1, 1]).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from petbench.method import RunContext
from petbench_baselines.cyclegan import REFERENCE, CycleGAN, departures_from_upstream, epoch_sources

#: upstream ResnetGenerator(1, 1, ngf=64, InstanceNorm, n_blocks=6) as (layer type, in, out, kernel, stride),
#: the residual blocks as ("block", 256); written out from networks.py
UPSTREAM_G = ([("pad", 3), ("conv", 1, 64, 7, 1), ("in", 64), ("relu",),
               ("conv", 64, 128, 3, 2), ("in", 128), ("relu",), ("conv", 128, 256, 3, 2), ("in", 256), ("relu",)]
              + [("block", 256)] * 6
              + [("convT", 256, 128, 3, 2), ("in", 128), ("relu",), ("convT", 128, 64, 3, 2), ("in", 64), ("relu",),
                 ("pad", 3), ("conv", 64, 1, 7, 1), ("tanh",)])
#: ResnetBlock(256): ReflPad1, Conv3x3, IN, ReLU, ReflPad1, Conv3x3, IN (no dropout: CycleGAN sets no_dropout)
UPSTREAM_BLOCK = [("pad", 1), ("conv", 256, 256, 3, 1), ("in", 256), ("relu",), ("pad", 1), ("conv", 256, 256, 3, 1),
                  ("in", 256)]
#: NLayerDiscriminator(1, 64, n_layers=3, InstanceNorm): C64 (no norm), C128, C256 (stride 2), C512 (stride 1), 1
UPSTREAM_D = [("conv", 1, 64, 4, 2), ("lrelu",), ("conv", 64, 128, 4, 2), ("in", 128), ("lrelu",),
              ("conv", 128, 256, 4, 2), ("in", 256), ("lrelu",), ("conv", 256, 512, 4, 1), ("in", 512), ("lrelu",),
              ("conv", 512, 1, 4, 1)]


def describe(layer: nn.Module) -> tuple:
    if isinstance(layer, nn.ReflectionPad2d):
        return ("pad", layer.padding[0])
    if isinstance(layer, nn.ConvTranspose2d):
        assert layer.padding == (1, 1) and layer.output_padding == (1, 1) and layer.bias is not None
        return ("convT", layer.in_channels, layer.out_channels, layer.kernel_size[0], layer.stride[0])
    if isinstance(layer, nn.Conv2d):
        assert layer.bias is not None  # InstanceNorm without affine: upstream's use_bias is True everywhere
        return ("conv", layer.in_channels, layer.out_channels, layer.kernel_size[0], layer.stride[0])
    if isinstance(layer, nn.InstanceNorm2d):
        assert not layer.affine and not layer.track_running_stats
        return ("in", layer.num_features)
    if isinstance(layer, nn.ReLU):
        return ("relu",)
    if isinstance(layer, nn.LeakyReLU):
        assert layer.negative_slope == 0.2
        return ("lrelu",)
    if isinstance(layer, nn.Tanh):
        return ("tanh",)
    if type(layer).__name__ == "ResnetBlock":
        assert [describe(inner) for inner in layer.block] == UPSTREAM_BLOCK
        return ("block", layer.block[1].in_channels)
    raise AssertionError(f"a layer upstream does not have: {layer}")


def parameters_of(layers) -> int:
    """The parameter count of an upstream layer list (bias on every conv, no norm parameters)."""
    total = 0
    for layer in layers:
        if layer[0] in ("conv", "convT"):
            _, cin, cout, k, _ = layer
            total += cin * cout * k * k + cout
        elif layer[0] == "block":
            total += 2 * (layer[1] ** 2 * 9 + layer[1])
    return total


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return CycleGAN(preset="reference")


def test_reference_generators_are_upstreams_resnet_6blocks_layer_by_layer(reference):
    for name in ("G", "F"):
        assert [describe(layer) for layer in reference.nets[name].model] == UPSTREAM_G, name
        assert sum(p.numel() for p in reference.nets[name].parameters()) == parameters_of(UPSTREAM_G) == 7_825_153


def test_reference_discriminators_are_upstreams_70x70_patchgan_layer_by_layer(reference):
    for name in ("D_S", "D_L"):
        assert [describe(layer) for layer in reference.nets[name].model] == UPSTREAM_D, name
        assert sum(p.numel() for p in reference.nets[name].parameters()) == parameters_of(UPSTREAM_D) == 2_762_689


def test_reference_maps_intensities_to_minus_one_one_around_the_tanh(reference):
    """Upstream's networks see [-1, 1] images (ToTensor + Normalize(0.5, 0.5)) and G ends in Tanh. Here the
    fixed map is x -> 2x/R - 1 with R = value_range (2), for G's input and D's input, and G's output goes back
    by (y + 1) R / 2: so outputs lie in [0, R], and the L1 terms are upstream's at R = 2."""
    assert REFERENCE["value_range"] == 2.0
    x = torch.rand(2, 1, 32, 32) * 1.5
    G, D = reference.nets["G"], reference.nets["D_S"]
    with torch.no_grad():
        torch.testing.assert_close(G(x), G.model(x - 1) + 1)
        torch.testing.assert_close(D(x), D.model(x - 1))
        out = G(10 * x)
    assert float(out.min()) >= 0 and float(out.max()) <= 2.0


def test_reference_has_no_supervised_term_and_upstreams_epoch_length(reference):
    o = reference.options
    assert o["lambda_sup"] == 0
    assert (o["lambda_cycle"], o["lambda_identity"], o["pool_size"], o["batch_size"]) == (10.0, 5.0, 50, 1)
    assert (o["lr"], o["beta1"], o["beta2"], o["epochs"], o["decay_start"], o["lr_decay"]) == \
        (2e-4, 0.5, 0.999, 200, 100, "linear")
    counts = {"paired": 40, "unpaired_lpet": 40, "unpaired_spet": 160}
    run = RunContext(dataset="x", drf=10, device=torch.device("cpu"), slice_counts=counts)
    # the engine's epoch is one pass over the first source: the larger unpaired set, max(|A|, |B|)
    assert epoch_sources(o, run) == ("unpaired_spet", "unpaired_lpet")
    flipped = RunContext(dataset="x", drf=10, device=torch.device("cpu"),
                         slice_counts={**counts, "unpaired_lpet": 300})
    assert epoch_sources(o, flipped) == ("unpaired_lpet", "unpaired_spet")
    stage = reference.stages(run)[0]
    assert stage.sources == ("unpaired_spet", "unpaired_lpet")
    assert run.steps_per_epoch(stage.sources, stage.batch_size, stage.steps_per_epoch) == 160


def test_reference_schedule_is_upstreams_linear_policy(reference):
    """``lr_l = 1 - max(0, epoch + 1 - 100) / 101`` for epoch 0..199 (epoch_count = 1), per epoch."""
    run = RunContext(dataset="x", drf=10, device=torch.device("cpu"),
                     slice_counts={"paired": 4, "unpaired_lpet": 4, "unpaired_spet": 4})
    stage = reference.stages(run)[0]
    scheduler = stage.schedulers["G"]
    factors = []
    for _ in range(200):
        factors.append(scheduler.get_last_lr()[0] / 2e-4)
        scheduler.step()
    upstream = [1.0 - max(0, epoch + 1 - 100) / 101 for epoch in range(200)]
    assert factors == pytest.approx(upstream, abs=1e-12)


def test_the_reference_is_no_variant_and_the_default_names_each_departure(reference):
    assert reference.variant_note is None
    assert departures_from_upstream(reference.options) == []
    default = CycleGAN(preset="paper")
    note = default.variant_note
    for words in ("norm layers none", "linear output", "supervised L1 on the pairs, weight 10",
                  "max(|A|, |B|)", "--preset reference"):
        assert words in note
    assert CycleGAN.variant_note == note  # the class declares the default preset's note
    # upstream by options, whatever the preset is called
    assert CycleGAN({"norm": "instance", "output": "tanh", "lambda_sup": 0, "epoch_length": "max"},
                    preset="paper").variant_note is None
    assert "training crops of 64²" in CycleGAN(preset="quick").variant_note
