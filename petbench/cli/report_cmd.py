"""``petbench report``: one self-contained HTML page of the recorded runs (petbench.report)."""
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import UserError
from ..paths import writable_file
from ..plugins import get_host
from ..results.record import find_records, pooled_setups, select_records
from ..runner import DEFAULT_RESULTS


def report(
    ctx: typer.Context,
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of run records."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write (one self-contained "
                             "file that opens from disk with no network)."),
    grid: Optional[str] = typer.Option(None, "--grid", help="Only the runs of this grid (a built-in name, a grid's "
                                       "name or its TOML file) under --results."),
    runs: Optional[list[str]] = typer.Option(None, "--run", help="Only this run id (repeatable, or comma-separated): "
                                             "a page for one run works too."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Only runs on this dataset."),
    drf: Optional[int] = typer.Option(None, "--drf", help="Only runs at this dose reduction factor."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metrics of the leaderboard and "
                                          "distributions (default: as `petbench compare`)."),
    image_subjects: Optional[str] = typer.Option(None, "--image-subjects", help="Test subjects whose images the page "
                                                 "holds: a count, 'all', or comma-separated ids (default: the first 4)."),
    image_size: int = typer.Option(64, "--image-size", help="Largest image side in voxels; larger volumes are "
                                   "downsampled by block means (default 64)."),
    stats: str = typer.Option("ci,holm,rank", "--stats", help="The statistics the tables show, as `petbench compare "
                              "--stats` (ci, diff, holm, rank, friedman or all; the embedded JSON carries every number)."),
    reference: Optional[str] = typer.Option(None, "--reference", help="The method the comparisons are against "
                                            "(default: the method that declares table_reference)."),
    bootstrap: int = typer.Option(2000, "--bootstrap", help="Bootstrap resamples for CIs and rank stability."),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="Seed of the bootstrap."),
    title: str = typer.Option("petbench report", "--title", help="The page's title."),
    strict: bool = typer.Option(False, "--strict", help="A malformed run record is an error (default: a gap line on "
                                "the page and a warning, and the record is left out)."),
) -> None:
    """Write one HTML page of the results: leaderboard, Tables I/II, per-subject distributions, an image
    viewer (slices, MIP, error maps), curves and provenance (docs/report.md)."""
    from ..report.build import SIZE_BUDGET_BYTES, build_report, write_report
    from .compare_cmd import stats_options

    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {out}: the report is an HTML page; give a file name ending in .html")
    writable_file(out, "--out")
    options = stats_options(stats, bootstrap, bootstrap_seed, reference, False)
    ids = [r.strip() for value in runs or [] for r in value.split(",") if r.strip()]
    if ids and grid:
        raise UserError("give --run IDs or --grid NAME, not both")
    problems: list[str] = []
    records = select_records(results, dataset, drf, "start one with `petbench run --method lpet --dataset phantom`",
                             strict=strict, warn=lambda line: (problems.append(line), warn(line)))
    if grid:
        wanted = grid_run_ids(results, grid)
        records = [r for r in records if r.run_id in wanted]
        if not records:
            raise UserError(f"--grid {grid}: none of its runs is finished in {results}; see "
                            f"`petbench grid {grid} --status --results {results}`")
    if ids:
        known = {r.run_id: r for r in records}
        missing = [r for r in ids if r not in known]
        if missing:
            every = {r.run_id for r in find_records(results, finished_only=False)}
            why = "not finished" if missing[0] in every else "no such run"
            raise UserError(f"--run {missing[0]}: {why} in {results}; see `petbench compare --results {results}`")
        records = [known[r] for r in ids]
    if reference is not None and reference not in {r.method for r in records}:
        raise UserError(f"--reference {reference!r} has no run here; methods: "
                        f"{', '.join(sorted({r.method for r in records}))}")
    for method, run_ids in pooled_setups(records).items():
        typer.echo(f"note: the {method!r} row pools runs with different settings ({', '.join(run_ids)})", err=True)
    wanted_metrics = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    command = command_line(ctx)
    page = build_report(records, get_host(), problems=problems, metrics=wanted_metrics, options=options,
                        image_subjects=image_subjects,
                        image_size=image_size, title=title, command=command, progress=sys.stderr.isatty())
    write_report(page, out)
    megabytes = page.bytes / 1024 / 1024
    typer.echo(f"wrote {out} ({megabytes:.1f} MB): {len(records)} run(s), images of "
               f"{len(page.image_subjects)} subject(s), {len(page.gaps)} gap(s)")
    for gap in page.gaps:
        typer.echo(f"note: gap: {gap}", err=True)
    if page.bytes > SIZE_BUDGET_BYTES:
        typer.echo(f"note: the page is larger than the {SIZE_BUDGET_BYTES // 1024 // 1024} MB budget; fewer "
                   "--image-subjects or a smaller --image-size make it smaller", err=True)


def command_line(ctx) -> str:
    """The command as it would be typed again: every option that differs from its default."""
    parts = ["petbench", "report"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value == param.default or value == []:
            continue
        flag = param.opts[0] if param.opts[0].startswith("--") else param.opts[-1]
        for item in value if isinstance(value, (list, tuple)) else [value]:
            parts += [flag] if value is True else [flag, shlex.quote(str(item))]
    return " ".join(parts)


def warn(line: str) -> None:
    typer.echo(f"warning: {line}", err=True)


def grid_run_ids(results: Path, grid: str) -> set[str]:
    from ..grids.run_grid import finished_run_ids  # lazy: the grid machinery is heavy to import

    return set(finished_run_ids(results, grid))


def add_to(app: typer.Typer) -> None:
    app.command("report")(report)
