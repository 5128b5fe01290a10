"""``petbench check NAME``: the conformance checks of :mod:`petbench.testing` on a registered
method, dataset or metric (what a plugin's test suite runs, from the command line)."""
import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ..options import parse_assignments
from ..plugins import get_host


class Kind(str, Enum):
    method = "method"
    dataset = "dataset"
    metric = "metric"


def check(
    name: str = typer.Argument(..., help="A registered method, dataset or metric."),
    kind: Optional[Kind] = typer.Option(None, "--kind", "-k", help="method, dataset or metric (when a name is several)."),
    option: Optional[list[str]] = typer.Option(None, "--option", "-o",
                                               help="An option of the method or dataset, key=value (repeatable); "
                                                    "on top of its quick preset and test_options."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="A dataset's files (same as -o data_root=DIR)."),
    device: str = typer.Option("cpu", "--device", help="Where a method is trained and predicts: cpu, auto, cuda[:N]."),
    seed: int = typer.Option(0, "--seed", help="Training seed of a method check."),
    steps: int = typer.Option(2, "--steps", help="Training steps per epoch of each stage (a method check)."),
    size: int = typer.Option(32, "--size", help="In-plane size of the tiny slices (a method check)."),
    max_subjects: int = typer.Option(2, "--subjects", help="Subjects a dataset check loads."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Check that NAME behaves as petbench needs: a method is trained for a step or two on tiny data
    and its predictions checked (shape, dtype, device, finite, non-negative, deterministic,
    checkpoint round trip, only low-dose input); a dataset's subjects are loaded and checked; a
    metric is checked for finite values and its direction. Exit code 1 if a check fails."""
    from ..testing.conformance import conformance_report, find_kind

    host = get_host()
    resolved = kind.value if kind else find_kind(name, host)
    options = parse_assignments(option)
    if data_root is not None:
        options["data_root"] = str(data_root)
    settings: dict = {}
    if resolved == "method":
        settings = {"options": options, "device": device, "seed": seed, "max_steps": steps, "size": size}
    elif resolved == "dataset":
        settings = {"options": options, "max_subjects": max_subjects}
    report = conformance_report(name, resolved, host=host, **settings)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def print_report(report) -> None:
    console = Console()
    table = Table("Check", "Result", "Detail", title=report.title(), title_justify="left")
    style = {"passed": "[green]passed[/green]", "failed": "[red]FAILED[/red]", "skipped": "[dim]skipped[/dim]"}
    for result in report.results:
        table.add_row(result.name, style[result.status], result.detail)
    console.print(table)
    failed = len(report.failures)
    if failed:
        console.print(f"{failed} of {len(report.results)} checks failed", highlight=False)
    else:
        console.print(f"all {len(report.results)} checks passed in {report.seconds:.1f} s", highlight=False)


def add_to(app: typer.Typer) -> None:
    app.command("check")(check)
