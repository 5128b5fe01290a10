"""The pix2pix/CycleGAN ``NLayerDiscriminator``; ``n_layers=3`` is the 70x70 PatchGAN.

``Conv4x4 s2 (no norm) -> LReLU 0.2``, then ``n_layers - 1`` times ``Conv4x4 s2 -> norm -> LReLU``
(widths ``ndf * min(2**n, 8)``), then ``Conv4x4 s1 -> norm -> LReLU`` and a ``Conv4x4 s1`` to one
logit channel. A 128x128 input gives 14x14 logits, a 32x32 input 2x2. ``value_range=R`` makes it judge
``2 x / R - 1`` (the [-1, 1] images of a Tanh generator with the same range, see ``resnet.py``).
"""
from __future__ import annotations

from torch import nn

from .norm import conv_bias, make_norm


class PatchGAN(nn.Module):
    def __init__(self, in_channels: int = 1, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 value_range: float | None = None) -> None:
        super().__init__()
        self.value_range = value_range
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers):
            previous, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * previous, ndf * mult, 4, 2, 1, bias=bias), make_norm(norm, ndf * mult),
                       nn.LeakyReLU(0.2)]
        previous, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * previous, ndf * mult, 4, 1, 1, bias=bias), make_norm(norm, ndf * mult),
                   nn.LeakyReLU(0.2), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.value_range is not None:
            x = x / (self.value_range / 2) - 1
        return self.model(x)
