"""AR-GAN (Luo et al., MedIA 2022), 2D re-implementation from the paper's description.

A U-Net generator G gives a preliminary SPET ``P = G(L)``; an adaptive rectification network R
takes the residual ``P - L`` and estimates the residual of the real SPET, ``S - L``; the output
is ``S_hat = L + R(P - L)``. Training: a conditional 70x70 PatchGAN on ``cat(L, S_hat)`` (LSGAN
with PCCGAN's random label smoothing, fakes through an image pool of 5, D loss x0.5) and

    L_G = L_adv(S_hat) + 100 L1(S_hat, S) + lambda_pre L1(P, S) + lambda_spec L_spec(S_hat, S),
    L_spec = mean | |FFT2(S_hat)| - |FFT2(S)| |     (orthonormal 2D FFT amplitudes)

G and R are trained jointly end to end (one Adam), D by another; both Adam(2e-4, 0.9, 0.999),
100 epochs, lr x0.98 per epoch after epoch 50 (the authoring group's template).
``detach_rectifier_input=True`` gives the 3D-AEGAN variant (R sees a detached residual).
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ImagePool, PatchGAN, ResnetBlock, UNet, gan_loss, init_weights, set_requires_grad
from .blocks.gan_losses import GAN_MODES
from .blocks.norm import NORMS
from .common import BaselineMethod, in_order, l1

PAPER = {
    "num_downs": 7, "ngf": 64, "norm": "batch", "dropout": True,
    "r_width": 64, "r_blocks": 4, "detach_rectifier_input": False,
    "ndf": 64, "d_layers": 3, "gan_mode": "lsgan", "label_smoothing": True, "pool_size": 5,
    "lambda_l1": 100.0, "lambda_pre": 100.0, "lambda_spec": 10.0, "spectrum_log": False,
    "lr": 2e-4, "beta1": 0.9, "beta2": 0.999,
    "epochs": 100, "lr_decay": "group", "decay_start": 50, "batch_size": 16, "steps_per_epoch": None,
    "update_order": "d_first",
}


def spectrum_loss(prediction: torch.Tensor, target: torch.Tensor, log: bool = False) -> torch.Tensor:
    """Mean absolute difference of the 2D Fourier amplitude spectra (float32, outside autocast)."""
    with torch.autocast(device_type=prediction.device.type, enabled=False):
        a = torch.fft.fft2(prediction.float(), norm="ortho").abs()
        b = torch.fft.fft2(target.float(), norm="ortho").abs()
        if log:
            a, b = torch.log1p(a), torch.log1p(b)
        return (a - b).abs().mean()


class Rectifier(nn.Module):
    """``Conv3x3 -> BN -> ReLU``, ``blocks`` ResNet blocks, ``Conv3x3 -> 1``: residual -> residual."""

    def __init__(self, width: int = 64, blocks: int = 4, norm: str = "batch") -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                   *[ResnetBlock(width, norm) for _ in range(blocks)],
                                   nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x):
        return self.model(x)


class ARGenerator(nn.Module):
    def __init__(self, o: dict) -> None:
        super().__init__()
        self.unet = UNet(1, 1, o["num_downs"], o["ngf"], o["norm"], o["dropout"])
        self.rectifier = Rectifier(o["r_width"], o["r_blocks"], o["norm"])
        self.detach_input = o["detach_rectifier_input"]

    def forward(self, lpet: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(preliminary P, rectified S_hat)``."""
        preliminary = self.unet(lpet)
        residual = preliminary - lpet
        if self.detach_input:
            residual = residual.detach()
        return preliminary, lpet + self.rectifier(residual)


class ARGAN(BaselineMethod):
    name = "argan"
    description = ("AR-GAN (2D): U-Net generator, adaptive rectification network on the residual, Fourier "
                   "amplitude spectrum loss, conditional PatchGAN, L1 weight 100.")
    defaults = dict(PAPER)
    presets = {
        "paper": dict(PAPER),
        "quick": {"num_downs": 5, "ngf": 16, "r_width": 16, "r_blocks": 2, "ndf": 16, "lr": 1e-3,
                  "epochs": 3, "lr_decay": "constant", "batch_size": 8, "steps_per_epoch": 100},
    }

    #: how tables should name it (recorded in the run record)
    paper_name = 'AR-GAN (2D re-implementation)'
    #: the paper's name for it, and its row in Table I (positions: LPET 10 ... S3PET 70)
    display_name = "AR-GAN"
    table_places = {1: 40}
    provenance = "reconstruction"
    provenance_source = "Luo et al., MedIA 2022 (no public code; rectification as xyxjane/3D-AEGAN)"
    variant_note = "2D: every 3D layer of the paper's network replaced by its 2D twin, trained on full 128² slices in batches of 16 (the authors: 64³ patches)"
    #: tiny sizes for unit and conformance tests (petbench.testing)
    test_options = {"num_downs": 4, "ngf": 4, "r_width": 4, "r_blocks": 1, "ndf": 4, "batch_size": 4}

    def check_options(self, checker):
        checker.at_least(2, "num_downs")
        checker.at_least(1, "ngf", "r_width", "ndf", "d_layers")
        checker.at_least(0, "r_blocks")
        checker.one_of("norm", NORMS)
        checker.one_of("gan_mode", GAN_MODES)

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        o = self.options
        self.nets["G"] = init_weights(ARGenerator(o))
        self.nets["D"] = init_weights(PatchGAN(2, o["ndf"], o["d_layers"], o["norm"]))
        self.pool = ImagePool(o["pool_size"])

    def generate(self, lpet):
        return self.nets["G"](lpet)[1]

    def stages(self):
        o = self.options
        opt_g, opt_d = self.adam("G"), self.adam("D")
        G, D = self.nets["G"], self.nets["D"]

        def adv(logits, real):
            return gan_loss(logits, real, o["gan_mode"], o["label_smoothing"])

        def step(batch, ctx):
            lpet, spet = batch["lpet"], batch["spet"]
            preliminary, output = G(lpet)  # one forward pass serves both updates
            fake_pair = torch.cat([lpet, output], dim=1)

            def update_d():  # on the pooled, detached fake
                pooled = self.pool.query(fake_pair)
                loss_d = 0.5 * (adv(D(torch.cat([lpet, spet], dim=1)), True) + adv(D(pooled), False))
                ctx.backward_step(loss_d, opt_d)
                return {"D": loss_d.detach()}

            def update_g():  # against D on the live fake, D frozen
                set_requires_grad(D, False)
                loss_adv = adv(D(fake_pair), True)
                loss_l1 = l1(output, spet)
                loss_pre = l1(preliminary, spet)
                loss_spec = spectrum_loss(output, spet, o["spectrum_log"])
                loss_g = (loss_adv + o["lambda_l1"] * loss_l1 + o["lambda_pre"] * loss_pre
                          + o["lambda_spec"] * loss_spec)
                ctx.backward_step(loss_g, opt_g)
                set_requires_grad(D, True)
                return {"G_adv": loss_adv.detach(), "l1": loss_l1.detach(), "l1_pre": loss_pre.detach(),
                        "spectrum": loss_spec.detach()}

            return in_order(o["update_order"], update_g, update_d)

        return [self.make_stage(step, {"G": opt_g, "D": opt_d}, ("G", "D"), ("paired",), state={"pool": self.pool})]
