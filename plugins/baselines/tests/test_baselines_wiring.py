"""Wiring of the five baselines: exact parameter counts against the reference code, optimiser
coverage, generator/discriminator isolation and update order, the adversarial gradient reaching
the generator, Cycle-GAN's cycle and identity terms, SemiPET's unpaired discriminator, Cycle-GAN's
slice scale, and the option checks (UserError before anything runs).

Mutations tried (one at a time, then restored) and the test that failed on each:

- G's adversarial loss on the pooled, detached fake (the PCCGAN template's ``D(X_fake)``), in
  argan / cvtgan / semipet / cyclegan -> ``test_the_adversarial_loss_reaches_the_generator``
- a discriminator's parameters in the generator's optimiser (``self.adam("G", "D")``) ->
  ``test_optimisers_cover_every_parameter_once``
- SemiPET's D_u left out of the discriminators' optimiser -> ``test_optimisers_cover_every_parameter_once``
  and ``test_each_update_changes_only_its_own_side``
- CVT-GAN's D update scored on the live fake with G's optimiser stepped too
  (``ctx.backward_step(loss_d, opt_d, opt_g)``) -> ``test_each_update_changes_only_its_own_side``
- the update order flipped (``in_order`` ignoring ``update_order``) -> ``test_each_update_changes_only_its_own_side``
- Cycle-GAN's cycle term against the wrong image (``l1(rec_l, real_s)``) or identity through the
  wrong generator (``F(real_s)``) -> ``test_cyclegan_cycle_identity_gan_and_supervised_terms``
- SemiPET's unpaired discriminator given the paired SPET as real (``D_u(spet)``) ->
  ``test_semipet_unpaired_discriminator_takes_unpaired_spet_as_real``
- Cycle-GAN's slice scale not restored at the output -> ``test_cyclegan_generators_are_scale_equivariant``
"""
import pytest
import torch
from typer.testing import CliRunner

import petbench
from petbench.testing import isolated_host
from petbench.testing.toys import TOY_PLUGIN
from petbench_baselines import plugin, semipet
from petbench_baselines.blocks import PatchGAN, ResnetGenerator, UNet
from petbench_baselines.cvtgan import CvTDiscriminator, CvTGenerator

from test_baselines_methods import CLASSES, TINY, context, structured_batch, tiny



def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


# -- exact parameter counts ----------------------------------------------------------------------
def test_resnet_generator_is_cyclegans_resnet_6blocks():
    """junyanz ``ResnetGenerator(1, 1, 64, InstanceNorm, n_blocks=6)``: InstanceNorm without
    affine, so every conv has a bias; c7s1-64, d128, d256, 6 x R256, u128, u64, c7s1-1."""
    reference = (conv(1, 64, 7) + conv(64, 128, 3) + conv(128, 256, 3) + 6 * 2 * conv(256, 256, 3)
                 + conv(256, 128, 3) + conv(128, 64, 3) + conv(64, 1, 7))
    assert reference == 7_825_153
    assert count(ResnetGenerator(1, 1, 64, 6, "instance")) == reference
    assert CLASSES["cyclegan"](preset="paper").parameter_count() == reference  # the slice scale has none


def test_patchgan_is_the_70x70_nlayer_discriminator():
    """junyanz ``NLayerDiscriminator(1, 64, n_layers=3, InstanceNorm)``."""
    reference = conv(1, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) + conv(256, 512, 4) + conv(512, 1, 4)
    assert reference == 2_762_689
    assert count(PatchGAN(1, 64, 3, "instance")) == reference
    assert count(CLASSES["cyclegan"](preset="paper").nets["D_S"]) == reference


def test_unet_is_pix2pix_unet_128_plus_one_bias():
    """pix2pix ``UnetGenerator(1, 1, 7, 64, BatchNorm)``: no conv bias before a BatchNorm, and
    pix2pix drops the bias of the outermost down-convolution too (``bias=use_bias`` everywhere),
    although no norm follows it. Ours keeps that one bias (64 parameters), the only difference."""
    ch = [64, 128, 256, 512, 512, 512, 512]
    downs = conv(1, 64, 4, bias=False) + sum(conv(ch[i - 1], ch[i], 4, bias=False) for i in range(1, 7))
    down_norms = 2 * sum(ch[1:6])
    ups = (conv(512, 512, 4, bias=False) + sum(conv(2 * ch[i], ch[i - 1], 4, bias=False) for i in range(1, 6))
           + conv(2 * 64, 1, 4))
    up_norms = 2 * sum(ch[:6])
    reference = downs + down_norms + ups + up_norms
    assert reference == 41_822_849
    assert count(UNet(1, 1, 7, 64, "batch")) == reference + 64


def test_cvtgan_counts_match_the_2d_transcription_of_the_authors_model():
    """``CVT3D_Model.py`` (Aru321/GAN-for-PET-Reconstruction) with every 3D layer replaced by its
    2D twin: 16,526,369 generator and 165,560 discriminator parameters."""
    assert count(CvTGenerator(64)) == 16_526_369
    assert count(CvTDiscriminator(8)) == 165_560
    assert CLASSES["cvtgan"](preset="paper").parameter_count() == 16_526_369


def test_autocontext_count_is_its_conv_stack():
    module = conv(1, 64, 3) + 7 * conv(64, 64, 3) + conv(64, 1, 3)
    later = conv(2, 64, 3) + 7 * conv(64, 64, 3) + conv(64, 1, 3)
    assert CLASSES["autocontext"](preset="paper").parameter_count() == module + 3 * later == 1_040_580


# -- optimisers and isolation --------------------------------------------------------------------
OPTIMISED = {
    "cyclegan": {"G": {"G", "F"}, "D": {"D_S", "D_L"}},
    "autocontext": {"G": {"G"}},
    "argan": {"G": {"G"}, "D": {"D"}},
    "cvtgan": {"G": {"G"}, "D": {"D"}},
    "semipet": {"G": {"G"}, "D": {"D_c", "D_u"}},
}
ORDER = {"cyclegan": "g_first", "argan": "d_first", "cvtgan": "d_first", "semipet": "d_first"}


def ids(method, names):
    return {id(p) for name in names for p in method.nets[name].parameters()}


@pytest.mark.parametrize("name", list(CLASSES))
def test_optimisers_cover_every_parameter_once(name):
    method = tiny(name)
    optimisers = method.stages()[0].optimizers
    assert set(optimisers) == set(OPTIMISED[name])
    seen = []
    for key, optimiser in optimisers.items():
        params = {id(p) for group in optimiser.param_groups for p in group["params"]}
        assert params == ids(method, OPTIMISED[name][key]), key
        seen += list(params)
    assert len(seen) == len(set(seen)) == len({id(p) for p in method.nets.parameters()})


class RecordingContext(petbench.TrainContext):
    """Notes, for each optimiser step, which modules' parameters it changed."""

    def __init__(self, method):
        super().__init__(torch.device("cpu"), None, torch.amp.GradScaler(enabled=False))
        self.method, self.updates = method, []

    def backward_step(self, loss, *optimizers, retain_graph=False):
        before = {n: [p.detach().clone() for p in m.parameters()] for n, m in self.method.nets.items()}
        super().backward_step(loss, *optimizers, retain_graph=retain_graph)
        self.updates.append({n for n, m in self.method.nets.items()
                             if any(not torch.equal(a, b) for a, b in zip(before[n], m.parameters()))})


@pytest.mark.parametrize("name", ["cyclegan", "argan", "cvtgan", "semipet"])
@pytest.mark.parametrize("order", ["default", "d_first", "g_first"])
def test_each_update_changes_only_its_own_side(name, order):
    options = {} if order == "default" else {"update_order": order}
    method = tiny(name, **options)
    order = ORDER[name] if order == "default" else order
    assert method.options["update_order"] == order
    method.nets.train()
    ctx = RecordingContext(method)
    method.stages()[0].step(structured_batch(), ctx)
    g_side, d_side = OPTIMISED[name]["G"], OPTIMISED[name]["D"]
    assert ctx.updates == ([d_side, g_side] if order == "d_first" else [g_side, d_side])


ADVERSARIAL_ONLY = {
    "cyclegan": {"lambda_cycle": 0.0, "lambda_identity": 0.0, "lambda_sup": 0.0},
    "argan": {"lambda_l1": 0.0, "lambda_pre": 0.0, "lambda_spec": 0.0},
    "cvtgan": {"lambda_l1": 0.0},
    "semipet": {"lambda_l1": 0.0, "lambda_sc": 0.0, "lambda_unpaired_adv": 0.0},
}


@pytest.mark.parametrize("name", list(ADVERSARIAL_ONLY))
def test_the_adversarial_loss_reaches_the_generator(name):
    """With every other generator term weighted 0, the generator still moves: its adversarial loss
    is computed on the live fake. (The group's template scores the pooled, detached fake, which
    gives the generator no adversarial gradient; we do not follow it there.)"""
    method = tiny(name, **ADVERSARIAL_ONLY[name])
    method.nets.train()
    ctx = RecordingContext(method)
    method.stages()[0].step(structured_batch(), ctx)
    g_update = ctx.updates[0 if method.options["update_order"] == "g_first" else 1]
    assert g_update == OPTIMISED[name]["G"]


def test_semipet_unpaired_adversarial_loss_alone_reaches_the_generator():
    method = tiny("semipet", lambda_l1=0.0, lambda_sc=0.0)
    with torch.no_grad():
        for p in method.nets["D_c"].parameters():
            p.zero_()  # D_c gives a constant: no gradient through it
    method.nets.train()
    ctx = RecordingContext(method)
    method.stages()[0].step(structured_batch(), ctx)
    assert "G" in ctx.updates[1]


# -- loss terms ----------------------------------------------------------------------------------
def mean_abs(a, b):
    return float((a.double() - b.double()).abs().mean())


def test_cyclegan_cycle_identity_gan_and_supervised_terms():
    method = tiny("cyclegan", norm="instance", lambda_cycle=3.0, lambda_identity=2.0, lambda_sup=4.0)
    batch = structured_batch()
    n = method.nets
    l, s = batch["lpet_u"], batch["spet_u"]
    with torch.no_grad():
        cycle = 3.0 * (mean_abs(n["F"](n["G"](l)), l) + mean_abs(n["G"](n["F"](s)), s))
        identity = 2.0 * (mean_abs(n["G"](s), s) + mean_abs(n["F"](l), l))
        gan = float(((n["D_S"](n["G"](l)).double() - 1) ** 2).mean() + ((n["D_L"](n["F"](s)).double() - 1) ** 2).mean())
        supervised = mean_abs(n["G"](batch["lpet"]), batch["spet"])
    losses = method.stages()[0].step(batch, context())  # g_first: G's terms before any update
    assert float(losses["cycle"]) == pytest.approx(cycle, rel=1e-5)
    assert float(losses["identity"]) == pytest.approx(identity, rel=1e-5)
    assert float(losses["G_gan"]) == pytest.approx(gan, rel=1e-5)
    assert float(losses["sup_l1"]) == pytest.approx(supervised, rel=1e-5)


def test_semipet_unpaired_discriminator_takes_unpaired_spet_as_real(monkeypatch):
    method = tiny("semipet")
    batch = structured_batch()
    inputs, scored = {}, []
    method.nets["D_u"].register_forward_hook(lambda _m, args, out: inputs.__setitem__(id(out), args[0]))
    real_loss = semipet.gan_loss

    def recording(logits, real, *args, **kwargs):
        if id(logits) in inputs:
            scored.append((inputs[id(logits)], real))
        return real_loss(logits, real, *args, **kwargs)

    monkeypatch.setattr(semipet, "gan_loss", recording)
    method.nets.train()
    method.stages()[0].step(batch, context())
    real = [x for x, is_real in scored if is_real and not x.requires_grad]  # D's real samples (no graph)
    assert len(real) == 1 and torch.equal(real[0], batch["spet_u"])
    fakes = [x for x, is_real in scored if not is_real]
    assert len(fakes) == 1 and not any(torch.equal(fakes[0], batch[k]) for k in ("spet_u", "spet", "lpet_u"))
    generator_targets = [x for x, is_real in scored if is_real and x.requires_grad]  # G's fake, labelled real
    assert len(generator_targets) == 1 and torch.allclose(generator_targets[0].detach(), fakes[0])


# -- Cycle-GAN's slice scale -----------------------------------------------------------------------
def test_cyclegan_generators_are_scale_equivariant():
    """With ``slice_scale="mean"`` (an option) G(c x) = c G(x): the absolute uptake carries
    through. Without it, InstanceNorm after the first conv makes G blind to the scale."""
    x = structured_batch(2)["lpet"]
    with torch.no_grad():
        scaled = tiny("cyclegan", norm="instance", slice_scale="mean").nets["G"]
        torch.testing.assert_close(scaled(3 * x), 3 * scaled(x), rtol=1e-4, atol=1e-6)
        assert float(scaled(x).abs().mean()) > 0
        blind = tiny("cyclegan", norm="instance", slice_scale="none").nets["G"]
        # the defect it fixes: tripling the input barely changes the output (only InstanceNorm's eps shows)
        assert mean_abs(blind(3 * x), blind(x)) < 0.1 * mean_abs(3 * blind(x), blind(x))
        zero = scaled(torch.zeros(1, 1, 32, 32))
    assert torch.isfinite(zero).all() and float(zero.abs().max()) < 1e-4


def test_cyclegan_paper_generator_sees_absolute_uptake():
    """The paper preset (no norm layers) is not scale-invariant: tripling the input changes the output."""
    x = structured_batch(2)["lpet"]
    paper = CLASSES["cyclegan"].presets["paper"]
    assert (paper["norm"], paper["slice_scale"]) == ("none", "none")
    with torch.no_grad():
        generator = tiny("cyclegan").nets["G"]
        assert mean_abs(generator(3 * x), generator(x)) > 0.5 * mean_abs(3 * generator(x), generator(x))


# -- option checks ---------------------------------------------------------------------------------
BAD = [
    ("cyclegan", "lr", -1.0), ("cyclegan", "lr", 0.0), ("argan", "beta1", 1.0), ("semipet", "beta2", -0.5),
    ("cvtgan", "epochs", 0), ("semipet", "batch_size", 0), ("autocontext", "steps_per_epoch", 0),
    ("cyclegan", "lambda_cycle", -1.0), ("argan", "lambda_spec", float("nan")), ("cyclegan", "pool_size", -1),
    ("cyclegan", "norm", "group"), ("argan", "gan_mode", "wgan"), ("cyclegan", "slice_scale", "max"),
    ("argan", "update_order", "random"), ("cvtgan", "width", 7), ("semipet", "ran_levels", 9),
    ("semipet", "region_thresholds", [0.5, 0.1]), ("semipet", "region_thresholds", [0.1, 1.5]),
    ("autocontext", "depth", 0), ("cyclegan", "lr_decay", "step"), ("argan", "decay_start", -1),
]


@pytest.mark.parametrize("name, key, value", BAD)
def test_bad_option_values_are_user_errors_naming_the_option(name, key, value):
    with pytest.raises(petbench.UserError, match=f"option {key} must be"):
        CLASSES[name]({**TINY[name], key: value})


def test_a_bad_option_on_the_command_line_is_one_error_line_and_no_record(tmp_path):
    from petbench.cli import create_app

    results = tmp_path / "results"
    argv = ["run", "--method", "argan", "--dataset", "tiny", "--n-train", "2", "--n-test", "1", "--n-unpaired", "0",
            "--drf", "4", "--preset", "quick", "-q", "-D", "size=32", "-D", "depth=4", "-o", "beta1=1.5",
            "--results", str(results)]
    result = CliRunner().invoke(create_app(isolated_host(TOY_PLUGIN, plugin)), argv)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "beta1" in errors[0] and "Traceback" not in result.output
    assert not list(results.rglob("run.json")) if results.exists() else True
