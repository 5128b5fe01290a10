"""Problem records: one line per thing wrong with the data, always naming the path."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("petbench.datasets")


@dataclass(frozen=True)
class Problem:
    """Something found while reading a data root.

    ``notice`` marks information rather than a fault (a non-FDG series skipped, a folder that is
    not a dose level); both are shown by ``petbench data inspect``.
    """

    path: str
    message: str
    notice: bool = False

    def line(self) -> str:
        return f"{self.path}: {self.message}"


class SourceProblem(Exception):
    """A source (a DICOM series, a NIfTI file) cannot be used; ``path`` names the culprit."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message

    def problem(self) -> Problem:
        return Problem(self.path, self.message)


def log_problems(problems: list[Problem], label: str) -> None:
    """Warn once per problem, so a skipped subject never goes unnoticed."""
    for problem in problems:
        logger.warning("%s: %s", label, problem.line())
