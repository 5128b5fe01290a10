"""``petbench compare``: the leaderboard of recorded runs, the paper's tables, and tables against an axis,
with confidence intervals, corrected comparisons and ranks (docs/statistics.md)."""
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..errors import UserError
from ..results.record import pooled_setups, select_records
from ..runner import DEFAULT_RESULTS
from ..tables.cells import STAT_CHOICES, StatsOptions, parse_stats
from ..tables.render import FORMATS, render

STATS_HELP = ("Extra statistics, comma-separated: " + "; ".join(f"{k}: {v}" for k, v in STAT_CHOICES.items())
              + "; or all. CSV and JSON carry every number whatever is shown (docs/statistics.md).")


def stats_options(stats: Optional[str], bootstrap: int, bootstrap_seed: int, reference: Optional[str],
                  all_pairs: bool) -> StatsOptions:
    if bootstrap < 100:
        raise UserError(f"--bootstrap {bootstrap} is too few resamples for a 95 % interval; use 100 or more "
                        "(default 2000)")
    return StatsOptions(shown=parse_stats(stats), resamples=bootstrap, seed=bootstrap_seed, reference=reference,
                        all_pairs=all_pairs)


def compare(
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of run records."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Only runs on this dataset."),
    drf: Optional[int] = typer.Option(None, "--drf", help="Only runs at this dose reduction factor."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metrics (default: the challenge-convention ones; add e.g. psnr_paper for the paper's)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, markdown, latex, csv or json."),
    paper_table: Optional[int] = typer.Option(None, "--table", help="1 or 2: the paper's Table I or II (its rows "
                                              "in the order of the methods' places, seed spread, Holm-corrected "
                                              "Wilcoxon tests against the reference method)."),
    by: Optional[str] = typer.Option(None, "--by", help="n_train, n_unpaired or drf: one column per value of that "
                                     "axis, one table per metric (the table of `petbench figure efficiency`)."),
    stats: Optional[str] = typer.Option(None, "--stats", help=STATS_HELP),
    reference: Optional[str] = typer.Option(None, "--reference", help="The method the comparisons are against "
                                            "(default: the method that declares table_reference)."),
    all_pairs: bool = typer.Option(False, "--all-pairs", help="Compare every pair of methods, not only against "
                                   "the reference (CSV/JSON of --stats diff,holm; Holm over all pairs)."),
    bootstrap: int = typer.Option(2000, "--bootstrap", help="Bootstrap resamples for CIs and rank stability."),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="Seed of the bootstrap (fixed: the same call "
                                       "gives the same numbers)."),
    strict: bool = typer.Option(False, "--strict", help="A malformed run record is an error (default: a warning, "
                                "and the record is left out)."),
) -> None:
    """One row per method: mean ± std over test subjects (std of the per-seed means in parentheses), best marked.

    With --table 1|2, the paper's Table I or II instead (see docs/reproducing.md); with --by AXIS, one column per
    value of AXIS (docs/grids.md); with --stats ci,diff,holm,rank,friedman, confidence intervals, corrected
    comparisons and ranks (docs/statistics.md)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    options = stats_options(stats, bootstrap, bootstrap_seed, reference, all_pairs)
    records = select_records(results, dataset, drf, "start one with `petbench run --method lpet --dataset phantom`",
                             strict=strict)
    if reference is not None and reference not in {r.method for r in records}:
        raise UserError(f"--reference {reference!r} has no run here; methods: "
                        f"{', '.join(sorted({r.method for r in records}))}")
    wanted = [m.strip() for m in metrics.split(",")] if metrics else None
    if by is not None:
        from ..grids.efficiency import build_curves, render_curves

        if paper_table is not None:
            raise UserError("give --table or --by, not both")
        show(render_curves(build_curves(records, by, wanted, options), fmt))
        return
    if paper_table is not None:
        from ..grids.tables import build_paper_table, paper_table_model

        built = build_paper_table(records, paper_table, wanted, options)
        models = [paper_table_model(built)]
        if all_pairs:
            from ..tables.pairs import pairs_model

            models.append(pairs_model(built.analysis, {r.key: r.label for r in built.rows}, built.metrics))
        show(render(models if len(models) > 1 else models[0], fmt))
        return
    from ..grids.places import reference_method
    from ..results.leaderboard import build_leaderboard, leaderboard_model

    # the paper tables give each option set its own row and refuse mixed protocols; this board pools them
    for method, run_ids in pooled_setups(records).items():
        typer.echo(f"note: the {method!r} row pools runs with different settings ({', '.join(run_ids)}); "
                   "keep each setting in its own --results folder to compare them apart", err=True)
    if options.reference is None and options.shown & {"diff", "holm"}:
        options = StatsOptions(**{**options.__dict__, "reference": reference_method(records, 1)})
    board = build_leaderboard(records, wanted, options)
    if wanted:
        missing = [m for m in wanted if m not in board.metrics]
        if missing:
            raise UserError(f"metric {missing[0]!r} is in no recorded run; recorded: {', '.join(board.metrics) or 'none'}")
    model = leaderboard_model(board)
    models = [model]
    if all_pairs:
        from ..tables.pairs import pairs_model

        models += [pairs_model(analysis, {}, board.metrics, name=f"pairs {dataset} DRF {group_drf}")
                   for (dataset, group_drf), analysis in board.analyses.items()]
    show(render(models if len(models) > 1 else model, fmt, notes=False))
    if fmt in ("table", "markdown", "latex"):  # on stderr: a piped table stays a table (csv/json carry the info)
        for line in [line for m in models for line in m.note_lines()]:
            typer.echo(f"note: {line}", err=True)


def show(output) -> None:
    if isinstance(output, str):
        typer.echo(output)
    else:
        Console().print(output)


def add_to(app: typer.Typer) -> None:
    app.command("compare")(compare)
