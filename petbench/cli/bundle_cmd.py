"""``petbench export`` and ``petbench merge``: run records out of one results folder and into another."""
from pathlib import Path
from typing import Optional

import typer

from ..errors import UserError
from ..paths import writable_dir, writable_file
from ..results.bundle import export_bundle, merge_bundle
from ..results.lock import RunLock
from ..results.record import find_records, report_problems, warn_line
from ..runner import DEFAULT_RESULTS


def export(
    out: Path = typer.Option(..., "--out", help="The bundle to write (a .tar.gz file)."),
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of run records."),
    run: Optional[list[str]] = typer.Option(None, "--run", help="A run id (repeatable)."),
    grid: Optional[list[str]] = typer.Option(None, "--grid", help="Every finished run of this grid (repeatable)."),
    every: bool = typer.Option(False, "--all", help="Every finished run in --results."),
    predictions: bool = typer.Option(False, "--predictions", help="Include the predicted test volumes (large)."),
    strict: bool = typer.Option(False, "--strict", help="A malformed record is an error (default: said, left out)."),
) -> None:
    """Bundle chosen runs (--run, --grid or --all) into one archive with a manifest of checksums.

    Each run keeps run.json, metrics.csv and its training curves; --predictions adds the predicted
    volumes. Checkpoints are never included. Another lab adds the bundle with `petbench merge`."""
    if not (run or grid or every):
        raise UserError("give the runs to export: --run ID, --grid NAME or --all")
    writable_file(out, "--out")
    problems: list[str] = []
    records = {r.run_id: r for r in find_records(results, problems=problems)}
    report_problems(problems, strict, warn_line)
    from ..grids.run_grid import finished_run_ids  # lazy: the grid machinery is heavy to import

    wanted = list(run or []) + [rid for name in grid or [] for rid in finished_run_ids(results, name)]
    if every:
        wanted += list(records)
    missing = [rid for rid in wanted if rid not in records]
    if missing:
        raise UserError(f"no finished run {missing[0]!r} under {results}; see `petbench compare --results {results}`")
    if not wanted:
        raise UserError(f"no finished runs under {results} to export")
    export_bundle([records[rid] for rid in dict.fromkeys(wanted)], out, predictions=predictions, log=typer.echo)


def merge(
    bundle: Path = typer.Argument(..., help="A bundle written by `petbench export`."),
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of run records to add the runs to."),
) -> None:
    """Add a bundle's runs to a results folder, after checking every member (names, sizes, checksums, records).

    A run already here with the same results counts once; one with the same identity and other results is
    reported and left out (exit code 1). A bundle with any unsafe or malformed member changes nothing."""
    writable_dir(results, "--results")
    with RunLock(results, "petbench-merge"):  # one merge at a time into a folder (a name no run id has)
        report = merge_bundle(bundle, results, log=typer.echo)
    typer.echo(f"merged {bundle}: {len(report.added)} added, {len(report.present)} already here, "
               f"{len(report.conflicts)} conflicting")
    if report.conflicts:
        raise typer.Exit(1)


def add_to(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("merge")(merge)
