"""``petbench info NAME``: what a registered method, dataset or metric is, who supplies it, its options
with their defaults, and its presets."""
from __future__ import annotations

import json
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import UserError
from ..names import unknown_name_message
from ..plugins import get_host
from ..registry import failure_note

KINDS = ("method", "dataset", "metric")


def info(name: str = typer.Argument(..., help="A registered method, dataset or metric."),
         kind: Optional[str] = typer.Option(None, "--kind", "-k", help="method, dataset or metric (when a name "
                                            "is several)."),
         as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Describe NAME: its description, plugin and distribution, options with defaults, and presets."""
    host = get_host()
    registries = {"method": host.methods, "dataset": host.datasets, "metric": host.metrics}
    if kind is not None and kind not in KINDS:
        raise UserError(f"--kind {kind!r} is not valid: use {', '.join(KINDS)}")
    kinds = [k for k in ([kind] if kind else KINDS) if name in registries[k]]
    if not kinds:
        valid = sorted({n for k in ([kind] if kind else KINDS) for n in registries[k].names()})
        raise UserError(unknown_name_message(kind or "method, dataset or metric", name, valid)
                        + failure_note(host.failures))
    if len(kinds) > 1:
        raise UserError(f"{name!r} is registered as a {' and a '.join(kinds)}; say which with --kind")
    described = describe(kinds[0], registries[kinds[0]].entry(name))
    if as_json:
        typer.echo(json.dumps(described, indent=2, default=str))
    else:
        show(described)


def describe(kind: str, entry) -> dict[str, Any]:
    target = entry.load()
    text = (getattr(target, "description", "") or "").strip()
    found: dict[str, Any] = {"name": entry.name, "kind": kind, "description": text, "plugin": entry.plugin,
                             "dist": entry.dist or "in-process"}
    if kind == "metric":
        found.update({"higher_is_better": target.higher_is_better, "convention": target.convention,
                      "unit": target.unit, "needs": list(target.needs), "default": target.default})
        return found
    found["options"] = dict(getattr(target, "defaults", {}) or {})
    if kind == "method":
        found["presets"] = {k: dict(v) for k, v in (getattr(target, "presets", {}) or {}).items()}
        found["display_name"] = getattr(target, "display_name", None) or entry.name
        if getattr(target, "table_places", None):
            found["table_places"] = dict(target.table_places)
    else:
        found["drfs"] = list(getattr(target, "drfs", ()) or ())
        found["units"] = getattr(target, "units", "")
    return found


def show(found: dict[str, Any]) -> None:
    console = Console()
    print_line = lambda text: console.print(text, markup=False, highlight=False)  # noqa: E731
    print_line(f"{found['name']} ({found['kind']}) from plugin {found['plugin']!r} ({found['dist']})")
    if found["description"]:
        print_line(found["description"])
    for key in ("display_name", "table_places", "drfs", "units", "higher_is_better", "convention", "unit", "needs"):
        if found.get(key) not in (None, "", [], {}):
            print_line(f"{key.replace('_', ' ')}: {found[key]}")
    if "options" in found:
        presets = found.get("presets", {})
        table = Table("Option", "Default", *(f"preset {p}" for p in presets), title="Options (" + ("-D" if found["kind"] == "dataset" else "-o")
                      + " key=value)")
        for option, default in found["options"].items():
            table.add_row(option, json.dumps(default, default=str),
                          *(json.dumps(values[option], default=str) if option in values else "·"
                            for values in presets.values()))
        console.print(table)


def add_to(app: typer.Typer) -> None:
    app.command("info")(info)
