"""CVT-GAN (Zeng et al., MICCAI 2022), 2D re-implementation of the authors' 3D layer spec.

Generator (``w = width``, 64 in the paper; spatial sizes for an H x H slice):

    en0 [H/2]   Conv3x3 s2 (1 -> w), LReLU 0.2, BN
    en1 [H/4]   CvT stage: ConvEmbed(w -> 2w, k3 s2) + LN, 1 block, 2 heads
    en2 [H/8]   CvT stage: ConvEmbed(2w -> 4w), 2 blocks, 4 heads, drop 0.2
    en3 [H/16]  CvT stage: ConvEmbed(4w -> 8w), 2 blocks, 4 heads
    de0 [H/8]   ResBlock(8w -> 8w) then TCVT: ConvTranspose(8w -> 4w, k2 s2) + LN, 2 blocks, 4 heads
    de1 [H/4]   cat(en2, de0) -> ResBlock(8w -> 4w, Dropout 0.2) then TCVT(4w -> 2w), 1 block, 4 heads
    de2 [H/2]   cat(en1, de1) -> ResBlock(4w -> 2w) then ConvTranspose(2w -> w, k2 s2)
    de3 [H]     cat(en0, de2) -> Conv3x3(2w -> w) -> Conv3x3(w -> w/2) -> ConvTranspose(w/2 -> 1, k2 s2) -> LReLU
    out         de3 + LPET (global residual learning)

where ``ResBlock(a -> b)`` is ``[Conv3x3 (-> Dropout) -> LReLU -> BN](x) + Conv1x1(x)``. The
discriminator sees ``cat(LPET, SPET or fake)``: three conv layers (widths d, 2d, 4d with
``d = d_width``, strides 2, 1, 2) and two CvT stages (8d, stride 2 each, 1 block, 2 heads,
drop 0.3), giving an 8d-channel logit map at H/16. Loss: BCE + 100 L1; D loss x0.5; Adam(2e-4,
0.9, 0.999) for both; 100 epochs (the authors' 2021 script).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import CvTStage, ImagePool, TransposedCvTStage, gan_loss, init_weights, set_requires_grad
from .blocks.gan_losses import GAN_MODES
from .common import BaselineMethod, in_order, l1

PAPER = {
    "width": 64, "d_width": 8, "residual": True, "pool_size": 0, "gan_mode": "bce",
    "lambda_l1": 100.0,
    "lr": 2e-4, "beta1": 0.9, "beta2": 0.999,
    "epochs": 100, "lr_decay": "constant", "decay_start": 0, "batch_size": 16, "steps_per_epoch": None,
    "update_order": "d_first",
}


def conv_lrelu_bn(in_channels, out_channels, stride=1, dropout=0.0):
    layers = [nn.Conv2d(in_channels, out_channels, 3, stride, 1)]
    layers += [nn.Dropout2d(dropout)] if dropout else []
    return nn.Sequential(*layers, nn.LeakyReLU(0.2), nn.BatchNorm2d(out_channels))


class ResBlock(nn.Module):
    """CVT-GAN's ``ResBlock3D`` in 2D: ``Conv3x3 [-> Dropout] -> LReLU -> BN`` plus a 1x1 conv shortcut."""

    def __init__(self, in_channels, out_channels, dropout=0.0):
        super().__init__()
        self.main = conv_lrelu_bn(in_channels, out_channels, dropout=dropout)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        return self.main(x) + self.shortcut(x)


class CvTGenerator(nn.Module):
    def __init__(self, width: int = 64, residual: bool = True) -> None:
        super().__init__()
        w = width
        self.residual = residual
        self.en0 = conv_lrelu_bn(1, w, stride=2)
        self.en1 = CvTStage(w, 2 * w, depth=1, heads=2)
        self.en2 = CvTStage(2 * w, 4 * w, depth=2, heads=4, drop=0.2)
        self.en3 = CvTStage(4 * w, 8 * w, depth=2, heads=4)
        self.de0 = nn.Sequential(ResBlock(8 * w, 8 * w), TransposedCvTStage(8 * w, 4 * w, depth=2, heads=4))
        self.de1 = nn.Sequential(ResBlock(8 * w, 4 * w, dropout=0.2), TransposedCvTStage(4 * w, 2 * w, depth=1, heads=4))
        self.de2 = nn.Sequential(ResBlock(4 * w, 2 * w), nn.ConvTranspose2d(2 * w, w, 2, 2))
        self.de3 = nn.Sequential(nn.Conv2d(2 * w, w, 3, 1, 1), nn.Conv2d(w, w // 2, 3, 1, 1),
                                 nn.ConvTranspose2d(w // 2, 1, 2, 2), nn.LeakyReLU(0.2))

    def forward(self, x):
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % 16, (-width) % 16
        padded = F.pad(x, (0, pad_w, 0, pad_h)) if (pad_h or pad_w) else x
        e0 = self.en0(padded)
        e1 = self.en1(e0)
        e2 = self.en2(e1)
        e3 = self.en3(e2)
        d0 = self.de0(e3)
        d1 = self.de1(torch.cat([e2, d0], 1))
        d2 = self.de2(torch.cat([e1, d1], 1))
        out = self.de3(torch.cat([e0, d2], 1))[..., :height, :width]
        return out + x if self.residual else out


class CvTDiscriminator(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        d = width
        self.model = nn.Sequential(
            conv_lrelu_bn(2, d, stride=2), conv_lrelu_bn(d, 2 * d), conv_lrelu_bn(2 * d, 4 * d, stride=2),
            nn.Dropout2d(0.2),
            CvTStage(4 * d, 8 * d, depth=1, heads=2, drop=0.3), CvTStage(8 * d, 8 * d, depth=1, heads=2, drop=0.3))

    def forward(self, x):
        return self.model(x)  # logits; the authors' Sigmoid is inside the BCE-with-logits loss


class CVTGAN(BaselineMethod):
    name = "cvtgan"
    description = ("CVT-GAN (2D): convolutional-vision-transformer encoder and transposed decoder with "
                   "convolutional embedding/projection, residual learning, CvT patch discriminator, BCE + 100 L1.")
    defaults = dict(PAPER)
    presets = {
        "paper": dict(PAPER),
        "quick": {"width": 16, "d_width": 8, "lr": 1e-3, "epochs": 3, "batch_size": 8, "steps_per_epoch": 100},
    }

    #: how tables should name it (recorded in the run record)
    paper_name = 'CVT-GAN (2D re-implementation)'
    #: the paper's name for it, and its row in Table I (positions: LPET 10 ... S3PET 70)
    display_name = "CVT-GAN"
    table_places = {1: 50}
    provenance = "port"
    provenance_source = "the authors' Aru321/GAN-for-PET-Reconstruction, CVT3D_Model.py"
    variant_note = "2D: every 3D layer of the paper's network replaced by its 2D twin, trained on full 128² slices in batches of 16 (the authors: 64³ patches)"
    #: tiny sizes for unit and conformance tests (petbench.testing)
    test_options = {"width": 8, "d_width": 4, "batch_size": 4}

    def check_options(self, checker):
        checker.at_least(2, "width")
        checker.at_least(1, "d_width")
        checker.one_of("gan_mode", GAN_MODES)
        if checker.options["width"] % 2:  # de1's transposed CvT stage splits 2w channels over 4 heads
            checker.fail("width", "an even integer")

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        o = self.options
        self.nets["G"] = init_weights(CvTGenerator(o["width"], o["residual"]), "xavier_linear")
        self.nets["D"] = init_weights(CvTDiscriminator(o["d_width"]), "xavier_linear")
        self.pool = ImagePool(o["pool_size"])

    def stages(self):
        o = self.options
        opt_g, opt_d = self.adam("G"), self.adam("D")
        G, D = self.nets["G"], self.nets["D"]

        def step(batch, ctx):
            lpet, spet = batch["lpet"], batch["spet"]
            fake = G(lpet)  # one forward pass serves both updates
            fake_pair = torch.cat([lpet, fake], 1)

            def update_d():  # on the (pooled,) detached fake
                pooled = self.pool.query(fake_pair)
                loss_d = 0.5 * (gan_loss(D(torch.cat([lpet, spet], 1)), True, o["gan_mode"])
                                + gan_loss(D(pooled), False, o["gan_mode"]))
                ctx.backward_step(loss_d, opt_d)
                return {"D": loss_d.detach()}

            def update_g():  # against D on the live fake, D frozen
                set_requires_grad(D, False)
                loss_adv = gan_loss(D(fake_pair), True, o["gan_mode"])
                loss_l1 = l1(fake, spet)
                ctx.backward_step(loss_adv + o["lambda_l1"] * loss_l1, opt_g)
                set_requires_grad(D, True)
                return {"G_adv": loss_adv.detach(), "l1": loss_l1.detach()}

            return in_order(o["update_order"], update_g, update_d)

        return [self.make_stage(step, {"G": opt_g, "D": opt_d}, ("G", "D"), ("paired",), state={"pool": self.pool})]
