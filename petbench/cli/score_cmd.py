"""``petbench score``: add the metrics that finished runs lack, from their saved predictions (never retrains)."""
from pathlib import Path
from typing import Optional

import typer

from ..engine.device import resolve_device
from ..errors import UserError
from ..paths import writable_dir
from ..plugins import get_host
from ..results.lock import RunBusy, RunLock
from ..results.record import RunRecord, find_runs, report_problems, warn_line
from ..runner import DEFAULT_RESULTS
from ..scoring import score_record


def score(
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of run records."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metrics (default: every "
                                          "registered metric)."),
    run: Optional[list[str]] = typer.Option(None, "--run", help="Only this run id (repeatable)."),
    device: str = typer.Option("auto", "--device", help="Where runs saved without predictions are predicted again."),
    strict: bool = typer.Option(False, "--strict", help="A malformed record or a metric that raises is an error."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Compute the metrics each finished run lacks and add them to its record (atomically).

    A run is scored from its saved predicted volumes; one saved with --no-predictions is predicted again
    from its final weights, which needs its method's plugin. A metric that raises is reported and the
    others are kept."""
    writable_dir(results, "--results")
    host = get_host()
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else host.metrics.names()
    for name in names:
        host.metrics.entry(name)  # an unknown metric is a UserError before any work
    records, damaged = find_runs(results)
    records = [record for record in records if record.finished]
    rebuildable = {found.path.name: found for found in damaged if found.data is not None}
    report_problems([found.line() for found in damaged if found.data is None], strict, warn_line)
    for found in rebuildable.values():  # run.json is sound, its metrics file is not: made again from predictions
        typer.echo(f"warning: damaged metrics file {found.file}: {found.reason}; it is rebuilt from the run's "
                   f"predictions", err=True)
        records.append(RunRecord(found.path, found.data))
    records.sort(key=lambda record: record.run_id)
    if run:
        known = {r.run_id: r for r in records}
        missing = [rid for rid in run if rid not in known]
        if missing:
            raise UserError(f"no finished run {missing[0]!r} under {results}; see `petbench compare --results "
                            f"{results}` or the folder names there")
        records = [known[rid] for rid in run]
    if not records:
        raise UserError(f"no finished runs under {results}; nothing to score")
    target = resolve_device(device)
    failures, done = 0, 0
    for record in records:
        rebuild = record.run_id in rebuildable
        if rebuild:  # every metric it describes that is installed, and those asked for
            described = [name for name in record.data["metrics"] if name in host.metrics]
            lacking = list(dict.fromkeys(described + list(names)))
            record.data["summary"] = {}
        else:
            lacking = [name for name in names if name not in record.scored_metrics()]
        if not lacking:
            continue
        try:
            with RunLock(results, record.run_id):  # not while another process writes this run
                failed = score_record(host, record, lacking, device=target, progress=not quiet, log=typer.echo,
                                      strict=strict, rebuild=rebuild)
        except RunBusy as busy:
            typer.echo(f"skipped: {busy}", err=True)
            continue
        failures += len(failed)
        done += 1
    typer.echo(f"scored {done} of {len(records)} finished runs" + (f"; {failures} metric(s) raised and were "
                                                                   "left out" if failures else ""))
    if failures:
        raise typer.Exit(1)


def add_to(app: typer.Typer) -> None:
    app.command("score")(score)
