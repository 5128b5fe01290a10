"""A post-filter as a method: its parameter is fitted on the paired training slices, then it filters
each LPET slice. Nothing is trained by gradients; the fitted value is a buffer (checkpointed, zero
parameters), reported by :meth:`fitted_parameters` and stored in the run record."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from petbench import Method, Stage

from ..option_checks import OptionChecker
from .search import fit_parameter


class FittedValue(nn.Module):
    """Holds the fitted parameter (NaN until fitted)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("value", torch.tensor(float("nan"), dtype=torch.float64))


class ClassicalFilter(Method):
    """Subclasses set ``parameter`` (the option and record key), ``unit``, the search range in
    ``defaults`` and implement :meth:`apply` on ``[N, H, W]`` float64 arrays in network units."""

    parameter: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    #: the filters are a published library's; Table I places them as a group after the LPET row (10) and
    #: before the networks (20 ...): 11, 12, 13
    provenance = "library"
    #: not in the paper's Table I: run there only when asked (``petbench grid table1 --with-optional``)
    table_optional = True

    def __init__(self, options=None, preset=None) -> None:
        super().__init__(options, preset)
        o = self.options
        checker = OptionChecker(f"method {self.name!r}", o)
        checker.positive("search_low", "search_high")
        checker.at_least(1, "search_points", "fit_slices")
        checker.at_least(0, "refine_points")
        if o[self.parameter] is not None:
            checker.positive(self.parameter)
        if o["search_low"] >= o["search_high"]:
            checker.fail("search_high", f"above search_low ({o['search_low']})")
        self.nets["fit"] = FittedValue()
        if o[self.parameter] is not None:
            self.nets["fit"].value.fill_(float(o[self.parameter]))
        self.search: list[tuple[float, float]] = []
        self.fit_count = 0

    # -- what a subclass implements -----------------------------------------------------------
    def apply(self, slices: np.ndarray, value: float) -> np.ndarray:
        raise NotImplementedError

    # -- the method ----------------------------------------------------------------------------
    def stages(self, run=None) -> list[Stage]:
        o = self.options
        if o[self.parameter] is not None:
            return []  # given with -o: nothing to fit

        def step(batch, ctx):
            lpet = batch["lpet"].detach().double().cpu().numpy()[:, 0]
            spet = batch["spet"].detach().double().cpu().numpy()[:, 0]

            def mse(value: float) -> float:
                return float(np.mean((self.apply(lpet, value) - spet) ** 2))

            value, score, tried = fit_parameter(mse, o["search_low"], o["search_high"], o["search_points"],
                                                o["refine_points"])
            self.nets["fit"].value.fill_(value)
            self.search, self.fit_count = tried, len(lpet)
            return {"fit_mse": score, self.parameter: value}

        # one step of one batch: up to fit_slices random paired slices (all of them when there are fewer)
        return [Stage("fit", step, optimizers={}, modules=("fit",), sources=("paired",), epochs=1,
                      batch_size=o["fit_slices"], steps_per_epoch=1)]

    @property
    def value(self) -> float:
        return float(self.nets["fit"].value)

    def predict(self, lpet: torch.Tensor) -> torch.Tensor:
        if not np.isfinite(self.value):
            raise RuntimeError(f"method {self.name!r}: predict before its {self.parameter} was fitted")
        array = lpet.detach().double().cpu().numpy()[:, 0]
        out = np.clip(self.apply(array, self.value), 0, None)
        return torch.from_numpy(out).to(lpet.device, torch.float32).unsqueeze(1)

    def fitted_parameters(self) -> dict[str, Any]:
        report: dict[str, Any] = {self.parameter: self.value, "unit": self.unit}
        if self.search:  # the search of this process (a reused or resumed fit keeps only the value)
            report["search"] = {"slices": self.fit_count, "objective": "mse on the paired training slices",
                                "tried": [[v, s] for v, s in self.search]}
        elif self.options[self.parameter] is not None:
            report["given"] = True
        return report
