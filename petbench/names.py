"""Messages for a name that is not one of the valid ones (with the closest match)."""
from __future__ import annotations

import difflib


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Valid: {', '.join(valid) or '(none installed)'}"
