"""Losses of S3PET: the masked L1 of Stage I (Eq. 1) and the token JS divergence (Eqs. 2, 3)."""
from __future__ import annotations

import math

import torch

LN2 = math.log(2.0)

#: ``js_axis`` option -> the token-tensor dimension the softmax turns into a distribution.
JS_AXES = {"feature": -1, "token": -2}


def js_divergence(a: torch.Tensor, b: torch.Tensor, axis: str = "feature", tau: float = 1.0) -> torch.Tensor:
    """Jensen-Shannon divergence between token sets ``a`` and ``b`` of shape ``[B, N, D]``.

    Each token (``axis="feature"``: a distribution over its ``D`` channels) or each channel
    (``axis="token"``: a distribution over the ``N`` token positions) is turned into a
    distribution by a softmax at temperature ``tau``; the JS divergence of each pair is averaged
    over the rest. It is symmetric, 0 for equal inputs and at most ln 2 (natural log).
    """
    if a.shape != b.shape:
        raise ValueError(f"js_divergence needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    if axis not in JS_AXES:
        raise ValueError(f"js axis must be one of {sorted(JS_AXES)}, not {axis!r}")
    dim = JS_AXES[axis]
    log_p = torch.log_softmax(a.float() / tau, dim=dim)
    log_q = torch.log_softmax(b.float() / tau, dim=dim)
    log_m = torch.logaddexp(log_p, log_q) - LN2  # log((p + q) / 2), stable
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(dim)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(dim)
    return (0.5 * (kl_pm + kl_qm)).clamp(0.0, LN2).mean()


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error over the patches where ``mask`` is True (all patches if ``None``).

    ``pred`` and ``target`` are patch sequences ``[B, N, P]``; ``mask`` is ``[B, N]`` (bool).
    """
    error = (pred.float() - target.float()).abs().mean(-1)  # [B, N]
    if mask is None:
        return error.mean()
    weight = mask.to(error.dtype)
    return (error * weight).sum() / weight.sum().clamp_min(1.0)
