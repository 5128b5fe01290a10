"""The CycleGAN ResNet block and ``ResnetGenerator``.

Generator: ``ReflPad3 -> Conv7x7(in->ngf) -> norm -> ReLU``, ``n_down`` times
``Conv3x3 s2 -> norm -> ReLU`` (doubling the width), ``n_blocks`` residual blocks, the mirror
``ConvTranspose3x3 s2 (output_padding 1) -> norm -> ReLU`` up-samplings and
``ReflPad3 -> Conv7x7(ngf->out)``, then (``output="tanh"``) CycleGAN's Tanh, or nothing
(``output="linear"``, petbench's variant: the host's intensities are non-negative and unbounded).

With Tanh the generator works as upstream does on [-1, 1] images: an input ``x`` in host units is mapped
by the fixed affine ``2 x / R - 1`` (``R = value_range``, upstream's ``Normalize(0.5, 0.5)`` after
``ToTensor`` maps a pixel range [0, 255] the same way) and the output back by ``(y + 1) R / 2``, so
values above ``R`` cannot be produced, as upstream cannot exceed 255.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .norm import conv_bias, make_norm

SLICE_SCALES = ("none", "mean")
OUTPUTS = ("linear", "tanh")
#: the smallest scale a slice is divided by (an all-zero slice stays zero)
SCALE_FLOOR = 1e-6


class ResnetBlock(nn.Module):
    """``x + [ReflPad1, Conv3x3, norm, ReLU, (Dropout 0.5), ReflPad1, Conv3x3, norm](x)``."""

    def __init__(self, dim: int, norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make_norm(norm, dim), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make_norm(norm, dim)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels: int = 1, out_channels: int = 1, ngf: int = 64, n_blocks: int = 6,
                 norm: str = "instance", dropout: bool = False, n_down: int = 2,
                 slice_scale: str = "none", output: str = "linear", value_range: float = 2.0) -> None:
        super().__init__()
        if slice_scale not in SLICE_SCALES:
            raise ValueError(f"unknown slice_scale {slice_scale!r}; valid: {', '.join(SLICE_SCALES)}")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; valid: {', '.join(OUTPUTS)}")
        if not value_range > 0:
            raise ValueError(f"value_range must be > 0, not {value_range!r}")
        self.slice_scale = slice_scale
        self.output = output
        self.value_range = float(value_range)
        bias = conv_bias(norm)
        self.multiple = 2 ** n_down
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias),
                                   make_norm(norm, ngf), nn.ReLU()]
        for i in range(n_down):
            mult = 2 ** i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=bias), make_norm(norm, ngf * mult * 2),
                       nn.ReLU()]
        mult = 2 ** n_down
        layers += [ResnetBlock(ngf * mult, norm, dropout) for _ in range(n_blocks)]
        for i in range(n_down):
            mult = 2 ** (n_down - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=bias),
                       make_norm(norm, ngf * mult // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7)]
        if output == "tanh":
            layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.slice_scale == "mean":
            scale = x.float().abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(SCALE_FLOOR).to(x.dtype)
            return self._forward(x / scale) * scale
        return self._forward(x)

    def _forward(self, x):
        if self.output == "tanh":
            half = self.value_range / 2
            return (self._padded(x / half - 1) + 1) * half
        return self._padded(x)

    def _padded(self, x):
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % self.multiple, (-width) % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.model(x)[..., :height, :width]
