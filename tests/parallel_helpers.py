"""Methods for the --workers-per-gpu tests (importable by spawned worker processes: the tests put this
folder on sys.path, which spawn hands to its children).

``meets[barrier=DIR]`` waits at its first step until ``parties`` cells have reached the barrier
``DIR``: it finishes only if another cell runs at the same time. ``shared-first`` (which also meets)
and ``shared-second`` share a first stage through a ``reuse_key``, so a grid puts them in one chain.
"""
from __future__ import annotations

import os
import time
import types
import uuid
from pathlib import Path

from grid_helpers import PaperLike

from petbench import hookimpl
from petbench.testing.toys import TOY_PLUGIN, TinyMethod, isolated_host

BARRIER_TIMEOUT_S = 90.0  # spawned workers import torch first: slow on a loaded 2-core machine


def meet(barrier: str, parties: int, name: str) -> None:
    folder = Path(barrier)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}").write_text(str(time.time()))
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while len(list(folder.iterdir())) < parties:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: no other cell reached barrier {folder} within {BARRIER_TIMEOUT_S:.0f} s")
        time.sleep(0.05)


def meeting(stage, options: dict, name: str):
    inner = stage.step

    def step(batch, ctx):
        if ctx.step_index == 0 and options["barrier"]:
            meet(options["barrier"], options["parties"], name)
        return inner(batch, ctx)

    stage.step = step
    return stage


class Meets(TinyMethod):
    name = "meets"
    description = "waits at a barrier for another cell (for tests)"
    defaults = {**TinyMethod.defaults, "epochs": 1, "barrier": "", "parties": 2}

    def stages(self):
        return [meeting(stage, self.options, self.name) for stage in super().stages()]


class SharedFirst(PaperLike):
    name = "shared-first"
    description = "trains the shared stage, meeting another cell at its first step (for tests)"
    pretrain = True
    defaults = {**PaperLike.defaults, "barrier": "", "parties": 2}

    def stages(self):
        pre, supervised = super().stages()
        return [meeting(pre, self.options, self.name), supervised]


class SharedSecond(PaperLike):
    name = "shared-second"
    description = "reuses the shared stage (for tests)"
    pretrain = True


@hookimpl(specname="register_methods")
def _register(register):
    for method in (Meets, SharedFirst, SharedSecond):
        register(method)


PLUGIN = types.SimpleNamespace(__name__="parallel-helpers", register_methods=_register)


def parallel_host():
    return isolated_host(TOY_PLUGIN, PLUGIN)
