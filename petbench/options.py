"""Options of a method or dataset: defaults, presets, ``-o key=value`` parsing and strict checking.

One parser for every way an option arrives (``-o``/``-D`` text, a grid TOML, a preset): a value is
converted only where that is unambiguous (an integer is a valid float; ``true``/``false`` are the only
booleans; a number is never a boolean and a boolean never a number), list and dict shapes are checked,
and NaN or ±inf are refused unless the option declares them.

Each plugin may declare, next to its ``defaults``, what an option accepts beyond its type
(``option_constraints = {"lr": greater_than(0), "ratio": between(0, 1, open=True)}``): a range, a set of
choices, a length, or a check against the run (e.g. a patch no larger than the slice). The host applies
them before any work, so a third-party plugin gets the same protection as the shipped ones, and a bad
value is a user's mistake (:class:`UserError`), never blamed on the plugin.
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .errors import PluginError, UserError
from .names import unknown_name_message

#: The longest option value read from text, and the deepest nesting of brackets in it: a value
#: beyond these is a mistake (or an attack on the parser), said as one line.
MAX_TEXT = 10_000
MAX_DEPTH = 20
#: Seeds (run, split, phantom) are what NumPy and torch accept: 0 … 2**32 - 1.
SEED_MAX = 2**32 - 1

NONFINITE_WORDS = {"nan": math.nan, "+nan": math.nan, "-nan": math.nan, "inf": math.inf, "+inf": math.inf,
                   "-inf": -math.inf, "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf}


# -- declared constraints ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Constraint:
    """What one option accepts beyond the type of its default.

    ``low``/``high`` bound a number (each item of a list with ``items``); ``open_low``/``open_high``
    exclude the bound. ``choices`` lists the valid values. ``length`` is the exact number of items of a
    list. ``optional`` lets ``None`` stand for "not set" when the default is not None; ``kind`` is the
    type when the default is None (``int``, ``float``, ``str``, ``bool``). ``nonfinite`` allows NaN and
    ±inf. ``run_check(value, options, run)`` is checked against the run's context (a
    :class:`petbench.method.RunContext`: its dataset, DRF and slice shape) and returns what is wrong,
    or None; ``power_of_two`` requires an integer 2**k."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple | None = None
    length: int | None = None
    items: "Constraint | None" = None
    optional: bool = False
    kind: type | None = None
    nonfinite: bool = False
    power_of_two: bool = False
    run_check: Callable[[Any, Mapping[str, Any], Any], str | None] | None = None

    def describe(self) -> str:
        """The constraint in words, for messages and ``petbench info``."""
        parts, low, high = [], number_text(self.low), number_text(self.high)
        if self.low is not None and self.high is not None:
            parts.append(f"in {'(' if self.open_low else '['}{low}, {high}{')' if self.open_high else ']'}")
        elif self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {low}")
        elif self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {high}")
        if self.choices is not None:
            parts.append("one of " + ", ".join(map(str, self.choices)))
        if self.power_of_two:
            parts.append("a power of two")
        if self.length is not None:
            parts.append(f"{self.length} values")
        if self.items is not None:
            parts.append(f"each {self.items.describe()}")
        if self.optional:
            parts.append("or none")
        return ", ".join(parts) or "any value of its type"


def number_text(value: float | None) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}".replace(",", "") if abs(value) < 10**6 else f"{int(value):,}"
    return f"{value:g}" if value is not None else ""


def between(low: float, high: float, *, open: bool = False, open_low: bool | None = None,
            open_high: bool | None = None, **more) -> Constraint:
    """A number in [low, high] (``open=True``: (low, high))."""
    return Constraint(low=low, high=high, open_low=open if open_low is None else open_low,
                      open_high=open if open_high is None else open_high, **more)


def at_least(low: float, **more) -> Constraint:
    return Constraint(low=low, **more)


def greater_than(low: float, **more) -> Constraint:
    return Constraint(low=low, open_low=True, **more)


def one_of(*choices, **more) -> Constraint:
    return Constraint(choices=tuple(choices), **more)


def seed(**more) -> Constraint:
    """A seed: an integer in 0 … 2**32 - 1."""
    return Constraint(low=0, high=SEED_MAX, **more)


# -- text -> value --------------------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"2e-4"`` -> 0.0002, ``"true"`` -> True, ``"[1,2]"`` -> [1, 2], ``"nan"`` -> nan,
    ``"none"`` -> None, else the string. Only ``true`` and ``false`` are booleans (``yes``/``on`` stay
    words, which a boolean option then refuses). A value longer than :data:`MAX_TEXT` characters or
    nested deeper than :data:`MAX_DEPTH` brackets is a :class:`UserError`."""
    text = str(text).strip()
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered in {"none", "null"}:
        return None
    if lowered in NONFINITE_WORDS:
        return NONFINITE_WORDS[lowered]
    if len(text) > MAX_TEXT:
        raise UserError(f"option value of {len(text):,} characters is too long (at most {MAX_TEXT:,})")
    if nesting(text) > MAX_DEPTH:
        raise UserError(f"option value {shorten(text)} is nested more than {MAX_DEPTH} brackets deep")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def nesting(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "[({":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "])}":
            depth -= 1
    return deepest


def parse_assignments(pairs: list[str] | None) -> dict[str, Any]:
    """Parse ``["key=value", ...]`` as given to ``-o`` (a key given twice: the last one counts)."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"option {shorten(pair)} is not of the form key=value (e.g. -o epochs=3)")
        if len(key.strip()) > 100:
            raise UserError(f"option name {shorten(key.strip())} is longer than any option (100 characters)")
        result[key.strip()] = parse_value(value)
    return result


def shorten(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 1] + "…"


# -- checking one value -------------------------------------------------------------------------------
def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def coerce(owner: str, key: str, value: Any, default: Any, constraint: Constraint | None = None) -> Any:
    """``value`` as the type of ``default``, checked against ``constraint``; a :class:`UserError`
    naming ``owner``'s option ``key`` when it does not fit."""
    constraint = constraint or Constraint()

    def refuse(what: str) -> UserError:
        return UserError(f"{owner} option {key} {what}, not {shorten(value)} (default {shorten(default)})")

    if value is None and isinstance(default, str) and not constraint.optional:
        value = "none"  # `-D crop=none` parses as None; for a string option it is the word (a valid choice)
    if value is None:
        if default is None or constraint.optional:
            return None
        raise refuse(f"must be set (a {type_name(default)})")
    kind = constraint.kind if default is None else type(default)
    value = as_kind(value, kind, default, refuse)
    check_constraint(value, constraint, refuse)
    return value


def type_name(default: Any) -> str:
    kind = default if isinstance(default, type) else type(default)
    return {bool: "true or false", int: "integer", float: "number", str: "string", list: "list", tuple: "list",
            dict: "table of key = value"}.get(kind, kind.__name__)


def as_kind(value: Any, kind: type | None, default: Any, refuse) -> Any:
    if kind is None:  # a default of None and no declared kind: any plain value, but no NaN by accident
        if isinstance(value, float) and not math.isfinite(value):
            return value  # judged by check_constraint (refused unless declared)
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise refuse("must be true or false")
        return value
    if kind is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if not is_number(value) or isinstance(value, float):
            raise refuse("must be an integer")
        return value
    if kind is float:
        if not is_number(value):
            raise refuse("must be a number")
        return as_float(value, refuse)
    if kind is str:
        if is_number(value):
            return str(value)
        if not isinstance(value, str):
            raise refuse("must be a string")
        return value
    if kind in (list, tuple):
        if is_number(value) or isinstance(value, str):
            value = [value]  # `-o channels=64` is a one-item list
        if not isinstance(value, (list, tuple)):
            raise refuse("must be a list")
        items = list(default) if isinstance(default, (list, tuple)) else []
        item_kind = type(items[0]) if items and all(type(i) is type(items[0]) for i in items) else None
        if item_kind is float and all(is_number(i) for i in value):
            value = [as_float(i, refuse) for i in value]
        elif item_kind in (int, float, bool, str) and not all(type(i) is item_kind for i in value):
            raise refuse(f"must be a list of {type_name(item_kind)}s")
        return kind(value)
    if kind is dict:
        if not isinstance(value, dict):
            raise refuse("must be a table of key = value")
        return value
    return value


def as_float(value: Any, refuse) -> float:
    try:
        return float(value)
    except OverflowError:
        raise refuse("must be a number of at most 1.8e308") from None


def check_constraint(value: Any, constraint: Constraint, refuse) -> None:
    if isinstance(value, (list, tuple)):
        if constraint.length is not None and len(value) != constraint.length:
            raise refuse(f"must have {constraint.length} values")
        for item in value:
            check_number(item, constraint.items or Constraint(), refuse)
    else:
        check_number(value, constraint, refuse)
    if constraint.choices is not None and value not in constraint.choices:
        raise refuse(f"must be one of {', '.join(map(str, constraint.choices))}")


def check_number(value: Any, constraint: Constraint, refuse) -> None:
    if isinstance(value, dict):
        for item in value.values():
            check_number(item, Constraint(nonfinite=constraint.nonfinite), refuse)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            check_number(item, Constraint(nonfinite=constraint.nonfinite), refuse)
        return
    if not is_number(value):
        if constraint.low is not None or constraint.high is not None:
            raise refuse("must be a number")
        return
    if isinstance(value, float) and not math.isfinite(value):
        if not constraint.nonfinite:
            raise refuse("must be a finite number")
        return
    low, high = constraint.low, constraint.high
    if low is not None and (value < low or (constraint.open_low and value == low)):
        raise refuse(f"must be {constraint.describe()}")
    if high is not None and (value > high or (constraint.open_high and value == high)):
        raise refuse(f"must be {constraint.describe()}")
    if constraint.power_of_two and (not isinstance(value, int) or value < 1 or value & (value - 1)):
        raise refuse("must be a power of two")


# -- every option of a plugin --------------------------------------------------------------------------
def resolve_options(owner: str, defaults: Mapping[str, Any], presets: Mapping[str, Mapping[str, Any]],
                    preset: str | None, overrides: Mapping[str, Any],
                    constraints: Mapping[str, Constraint] | None = None) -> dict[str, Any]:
    """defaults <- preset <- overrides, every key checked against the defaults and every value
    against its type and declared constraint. A preset's own bad value is the plugin's bug
    (:class:`PluginError`); an override's is the user's (:class:`UserError`)."""
    constraints = dict(constraints or {})
    if not isinstance(overrides, Mapping):
        raise UserError(f"{owner}: options must be a table of key = value, not {shorten(overrides)}")
    options = dict(defaults)
    if preset is not None:
        if preset not in presets:
            raise UserError(unknown_name_message(f"preset of {owner}", preset, sorted(presets)))
        for key, value in presets[preset].items():
            try:
                options[key] = coerce(owner, key, value, defaults.get(key), constraints.get(key))
            except UserError as exc:
                raise PluginError(f"{owner}: preset {preset!r}: {exc}") from None
    for key, value in overrides.items():
        if key not in defaults:
            raise UserError(unknown_name_message(f"option of {owner}", key, sorted(map(str, defaults))))
        options[key] = coerce(owner, key, value, defaults[key], constraints.get(key))
    return options


def check_against_run(owner: str, options: Mapping[str, Any], constraints: Mapping[str, Constraint] | None,
                      run) -> None:
    """The declared checks of ``options`` against the run's context ``run``
    (:class:`petbench.method.RunContext`); the first that fails is a :class:`UserError`."""
    for key, constraint in (constraints or {}).items():
        if constraint.run_check is None or key not in options:
            continue
        problem = constraint.run_check(options[key], options, run)
        if problem:
            raise UserError(f"{owner} option {key}={shorten(options[key])} {problem}")


def constraints_of(plugin: Any) -> dict[str, Constraint]:
    """A plugin's (class or instance) declared ``option_constraints``, checked to be constraints."""
    declared = getattr(plugin, "option_constraints", None) or {}
    if not isinstance(declared, Mapping) or not all(isinstance(c, Constraint) for c in declared.values()):
        raise PluginError(f"{getattr(plugin, 'name', plugin)!r}: option_constraints must map option names to "
                          f"petbench.options.Constraint")
    return dict(declared)
