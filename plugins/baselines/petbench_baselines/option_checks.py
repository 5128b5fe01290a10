"""Checks of the baselines' options, run in ``__init__`` (before the host writes anything).

Each rule names the option and what it must be, so a bad ``-o key=value`` becomes one
``Error:`` line (a :class:`petbench.UserError`) instead of a crash inside a training step.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from petbench import UserError


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class OptionChecker:
    """Collects the checks of one method's options; every failure raises at once."""

    def __init__(self, owner: str, options: Mapping[str, Any]) -> None:
        self.owner, self.options = owner, options

    def fail(self, key: str, what: str) -> None:
        raise UserError(f"{self.owner}: option {key} must be {what}, not {self.options[key]!r}")

    def present(self, keys: Iterable[str]) -> list[str]:
        return [key for key in keys if key in self.options]

    def positive(self, *keys: str) -> None:
        for key in self.present(keys):
            if not (_number(self.options[key]) and self.options[key] > 0):
                self.fail(key, "a number > 0")

    def non_negative(self, *keys: str) -> None:
        for key in self.present(keys):
            if not (_number(self.options[key]) and self.options[key] >= 0):
                self.fail(key, "a number >= 0")

    def at_least(self, minimum: int, *keys: str, optional: bool = False) -> None:
        for key in self.present(keys):
            value = self.options[key]
            if optional and value is None:
                continue
            if not (_integer(value) and value >= minimum):
                self.fail(key, f"an integer >= {minimum}" + (" or None" if optional else ""))

    def unit_interval(self, *keys: str) -> None:
        """Adam's betas: in [0, 1)."""
        for key in self.present(keys):
            if not (_number(self.options[key]) and 0 <= self.options[key] < 1):
                self.fail(key, "a number in [0, 1)")

    def one_of(self, key: str, valid: Iterable[str]) -> None:
        valid = tuple(valid)
        if key in self.options and self.options[key] not in valid:
            self.fail(key, f"one of {', '.join(valid)}")

