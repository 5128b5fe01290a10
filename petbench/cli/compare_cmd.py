"""``petbench compare``: the leaderboard of recorded runs."""
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..errors import UserError
from ..results.record import pooled_setups, select_records
from ..results.formats import FORMATS, render
from ..results.leaderboard import build_leaderboard, conventions_line
from ..runner import DEFAULT_RESULTS


def compare(
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of run records."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Only runs on this dataset."),
    drf: Optional[int] = typer.Option(None, "--drf", help="Only runs at this dose reduction factor."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metrics (default: the challenge-convention ones; add e.g. psnr_paper for the paper's)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, markdown, latex, csv or json."),
    paper_table: Optional[int] = typer.Option(None, "--table", help="1 or 2: the paper's Table I or II (its rows "
                                              "in the order of the methods' places, seed spread, Wilcoxon tests against the reference method)."),
    by: Optional[str] = typer.Option(None, "--by", help="n_train, n_unpaired or drf: one column per value of that "
                                     "axis, one table per metric (the table of `petbench figure efficiency`)."),
    strict: bool = typer.Option(False, "--strict", help="A malformed run record is an error (default: a warning, "
                                "and the record is left out)."),
) -> None:
    """One row per method: mean ± std over test subjects (pooled over seeds), best marked.

    With --table 1|2, the paper's Table I or II instead (see docs/reproducing.md); with --by AXIS, one column per value of AXIS (docs/grids.md)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    records = select_records(results, dataset, drf, "start one with `petbench run --method lpet --dataset phantom`",
                             strict=strict)
    wanted = [m.strip() for m in metrics.split(",")] if metrics else None
    if by is not None:
        from ..grids.efficiency import build_curves, render_curves

        if paper_table is not None:
            raise UserError("give --table or --by, not both")
        show(render_curves(build_curves(records, by, wanted), fmt))
        return
    if paper_table is not None:
        from ..grids.tables import build_paper_table, render_paper_table

        show(render_paper_table(build_paper_table(records, paper_table, wanted), fmt))
        return
    # the paper tables give each option set its own row and refuse mixed protocols; this board pools them
    for method, run_ids in pooled_setups(records).items():
        typer.echo(f"note: the {method!r} row pools runs with different settings ({', '.join(run_ids)}); "
                   "keep each setting in its own --results folder to compare them apart", err=True)
    board = build_leaderboard(records, wanted)
    if wanted:
        missing = [m for m in wanted if m not in board.metrics]
        if missing:
            raise UserError(f"metric {missing[0]!r} is in no recorded run; recorded: {', '.join(board.metrics) or 'none'}")
    show(render(board, fmt))
    if fmt in ("table", "markdown", "latex"):  # on stderr: a piped table stays a table (csv/json carry the info)
        typer.echo(f"note: metrics: {conventions_line(board.metrics)}", err=True)
        for line in leaderboard_notes(records):
            typer.echo(f"note: {line}", err=True)


def leaderboard_notes(records) -> list[str]:
    """What each leaderboard row ran (petbench.grids.table_notes), its rows named by method; the marks
    go with the footnotes, as the board's method column stays the plain name."""
    from ..grids.table_notes import table_notes

    by_method: dict[str, list] = {}
    for record in records:
        by_method.setdefault(record.method, []).append(record)
    return table_notes([(name, name, recs) for name, recs in by_method.items()]).lines


def show(output) -> None:
    if isinstance(output, str):
        typer.echo(output)
    else:
        Console().print(output)


def add_to(app: typer.Typer) -> None:
    app.command("compare")(compare)
