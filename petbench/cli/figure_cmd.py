"""``petbench figure``: the paper's Figures 3/4 (``--table 1|2``), or metrics against a protocol axis
(``efficiency --x n_train|n_unpaired|drf``; ``dose`` is ``--x drf``)."""
from pathlib import Path
from typing import Optional

import typer

from ..errors import UserError
from ..paths import writable_file
from ..plugins import get_host
from ..results.record import select_records
from ..runner import DEFAULT_RESULTS


def figure(
    kind: Optional[str] = typer.Argument(None, metavar="[efficiency|dose|curves|cd|ranks]", help="'curves': "
                                         "training curves of --run runs or a --grid; 'efficiency': a metric "
                                         "against --x (n_train, n_unpaired or drf); 'dose': the same with --x drf; "
                                         "'cd': critical-difference diagram (Friedman + Nemenyi); 'ranks': the "
                                         "bootstrap distribution of each method's rank. "
                                         "Without it: Figure 3 (--table 1) or 4 (--table 2)."),
    out: Path = typer.Option(..., "--out", "-o", help="The PNG file to write."),
    table: Optional[int] = typer.Option(None, "--table", help="1: Figure 3 (Table I's methods); 2: Figure 4 "
                                        "(Table II's variants)."),
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of run records."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Only runs on this dataset."),
    drf: Optional[int] = typer.Option(None, "--drf", help="Only runs at this dose reduction factor."),
    subject: Optional[str] = typer.Option(None, "--subject", help="Test subject (default: the first one every run "
                                          "predicted)."),
    slice_index: Optional[int] = typer.Option(None, "--slice", help="Axial slice (default: the one with the most "
                                              "SPET activity)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Whose runs to show (default: the smallest common seed)."),
    zoom: Optional[str] = typer.Option(None, "--zoom", help="Inset as Y,X,SIZE in voxels (default: the window "
                                       "with the most structure)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", "--metric", help="efficiency/dose: comma-separated "
                                          "metrics, one panel each (default: psnr; dose: psnr,ssim,nmse)."),
    x_axis: Optional[str] = typer.Option(None, "--x", help="efficiency: n_train (default), n_unpaired or drf."),
    runs: Optional[list[str]] = typer.Option(None, "--run", help="curves: a run id (repeatable, or comma-separated); "
                                             "their training curves share one picture."),
    grid: Optional[str] = typer.Option(None, "--grid", help="curves: every finished run of this grid (a built-in "
                                       "name or a TOML file) under --results that kept training curves."),
    bootstrap: int = typer.Option(2000, "--bootstrap", help="efficiency/ranks: bootstrap resamples (CIs, ranks)."),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="efficiency/ranks: seed of the bootstrap."),
    alpha: float = typer.Option(0.05, "--alpha", help="cd: significance level of the Nemenyi critical difference."),
    dpi: int = typer.Option(150, "--dpi", help="Resolution of the PNG."),
    strict: bool = typer.Option(False, "--strict", help="A malformed run record is an error (default: a warning, "
                                "and the record is left out)."),
) -> None:
    """Draw Figure 3/4 of the paper from recorded runs, or each metric against DRF (`petbench figure dose`)."""
    from ..grids.efficiency import efficiency_figure
    from ..grids.figures import comparison_figure

    writable_file(out, "--out")
    if kind == "curves":  # training curves from history.jsonl (petbench.grids.curves_figure)
        from ..grids.curves_figure import curves_figure, grid_runs

        ids = [r.strip() for value in runs or [] for r in value.split(",") if r.strip()]
        if ids and grid:
            raise UserError("give --run IDs or --grid NAME, not both")
        missing = [r for r in ids if not (Path(results) / r / "run.json").is_file()]
        if missing:
            raise UserError(f"--run {missing[0]}: no such run in {results}; see `petbench compare --results {results}`")
        run_dirs = grid_runs(Path(results), grid) if grid else [Path(results) / r for r in ids]
        info = curves_figure(run_dirs, out, dpi=dpi)
        typer.echo(f"wrote {out}: curves of {len(info['runs'])} run(s); panels {', '.join(p['title'] for p in info['panels'])}")
        return
    records = select_records(results, dataset, drf, "run `petbench grid table1 --dataset phantom` first",
                             strict=strict)
    wanted = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    if kind in ("regions", "lesions"):  # per-region / per-lesion bias box plots (docs/metrics.md)
        from ..grids.region_figure import region_figure

        info = region_figure(get_host(), records, out, kind=kind, dpi=dpi)
        typer.echo(f"wrote {out}: {kind} bias of {', '.join(info['methods'])} ({info['values']} values)")
        return
    if kind in ("cd", "ranks"):  # petbench.grids.rank_figures (docs/statistics.md)
        from ..grids.rank_figures import cd_figure, rank_figure
        from ..tables.cells import StatsOptions

        if bootstrap < 100:
            raise UserError(f"--bootstrap {bootstrap} is too few resamples; use 100 or more (default 2000)")
        if not 0 < alpha < 1:
            raise UserError(f"--alpha {alpha} must lie between 0 and 1 (e.g. 0.05)")
        if table not in (None, 1, 2):
            raise UserError(f"--table must be 1 or 2, not {table}")
        options = StatsOptions(resamples=bootstrap, seed=bootstrap_seed)
        if kind == "cd":
            info = cd_figure(records, out, table=table, metrics=wanted, options=options, alpha=alpha, dpi=dpi)
            typer.echo(f"wrote {out}: critical-difference diagram of {', '.join(info['metrics'])}")
            for sentence in info["sentences"]:
                typer.echo(sentence)
        else:
            info = rank_figure(records, out, table=table, metrics=wanted, options=options, dpi=dpi)
            consensus = info["ranks"][info["panels"][-1]]
            typer.echo(f"wrote {out}: bootstrap ranks of {len(info['methods'])} methods over {info['resamples']} "
                       f"resamples; rank 1 in: " + ", ".join(f"{m} {100 * v['rank_one']:.0f} %"
                                                           for m, v in consensus.items()))
        for warning in info.get("warnings", []):
            typer.echo(f"note: {warning}", err=True)
        return
    if kind is not None:
        if kind not in ("efficiency", "dose"):
            raise UserError(f"unknown figure {kind!r}: use `petbench figure efficiency`, `petbench figure dose`, "
                            f"`petbench figure cd`, `petbench figure ranks`, "
                            f"`petbench figure curves --run ID|--grid NAME` or `petbench figure --table 1|2`")
        if kind == "dose" and x_axis not in (None, "drf"):
            raise UserError(f"`petbench figure dose` is against DRF; for --x {x_axis} use `petbench figure efficiency`")
        axis = "drf" if kind == "dose" else (x_axis or "n_train")
        from ..tables.cells import StatsOptions

        info = efficiency_figure(records, out, axis=axis, metrics=wanted or (None if kind == "dose" else ["psnr"]),
                                 dpi=dpi, options=StatsOptions(resamples=max(100, bootstrap), seed=bootstrap_seed))
        typer.echo(f"wrote {out}: {', '.join(info['metrics'])} against {axis} {', '.join(map(str, info['values']))} "
                   f"for {len(info['methods'])} methods" + (f", {info['reference']} as the reference line"
                                                            if info["reference"] else ""))
        for warning in info.get("warnings", []):
            typer.echo(f"note: the CI bands: {warning}", err=True)
        return
    if table not in (1, 2):
        raise UserError("give --table 1 (Figure 3) or --table 2 (Figure 4), or `petbench figure dose`")
    box = None
    if zoom is not None:
        try:
            box = tuple(int(v) for v in zoom.split(","))
            assert len(box) == 3
        except (ValueError, AssertionError):
            raise UserError(f"--zoom {zoom!r} is not Y,X,SIZE (three integers)") from None
    info = comparison_figure(get_host(), records, table, out, subject=subject, slice_index=slice_index, seed=seed,
                             zoom=box, dpi=dpi)
    typer.echo(f"wrote {out}: Figure {info['figure']}, subject {info['subject']}, slice {info['slice']}, "
               f"seed {info['seed']}; columns {', '.join(info['columns'])}")


def add_to(app: typer.Typer) -> None:
    app.command("figure")(figure)
