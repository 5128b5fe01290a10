"""``--checkpoint-every``: how often a run writes its checkpoint.

``epoch`` (the default): at the end of every epoch. ``N`` (an integer): every N optimiser steps.
``Ns``, ``Nm``, ``Nh``: every N seconds, minutes or hours of training. An interval is checked where
the engine reads the losses anyway (every ``--sync-every`` steps and at each epoch's end), so a
checkpoint lands at the first such point after the interval has passed, mid-epoch or at an epoch's
end; epochs ending in between are not checkpointed. Every stage's end is checkpointed whatever the
setting. A mid-epoch checkpoint resumes bit for bit, like an epoch's (docs/reliability.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UserError

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class CheckpointEvery:
    steps: int | None = None
    seconds: float | None = None

    @property
    def per_epoch(self) -> bool:
        return self.steps is None and self.seconds is None

    def describe(self) -> str:
        if self.steps is not None:
            return f"{self.steps} steps"
        if self.seconds is not None:
            return f"{self.seconds:g} s"
        return "epoch"


EVERY_EPOCH = CheckpointEvery()


def parse_checkpoint_every(text) -> CheckpointEvery:
    """``"epoch"``, ``"500"`` (steps) or ``"30m"`` / ``"90s"`` / ``"2h"`` (time); a UserError otherwise."""
    value = str(text).strip().lower()
    if value == "epoch":
        return EVERY_EPOCH
    if re.fullmatch(r"[0-9]+", value) and int(value) >= 1:
        return CheckpointEvery(steps=int(value))
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?)([smh])", value)
    if match and float(match.group(1)) >= 0:
        return CheckpointEvery(seconds=float(match.group(1)) * UNITS[match.group(2)])
    raise UserError(f"--checkpoint-every {text!r} is not an interval: use 'epoch', a number of steps (e.g. 500) "
                    f"or a time (e.g. 30m, 90s, 2h)")
