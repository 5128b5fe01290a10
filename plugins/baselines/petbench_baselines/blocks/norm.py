"""Normalisation layers by name, and the interface of a norm that also sees a condition."""
from __future__ import annotations

import torch
from torch import nn

NORMS = ("batch", "instance", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    """``batch`` (affine, running stats), ``instance`` (pix2pix/CycleGAN: no affine, no running
    stats) or ``none``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; valid: {', '.join(NORMS)}")


def conv_bias(kind: str) -> bool:
    """pix2pix: a conv followed by BatchNorm has no bias; followed by InstanceNorm (no affine) it has."""
    return kind != "batch"


class ConditionalNorm(nn.Module):
    """A norm layer that is called as ``norm(features, condition)`` (e.g. region-adaptive norm)."""

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


def apply_norm(norm: nn.Module, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
    return norm(x, condition) if isinstance(norm, ConditionalNorm) else norm(x)
