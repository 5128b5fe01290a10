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
    ``state`` names other objects the step keeps state in between steps (an image pool, an EMA):
    anything with ``state_dict()`` / ``load_state_dict()``, checkpointed with the optimisers so a
    resumed run continues exactly (state dicts of tensors and plain data only).
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
    state: dict[str, Any] = field(default_factory=dict)


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


def validate_stages(stages: Any, method: Method) -> None:
    """Check what ``method.stages()`` returned before anything is written: a list of :class:`Stage`
    with unique names, a callable step, ``epochs`` and ``batch_size`` integers >= 1,
    ``steps_per_epoch`` None or >= 1, known sources, modules that are in ``method.nets``, a dict of
    torch optimisers, a dict of schedulers (and of ``state`` objects) with ``state_dict``. A bad field
    is a :class:`~petbench.errors.UserError` naming the method, the stage and the field (often a
    method option set out of range, e.g. ``-o epochs=0``)."""
    from .errors import UserError

    owner = f"method {method.name!r}"
    if not isinstance(stages, (list, tuple)):
        raise UserError(f"{owner}: stages() returned {type(stages).__name__}, not a list of petbench.Stage")
    names = []
    for index, stage in enumerate(stages):
        if not isinstance(stage, Stage):
            raise UserError(f"{owner}: stages()[{index}] is {type(stage).__name__}, not a petbench.Stage")
        if not isinstance(stage.name, str) or not stage.name:
            raise UserError(f"{owner}: stages()[{index}] has no name (a non-empty string)")
        if stage.name in names:
            raise UserError(f"{owner}: two stages are named {stage.name!r}; stage names must be unique")
        names.append(stage.name)
        where = f"{owner}, stage {stage.name!r}"

        def bad(field_name: str, value: Any, want: str) -> UserError:
            return UserError(f"{where}: {field_name}={value!r} {want} (is one of the method's -o options "
                             "out of range?)")

        if not callable(stage.step):
            raise UserError(f"{where}: step is {type(stage.step).__name__}, not a function")
        for field_name, value, allow_none in (("epochs", stage.epochs, False), ("batch_size", stage.batch_size, False),
                                              ("steps_per_epoch", stage.steps_per_epoch, True)):
            if value is None and allow_none:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad(field_name, value, "is not an integer")
            if value < 1:
                raise bad(field_name, value, "must be at least 1")
        sources = stage.sources
        if isinstance(sources, str) or not isinstance(sources, (list, tuple)) or not sources:
            raise UserError(f"{where}: sources={sources!r} must be a non-empty tuple of {', '.join(SOURCES)}")
        unknown = [s for s in sources if s not in SOURCES]
        if unknown:
            raise UserError(f"{where}: unknown source {unknown[0]!r}; valid: {', '.join(SOURCES)}")
        modules = stage.modules
        if isinstance(modules, str) or not isinstance(modules, (list, tuple)):
            raise UserError(f"{where}: modules={modules!r} must be a tuple of names in the method's nets")
        missing = [m for m in modules if m not in method.nets]
        if missing:
            raise UserError(f"{where}: module {missing[0]!r} is not in the method's nets "
                            f"({', '.join(method.nets.keys()) or 'none'})")
        for field_name, objects in (("optimizers", stage.optimizers), ("schedulers", stage.schedulers),
                                    ("state", stage.state if hasattr(stage, "state") else {})):
            if not isinstance(objects, Mapping):
                raise UserError(f"{where}: {field_name} is a {type(objects).__name__}; give a dict name -> object "
                                f"(e.g. {{'adam': ...}}) so each is checkpointed under its name")
            for name, obj in objects.items():
                if not isinstance(name, str):
                    raise UserError(f"{where}: {field_name} key {name!r} is not a string")
                if field_name == "optimizers" and not isinstance(obj, torch.optim.Optimizer):
                    raise UserError(f"{where}: optimizer {name!r} is a {type(obj).__name__}, not a "
                                    "torch.optim.Optimizer")
                if not (callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))):
                    raise UserError(f"{where}: {field_name} entry {name!r} ({type(obj).__name__}) has no "
                                    "state_dict()/load_state_dict(), so it cannot be checkpointed")
                if field_name == "schedulers" and not callable(getattr(obj, "step", None)):
                    raise UserError(f"{where}: scheduler {name!r} ({type(obj).__name__}) has no step()")
        if stage.reuse_key is not None and not isinstance(stage.reuse_key, dict):
            raise UserError(f"{where}: reuse_key must be a dict or None, not {type(stage.reuse_key).__name__}")
