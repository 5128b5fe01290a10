"""The dataset role: yields subjects; never sees a method."""
from __future__ import annotations

from typing import Any, ClassVar

from .data.normalization import Normalization, TrainPercentile
from .data.subject import Subject
from .options import Constraint, constraints_of, resolve_options


class Dataset:
    """Base class for a dataset plugin.

    Subclasses set ``name``, ``description``, ``defaults`` (their options), ``drfs`` (the dose
    reduction factors they can provide), ``units`` and ``normalization`` (how the host scales
    volumes for training; it is fitted on training volumes only), then implement
    :meth:`subject_ids` and :meth:`load`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    #: what an option accepts beyond its default's type (see petbench.options); checked before any work,
    #: so a bad value is the user's mistake, not a failure of the plugin
    option_constraints: ClassVar[dict[str, Constraint]] = {}
    drfs: ClassVar[tuple[int, ...]] = ()
    units: ClassVar[str] = "a.u."
    normalization: ClassVar[Normalization] = TrainPercentile(99.5)

    def __init__(self, **options: Any) -> None:
        self.options = resolve_options(f"dataset {self.name!r}", self.defaults, {}, None, options,
                                       constraints_of(self))

    def subject_ids(self) -> list[str]:
        """Every subject id, in a stable order."""
        raise NotImplementedError

    def load(self, subject_id: str, drfs: tuple[int, ...] = ()) -> Subject:
        """Load one subject with its standard dose and the low doses at ``drfs`` (may be empty)."""
        raise NotImplementedError

    def prepare(self, subject_ids: list[str], drfs: tuple[int, ...]) -> None:
        """Optional: make these subjects ready (generate, convert, cache) with a progress bar."""

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this dataset's content (name + options), for run ids and stage reuse."""
        return {"name": self.name, "options": self.options}
