"""GAN criteria on discriminator logits, computed in float32.

- ``lsgan``: MSE to 1 (real) / 0 (fake), as CycleGAN's ``gan_mode='lsgan'``. With ``smooth=True``
  the targets are PCCGAN's random label smoothing (``GANLoss_smooth``): real target
  ``1 + 0.5a - 0.3`` in [0.7, 1.2] and fake target ``0.3a`` in [0, 0.3], ``a ~ U(0, 1)`` per call,
  drawn on the logits' device (no host round trip, so a step stays capturable as a CUDA graph; on
  the CPU it is the same draw from the same generator as before).
- ``bce``: binary cross-entropy. CVT-GAN's discriminator ends in a Sigmoid scored with
  ``nn.BCELoss``; here the discriminator returns logits and the loss applies the sigmoid
  (``binary_cross_entropy_with_logits``): the same maths, numerically stable and allowed under
  autocast (``BCELoss`` is not).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .precision import full_precision

GAN_MODES = ("lsgan", "bce")


def gan_loss(logits: torch.Tensor, real: bool, mode: str = "lsgan", smooth: bool = False) -> torch.Tensor:
    logits = full_precision(logits)
    if mode == "lsgan":
        if smooth:
            a = torch.rand((), device=logits.device, dtype=logits.dtype)
            target = (0.5 * a + 0.7 if real else 0.3 * a).expand_as(logits)
        else:
            target = torch.full_like(logits, 1.0 if real else 0.0)
        return F.mse_loss(logits, target)
    if mode == "bce":
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))
    raise ValueError(f"unknown GAN mode {mode!r}; valid: {', '.join(GAN_MODES)}")


def set_requires_grad(modules: nn.Module | list[nn.Module], flag: bool) -> None:
    """Freeze (False) or unfreeze discriminators around the generator update, as CycleGAN does."""
    for module in modules if isinstance(modules, (list, tuple)) else [modules]:
        for parameter in module.parameters():
            parameter.requires_grad_(flag)
