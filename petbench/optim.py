"""Adam built the way a step runs fastest on the parameters' device, for methods' stages.

``fused``: one operation updates every parameter of the optimiser (``torch.optim.Adam(fused=True)``,
on CUDA and the CPU), instead of one per parameter and moment, which is most of a batch-1 step's
launches on a GPU and, on the CPU, a host read of each parameter's step counter (the default
single-tensor Adam calls ``.item()`` on it). ``capturable`` on CUDA: the step counters stay on the
device and the update never reads them to the host, so a whole training step can be captured as a
CUDA graph. Where a parameter's device or dtype is not supported by the fused kernel, the default
implementation is used (the same algorithm; results differ only in rounding).
"""
from __future__ import annotations

from typing import Iterable

import torch

FUSED_DEVICES = ("cuda", "cpu")


def adam(parameters: Iterable[torch.Tensor], **options) -> torch.optim.Adam:
    """``torch.optim.Adam(parameters, **options)``, fused where the parameters allow, capturable on CUDA."""
    parameters = list(parameters)
    devices = {p.device.type for p in parameters}
    floating = all(p.is_floating_point() for p in parameters)
    if parameters and floating and len(devices) == 1 and devices <= set(FUSED_DEVICES):
        extra = {"fused": True, **({"capturable": True} if devices == {"cuda"} else {})}
        try:
            return torch.optim.Adam(parameters, **options, **extra)
        except (RuntimeError, ValueError, TypeError):  # a torch build without the fused kernel for them
            pass
    return torch.optim.Adam(parameters, **options)
