"""``--compile``: torch.compile a method's whole steps, or else each of its modules; CUDA graphs and
channels_last on a GPU.

**Whole steps.** Each stage's step (forward, losses, backward, optimiser steps) is compiled as one
``torch.compile`` unit when a trial step of every stage (:mod:`.whole_step`, undone) showed no graph
break but those dynamo makes on purpose (backward, the optimisers' update, fp16's grad scaler). If a
stage's trial shows another break or fails, or there is no training data to try it on, or the
method says ``compile_whole_step = False``, the method is compiled per module instead, and the
report says which stage stopped it and why. Under whole steps ``predict`` runs eagerly.

**Per module.** Each module's ``forward`` is compiled, in place (``module.forward`` becomes the compiled
function), so parameter identities, ``state_dict`` keys, checkpoints and the run identity stay as
they are. ``nn.Module.compile()`` would be the obvious call, but in torch 2.13 dynamo skips it for a
module whose class is torch's own (``nn.Sequential``, ``nn.Linear``: their ``_call_impl`` and
``forward`` are in dynamo's skip list) and silently runs it eagerly; compiling the bound ``forward``
is traced in every case (``tests/test_compile.py`` checks that frames were compiled).

A method opts in and out with class attributes (see docs/writing-plugins.md)::

    compile_whole_step = False       # per module only, no trial step
    compile = False                  # none of its modules
    compile_exclude = ("D_S", "D_L")  # these modules run eagerly (per module, no whole steps)

On CUDA the mode is ``reduce-overhead`` (CUDA-graph trees): the engine's batches always have the
stage's batch size (a short source wraps around), so the shapes a step sees are static. Each step
and each ``predict`` call then starts a new CUDA-graph step (``cudagraph_mark_step_begin``) and a
step's loss tensors are copied out, because a graph's outputs are overwritten by its next replay.
On CUDA under autocast, modules with 2-D convolutions are also converted to channels_last, the
layout cuDNN's tensor-core convolutions use natively; on the CPU they are left as they are.

``PETBENCH_COMPILE_BACKEND`` (e.g. ``aot_eager``: capture and autograd without code generation)
and ``PETBENCH_COMPILE_MODE`` override the backend and mode, to narrow down a compiled run that
differs from the eager one.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import UserError
from .trainer import build_schedulers
from .whole_step import Capture, trial


@dataclass
class CompileReport:
    """What :func:`compile_method` did, for the run record."""

    backend: str
    mode: str | None
    compiled: list[str] = field(default_factory=list)  # modules compiled per module
    excluded: list[str] = field(default_factory=list)
    channels_last: list[str] = field(default_factory=list)
    stages: list[Capture] = field(default_factory=list)  # per stage: whole step or not, and why

    @property
    def whole_step(self) -> bool:
        return bool(self.stages) and all(capture.captured for capture in self.stages)

    @property
    def cudagraphs(self) -> bool:
        return self.mode in {"reduce-overhead", "max-autotune"}

    def as_dict(self) -> dict:
        return {"backend": self.backend, "mode": self.mode, "whole_step": self.whole_step,
                "stages": [capture.as_dict() for capture in self.stages], "compiled": self.compiled,
                "excluded": self.excluded, "channels_last": self.channels_last}

    def line(self) -> str:
        """What was compiled, in one line for the user."""
        where = self.backend + (f", {self.mode}" if self.mode else "")
        if self.whole_step:
            return f"compile ({where}): whole steps of " + "; ".join(
                f"stage {c.stage!r} ({c.graphs} graphs, breaks only at {', '.join(c.breaks_at) or 'none'})"
                for c in self.stages)
        blocked = next((c for c in self.stages if not c.captured), None)
        why = f"; stage {blocked.stage!r}: {blocked.reason}" if blocked is not None else ""
        return f"compile ({where}): per module ({', '.join(self.compiled) or 'none'}){why}"


def compile_settings(device: torch.device, backend: str | None = None, mode: str | None = None) -> tuple[str, str | None]:
    """The backend and mode for ``device``: inductor, with CUDA graphs on a GPU (env overrides)."""
    backend = backend or os.environ.get("PETBENCH_COMPILE_BACKEND") or "inductor"
    if mode is None:
        mode = os.environ.get("PETBENCH_COMPILE_MODE") or None
    if mode is None and backend == "inductor" and device.type == "cuda":
        mode = "reduce-overhead"
    return backend, mode


def wants_channels_last(module: nn.Module, device: torch.device, amp_dtype: torch.dtype | None) -> bool:
    return device.type == "cuda" and amp_dtype in (torch.float16, torch.bfloat16) \
        and any(isinstance(m, nn.Conv2d) for m in module.modules())


def compile_method(method, stages: list, device: torch.device, amp_dtype: torch.dtype | None = None, *,
                   backend=None, mode: str | None = None, data=None, run=None) -> CompileReport:
    """Compile ``method``'s whole steps or its modules in place (after they are on ``device`` and after
    ``stages()`` made its optimisers and any copies of modules) and wrap the stages' steps and
    ``predict`` as CUDA graphs need. ``data`` (the :class:`TrainingData` the stages will train on) is
    what a whole step is tried on; without it a method is compiled per module. Returns what was
    done; a method that opts out entirely gets an empty report."""
    backend, mode = compile_settings(device, backend, mode)
    report = CompileReport(getattr(backend, "__name__", str(backend)), mode)
    if not getattr(method, "compile", True):
        report.excluded = list(method.nets.keys())
        return report
    exclude = tuple(getattr(method, "compile_exclude", ()) or ())
    unknown = [name for name in exclude if name not in method.nets]
    if unknown:
        raise UserError(f"method {method.name!r}: compile_exclude names {unknown[0]!r}, which is not one of its "
                        f"modules ({', '.join(method.nets.keys())})")
    for name, module in method.nets.items():
        if name not in exclude and wants_channels_last(module, device, amp_dtype):
            module.to(memory_format=torch.channels_last)  # in place: the optimisers keep their parameters
            report.channels_last.append(name)
    report.stages = try_whole_steps(method, stages, device, amp_dtype, data, run, exclude)
    if report.whole_step:
        for stage in stages:
            # dynamic=False: one static graph per input shape (the engine's batches have one)
            stage.step = torch.compile(stage.step, backend=backend, mode=mode, dynamic=False)
            if report.cudagraphs:
                stage.step = graph_step(stage.step)
        return report
    for name, module in method.nets.items():
        if name in exclude:
            report.excluded.append(name)
            continue
        # dynamic=False: one static graph per input shape (training sees one, prediction one or two)
        module.forward = torch.compile(module.forward, backend=backend, mode=mode, dynamic=False)
        report.compiled.append(name)
    if report.compiled and report.cudagraphs:
        for stage in stages:
            stage.step = graph_step(stage.step)
        method.predict = graph_call(method.predict)
    return report


def try_whole_steps(method, stages: list, device, amp_dtype, data, run, exclude: tuple) -> list[Capture]:
    """Each stage's trial step, unless the method opts out (up to the first that fails);
    otherwise why not, per stage."""
    if not getattr(method, "compile_whole_step", True):
        why = "the method sets compile_whole_step = False"
    elif exclude:
        why = f"compile_exclude keeps {', '.join(exclude)} eager"
    elif data is None:
        why = "no training data to try the whole step on"
    else:
        build_schedulers(method, stages, data)  # as the engine would first: the trial's snapshot holds them
        captures = []
        for stage in stages:
            captures.append(trial(method, stages, stage, data, device, amp_dtype, run))
            if not captures[-1].captured:
                why = f"not tried: stage {stage.name!r} cannot be captured"
                return captures + [Capture(later.name, False, reason=why) for later in stages[len(captures):]]
        return captures
    return [Capture(stage.name, False, reason=why) for stage in stages]


def graph_step(step):
    """A stage step that starts a CUDA-graph step and copies its loss tensors out of the graph's memory."""
    @functools.wraps(step)
    def wrapped(batch, ctx):
        torch.compiler.cudagraph_mark_step_begin()
        losses = step(batch, ctx)
        return {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in losses.items()}
    return wrapped


def graph_call(predict):
    @functools.wraps(predict)
    def wrapped(lpet):
        torch.compiler.cudagraph_mark_step_begin()
        return predict(lpet).clone()
    return wrapped
