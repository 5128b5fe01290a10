"""SemiPET (TMI 2023: region-adaptive normalisation and structural consistency), re-implemented.

Neither the full text nor code of SemiPET was available; this follows the title, the S3PET
paper's one-line summary ("a structural consistency loss to maintain the coherence of
structure details in the mapping from LPET to SPET") and design/methods.md section 5.

- Generator: the pix2pix U-Net whose ``ran_levels`` outermost decoder norms are
  region-adaptive normalisation (RAN) layers: a region map of K intensity regions is computed
  from the LPET (smoothed, divided by the slice maximum, split at ``region_thresholds``:
  background / low uptake / high uptake); each region is normalised with its own per-sample,
  per-channel mean and std and modulated by learnable per-region ``gamma_r``, ``beta_r``.
- Paired LPET/SPET: ``100 L1(G(L), S)`` + adversarial loss of a conditional PatchGAN D_c on
  ``cat(L, .)``.
- Unpaired LPET: adversarial loss of an unconditional PatchGAN D_u (its real samples are the
  unpaired SPET slices) + structural consistency ``1 - SSIM(blur(G(L_u)), blur(L_u))``, the
  blur (Gaussian, sigma 1) keeping the LPET's noise out of the structure term.
- The group's template: LSGAN with PCCGAN's label smoothing, image pools of 5, D loss x0.5,
  Adam(2e-4, 0.9, 0.999), 100 epochs, lr x0.98 per epoch after epoch 50.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConditionalNorm, ImagePool, PatchGAN, UNet, gan_loss, init_weights, make_norm, set_requires_grad
from .blocks.gan_losses import GAN_MODES
from .common import BaselineMethod, in_order, l1

PAPER = {
    "num_downs": 7, "ngf": 64, "dropout": True, "ran_levels": 4,
    "region_thresholds": [0.1, 0.5], "region_smooth": 5,
    "ndf": 64, "d_layers": 3, "gan_mode": "lsgan", "label_smoothing": True, "pool_size": 5,
    "lambda_l1": 100.0, "lambda_unpaired_adv": 1.0, "lambda_sc": 5.0, "sc_blur_sigma": 1.0,
    "lr": 2e-4, "beta1": 0.9, "beta2": 0.999,
    "epochs": 100, "lr_decay": "group", "decay_start": 50, "batch_size": 16, "steps_per_epoch": None,
    "update_order": "d_first",
}


def region_map(lpet: torch.Tensor, thresholds: list[float], smooth: int = 5) -> torch.Tensor:
    """One-hot ``[B, K, H, W]`` intensity regions of the LPET (K = len(thresholds) + 1)."""
    x = lpet.float()
    if smooth > 1:
        x = F.avg_pool2d(x, smooth, 1, smooth // 2, count_include_pad=False)
    relative = x / x.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    # bucketize's index (how many thresholds lie below), without copying the thresholds to the GPU:
    # that copy made the host wait for the GPU at every forward
    index = sum(((relative > t).long() for t in thresholds), torch.zeros_like(relative, dtype=torch.long))
    return F.one_hot(index[:, 0], len(thresholds) + 1).permute(0, 3, 1, 2).to(lpet.dtype)


class RegionAdaptiveNorm(ConditionalNorm):
    """Normalise each region of each sample and channel by its own statistics, then apply that
    region's learnable affine: ``h' = sum_r m_r (gamma_r (h - mu_r) / sigma_r + beta_r)``.

    The region masks ``m_r`` are the region map area-resized to the feature size (soft at coarse
    levels). A region's statistics are shrunk toward the whole sample's with a prior of ``prior``
    pixels, so a region that is nearly absent at a coarse level stays well defined.
    """

    def __init__(self, channels: int, regions: int, eps: float = 1e-5, prior: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(regions, channels))
        self.beta = nn.Parameter(torch.zeros(regions, channels))
        self.eps, self.prior = eps, prior

    def forward(self, x: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):  # statistics in float32
            return self._normalise(x.float(), regions.float()).to(x.dtype)

    def _normalise(self, h: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        m = F.adaptive_avg_pool2d(regions, h.shape[-2:])
        mean_all = h.mean(dim=(2, 3))                          # B, C
        sq_all = (h * h).mean(dim=(2, 3))
        mass = m.sum(dim=(2, 3)).unsqueeze(-1) + self.prior    # B, K, 1
        mean = (torch.einsum("bkhw,bchw->bkc", m, h) + self.prior * mean_all.unsqueeze(1)) / mass
        sq = (torch.einsum("bkhw,bchw->bkc", m, h * h) + self.prior * sq_all.unsqueeze(1)) / mass
        var = (sq - mean * mean).clamp_min(0.0)
        scale = self.gamma / torch.sqrt(var + self.eps)        # B, K, C
        shift = self.beta - mean * scale
        return torch.einsum("bkhw,bkc->bchw", m, scale) * h + torch.einsum("bkhw,bkc->bchw", m, shift)


class SemiPETGenerator(nn.Module):
    def __init__(self, o: dict) -> None:
        super().__init__()
        self.thresholds = [float(t) for t in o["region_thresholds"]]
        self.smooth = int(o["region_smooth"])
        regions = len(self.thresholds) + 1

        def decoder_norm(channels: int, level: int) -> nn.Module:
            return RegionAdaptiveNorm(channels, regions) if level <= o["ran_levels"] else make_norm("batch", channels)

        self.unet = UNet(1, 1, o["num_downs"], o["ngf"], "batch", o["dropout"], decoder_norm=decoder_norm)

    def forward(self, lpet):
        return self.unet(lpet, region_map(lpet, self.thresholds, self.smooth))


@functools.lru_cache(maxsize=32)
def gaussian_window(sigma: float, device, size: int | None = None) -> torch.Tensor:
    """The normalised 2D Gaussian ``[1, 1, size, size]``, built once per (sigma, device, size): a step
    allocates nothing a CUDA graph could not hold, and reads nothing from the host."""
    with torch.inference_mode(False), torch.no_grad():  # a plain constant, wherever it is first built
        size = size or 2 * math.ceil(3 * sigma) + 1
        coords = torch.arange(size, device=device, dtype=torch.float32) - size // 2
        g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
        g = g / g.sum()
        return (g[:, None] * g[None, :])[None, None]


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    window = gaussian_window(float(sigma), x.device)
    return F.conv2d(F.pad(x, [window.shape[-1] // 2] * 4, mode="replicate"), window)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM with the standard 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, in float32."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.float(), y.float()
        window = gaussian_window(1.5, x.device, 11)
        mu_x, mu_y = F.conv2d(x, window, padding=5), F.conv2d(y, window, padding=5)
        sxx = F.conv2d(x * x, window, padding=5) - mu_x ** 2
        syy = F.conv2d(y * y, window, padding=5) - mu_y ** 2
        sxy = F.conv2d(x * y, window, padding=5) - mu_x * mu_y
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        value = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
        return value.mean()


def structural_consistency(output: torch.Tensor, lpet: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    with torch.autocast(device_type=output.device.type, enabled=False):
        return 1.0 - ssim(blur(output.float(), sigma), blur(lpet.float(), sigma))


class SemiPET(BaselineMethod):
    name = "semipet"
    description = ("SemiPET (re-implemented): U-Net with region-adaptive normalisation; paired L1 + adversarial, "
                   "unpaired LPET with adversarial and structural-consistency losses, unpaired SPET as real samples.")
    defaults = dict(PAPER)
    presets = {
        "paper": dict(PAPER),
        "quick": {"num_downs": 5, "ngf": 16, "ran_levels": 3, "ndf": 16, "lr": 1e-3, "epochs": 3,
                  "lr_decay": "constant", "batch_size": 8, "steps_per_epoch": 100},
    }

    #: how tables should name it (recorded in the run record)
    paper_name = 'SemiPET (re-implemented from its description)'
    #: the paper's name for it, and its row in Table I (positions: LPET 10 ... S3PET 70)
    display_name = "SemiPET"
    table_places = {1: 60}
    provenance = "reconstruction"
    provenance_source = "from its title and the S3PET paper's summary (no full text, no code)"
    efficiency_place = 30  # in the label-efficiency grid
    #: tiny sizes for unit and conformance tests (petbench.testing)
    test_options = {"num_downs": 4, "ngf": 4, "ran_levels": 2, "ndf": 4, "batch_size": 4}

    def check_options(self, checker):
        o = checker.options
        checker.at_least(2, "num_downs")
        checker.at_least(1, "ngf", "ndf", "d_layers", "region_smooth")
        checker.non_negative("sc_blur_sigma")
        checker.one_of("gan_mode", GAN_MODES)
        if not (isinstance(o["ran_levels"], int) and 0 <= o["ran_levels"] < o["num_downs"]):
            checker.fail("ran_levels", f"an integer in [0, num_downs - 1 = {o['num_downs'] - 1}]")
        thresholds = o["region_thresholds"]
        if not (thresholds and all(isinstance(t, (int, float)) and 0 < t < 1 for t in thresholds)
                and list(thresholds) == sorted(set(thresholds))):
            checker.fail("region_thresholds", "increasing numbers in (0, 1), e.g. [0.1, 0.5]")

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        o = self.options
        self.nets["G"] = init_weights(SemiPETGenerator(o))
        self.nets["D_c"] = init_weights(PatchGAN(2, o["ndf"], o["d_layers"], "batch"))  # conditional, paired
        self.nets["D_u"] = init_weights(PatchGAN(1, o["ndf"], o["d_layers"], "batch"))  # unconditional, unpaired
        self.pool_paired = ImagePool(o["pool_size"])
        self.pool_unpaired = ImagePool(o["pool_size"])

    def stages(self):
        o = self.options
        opt_g, opt_d = self.adam("G"), self.adam("D_c", "D_u")
        G, D_c, D_u = self.nets["G"], self.nets["D_c"], self.nets["D_u"]

        def adv(logits, real):
            return gan_loss(logits, real, o["gan_mode"], o["label_smoothing"])

        def step(batch, ctx):
            lpet, spet, lpet_u, spet_u = batch["lpet"], batch["spet"], batch["lpet_u"], batch["spet_u"]
            fake = G(lpet)  # one forward pass per stream serves both updates
            fake_u = G(lpet_u)
            fake_pair = torch.cat([lpet, fake], 1)

            def update_d():  # on the pooled, detached fakes; D_u's real samples are unpaired SPET
                pooled = self.pool_paired.query(fake_pair)
                pooled_u = self.pool_unpaired.query(fake_u)
                loss_d_c = 0.5 * (adv(D_c(torch.cat([lpet, spet], 1)), True) + adv(D_c(pooled), False))
                loss_d_u = 0.5 * (adv(D_u(spet_u), True) + adv(D_u(pooled_u), False))
                ctx.backward_step(loss_d_c + loss_d_u, opt_d)
                return {"D_c": loss_d_c.detach(), "D_u": loss_d_u.detach()}

            def update_g():  # against both discriminators on the live fakes, D frozen
                set_requires_grad([D_c, D_u], False)
                loss_adv = adv(D_c(fake_pair), True)
                loss_l1 = l1(fake, spet)
                loss_adv_u = adv(D_u(fake_u), True)
                loss_sc = structural_consistency(fake_u, lpet_u, o["sc_blur_sigma"])
                loss_g = (loss_adv + o["lambda_l1"] * loss_l1 + o["lambda_unpaired_adv"] * loss_adv_u
                          + o["lambda_sc"] * loss_sc)
                ctx.backward_step(loss_g, opt_g)
                set_requires_grad([D_c, D_u], True)
                return {"G_adv": loss_adv.detach(), "l1": loss_l1.detach(), "G_adv_u": loss_adv_u.detach(),
                        "sc": loss_sc.detach()}

            return in_order(o["update_order"], update_g, update_d)

        return [self.make_stage(step, {"G": opt_g, "D": opt_d}, ("G", "D_c", "D_u"),
                                ("paired", "unpaired_lpet", "unpaired_spet"),
                                state={"pool_paired": self.pool_paired, "pool_unpaired": self.pool_unpaired})]
