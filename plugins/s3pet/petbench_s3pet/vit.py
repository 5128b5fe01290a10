"""ViT building blocks of the dose encoders: patchify, 2D sin-cos positions, transformer blocks.

The dose encoder (paper §III-A) embeds image patches with a linear projection, adds positional
embeddings and applies ``T`` transformer blocks. Positions are the fixed 2D sine-cosine table of
MAE, computed for the input's patch grid, so one encoder works at any slice size that the patch
size divides (tests use 32² and 64², the paper 128²).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, N, patch*patch*C]``, patches in row-major grid order."""
    b, c, h, w = images.shape
    if h % patch or w % patch:
        raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {patch}")
    gh, gw = h // patch, w // patch
    x = images.reshape(b, c, gh, patch, gw, patch)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, gh * gw, patch * patch * c)


def unpatchify(patches: torch.Tensor, patch: int, grid: tuple[int, int], channels: int = 1) -> torch.Tensor:
    """The inverse of :func:`patchify`: ``[B, N, patch*patch*C]`` -> ``[B, C, H, W]``."""
    b = patches.shape[0]
    gh, gw = grid
    x = patches.reshape(b, gh, gw, patch, patch, channels)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(b, channels, gh * patch, gw * patch)


def tokens_to_map(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``[B, N, C]`` tokens -> a ``[B, C, gh, gw]`` feature map, each token at its patch's place."""
    b, n, c = tokens.shape
    gh, gw = grid
    if n != gh * gw:
        raise ValueError(f"{n} tokens do not fill a {gh}x{gw} grid")
    return tokens.transpose(1, 2).reshape(b, c, gh, gw)


def sincos_pos_embed(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """MAE's fixed 2D sine-cosine positional embedding, ``[gh*gw, dim]`` (float32).

    Half the channels encode the row, half the column; each half is ``[sin(pos*w), cos(pos*w)]``
    with ``w_k = 1 / 10000**(k / (dim/4))``.
    """
    if dim % 4:
        raise ValueError(f"the embedding width must be a multiple of 4 for 2D sin-cos positions, not {dim}")
    gh, gw = grid
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))

    def axis(positions: torch.Tensor) -> torch.Tensor:
        angles = positions.reshape(-1, 1).double() * omega
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    rows, cols = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    return torch.cat([axis(rows), axis(cols)], dim=1).float()


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"the embedding width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block (as in ViT/MAE): x + MHSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DoseEncoder(nn.Module):
    """The ViT dose encoder E_D: linear patch projection + positions + ``depth`` blocks + LayerNorm.

    ``forward(x)`` gives ``[B, N, dim]`` tokens. With ``mask`` (``[B, N]``, True = masked) and
    ``mask_token`` (``[dim]``), masked patch embeddings are replaced by the mask token before the
    positions are added (Stage I).
    """

    def __init__(self, patch_size: int, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0,
                 in_channels: int = 1) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.dim = dim
        self.in_channels = in_channels
        self.patch_embed = nn.Linear(patch_size * patch_size * in_channels, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self._pos_cache: dict[tuple, torch.Tensor] = {}
        self.apply(init_weights)

    def grid(self, images: torch.Tensor) -> tuple[int, int]:
        return images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size

    def pos_embed(self, grid: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        key = (grid, like.device, like.dtype)
        if key not in self._pos_cache:
            self._pos_cache[key] = sincos_pos_embed(self.dim, grid).to(like.device, like.dtype)
        return self._pos_cache[key]

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None,
                mask_token: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self.patch_embed(patchify(images, self.patch_size))
        if mask is not None:
            tokens = torch.where(mask.unsqueeze(-1), mask_token.to(tokens.dtype), tokens)
        tokens = tokens + self.pos_embed(self.grid(images), tokens)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


def init_weights(module: nn.Module) -> None:
    """MAE's initialisation: Xavier-uniform Linear weights, zero biases, LayerNorm 1/0."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def pad_to_multiple(images: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad ``[B, C, H, W]`` at the bottom/right to multiples of ``multiple``; returns the
    padded images and the original ``(H, W)`` to crop back to."""
    h, w = images.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        images = F.pad(images, (0, pw, 0, ph))
    return images, (h, w)


def log2_int(value: int) -> int:
    exponent = int(round(math.log2(value))) if value > 0 else -1
    if exponent < 0 or 2 ** exponent != value:
        raise ValueError(f"{value} is not a power of two")
    return exponent
