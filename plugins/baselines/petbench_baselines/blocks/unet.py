"""The pix2pix ``UnetGenerator``, written level by level so a decoder norm can see a condition.

Level ``i`` (0 = outermost) down-samples with ``Conv4x4 s2`` from ``ch(i-1)`` to
``ch(i) = ngf * min(2**i, 8)`` channels (LeakyReLU 0.2 before it except at level 0, a norm
after it except at the outermost and innermost levels). The decoder mirrors it with
``ReLU -> ConvTranspose4x4 s2 -> norm [-> Dropout 0.5]`` and concatenates the skip of the
level above. ``num_downs=7`` is pix2pix's ``unet_128`` (a 128x128 input reaches 1x1).
pix2pix puts dropout in the ``num_downs - 5`` decoder levels between the innermost level and
the four outer ones; so does this class.

Differences from pix2pix, on purpose: the output layer is linear (no Tanh, because the host's
intensities are non-negative and not mapped to [-1, 1]; the method clamps at 0 in ``predict``),
activations are not in-place (pix2pix's in-place LeakyReLU also activates the skip tensor), and
an input whose size is not a multiple of ``2**num_downs`` is zero-padded and cropped back.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .norm import apply_norm, conv_bias, make_norm


class UNet(nn.Module):
    def __init__(self, in_channels: int = 1, out_channels: int = 1, num_downs: int = 7, ngf: int = 64,
                 norm: str = "batch", dropout: bool = True,
                 decoder_norm: Callable[[int, int], nn.Module] | None = None) -> None:
        """``decoder_norm(channels, level)``, when given, builds the decoder norm of ``level``
        (1 .. num_downs-1) instead of ``make_norm(norm, channels)``; it may return a
        :class:`ConditionalNorm`, which then receives the ``condition`` passed to ``forward``."""
        super().__init__()
        if num_downs < 2:
            raise ValueError("a U-Net needs num_downs >= 2")
        self.num_downs = num_downs
        bias = conv_bias(norm)

        def ch(level: int) -> int:
            return ngf * min(2 ** level, 8)

        self.down_convs, self.down_norms = nn.ModuleList(), nn.ModuleList()
        self.up_convs, self.up_norms, self.up_drops = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for level in range(num_downs):
            outer = in_channels if level == 0 else ch(level - 1)
            inner = ch(level)
            innermost, outermost = level == num_downs - 1, level == 0
            self.down_convs.append(nn.Conv2d(outer, inner, 4, 2, 1, bias=bias if not outermost else True))
            self.down_norms.append(nn.Identity() if (innermost or outermost) else make_norm(norm, inner))
            up_in = inner if innermost else 2 * inner
            up_out = out_channels if outermost else outer
            self.up_convs.append(nn.ConvTranspose2d(up_in, up_out, 4, 2, 1, bias=True if outermost else bias))
            if outermost:
                self.up_norms.append(nn.Identity())
            elif decoder_norm is not None:
                self.up_norms.append(decoder_norm(up_out, level))
            else:
                self.up_norms.append(make_norm(norm, up_out))
            use_dropout = dropout and 4 <= level <= num_downs - 2
            self.up_drops.append(nn.Dropout(0.5) if use_dropout else nn.Identity())

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = 2 ** self.num_downs
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
            if condition is not None:
                condition = F.pad(condition, (0, pad_w, 0, pad_h))
        skips = []
        h = x
        for level in range(self.num_downs):
            if level > 0:
                h = F.leaky_relu(h, 0.2)
            h = self.down_norms[level](self.down_convs[level](h))
            skips.append(h)
        for level in reversed(range(self.num_downs)):
            if level < self.num_downs - 1:
                h = torch.cat([skips[level], h], dim=1)
            h = self.up_convs[level](F.relu(h))
            h = self.up_drops[level](apply_norm(self.up_norms[level], h, condition))
        return h[..., :height, :width]
