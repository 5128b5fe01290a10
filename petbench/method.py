"""The method role: trains in stages the host runs, predicts SPET slices from LPET slices.

A method never sees a test standard-dose image: the host owns evaluation and calls
:meth:`Method.predict` with low-dose slices only.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import torch
from torch import nn

from .options import Constraint, constraints_of, resolve_options

#: Training data sources a stage can draw; the batch dict gets the listed keys.
#: "paired": ``lpet``, ``spet`` (aligned slices of the paired-train subjects)
#: "unpaired_lpet": ``lpet_u`` (the Stage-I LPET set; in the paper's protocol the paired-train LPET)
#: "unpaired_spet": ``spet_u`` (standard-dose slices of the unpaired subjects)
SOURCES = {"paired": ("lpet", "spet"), "unpaired_lpet": ("lpet_u",), "unpaired_spet": ("spet_u",)}


def steps_for(count: int, batch_size: int, cap: int | None = None) -> int:
    """Steps in one epoch of a stage whose first source has ``count`` slices: one pass in batches of
    ``batch_size`` (at least one step), at most ``cap`` (a stage's ``steps_per_epoch``) when given."""
    steps = max(1, count // batch_size)
    return min(steps, cap) if cap else steps


class RunContext:
    """What the host tells :meth:`Method.stages` about the run it is building stages for.

    ``dataset`` (its name), ``drf``, ``device`` and ``amp_dtype`` are known at once; ``slice_shape``
    (``(H, W)`` of a training slice) and :meth:`slices` / :meth:`steps_per_epoch` read the training
    data, which the host loads on first use (so a method that never asks costs nothing)."""

    def __init__(self, *, dataset: str, drf: int, device: torch.device, amp_dtype: torch.dtype | None = None,
                 slice_shape: tuple[int, int] | Callable[[], tuple[int, int]] = (0, 0),
                 slice_counts: Mapping[str, int] | Callable[[str], int] | None = None) -> None:
        self.dataset = dataset
        self.drf = drf
        self.device = torch.device(device)
        self.amp_dtype = amp_dtype
        self._shape = slice_shape
        self._counts = slice_counts or {}

    @property
    def slice_shape(self) -> tuple[int, int]:
        shape = self._shape() if callable(self._shape) else self._shape
        return tuple(int(n) for n in shape)

    def slices(self, source: str = "paired") -> int:
        """How many training slices the data source ``source`` (see :data:`SOURCES`) holds."""
        if source not in SOURCES:
            raise ValueError(f"unknown data source {source!r}; valid: {', '.join(SOURCES)}")
        return int(self._counts(source) if callable(self._counts) else self._counts.get(source, 0))

    def steps_per_epoch(self, sources: tuple[str, ...] = ("paired",), batch_size: int = 16,
                        cap: int | None = None) -> int:
        """The number of steps the engine will run per epoch for a stage with these fields."""
        return steps_for(self.slices(sources[0]), batch_size, cap)


class TrainContext:
    """Handed to a stage's ``step``: mixed precision and optimiser steps done the same for all.

    ``epoch`` (from 0) and ``step_index`` (from 0, counted over the whole stage) say where the step
    is; ``steps_per_epoch`` and ``epochs`` how long the stage is; ``run`` is the stage's
    :class:`RunContext`; ``scaler`` is the fp16 ``GradScaler`` (disabled otherwise), which
    :meth:`backward_step` uses for you."""

    def __init__(self, device: torch.device, amp_dtype: torch.dtype | None, scaler: torch.amp.GradScaler,
                 run: RunContext | None = None, steps_per_epoch: int = 0, epochs: int = 0):
        self.device = device
        self.amp_dtype = amp_dtype
        self.scaler = scaler
        self.run = run
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.epoch = 0
        self.step_index = 0  # global step within the stage
        self.stepped = False  # whether an optimiser stepped since the engine last looked

    def backward_step(self, loss: torch.Tensor, *optimizers: torch.optim.Optimizer,
                      retain_graph: bool = False, clip_grad_norm: float | None = None) -> None:
        """Zero grads, back-propagate ``loss`` (scaled under fp16) and step ``optimizers``.

        ``clip_grad_norm``: clip the gradients of all of ``optimizers``' parameters together to this
        total L2 norm before stepping (under fp16 they are unscaled first, so the bound is on the true
        gradients). No value is read to the host: clipping never waits for the GPU."""
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        scaling = self.scaler.is_enabled()
        if self.amp_dtype is None and not scaling:  # full precision: nothing to switch off
            loss.backward(retain_graph=retain_graph)
        else:
            with torch.autocast(device_type=self.device.type, enabled=False):
                self.scaler.scale(loss).backward(retain_graph=retain_graph)
        if clip_grad_norm is not None:
            for optimizer in optimizers:
                self.scaler.unscale_(optimizer)
            params = [p for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]
                      if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
        for optimizer in optimizers:
            if scaling:
                self.scaler.step(optimizer)
            else:
                optimizer.step()
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

    ``schedulers`` (name -> LR scheduler) are stepped by the engine once per epoch, or after every
    step with ``schedulers_per="step"``. An entry may instead be a factory
    ``f(total) -> scheduler`` that the engine calls before the first step with the number of times it
    will step it (``epochs`` or ``epochs x`` the real steps per epoch), e.g. to size a cosine schedule.
    ``steps_per_epoch`` is a cap: an epoch is one pass over the first source (at least one step), at
    most this many steps.
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
    schedulers_per: str = "epoch"  # "epoch" or "step": when the engine steps ``schedulers``


SCHEDULE_UNITS = ("epoch", "step")
#: The largest epoch count, batch size or step cap a stage may have: far beyond any schedule, so a
#: value above it is a mistake said before any work (not a run that never ends).
STAGE_LIMIT = 10**7


class Method:
    """Base class for a method plugin.

    Subclasses set ``name``, ``description``, ``defaults`` (every option with its default),
    ``presets`` (``"paper"`` and ``"quick"`` option sets), build their modules in ``__init__``
    and implement :meth:`stages` and :meth:`predict`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: how tables, figures and legends name the method (default: ``name``)
    display_name: ClassVar[str | None] = None
    #: the method's rows in the paper's tables (and the built-in grids ``table1``/``table2``):
    #: ``{table: position}`` or ``{table: (position, label)}``, e.g. ``{1: (70, "Mine (ours)")}``;
    #: rows are sorted by position, the label defaults to ``display_name``
    table_places: ClassVar[dict[int, int | tuple[int, str]]] = {}
    #: a row beyond the paper's table (e.g. a classical post-filter): the ``table1``/``table2`` grids run it
    #: only when asked (``petbench grid table1 --with-optional``, or ``--methods`` naming it); tables show
    #: its runs whenever the results hold them, and the label-efficiency grid always includes it
    table_optional: ClassVar[bool] = False
    #: in each table it has a place in, the row the others are tested against (Wilcoxon p-values)
    table_reference: ClassVar[bool] = False
    #: ``{table: label}`` for the figure of that table (Figure 3 for 1, Figure 4 for 2), default its table label
    figure_labels: ClassVar[dict[int, str]] = {}
    #: position in the built-in ``label-efficiency`` grid (None: not part of it)
    efficiency_place: ClassVar[int | None] = None
    #: where the implementation comes from, for the tables' notes (one of :data:`PROVENANCES`):
    #: ``"authors-code"`` (the authors' published code, run as it is), ``"port"`` (a translation of
    #: published code: the authors' or the reference implementation), ``"reconstruction"`` (written
    #: from the paper, no code to follow), ``"library"`` (a published library's implementation)
    provenance: ClassVar[str | None] = None
    #: what ``provenance`` refers to, e.g. a repository and file, or the paper (shown in the note)
    provenance_source: ClassVar[str | None] = None
    #: set when the method as run is a variant of its source that a table reader must know about: the
    #: footnote text (its row gets a mark such as "†"); an instance may set it from its options
    #: (e.g. None under a preset that is the source exactly)
    variant_note: ClassVar[str | None] = None
    #: options that every table note states, even at their defaults (a reading of the paper the method
    #: had to choose); options differing from the run's preset are always stated
    noted_options: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    #: what an option accepts beyond its default's type (petbench.options: between, at_least, one_of, ...;
    #: ``run_check`` for a check against the run, e.g. a patch no larger than the slice); checked by the host
    option_constraints: ClassVar[dict[str, Constraint]] = {}
    presets: ClassVar[dict[str, dict[str, Any]]] = {"paper": {}, "quick": {}}

    def __init__(self, options: Mapping[str, Any] | None = None, preset: str | None = None) -> None:
        self.options = resolve_options(f"method {self.name!r}", self.defaults, self.presets, preset,
                                       options if options is not None else {}, constraints_of(self))
        self.nets = nn.ModuleDict()  # every module the method owns; checkpointed and counted

    # -- what a method implements ----------------------------------------------------------
    def stages(self, run: RunContext | None = None) -> list[Stage]:
        """The training stages, in order. The host calls this once per run, after it moved
        ``self.nets`` to the training device, so optimisers are created here. ``run`` tells the
        dataset, DRF, device and slice sizes. The host also calls it when it plans a grid (a context
        of the cell: its dataset, DRF and training data, read on first use; the planner's device) and
        in ``petbench check`` (a context of the check's tiny data); only a direct call by other code
        may leave it None. A method may also define ``stages(self)`` without it."""
        return []

    def predict(self, lpet: torch.Tensor) -> torch.Tensor:
        """Map normalised LPET slices ``[B, 1, H, W]`` to SPET slices of the same shape."""
        raise NotImplementedError

    # -- provided ------------------------------------------------------------------------
    def inference_modules(self) -> list[str]:
        """Modules that :meth:`predict` uses (counted as the method's parameters)."""
        return list(self.nets.keys())

    def fitted_parameters(self) -> dict[str, Any]:
        """What the method fitted from its training data besides network weights (e.g. a filter's width
        and the search that chose it), as JSON-ready values; the host stores it in the run record as
        ``method.fitted`` after training. Keep what it reports in ``nets`` (e.g. a buffer), so that a
        resumed or reused stage reports the same."""
        return {}

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
    torch optimisers, a dict of schedulers (or scheduler factories) and of ``state`` objects with
    ``state_dict``, ``schedulers_per`` "epoch" or "step". A bad field
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
            if value > STAGE_LIMIT:
                raise bad(field_name, value, f"is more than {STAGE_LIMIT:,} (a typo?)")
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
                if field_name == "schedulers" and is_scheduler_factory(obj):
                    continue  # built and checked by the engine before the first step
                if not (callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))):
                    raise UserError(f"{where}: {field_name} entry {name!r} ({type(obj).__name__}) has no "
                                    "state_dict()/load_state_dict(), so it cannot be checkpointed")
                if field_name == "schedulers" and not callable(getattr(obj, "step", None)):
                    raise UserError(f"{where}: scheduler {name!r} ({type(obj).__name__}) has no step()")
        if getattr(stage, "schedulers_per", "epoch") not in SCHEDULE_UNITS:
            raise UserError(f"{where}: schedulers_per={stage.schedulers_per!r} must be 'epoch' or 'step'")
        if stage.reuse_key is not None and not isinstance(stage.reuse_key, dict):
            raise UserError(f"{where}: reuse_key must be a dict or None, not {type(stage.reuse_key).__name__}")


def is_scheduler_factory(obj: Any) -> bool:
    """A ``Stage.schedulers`` entry that builds the scheduler (``f(total) -> scheduler``), not a scheduler."""
    return callable(obj) and not callable(getattr(obj, "state_dict", None))


def places_of(method: Any) -> dict[int, tuple[int, str]]:
    """A method's (class or instance) ``table_places`` as ``{table: (position, label)}``, validated:
    a malformed declaration is a :class:`~petbench.errors.UserError` naming the method."""
    from .errors import UserError

    name = getattr(method, "name", "?")
    label = getattr(method, "display_name", None) or name
    places = getattr(method, "table_places", None) or {}
    if not isinstance(places, Mapping):
        raise UserError(f"method {name!r}: table_places must be a dict {{table: position}}, not "
                        f"{type(places).__name__}")
    out = {}
    for table, place in places.items():
        position, text = (place if isinstance(place, (tuple, list)) and len(place) == 2 else (place, label))
        if table not in (1, 2) or isinstance(position, bool) or not isinstance(position, (int, float)) \
                or not isinstance(text, str) or not text:
            raise UserError(f"method {name!r}: table_places entry {table!r}: {place!r} is not "
                            f"position or (position, label) for table 1 or 2")
        out[int(table)] = (position, text)
    return out


PROVENANCES = ("authors-code", "port", "reconstruction", "library")


def provenance_of(method: Any) -> dict[str, Any]:
    """A method's (class or instance) provenance declaration as stored in a run record, validated:
    ``provenance``, ``provenance_source``, ``variant_note``, ``noted_options`` (only those declared).
    A malformed declaration is a :class:`~petbench.errors.UserError` naming the method."""
    from .errors import UserError

    name = getattr(method, "name", "?")
    out: dict[str, Any] = {}
    kind = getattr(method, "provenance", None)
    if kind is not None:
        if kind not in PROVENANCES:
            raise UserError(f"method {name!r}: provenance {kind!r} is not one of {', '.join(PROVENANCES)}")
        out["provenance"] = kind
    for field_name in ("provenance_source", "variant_note"):
        value = getattr(method, field_name, None)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"method {name!r}: {field_name} must be a non-empty string or None, not {value!r}")
        out[field_name] = value.strip()
    noted = getattr(method, "noted_options", ()) or ()
    if isinstance(noted, str) or not all(isinstance(key, str) for key in noted):
        raise UserError(f"method {name!r}: noted_options must be a tuple of option names, not {noted!r}")
    defaults = getattr(method, "defaults", {}) or {}
    unknown = [key for key in noted if key not in defaults]
    if unknown:
        raise UserError(f"method {name!r}: noted_options names {unknown[0]!r}, which is not one of its options")
    if noted:
        out["noted_options"] = list(noted)
    return out


def call_stages(method: Method, run: RunContext | None) -> Any:
    """``method.stages(run)``, or ``method.stages()`` for a method written without the argument
    (like a pluggy hook, a method takes the arguments it names)."""
    try:
        takes_run = bool(inspect.signature(method.stages).parameters)
    except (TypeError, ValueError):
        takes_run = True
    return method.stages(run) if takes_run else method.stages()
