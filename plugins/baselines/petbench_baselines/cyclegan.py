"""Cycle-GAN (Zhu et al., ICCV 2017) for LPET -> SPET, with a supervised L1 term on the pairs.

Two ResNet generators (G: LPET -> SPET, F: SPET -> LPET) and two unconditional 70x70
PatchGANs (D_S judges SPET, D_L judges LPET), trained on unpaired LPET and unpaired SPET
with the least-squares GAN loss, cycle consistency (weight 10), identity (weight 5 = 0.5 x 10),
fakes drawn from an image pool of 50, one Adam for both generators and one for both
discriminators, beta1 = 0.5, lr 2e-4 constant for 100 epochs then linearly to 0 over 100
more (all as ``junyanz/pytorch-CycleGAN-and-pix2pix``). Our addition, modelled on S-CycleGAN
(Zhao et al. 2020): ``lambda_sup * L1(G(L), S)`` on the paired slices (``lambda_sup = 10``,
the cycle weight's scale; 0 makes it the purely unpaired Cycle-GAN and drops the paired source).
Also ours: the paper preset has no norm layers (``norm="none"``; upstream: InstanceNorm), because
InstanceNorm right after the first convolution makes a generator blind to absolute uptake under
the host's single global normalisation. ``slice_scale="mean"`` (with ``norm="instance"``) is the
other remedy, kept as an option: it learned less in the README's measurement.

The ``reference`` preset is upstream exactly: InstanceNorm in the generators and the discriminators,
Tanh output on images mapped to [-1, 1] (``value_range``), no supervised term, and upstream's epoch of
``max(|A|, |B|)`` samples (``epoch_length="max"``). Under any other option set the run is petbench's
variant, and its ``variant_note`` (the tables' footnote) lists each departure from upstream.

The step's 13 network calls run as 8 (``step_batching="merge"``) or 4 (``"stack"``), with the same
losses and gradients, where that is exact (no norm layers; the ``reference`` preset's InstanceNorm keeps the unbatched step):
:mod:`.cyclegan_batched`.
"""
from __future__ import annotations

import torch

from .blocks import ImagePool, PatchGAN, ResnetGenerator, gan_loss, init_weights, set_requires_grad
from .blocks.norm import NORMS
from .blocks.resnet import OUTPUTS, SLICE_SCALES
from .common import BaselineMethod, in_order, l1
from .cyclegan_batched import STEP_BATCHINGS, batched_step, effective_batching

PAPER = {
    "ngf": 64, "ndf": 64, "n_blocks": 6, "d_layers": 3, "norm": "none",
    "lambda_cycle": 10.0, "lambda_identity": 5.0, "lambda_sup": 10.0, "pool_size": 50,
    "lr": 2e-4, "beta1": 0.5, "beta2": 0.999,
    "epochs": 200, "lr_decay": "linear", "decay_start": 100, "batch_size": 1, "steps_per_epoch": None,
    "crop_size": 0, "slice_scale": "none", "update_order": "g_first", "step_batching": "merge",
    "output": "linear", "value_range": 2.0, "epoch_length": "first",
}

#: upstream (junyanz/pytorch-CycleGAN-and-pix2pix, `--model cycle_gan`, `--netG resnet_6blocks`):
#: the paper preset with the options below put back
REFERENCE = {**PAPER, "norm": "instance", "output": "tanh", "lambda_sup": 0.0, "epoch_length": "max"}

#: an epoch: one pass over the first source (the paired slices, petbench's engine) or, as upstream's
#: unaligned dataset (``__len__ = max(A_size, B_size)``), over the larger of the two unpaired sets
EPOCH_LENGTHS = ("first", "max")

#: the options on which a run is upstream or not, each with how a footnote names the departure
DEPARTURES = {
    "norm": lambda v: f"norm layers {v} (upstream: InstanceNorm)",
    "output": lambda v: f"{v} output (upstream: Tanh on images mapped to [-1, 1])",
    "value_range": lambda v: f"intensities mapped to [-1, 1] from [0, {v}] (reference: [0, 2])",
    "lambda_sup": lambda v: f"a supervised L1 on the pairs, weight {v:g} (upstream: none)",
    "epoch_length": lambda v: ("an epoch of one pass over the paired slices (without the supervised term: the "
                               "LPET slices; upstream: max(|A|, |B|) samples)"),
    "slice_scale": lambda v: f"each slice divided by its {v} absolute value (upstream: no slice scale)",
    "lambda_cycle": lambda v: f"cycle weight {v:g} (upstream: 10)",
    "lambda_identity": lambda v: f"identity weight {v:g} (upstream: 5)",
    "n_blocks": lambda v: f"{v} residual blocks (upstream for 128² images: 6)",
    "ngf": lambda v: f"ngf {v} (upstream: 64)",
    "ndf": lambda v: f"ndf {v} (upstream: 64)",
    "pool_size": lambda v: f"image pool {v} (upstream: 50)",
    "crop_size": lambda v: f"training crops of {v}² (reference: full slices)",
}


def departures_from_upstream(options) -> list[str]:
    """What a run with ``options`` does differently from upstream Cycle-GAN, in the footnote's words.
    The schedule (epochs, lr, batch) is a budget, not a departure, and is stated in the options note."""
    return [describe(options[key]) for key, describe in DEPARTURES.items()
            if key in options and options[key] != REFERENCE[key]
            and not (key == "value_range" and options["output"] != "tanh")]


def random_crops(batch: dict, size: int) -> dict:
    """Random ``size`` x ``size`` training crops (upstream Cycle-GAN trains on random crops and
    predicts full images): one location per batch and source, the same for a pair's LPET and SPET."""
    out = {}
    for keys in (("lpet", "spet"), ("lpet_u",), ("spet_u",)):
        present = [k for k in keys if k in batch]
        if not present:
            continue
        height, width = batch[present[0]].shape[-2:]
        if size >= min(height, width):
            out.update({k: batch[k] for k in present})
            continue
        top = int(torch.randint(0, height - size + 1, ()).item())
        left = int(torch.randint(0, width - size + 1, ()).item())
        out.update({k: batch[k][..., top:top + size, left:left + size] for k in present})
    return out


def variant_note_for(options) -> str | None:
    """The tables' footnote for a run with ``options``: None when it is upstream."""
    departures = departures_from_upstream(options)
    return ("petbench's variant of upstream Cycle-GAN: " + "; ".join(departures) +
            " (--preset reference is upstream)") if departures else None


def cropped(step, size: int):
    """``step`` on :func:`random_crops` of each batch (``size`` 0: the full slices)."""
    if not size:
        return step
    return lambda batch, ctx: step(random_crops(batch, size), ctx)


class CycleGAN(BaselineMethod):
    name = "cyclegan"
    description = ("Cycle-GAN (ResNet generators, 70x70 PatchGANs, LSGAN, cycle 10, identity 5, pool 50) on "
                   "unpaired LPET/SPET plus a supervised L1 term on the pairs.")
    defaults = dict(PAPER)
    presets = {
        "paper": dict(PAPER),
        "quick": {"ngf": 8, "ndf": 8, "n_blocks": 3, "norm": "none", "crop_size": 64, "lr": 1e-3, "epochs": 3,
                  "lr_decay": "constant", "batch_size": 4, "steps_per_epoch": 400, "slice_scale": "none"},
        "reference": dict(REFERENCE),
    }
    generator = "G"

    #: how tables should name it (recorded in the run record)
    paper_name = 'Cycle-GAN (+ supervised L1 on pairs)'
    #: the paper's name for it, and its row in Table I (positions: LPET 10 ... S3PET 70)
    display_name = "Cycle-GAN"
    table_places = {1: 20}
    efficiency_place = 40  # in the label-efficiency grid
    provenance = "port"
    variant_note = variant_note_for(PAPER)  # the default; an instance states its own options'
    provenance_source = "junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py and cycle_gan_model.py"
    #: tiny sizes for unit and conformance tests (petbench.testing)
    test_options = {"ngf": 4, "ndf": 4, "n_blocks": 1, "batch_size": 4}

    def check_options(self, checker):
        checker.at_least(1, "ngf", "ndf", "d_layers")
        checker.at_least(0, "n_blocks")
        checker.one_of("norm", NORMS)
        checker.one_of("slice_scale", SLICE_SCALES)
        checker.one_of("output", OUTPUTS)
        checker.one_of("epoch_length", EPOCH_LENGTHS)
        checker.positive("value_range")
        checker.one_of("step_batching", STEP_BATCHINGS)

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        o = self.options
        self.variant_note = variant_note_for(o)
        tanh = o["output"] == "tanh"

        def generator():
            return ResnetGenerator(1, 1, o["ngf"], o["n_blocks"], o["norm"], dropout=False,
                                   slice_scale=o["slice_scale"], output=o["output"], value_range=o["value_range"])

        def discriminator():  # judges the generators' [-1, 1] images when they have a Tanh, as upstream
            return PatchGAN(1, o["ndf"], o["d_layers"], o["norm"], value_range=o["value_range"] if tanh else None)

        self.nets["G"] = init_weights(generator())       # LPET -> SPET (G_A upstream)
        self.nets["F"] = init_weights(generator())       # SPET -> LPET (G_B upstream)
        self.nets["D_S"] = init_weights(discriminator())  # judges SPET (D_A upstream)
        self.nets["D_L"] = init_weights(discriminator())  # judges LPET (D_B upstream)
        self.pool_fake_spet = ImagePool(o["pool_size"])
        self.pool_fake_lpet = ImagePool(o["pool_size"])

    def stages(self, run=None):
        o = self.options
        opt_g = self.adam("G", "F")
        opt_d = self.adam("D_S", "D_L")
        G, F, D_S, D_L = (self.nets[k] for k in ("G", "F", "D_S", "D_L"))
        supervised = o["lambda_sup"] > 0

        def step(batch, ctx):
            if o["crop_size"]:
                batch = random_crops(batch, o["crop_size"])
            real_l, real_s = batch["lpet_u"], batch["spet_u"]
            fake_s = G(real_l)
            fake_l = F(real_s)

            def update_g():  # generators, with the discriminators frozen
                set_requires_grad([D_S, D_L], False)
                rec_l = F(fake_s)
                rec_s = G(fake_l)
                loss_gan = gan_loss(D_S(fake_s), True) + gan_loss(D_L(fake_l), True)
                loss_cycle = o["lambda_cycle"] * (l1(rec_l, real_l) + l1(rec_s, real_s))
                loss_g = loss_gan + loss_cycle
                losses = {"G_gan": loss_gan.detach(), "cycle": loss_cycle.detach()}
                if o["lambda_identity"] > 0:
                    loss_idt = o["lambda_identity"] * (l1(G(real_s), real_s) + l1(F(real_l), real_l))
                    loss_g = loss_g + loss_idt
                    losses["identity"] = loss_idt.detach()
                if supervised:
                    loss_sup = l1(G(batch["lpet"]), batch["spet"])
                    loss_g = loss_g + o["lambda_sup"] * loss_sup
                    losses["sup_l1"] = loss_sup.detach()
                ctx.backward_step(loss_g, opt_g)
                set_requires_grad([D_S, D_L], True)
                return losses

            def update_d():  # discriminators, on pooled (detached) fakes
                pooled_s = self.pool_fake_spet.query(fake_s)
                pooled_l = self.pool_fake_lpet.query(fake_l)
                loss_d_s = 0.5 * (gan_loss(D_S(real_s), True) + gan_loss(D_S(pooled_s), False))
                loss_d_l = 0.5 * (gan_loss(D_L(real_l), True) + gan_loss(D_L(pooled_l), False))
                ctx.backward_step(loss_d_s + loss_d_l, opt_d)
                return {"D_S": loss_d_s.detach(), "D_L": loss_d_l.detach()}

            return in_order(o["update_order"], update_g, update_d)

        batching = effective_batching(o)  # the unbatched step only where batching is not exact (norm layers)
        if batching != "none":
            step = cropped(batched_step(self, opt_g, opt_d, batching), o["crop_size"])
        sources = epoch_sources(o, run)
        return [self.make_stage(step, {"G": opt_g, "D": opt_d}, ("G", "F", "D_S", "D_L"), sources,
                                state={"pool_fake_spet": self.pool_fake_spet, "pool_fake_lpet": self.pool_fake_lpet})]


def epoch_sources(options, run=None) -> tuple[str, ...]:
    """The stage's sources; the engine's epoch is one pass over the first. ``epoch_length="first"``:
    the paired slices (the unpaired LPET without a supervised term); ``"max"``: upstream's
    ``max(|A|, |B|)``, the larger unpaired set first (without a run context to ask: the unpaired SPET,
    the larger under the paper's protocol)."""
    unpaired = ("unpaired_lpet", "unpaired_spet")
    if options["epoch_length"] == "max":
        if run is not None and run.slices("unpaired_lpet") > run.slices("unpaired_spet"):
            first = "unpaired_lpet"
        else:
            first = "unpaired_spet"
        unpaired = (first, *(s for s in unpaired if s != first))
    return ("paired", *unpaired) if options["lambda_sup"] > 0 and options["epoch_length"] == "first" else \
        (*unpaired, "paired") if options["lambda_sup"] > 0 else unpaired
