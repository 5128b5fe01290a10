"""Render a leaderboard as a terminal table, Markdown, LaTeX, CSV or JSON (through its table model,
:func:`.leaderboard.leaderboard_model`, and the shared renderers of :mod:`petbench.tables.render`)."""
from __future__ import annotations

from ..tables.render import FORMATS, LATEX_ESCAPES, LATEX_SYMBOLS, latex_escape, latex_text, render as render_model
from .leaderboard import Leaderboard, leaderboard_model

__all__ = ["FORMATS", "LATEX_ESCAPES", "LATEX_SYMBOLS", "latex_escape", "latex_text", "render"]


def render(board: Leaderboard, fmt: str, notes: bool = True):
    """A string, or a rich Table for ``table``; ``notes=False`` leaves the notes out of the text formats
    (``petbench compare`` prints them on stderr, so that a piped table stays a table)."""
    return render_model(leaderboard_model(board), fmt, notes=notes)
