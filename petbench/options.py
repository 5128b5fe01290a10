"""Options of a method or dataset: defaults, presets, ``-o key=value`` parsing and checking."""
from __future__ import annotations

import ast
from typing import Any, Mapping

from .errors import UserError
from .names import unknown_name_message


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"2e-4"`` -> 0.0002, ``"true"`` -> True, ``"[1,2]"`` -> [1, 2], else the string."""
    lowered = text.strip().lower()
    if lowered in {"true", "yes", "on"}:
        return True
    if lowered in {"false", "no", "off"}:
        return False
    if lowered in {"none", "null"}:
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def parse_assignments(pairs: list[str] | None) -> dict[str, Any]:
    """Parse ``["key=value", ...]`` as given to ``-o``."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"option {pair!r} is not of the form key=value (e.g. -o epochs=3)")
        result[key.strip()] = parse_value(value)
    return result


def coerce(owner: str, key: str, value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of ``default`` where that is unambiguous."""
    if value is None and isinstance(default, str):
        return "none"  # `-o crop=none` parses as None; for a string option it is the word (a valid choice)
    if default is None or value is None:
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            raise ValueError
        if isinstance(default, int) and not isinstance(default, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return str(value)
        if isinstance(default, (list, tuple)):
            if isinstance(value, (int, float, str)):
                value = [value]
            return type(default)(value)
    except (TypeError, ValueError):
        raise UserError(f"{owner} option {key}={value!r} is not a valid {type(default).__name__} "
                        f"(default {default!r})") from None
    return value


def resolve_options(owner: str, defaults: Mapping[str, Any], presets: Mapping[str, Mapping[str, Any]],
                    preset: str | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """defaults <- preset <- overrides, every key checked against the defaults."""
    options = dict(defaults)
    if preset is not None:
        if preset not in presets:
            raise UserError(unknown_name_message(f"preset of {owner}", preset, sorted(presets)))
        options.update(presets[preset])
    for key, value in overrides.items():
        if key not in defaults:
            raise UserError(unknown_name_message(f"option of {owner}", key, sorted(defaults)))
        options[key] = coerce(owner, key, value, defaults[key])
    return options
