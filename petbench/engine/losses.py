"""Loss bookkeeping that never waits for the GPU and costs the loop almost nothing per step.

A step's losses are only appended to the current window (a Python list: no tensor operation per
step). Every ``sync_every`` steps and at the end of each epoch the engine reads the window: its
losses are summed per name in one stacked reduction on their device, the sums are added to the
epoch's, and both go to the host in one transfer. The NaN/Inf guard looks at the window's sum (a
non-finite loss anywhere in the window makes it non-finite), the progress bar shows the window's
means, and the epoch's means go to the history. The epoch's sums are part of a mid-epoch
checkpoint (:meth:`LossMeter.state_dict`), so a run resumed there writes the same history.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch


class LossMeter:
    def __init__(self) -> None:
        self.steps: list[Mapping[str, Any]] = []  # the current window's losses, one mapping per step
        self.window_first = 0  # step index (from 0, within the epoch) of the window's first step
        self.epoch: dict[str, Any] = {}
        self.epoch_counts: dict[str, int] = {}

    def add(self, losses: Mapping[str, Any]) -> None:
        self.steps.append(losses)

    def read_window(self, with_epoch: bool = False) -> tuple[dict[str, float], dict[str, float]]:
        """The window's means (and the epoch's, when asked) in one host transfer; starts a new window."""
        sums, counts = window_sums(self.steps)
        for name, value in sums.items():
            self.epoch[name] = self.epoch[name] + value if name in self.epoch else value
            self.epoch_counts[name] = self.epoch_counts.get(name, 0) + counts[name]
        names = list(sums) + (list(self.epoch) if with_epoch else [])
        values = to_host(list(sums.values()) + (list(self.epoch.values()) if with_epoch else []))
        window = {n: v / counts[n] for n, v in zip(names[:len(sums)], values)}
        epoch = {n: v / self.epoch_counts[n] for n, v in zip(names[len(sums):], values[len(sums):])}
        self.steps = []
        return window, epoch

    def new_epoch(self) -> None:
        self.steps, self.epoch, self.epoch_counts = [], {}, {}
        self.window_first = 0

    # a mid-epoch checkpoint is written at a window's end: only the epoch's sums are state
    def state_dict(self) -> dict:
        return {"epoch": {n: v.detach().clone() if torch.is_tensor(v) else float(v) for n, v in self.epoch.items()},
                "epoch_counts": dict(self.epoch_counts), "window_first": self.window_first}

    def load_state_dict(self, state: dict) -> None:
        self.steps = []
        self.epoch = dict(state["epoch"])
        self.epoch_counts = {str(n): int(c) for n, c in state["epoch_counts"].items()}
        self.window_first = int(state["window_first"])


def window_sums(steps: list[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
    """Per name, the sum of the steps' values and how many steps had it. The usual case (every step
    returns the same names, as tensors of one device and dtype) is one ``stack`` and one ``sum``."""
    if not steps:
        return {}, {}
    names = list(steps[0])
    if names and all(len(losses) == len(names) and list(losses) == names for losses in steps):
        flat = [value for losses in steps for value in losses.values()]
        if all(torch.is_tensor(v) and v.numel() == 1 for v in flat) \
                and len({(v.device, v.dtype) for v in flat}) == 1:
            with torch.no_grad():  # no per-value detach; and no per-value reshape when they are 0-d
                stacked = torch.stack(flat if all(v.dim() == 0 for v in flat) else [v.reshape(()) for v in flat])
            total = stacked.view(len(steps), len(names)).float().sum(0)
            return dict(zip(names, total.unbind())), {name: len(steps) for name in names}
    sums: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for losses in steps:
        for name, value in losses.items():
            value = value.detach().float().reshape(()) if torch.is_tensor(value) else float(value)
            sums[name] = sums[name] + value if name in sums else value
            counts[name] = counts.get(name, 0) + 1
    return sums, counts


def to_host(values: list) -> list[float]:
    """Floats of ``values`` (tensors and numbers), with one device-to-host copy for all the tensors."""
    tensors = [v for v in values if torch.is_tensor(v)]
    read = iter(torch.stack([t.to(tensors[0].device) for t in tensors]).tolist()) if tensors else iter(())
    return [float(next(read)) if torch.is_tensor(v) else float(v) for v in values]


def first_non_finite(means: dict[str, float]) -> str | None:
    return next((name for name, value in means.items() if not math.isfinite(value)), None)
