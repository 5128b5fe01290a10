"""Volumes <-> normalised 2D axial slices, and the training data streams a stage draws from."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


def to_slices(volume_zyx: np.ndarray, scale: float) -> torch.Tensor:
    """A ``[z, y, x]`` volume in physical units -> ``[z, 1, y, x]`` float32 slices in network units."""
    return torch.from_numpy(np.ascontiguousarray(volume_zyx, dtype=np.float32) / np.float32(scale)).unsqueeze(1)


def from_slices(slices: torch.Tensor, scale: float) -> np.ndarray:
    """``[z, 1, y, x]`` slices in network units -> a ``[z, y, x]`` volume in physical units."""
    return slices.detach().float().cpu().numpy()[:, 0] * np.float32(scale)


@dataclass
class TrainingData:
    """Normalised training slices per source (see :data:`petbench.method.SOURCES`)."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # key -> [N, 1, H, W]

    def count(self, source: str) -> int:
        from ..method import SOURCES

        return len(self.tensors[SOURCES[source][0]])

    def to(self, device: torch.device) -> "TrainingData":
        return TrainingData({k: v.to(device) for k, v in self.tensors.items()})

    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for v in self.tensors.values())
