"""``petbench data inspect DATASET --data-root DIR``: what a data root holds and everything wrong with it."""
from __future__ import annotations

from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..datasets.generic_inspect import generic_report
from ..errors import plugin_code
from ..options import parse_assignments
from ..plugins import get_host
from .data_cmd import data_app

COLUMNS = (("id", "subject"), ("scanner", "scanner"), ("full", "full dose"), ("drfs", "DRFs"),
           ("shape", "shape (z x y x x)"), ("spacing", "spacing mm (z x y x x)"), ("units", "units"),
           ("suv", "SUV"), ("status", "status"))


@data_app.command("inspect")
def inspect_command(
    dataset: str = typer.Argument(..., help="A registered dataset (udpet, folder, phantom, or a plugin's)."),
    data_root: str = typer.Option("", "--data-root", help="The data folder (else the dataset's environment variable)."),
    dataset_option: Optional[List[str]] = typer.Option(None, "--dataset-option", "-D",
                                                       help="Dataset option key=value, as for run (repeatable)."),
) -> None:
    """Print the subjects found, their scanner, DRFs, shapes, spacing and units, and every problem."""
    options = parse_assignments(dataset_option)
    if data_root:
        options["data_root"] = data_root
    entry = get_host().datasets.entry(dataset)
    with plugin_code("dataset", entry, "construction"):
        instance = entry.load()(**options)
    if hasattr(instance, "inspect"):  # a dataset's own report (petbench/datasets/scanned: udpet, folder)
        with plugin_code("dataset", entry, "inspect()"):
            report = instance.inspect()
    else:  # any other dataset: each subject loaded as a run loads it
        report = generic_report(instance)
    print_report(report, Console(highlight=False))


def print_report(report, console: Console) -> None:
    console.print(f"[bold]{report.dataset}[/bold] data root: {escape(report.root)}")
    for key, value in report.settings.items():
        console.print(f"  {key}: {escape(value)}")
    table = Table(show_lines=False)
    for _, title in COLUMNS:
        table.add_column(title, overflow="fold")
    for row in report.rows:
        style = "" if row["status"] == "usable" else "yellow"
        table.add_row(*(escape(row[key]) for key, _ in COLUMNS), style=style)
    console.print(table)
    faults = [p for p in report.problems if not p.notice]
    notices = [p for p in report.problems if p.notice]
    scanners = {}
    for row in report.rows:
        if row["status"] == "usable":
            scanners[row["scanner"]] = scanners.get(row["scanner"], 0) + 1
    by_scanner = ", ".join(f"{n} {name}" for name, n in sorted(scanners.items()))
    console.print(f"{report.usable} usable subjects ({by_scanner or 'none'}) of {len(report.rows)} found; "
                  f"{len(faults)} problems, {len(notices)} notices")
    for problem in faults:
        console.print(f"[red]problem[/red] {escape(problem.line())}", soft_wrap=True)
    for problem in notices:
        console.print(f"[cyan]notice[/cyan]  {escape(problem.line())}", soft_wrap=True)
