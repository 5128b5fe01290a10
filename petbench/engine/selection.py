"""Model selection on validation subjects: the host scores the final stage every K epochs and keeps the
weights of the best-scoring epoch, which the test set is then evaluated with.

The state (curve, best epoch and score, best weights) is checkpointed with the training state, as
tensors and plain data, so a resumed run selects exactly what an uninterrupted one does.
"""
from __future__ import annotations

import math
from typing import Callable

import torch


class Selection:
    """``score()`` predicts the validation subjects with the current weights and returns the mean of
    ``metric`` over them; :meth:`observe` calls it at the epochs :meth:`due` names."""

    def __init__(self, metric: str, higher_is_better: bool, every: int, score: Callable[[], float]) -> None:
        self.metric, self.higher_is_better, self.every, self.score = metric, higher_is_better, every, score
        self.curve: list[dict] = []
        self.best_epoch: int | None = None  # from 1, within the final stage
        self.best_score: float | None = None
        self.best_nets: dict | None = None

    def due(self, epoch: int, epochs: int) -> bool:
        """Every ``every`` epochs (counted from 1) and at the stage's last epoch."""
        return (epoch + 1) % self.every == 0 or epoch + 1 == epochs

    def observe(self, epoch: int, nets: torch.nn.Module) -> float:
        value = float(self.score())
        self.curve.append({"epoch": epoch + 1, "score": value})
        if math.isfinite(value) and (self.best_score is None or self.better(value, self.best_score)):
            self.best_epoch, self.best_score = epoch + 1, value
            self.best_nets = {k: v.detach().clone() for k, v in nets.state_dict().items()}
        return value

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b  # a tie keeps the earlier epoch

    def state_dict(self) -> dict:
        return {"curve": [dict(point) for point in self.curve], "best_epoch": self.best_epoch,
                "best_score": self.best_score, "best_nets": self.best_nets}

    def load_state_dict(self, state: dict) -> None:
        self.curve = [dict(point) for point in state["curve"]]
        self.best_epoch, self.best_score = state["best_epoch"], state["best_score"]
        self.best_nets = state["best_nets"]

    def summary(self) -> dict:
        """What the run record holds under ``validation``."""
        return {"metric": self.metric, "every": self.every, "best_epoch": self.best_epoch,
                "best_score": self.best_score, "curve": [dict(point) for point in self.curve]}
