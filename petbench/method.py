"""The method role: trains in stages the host runs, predicts SPET slices from LPET slices.

A method never sees a test standard-dose image: the host owns evaluation and calls
:meth:`Method.predict` with low-dose slices only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import torch
from torch import nn

from .options import resolve_options

#: Training data sources a stage can draw; the batch dict gets the listed keys.
#: "paired": ``lpet``, ``spet`` (aligned slices of the paired-train subjects)
#: "unpaired_lpet": ``lpet_u`` (the Stage-I LPET set; in the paper's protocol the paired-train LPET)
#: "unpaired_spet": ``spet_u`` (standard-dose slices of the unpaired subjects)
SOURCES = {"paired": ("lpet", "spet"), "unpaired_lpet": ("lpet_u",), "unpaired_spet": ("spet_u",)}


class TrainContext:
    """Handed to a stage's ``step``: mixed precision and optimiser steps done the same for all."""

    def __init__(self, device: torch.device, amp_dtype: torch.dtype | None, scaler: torch.amp.GradScaler):
        self.device = device
        self.amp_dtype = amp_dtype
        self.scaler = scaler
        self.epoch = 0
        self.step_index = 0  # global step within the stage
        self.stepped = False  # whether an optimiser stepped since the engine last looked

    def backward_step(self, loss: torch.Tensor, *optimizers: torch.optim.Optimizer,
                      retain_graph: bool = False) -> None:
        """Zero grads, back-propagate ``loss`` (scaled under fp16) and step ``optimizers``."""
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=self.device.type, enabled=False):
            self.scaler.scale(loss).backward(retain_graph=retain_graph)
        for optimizer in optimizers:
            self.scaler.step(optimizer)
        self.stepped = True


StepFn = Callable[[dict, TrainContext], Mapping[str, Any]]


@dataclass
class Stage:
    """One training stage, run by the host's engine.

    ``step(batch, ctx)`` does the forward pass, calls ``ctx.backward_step`` for each update and
    returns its losses (tensors or floats) for the progress bar and the NaN/Inf guard.
    ``modules`` names the modules this stage trains (put in train mode, stored for reuse).
    ``reuse_key``, when set, lets the engine reuse this stage's trained modules from an earlier
    run whose key, data and seed are identical (e.g. Table II variants sharing one Stage I).
    """

    name: str
    step: StepFn
    optimizers: dict[str, torch.optim.Optimizer]
    modules: tuple[str, ...]
    sources: tuple[str, ...] = ("paired",)
    epochs: int = 1
    batch_size: int = 16
    steps_per_epoch: int | None = None
    schedulers: dict[str, Any] = field(default_factory=dict)
    reuse_key: dict | None = None


class Method:
    """Base class for a method plugin.

    Subclasses set ``name``, ``description``, ``defaults`` (every option with its default),
    ``presets`` (``"paper"`` and ``"quick"`` option sets), build their modules in ``__init__``
    and implement :meth:`stages` and :meth:`predict`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    presets: ClassVar[dict[str, dict[str, Any]]] = {"paper": {}, "quick": {}}

    def __init__(self, options: Mapping[str, Any] | None = None, preset: str | None = None) -> None:
        self.options = resolve_options(f"method {self.name!r}", self.defaults, self.presets, preset,
                                       dict(options or {}))
        self.nets = nn.ModuleDict()  # every module the method owns; checkpointed and counted

    # -- what a method implements ----------------------------------------------------------
    def stages(self) -> list[Stage]:
        """The training stages, in order. The host calls this once per run, after it moved
        ``self.nets`` to the training device, so optimisers are created here."""
        return []

    def predict(self, lpet: torch.Tensor) -> torch.Tensor:
        """Map normalised LPET slices ``[B, 1, H, W]`` to SPET slices of the same shape."""
        raise NotImplementedError

    # -- provided ------------------------------------------------------------------------
    def inference_modules(self) -> list[str]:
        """Modules that :meth:`predict` uses (counted as the method's parameters)."""
        return list(self.nets.keys())

    def parameter_count(self) -> int:
        return sum(p.numel() for name in self.inference_modules() for p in self.nets[name].parameters())

    @property
    def device(self) -> torch.device:
        for parameter in self.nets.parameters():
            return parameter.device
        return torch.device("cpu")
