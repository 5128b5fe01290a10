"""The data of one run, loaded on first use: the normalisation scale, the training slices per source,
the validation subjects.

``Method.stages(run)`` may ask the run context for slice counts or the slice shape before training;
that is when the training subjects are read, once. A method that never asks costs nothing extra, and
a method that trains on no unpaired standard-dose subjects never has them loaded.
"""
from __future__ import annotations

from contextlib import nullcontext
from functools import cached_property
from typing import Callable

import torch

from .data.protocol import Protocol, Splits
from .data.slices import TrainingData, to_slices
from .data.volume_checks import degenerate
from .errors import UserError
from .method import SOURCES, RunContext


class RunData:
    def __init__(self, dataset, splits: Splits, protocol: Protocol, blame: Callable = lambda: nullcontext()):
        self.dataset, self.splits, self.protocol, self.blame = dataset, splits, protocol, blame
        self.loaded: dict[str, torch.Tensor] = {}

    @cached_property
    def _paired(self) -> tuple[float, dict[str, torch.Tensor]]:
        """The scale fitted on the paired-train SPET and the paired slices (the subjects are dropped)."""
        drf = self.protocol.drf
        with self.blame():
            self.dataset.prepare(self.splits.test + self.splits.train + self.splits.validation, (drf,))
            subjects = [checked(self.dataset, self.dataset.load(sid, (drf,)), drf) for sid in self.splits.train]
            scale = self.dataset.normalization.fit([s.spet for s in subjects]) if subjects else 1.0
        if not subjects:
            return scale, {}
        lpet = torch.cat([to_slices(s.lpet[drf], scale) for s in subjects])
        spet = torch.cat([to_slices(s.spet, scale) for s in subjects])
        return scale, {"lpet": lpet, "spet": spet, "lpet_u": lpet}  # the Stage-I LPET set is the paired-train LPET

    @property
    def scale(self) -> float:
        return self._paired[0]

    @cached_property
    def _unpaired_spet(self) -> torch.Tensor:
        with self.blame():
            self.dataset.prepare(self.splits.unpaired, ())
            if not self.splits.unpaired:
                return torch.empty(0, 1, 1, 1)
            return torch.cat([to_slices(self.dataset.load(sid, ()).spet, self.scale) for sid in self.splits.unpaired])

    def tensor(self, key: str) -> torch.Tensor:
        if key == "spet_u":
            return self._unpaired_spet
        return self._paired[1].get(key, torch.empty(0, 1, 1, 1))

    def count(self, source: str) -> int:
        return len(self.tensor(SOURCES[source][0]))

    def slice_shape(self) -> tuple[int, int]:
        for key in ("lpet", "spet_u"):
            tensor = self.tensor(key)
            if len(tensor):
                return tuple(tensor.shape[-2:])
        return (0, 0)

    def training(self, sources: list[str]) -> TrainingData:
        """The slices the stages draw (only the sources named are loaded)."""
        keys = {key for source in sources for key in SOURCES[source]}
        return TrainingData({key: self.tensor(key) for key in sorted(keys)})

    @cached_property
    def validation(self) -> list:
        """The validation subjects (LPET at the protocol's DRF and their SPET), for the host's scoring only."""
        drf = self.protocol.drf
        with self.blame():
            return [checked(self.dataset, self.dataset.load(sid, (drf,)), drf) for sid in self.splits.validation]

    def context(self, device: torch.device, amp_dtype) -> RunContext:
        return RunContext(dataset=self.dataset.name, drf=self.protocol.drf, device=device, amp_dtype=amp_dtype,
                          slice_shape=self.slice_shape, slice_counts=self.count)


def checked(dataset, subject, drf: int):
    """A dataset that does not check its volumes itself still never trains or scores on a degenerate one."""
    for what, volume in (("standard-dose", subject.spet), (f"DRF {drf}", subject.lpet.get(drf))):
        problem = degenerate(volume) if volume is not None else None
        if problem:
            raise UserError(f"dataset {dataset.name!r}, subject {subject.id}: the {what} volume {problem}; "
                            f"fix or remove this subject")
    return subject
