"""Losses are computed at least in float32: half types (autocast) are lifted, float64 is kept."""
from __future__ import annotations

import torch


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is in a half type, as it is in float32 or float64 (float64 tests stay exact)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()
