"""Whether a stage's whole step (forward, losses, backward, optimiser steps) can be compiled as one unit.

One trial step of the stage, on a real batch, runs under ``torch.compile`` with a backend that only
records the graphs dynamo makes, while dynamo's graph-break log (every break, with its place in the
code) is collected. Everything the step changed (weights, optimiser and scheduler states, the
stage's declared ``state``, gradients, the RNGs) is put back afterwards, so the run that follows is
the one it would have been without it.

Dynamo splits a step at a few places on purpose, which do not stop the capture: ``Tensor.backward``
and the glue of ``ctx.backward_step`` (the backward is compiled from the forward graph by AOT
autograd), ``Optimizer.zero_grad`` and the breaks torch's optimisers insert around their update
(``torch/optim``), and fp16's ``GradScaler`` (``torch/amp``). Any other graph break (a ``.item()``, a
branch on a tensor's value, an unsupported call) or an exception during the trial means the step is
not captured, and the report says which break and where.
"""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch._dynamo.utils import counters

from ..method import Stage, TrainContext
from .checkpoint import first_line, rng_state, set_rng_state
from .trainer import autocast_step, batches, check_sources, restore, set_train_mode, snapshot, steps_per_epoch

#: torch 2.13's logger of dynamo's graph breaks (the ``graph_breaks`` artifact of ``TORCH_LOGS``)
BREAK_LOG = "torch._dynamo.symbolic_convert.__graph_breaks"
PLACE = re.compile(r"in user code at (?P<file>.+?):(?P<line>\d+)\n")


@dataclass
class Capture:
    """What the trial step of one stage showed."""

    stage: str
    captured: bool
    graphs: int = 0
    graph_breaks: int = 0
    breaks_at: list[str] = field(default_factory=list)  # the expected boundaries met (backward, optimizer, …)
    reason: str | None = None  # why the step is not captured

    def as_dict(self) -> dict:
        return {"stage": self.stage, "whole_step": self.captured, "graphs": self.graphs,
                "graph_breaks": self.graph_breaks, "breaks_at": self.breaks_at, "reason": self.reason}


@dataclass(frozen=True)
class Break:
    file: str
    line: int
    text: str  # dynamo's message: the reason, its explanation and hints

    @property
    def reason(self) -> str:
        paragraphs = [p.strip() for p in self.text.split("\n\n") if p.strip()]
        return paragraphs[1].splitlines()[0] if len(paragraphs) > 1 else paragraphs[0].splitlines()[0]

    @property
    def boundary(self) -> str | None:
        """The expected place this break is at (``backward``, ``optimizer``, ``grad scaler``), or None."""
        path = self.file.replace("\\", "/")
        if "Tensor.backward" in self.text:
            return "backward"
        if "Optimizer." in self.text or "/torch/optim/" in path:
            return "optimizer"
        if "GradScaler" in self.text or "/torch/amp/" in path:
            return "grad scaler"
        return None

    def __str__(self) -> str:
        return f"{self.reason} at {self.file.replace(chr(92), '/').rsplit('/', 1)[-1]}:{self.line}"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.breaks: list[Break] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        place = PLACE.search(message)
        if place is not None:
            text = message[place.end():].removeprefix("Graph Break Reason: ")
            self.breaks.append(Break(place["file"], int(place["line"]), text.split("\nUser code traceback:")[0]))


@contextmanager
def graph_breaks():
    """The graph breaks dynamo makes in the block (its log, silenced elsewhere meanwhile)."""
    log, collect = logging.getLogger(BREAK_LOG), Collect()
    saved = log.level, log.propagate
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(collect)
    try:
        yield collect.breaks
    finally:
        log.removeHandler(collect)
        log.setLevel(saved[0])
        log.propagate = saved[1]


def trial(method, stages: list[Stage], stage: Stage, data, device: torch.device, amp_dtype, run=None) -> Capture:
    """One step of ``stage`` compiled with a recording backend, undone; says whether it can be captured."""
    check_sources([stage], data)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    ctx = TrainContext(device, amp_dtype, scaler, run=run, steps_per_epoch=steps_per_epoch(stage, data),
                       epochs=stage.epochs)
    batch = next(batches(stage, data, 1, 0, device))
    step = stage.step if amp_dtype is None else autocast_step(stage.step, device, amp_dtype)
    graphs = []

    def recording(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    initial, rng = snapshot(method, stages, scaler, None), rng_state()
    set_train_mode(method, stage)
    torch._dynamo.reset()
    counted = sum(counters["graph_break"].values())
    try:
        with graph_breaks() as breaks:
            torch.compile(step, backend=recording, dynamic=False)(batch, ctx)
    except Exception as exc:  # noqa: BLE001
        return Capture(stage.name, False, reason=f"the trial step failed under dynamo: {first_line(exc)}")
    finally:
        restore(initial, method, stages, scaler, None)
        set_rng_state(rng)
        for parameter in method.nets.parameters():
            parameter.grad = None
        torch._dynamo.reset()
    if not breaks and sum(counters["graph_break"].values()) > counted:
        return Capture(stage.name, False, len(graphs), reason=f"dynamo broke the graph but its log ({BREAK_LOG}) "
                                                               f"said nowhere where")
    distinct = list(dict.fromkeys((b.file, b.line, b.reason, b.boundary) for b in breaks))
    unexpected = next((b for b in breaks if b.boundary is None), None)
    return Capture(stage.name, unexpected is None, len(graphs), len(distinct),
                   sorted({b.boundary for b in breaks if b.boundary is not None}),
                   None if unexpected is None else f"graph break: {unexpected}")
