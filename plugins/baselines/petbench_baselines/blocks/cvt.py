"""Convolutional vision transformer (CvT) blocks in 2D, as CVT-GAN uses them.

The 2D counterpart of the 3D CVT block of CVT-GAN, which itself follows microsoft/CvT
(``lib/models/cls_cvt.py``): a convolutional token embedding (conv + LayerNorm), pre-norm
transformer blocks whose query/key/value come from depth-wise ``Conv3x3 + BatchNorm``
projections (``method='dw_bn'``; stride 1 for q, stride 2 for k and v) followed by bias-free
linear maps, an attention scale of ``dim ** -0.5`` (the full embedding width, a CvT quirk),
a GELU MLP of ratio 4 and no position embedding. The transposed variant (TCVT) embeds with a
``ConvTranspose2d(k2, s2)`` instead, doubling the resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)  # b c h w -> b (h w) c


def to_map(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], height, width)


class DropPath(nn.Module):
    """Stochastic depth per sample (identity when ``p == 0`` or in eval mode)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class ConvEmbed(nn.Module):
    """Conv (or transposed conv) embedding followed by a LayerNorm over channels."""

    def __init__(self, in_channels: int, dim: int, transposed: bool = False) -> None:
        super().__init__()
        if transposed:
            self.proj = nn.ConvTranspose2d(in_channels, dim, kernel_size=2, stride=2)
        else:
            self.proj = nn.Conv2d(in_channels, dim, kernel_size=3, stride=2, padding=1)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)
        height, width = x.shape[-2:]
        return to_map(self.norm(to_tokens(x)), height, width)


class ConvProjectionAttention(nn.Module):
    """Multi-head attention with depth-wise convolutional q/k/v projections (CvT ``dw_bn``)."""

    def __init__(self, dim: int, heads: int, stride_kv: int = 2, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = dim ** -0.5

        def projection(stride):
            return nn.Sequential(nn.Conv2d(dim, dim, 3, stride, 1, groups=dim, bias=False), nn.BatchNorm2d(dim))

        self.conv_q, self.conv_k, self.conv_v = projection(1), projection(stride_kv), projection(stride_kv)
        self.proj_q = nn.Linear(dim, dim, bias=False)
        self.proj_k = nn.Linear(dim, dim, bias=False)
        self.proj_v = nn.Linear(dim, dim, bias=False)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, tokens):
        b, t, c = tokens.shape
        return tokens.reshape(b, t, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x = to_map(tokens, height, width)
        q = self._heads(self.proj_q(to_tokens(self.conv_q(x))))
        k = self._heads(self.proj_k(to_tokens(self.conv_k(x))))
        v = self._heads(self.proj_v(to_tokens(self.conv_v(x))))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0,
                                             scale=self.scale)
        out = out.transpose(1, 2).reshape(tokens.shape)
        return self.proj_drop(self.proj(out))


class CvTBlock(nn.Module):
    """``x + DropPath(Attn(LN(x)))`` then ``x + DropPath(MLP(LN(x)))`` on tokens."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, stride_kv: int = 2) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ConvProjectionAttention(dim, heads, stride_kv, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(drop), nn.Linear(hidden, dim),
                                 nn.Dropout(drop))

    def forward(self, tokens, height, width):
        tokens = tokens + self.drop_path(self.attn(self.norm1(tokens), height, width))
        return tokens + self.drop_path(self.mlp(self.norm2(tokens)))


class CvTStage(nn.Module):
    """Convolutional embedding (stride 2, or a transposed x2 up-sampling) then ``depth`` blocks."""

    transposed = False

    def __init__(self, in_channels: int, dim: int, depth: int = 1, heads: int = 2, mlp_ratio: float = 4.0,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.embed = ConvEmbed(in_channels, dim, transposed=self.transposed)
        self.pos_drop = nn.Dropout(drop)
        self.blocks = nn.ModuleList(CvTBlock(dim, heads, mlp_ratio, drop, attn_drop, drop_path)
                                    for _ in range(depth))

    def forward(self, x):
        x = self.embed(x)
        height, width = x.shape[-2:]
        tokens = self.pos_drop(to_tokens(x))
        for block in self.blocks:
            tokens = block(tokens, height, width)
        return to_map(tokens, height, width)


class TransposedCvTStage(CvTStage):
    """The TCVT block of CVT-GAN's decoder: ``ConvTranspose2d(k2, s2)`` + LayerNorm embedding."""

    transposed = True
