"""Loss bookkeeping that never waits for the GPU: sums stay on the device, read every N steps.

A step's losses are added to two running sums per name (the current window and the epoch) where they
are, so the Python loop runs ahead of the GPU. The engine reads the sums to the host in one transfer
every ``sync_every`` steps and at the end of each epoch: the NaN/Inf guard looks at the window's sum (a
non-finite loss anywhere in the window makes it non-finite), the progress bar shows the window's means,
and the epoch's means go to the history.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch


class LossMeter:
    def __init__(self) -> None:
        self.window: dict[str, Any] = {}
        self.window_counts: dict[str, int] = {}
        self.window_first = 0  # step index (from 0, within the epoch) of the window's first step
        self.epoch: dict[str, Any] = {}
        self.epoch_counts: dict[str, int] = {}

    def add(self, losses: Mapping[str, Any]) -> None:
        for name, value in losses.items():
            value = value.detach().float().reshape(()) if torch.is_tensor(value) else float(value)
            for sums, counts in ((self.window, self.window_counts), (self.epoch, self.epoch_counts)):
                sums[name] = sums[name] + value if name in sums else value
                counts[name] = counts.get(name, 0) + 1

    def read_window(self, with_epoch: bool = False) -> tuple[dict[str, float], dict[str, float]]:
        """The window's means (and the epoch's, when asked) in one host transfer; starts a new window."""
        names = list(self.window) + (list(self.epoch) if with_epoch else [])
        values = to_host(list(self.window.values()) + (list(self.epoch.values()) if with_epoch else []))
        window = {n: v / self.window_counts[n] for n, v in zip(names[:len(self.window)], values)}
        epoch = {n: v / self.epoch_counts[n] for n, v in zip(names[len(self.window):], values[len(self.window):])}
        self.window, self.window_counts = {}, {}
        return window, epoch

    def new_epoch(self) -> None:
        self.window, self.window_counts, self.epoch, self.epoch_counts = {}, {}, {}, {}
        self.window_first = 0


def to_host(values: list) -> list[float]:
    """Floats of ``values`` (tensors and numbers), with one device-to-host copy for all the tensors."""
    tensors = [v for v in values if torch.is_tensor(v)]
    read = iter(torch.stack([t.to(tensors[0].device) for t in tensors]).tolist()) if tensors else iter(())
    return [float(next(read)) if torch.is_tensor(v) else float(v) for v in values]


def first_non_finite(means: dict[str, float]) -> str | None:
    return next((name for name, value in means.items() if not math.isfinite(value)), None)
