"""Protocols of recorded runs told apart: which fields differ between groups of runs, and choosing runs by
protocol field (``--protocol KEY=VALUE`` of compare and figure).

A record stores its protocol as ``Protocol.as_dict()`` does, leaving out fields at their defaults (no
``n_val`` without validation subjects, no ``n_train_pool`` equal to ``n_train``); here every field is read
with its default filled in, so ``n_val=0`` chooses the runs recorded without it.
"""
from __future__ import annotations

from dataclasses import fields

from ..data.protocol import Protocol
from ..errors import UserError
from ..options import parse_value

DEFAULTS = {f.name: f.default for f in fields(Protocol)}


def protocol_value(protocol: dict, key: str):
    if key in protocol:
        return protocol[key]
    if key == "n_train_pool":
        return protocol.get("n_train")
    return DEFAULTS.get(key)


def differing_fields(protocols: list[dict]) -> dict[str, list]:
    """``{field: [its value in each protocol]}`` for the fields whose value is not the same in all."""
    keys = sorted({k for p in protocols for k in p} | ({"n_val"} if any("n_val" in p for p in protocols) else set()))
    found = {}
    for key in keys:
        values = [protocol_value(p, key) for p in protocols]
        if len({repr(v) for v in values}) > 1:
            found[key] = values
    return found


def differences_line(protocols: list[dict]) -> str:
    """E.g. "they differ in n_val (1 / 0); choose one with --protocol n_val=1 (or n_val=0)"."""
    found = differing_fields(protocols)
    if not found:
        return ""
    parts = [f"{key} ({' / '.join(map(str, values))})" for key, values in found.items()]
    key, values = next(iter(found.items()))
    others = " or ".join(f"{key}={v}" for v in dict.fromkeys(map(str, values[1:])))
    return (f"they differ in {', '.join(parts)}; choose one with --protocol {key}={values[0]}"
            + (f" (or {others})" if others else ""))


def parse_protocol_filter(pairs: list[str] | None) -> dict:
    wanted = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in DEFAULTS:
            raise UserError(f"--protocol {pair!r}: give KEY=VALUE with KEY one of {', '.join(DEFAULTS)}")
        wanted[key] = parse_value(value)
    return wanted


def matching(records: list, wanted: dict) -> list:
    """The records whose protocol has every ``wanted`` value (a missing field counts as its default)."""
    return [r for r in records if all(protocol_value(r.data["protocol"], k) == v for k, v in wanted.items())]


def by_protocol(records: list, pairs: list[str] | None, results) -> list:
    """``--protocol KEY=VALUE ...`` applied; none left is a :class:`UserError`."""
    wanted = parse_protocol_filter(pairs)
    if not wanted:
        return records
    chosen = matching(records, wanted)
    if not chosen:
        shown = " ".join(f"{k}={v}" for k, v in wanted.items())
        raise UserError(f"no finished runs under {results} have the protocol {shown}")
    return chosen
