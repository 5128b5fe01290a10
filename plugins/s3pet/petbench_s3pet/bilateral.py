"""Stage II: the bilateral network's parts, paper §III-B.

* DKD (dose knowledge decouple): a dose-specific linear projector per dose and one dose-invariant
  projector whose weights both doses share.
* DKL (dose-specific knowledge learning): the token swap of the dose-specific tokens and a
  linear transfer module that predicts SPET-specific tokens from LPET-specific ones.
* Dose decoders: tokens -> 2D feature map -> four Conv-BN-ReLU blocks with three up-sampling
  layers between them -> a 1x1 convolution to one image channel.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .vit import init_weights, log2_int, tokens_to_map


class Tokens(NamedTuple):
    """A dose's decoupled tokens, each ``[B, N, proj_dim]``."""

    invariant: torch.Tensor
    specific: torch.Tensor


class Projector(nn.Module):
    """A token-wise linear projector ``[B, N, dim] -> [B, N, proj_dim]`` (DKD)."""

    def __init__(self, dim: int, proj_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, proj_dim)
        self.apply(init_weights)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.linear(tokens)


def decouple(tokens: torch.Tensor, invariant: Projector, specific: Projector) -> Tokens:
    """DKD for one dose: split encoder tokens into dose-invariant and dose-specific tokens."""
    return Tokens(invariant(tokens), specific(tokens))


def token_swap(lpet: Tokens, spet: Tokens) -> tuple[Tokens, Tokens]:
    """Exchange the dose-specific tokens of a pair; the dose-invariant tokens stay.

    Returns ``(to_lpet, to_spet)``: ``(s_di, l_ds)`` goes to the LPET decoder (auxiliary branch)
    and ``(l_di, s_ds)`` towards the SPET decoder (main branch, where the transfer module's
    prediction of ``s_ds`` takes its place).
    """
    return Tokens(spet.invariant, lpet.specific), Tokens(lpet.invariant, spet.specific)


class TransferModule(nn.Module):
    """DKL's linear transfer: predicts SPET-specific tokens from LPET-specific ones, token-wise.

    ``hidden=0``: one Linear layer; ``hidden>0``: Linear-GELU-Linear with that hidden width.
    """

    def __init__(self, proj_dim: int, hidden: int = 0) -> None:
        super().__init__()
        if hidden > 0:
            self.net = nn.Sequential(nn.Linear(proj_dim, hidden), nn.GELU(), nn.Linear(hidden, proj_dim))
        else:
            self.net = nn.Linear(proj_dim, proj_dim)
        self.apply(init_weights)

    def forward(self, specific: torch.Tensor) -> torch.Tensor:
        return self.net(specific)


def upsample_factors(patch_size: int, layers: int = 3) -> list[int]:
    """Split the total up-sampling ``patch_size`` (a power of two) over ``layers`` layers,
    largest first: 8 -> [2, 2, 2], 16 -> [4, 2, 2], 4 -> [2, 2, 1]."""
    exponent = log2_int(patch_size)
    return [2 ** (exponent // layers + (1 if i < exponent % layers else 0)) for i in range(layers)]


UPSAMPLE_MODES = ("bilinear", "nearest", "transpose")


def upsampling(channels: int, factor: int, mode: str) -> nn.Module:
    """An up-sampling layer: fixed interpolation (``bilinear``, ``nearest``) or a learned
    transposed convolution with kernel = stride = ``factor`` (``transpose``)."""
    if mode == "transpose":
        return nn.ConvTranspose2d(channels, channels, kernel_size=factor, stride=factor)
    if mode == "bilinear":
        return nn.Upsample(scale_factor=factor, mode="bilinear", align_corners=False)
    if mode == "nearest":
        return nn.Upsample(scale_factor=factor, mode="nearest")
    raise ValueError(f"up-sampling mode must be one of {', '.join(UPSAMPLE_MODES)}, not {mode!r}")


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DoseDecoder(nn.Module):
    """CNN dose decoder: four Conv-BN-ReLU blocks, three up-sampling layers between them (their
    factors multiply to the patch size, so the output has the input image's size), then a 1x1
    convolution to one channel. Input: a ``[B, C, H/p, W/p]`` map made of tokens."""

    def __init__(self, in_channels: int, channels: list[int] | tuple[int, ...], patch_size: int,
                 upsample_mode: str = "bilinear", out_channels: int = 1) -> None:
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"the dose decoder has four blocks: give 4 channel widths, not {list(channels)}")
        layers: list[nn.Module] = []
        widths = [in_channels, *channels]
        for i, factor in enumerate([*upsample_factors(patch_size), None]):
            layers.append(conv_bn_relu(widths[i], widths[i + 1]))
            if factor is not None and factor > 1:
                layers.append(upsampling(widths[i + 1], factor, upsample_mode))
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels[-1], out_channels, 1)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(feature_map))


def fuse(first: torch.Tensor, second: torch.Tensor | None, grid: tuple[int, int], how: str = "concat") -> torch.Tensor:
    """Two token sets -> one 2D feature map: channel concatenation (``"concat"``) or sum (``"add"``)."""
    if second is None:
        tokens = first
    elif how == "concat":
        tokens = torch.cat([first, second], dim=-1)
    elif how == "add":
        tokens = first + second
    else:
        raise ValueError(f"token fusion must be 'concat' or 'add', not {how!r}")
    return tokens_to_map(tokens, grid)
