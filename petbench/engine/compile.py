"""``--compile``: torch.compile each of a method's modules, CUDA graphs and channels_last on a GPU.

What is compiled is each module's ``forward``, in place (``module.forward`` becomes the compiled
function), so parameter identities, ``state_dict`` keys, checkpoints and the run identity stay as
they are. ``nn.Module.compile()`` would be the obvious call, but in torch 2.13 dynamo skips it for a
module whose class is torch's own (``nn.Sequential``, ``nn.Linear``: their ``_call_impl`` and
``forward`` are in dynamo's skip list) and silently runs it eagerly; compiling the bound ``forward``
is traced in every case (``tests/test_compile.py`` checks that frames were compiled).

A method opts out with class attributes (see docs/writing-plugins.md)::

    compile = False                  # none of its modules
    compile_exclude = ("D_S", "D_L")  # these modules run eagerly

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


@dataclass
class CompileReport:
    """What :func:`compile_method` did, for the run record."""

    backend: str
    mode: str | None
    compiled: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    channels_last: list[str] = field(default_factory=list)

    @property
    def cudagraphs(self) -> bool:
        return self.mode in {"reduce-overhead", "max-autotune"}

    def as_dict(self) -> dict:
        return {"backend": self.backend, "mode": self.mode, "compiled": self.compiled, "excluded": self.excluded,
                "channels_last": self.channels_last}


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
                   backend: str | None = None, mode: str | None = None) -> CompileReport:
    """Compile ``method``'s modules in place (after they are on ``device`` and after ``stages()`` made
    its optimisers and any copies of modules) and wrap the stages' steps and ``predict`` as CUDA
    graphs need. Returns what was done; a method that opts out entirely gets an empty report."""
    backend, mode = compile_settings(device, backend, mode)
    report = CompileReport(backend, mode)
    if not getattr(method, "compile", True):
        report.excluded = list(method.nets.keys())
        return report
    exclude = tuple(getattr(method, "compile_exclude", ()) or ())
    unknown = [name for name in exclude if name not in method.nets]
    if unknown:
        raise UserError(f"method {method.name!r}: compile_exclude names {unknown[0]!r}, which is not one of its "
                        f"modules ({', '.join(method.nets.keys())})")
    for name, module in method.nets.items():
        if name in exclude:
            report.excluded.append(name)
            continue
        if wants_channels_last(module, device, amp_dtype):
            module.to(memory_format=torch.channels_last)  # in place: the optimisers keep their parameters
            report.channels_last.append(name)
        # dynamic=False: one static graph per input shape (training sees one, prediction one or two)
        module.forward = torch.compile(module.forward, backend=backend, mode=mode, dynamic=False)
        report.compiled.append(name)
    if report.compiled and report.cudagraphs:
        for stage in stages:
            stage.step = graph_step(stage.step)
        method.predict = graph_call(method.predict)
    return report


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
