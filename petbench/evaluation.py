"""Evaluation, owned by the host: LPET volume -> slices -> predict -> re-stacked 3D volume in
physical units -> metrics against the reference volume. The method sees only LPET."""
from __future__ import annotations

import numpy as np
import torch

from .data.slices import from_slices, to_slices
from .method import Method
from .metric import Metric


@torch.no_grad()
def predict_volume(method: Method, lpet_zyx: np.ndarray, scale: float, device: torch.device,
                   batch_size: int = 32, amp_dtype: torch.dtype | None = None) -> np.ndarray:
    """Predict a whole volume slice by slice and re-stack it, de-normalised."""
    method.nets.eval()
    slices = to_slices(lpet_zyx, scale)
    outputs = []
    for start in range(0, len(slices), batch_size):
        batch = slices[start:start + batch_size].to(device)
        with torch.autocast(device_type=device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            out = method.predict(batch)
        if out.shape != batch.shape:
            raise RuntimeError(f"method {method.name!r} returned shape {tuple(out.shape)} for input {tuple(batch.shape)}")
        outputs.append(out.float().cpu())
    return from_slices(torch.cat(outputs), scale)


def score(pred: np.ndarray, ref: np.ndarray, metrics: list[Metric]) -> dict[str, float]:
    return {metric.name: metric(pred, ref) for metric in metrics}
