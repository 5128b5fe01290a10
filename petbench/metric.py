"""The metric role: scores a predicted 3D volume against the reference volume, given what is known
about the reference subject (its voxel size, affine, units and label maps)."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from .data.subject import LabelMap, Subject
from .data.volume_checks import degenerate

NAN = float("nan")


@dataclass(frozen=True)
class MetricContext:
    """What a metric may know besides the two volumes: the reference subject's grid and label maps.

    ``spacing`` is ``(dz, dy, dx)`` in mm and ``affine`` the 4x4 NIfTI affine, as on
    :class:`~petbench.Subject`; ``labels`` maps a role (``"regions"``, ``"lesions"``,
    ``"background"``) to a :class:`~petbench.data.subject.LabelMap` on the volume's grid.
    ``memo`` holds what metrics of one (pred, ref) pair share (e.g. a normalised volume); it is
    emptied for every pair by :meth:`Metric.__call__` and :func:`score_volume`.
    """

    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    affine: np.ndarray | None = None
    units: str = ""
    labels: dict[str, LabelMap] = field(default_factory=dict)
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_subject(cls, subject: Subject) -> "MetricContext":
        return cls(spacing=subject.spacing, affine=np.asarray(subject.affine), units=subject.units,
                   labels=dict(getattr(subject, "labels", None) or {}))

    def label(self, role: str) -> LabelMap | None:
        return self.labels.get(role)

    def shared(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per (pred, ref) pair, whichever metric asks first."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def for_pair(self) -> "MetricContext":
        """The same context with nothing shared yet (a new (pred, ref) pair)."""
        return replace(self, memo={})


def takes_context(fn: Callable) -> bool:
    """True when ``fn`` accepts a third positional argument (the context)."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: call it the old way
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


@dataclass(frozen=True)
class Metric:
    """A named metric ``fn(pred, ref) -> float`` or ``fn(pred, ref, context) -> float`` on ``[z, y, x]``
    volumes in physical units (float64 arrays).

    ``higher_is_better`` gives its direction (used to mark the best); ``convention`` says which
    evaluation convention it follows (e.g. "challenge" for the UDPET evaluator's formulas, "paper", or a name
    of your own; empty, the default, shows as "unstated"); ``unit`` is shown in tables.
    ``needs`` names the label maps it cannot do without (e.g. ``("regions",)``): where the context
    lacks one, the metric does not apply and gives NaN (:meth:`applies`). ``default`` marks the
    metrics `compare` shows when none are asked for.

    Against a degenerate reference (constant, all zero or non-finite) every metric gives NaN, never
    a perfect score (docs/metrics.md).
    """

    name: str
    fn: Callable[..., float]
    higher_is_better: bool
    description: str = ""
    convention: str = ""  # unstated unless the metric says: "challenge" credits the UDPET evaluator's formulas
    unit: str = ""
    needs: tuple[str, ...] = ()
    default: bool = False
    with_context: bool = field(init=False, repr=False, compare=False, default=False)

    def __post_init__(self):
        object.__setattr__(self, "with_context", takes_context(self.fn))

    def applies(self, context: MetricContext | None) -> bool:
        """Whether the context has every label map this metric needs."""
        return all(context is not None and context.label(role) is not None for role in self.needs)

    def info(self) -> dict:
        """What a run record stores about this metric (it is read without the plugin)."""
        return {"higher_is_better": self.higher_is_better, "convention": self.convention, "unit": self.unit,
                "description": self.description, "needs": list(self.needs), "default": self.default}

    def __call__(self, pred: np.ndarray, ref: np.ndarray, context: MetricContext | None = None) -> float:
        context = (context or MetricContext()).for_pair()
        pred, ref = as_float64(pred), as_float64(ref)
        if degenerate(ref):
            return NAN
        return self.score(pred, ref, context)

    def score(self, pred: np.ndarray, ref: np.ndarray, context: MetricContext) -> float:
        """The value on volumes already checked and converted (what :func:`score_volume` calls)."""
        if not self.applies(context):
            return NAN
        value = self.fn(pred, ref, context) if self.with_context else self.fn(pred, ref)
        return float(value)


def as_float64(volume) -> np.ndarray:
    return np.asarray(volume, dtype=np.float64)


def score_volume(metrics: list[Metric], pred: np.ndarray, ref: np.ndarray,
                 context: MetricContext | None = None) -> dict[str, float]:
    """Every metric of one (pred, ref) pair, sharing the conversion to float64 and what metrics of
    one convention compute alike (e.g. the paper convention's normalised volumes).

    Metrics that do not apply (a label map they need is missing) are left out of the result; a
    degenerate reference gives NaN for every metric that applies.
    """
    context = (context or MetricContext()).for_pair()
    pred, ref = as_float64(pred), as_float64(ref)
    bad = degenerate(ref) is not None
    return {metric.name: NAN if bad else metric.score(pred, ref, context)
            for metric in metrics if metric.applies(context)}
