"""``petbench list methods|datasets|metrics``."""
from enum import Enum

import typer
from rich.console import Console
from rich.table import Table

from ..plugins import get_host


class Kind(str, Enum):
    methods = "methods"
    datasets = "datasets"
    metrics = "metrics"


def list_entries(kind: Kind = typer.Argument(..., help="What to list.")) -> None:
    """List registered methods, datasets or metrics, each with a one-line description."""
    host = get_host()
    registry = {"methods": host.methods, "datasets": host.datasets, "metrics": host.metrics}[kind.value]
    table = Table("Name", "Description", "Plugin")
    for entry in registry:
        table.add_row(entry.name, entry.description or "–", entry.plugin)
    Console().print(table)


def add_to(app: typer.Typer) -> None:
    app.command("list")(list_entries)
