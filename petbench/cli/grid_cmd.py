"""``petbench grid``: run a whole table (a grid of runs) here or on SLURM; re-running it resumes."""
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import UserError
from ..grids.executors import (LocalExecutor, SlurmOptions, SubmititExecutor, parse_time_min, resolve_per_gpu,
                               resolve_workers)
from ..grids.run_grid import Plan, plan_grid, resolve_grid_preset, run_grid
from ..grids.spec import parse_entry, parse_int_list, resolve_grid
from ..options import parse_assignments
from ..paths import safe_name, writable_dir
from ..plugins import get_host
from ..results.record import read_record, report_problems, warn_line
from ..runner import DEFAULT_RESULTS
from .run_cmd import use_mlflow_uri

EXECUTORS = ("local", "slurm", "submitit-local")
STATUS_STYLE = {"finished": "green", "failed": "red", "interrupted": "yellow", "running": "yellow",
                "queued": "cyan", "pending": "dim"}


def grid(
    name: str = typer.Argument(..., metavar="GRID", help="table1, table2, label-efficiency, or a TOML "
                      "grid file (docs/grids.md)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d",
                                          help="Dataset (phantom, udpet, ...); required for table1/table2."),
    dataset_option: Optional[list[str]] = typer.Option(None, "--dataset-option", "-D",
                                                       help="Dataset option key=value (repeatable)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Where the dataset's files are (udpet)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Training seeds, e.g. 0,1,2 (default 0)."),
    drf: Optional[str] = typer.Option(None, "--drf", help="Dose reduction factor(s), e.g. 10 or 4,10,20 (default 10)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="auto (paper on a GPU, quick on a CPU), paper or quick."),
    n_train: Optional[str] = typer.Option(None, "--n-train", help="Paired training subjects, e.g. 30 or "
                                          "2,5,10,30 (an axis; default 30)."),
    n_test: Optional[int] = typer.Option(None, "--n-test", help="Test subjects (default 20)."),
    n_unpaired: Optional[str] = typer.Option(None, "--n-unpaired", help="Unpaired standard-dose subjects, e.g. 120 "
                                             "or 0,40,120 (an axis; default 120)."),
    split_seed: Optional[int] = typer.Option(None, "--split-seed", help="Seed of the subject split (default 0)."),
    n_val: Optional[int] = typer.Option(None, "--n-val", help="Paired validation subjects for model selection "
                                        "(default 0: the paper's protocol, every method scored at its last epoch)."),
    val_every: Optional[int] = typer.Option(None, "--val-every", help="With --n-val: validate every K epochs."),
    val_metric: Optional[str] = typer.Option(None, "--val-metric", help="With --n-val: the selection metric "
                                             "(default psnr)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metrics (default: all)."),
    methods: Optional[str] = typer.Option(None, "--methods", help="Run only these of the grid's methods "
                                          "(comma-separated; may name a table's optional rows)."),
    with_optional: bool = typer.Option(False, "--with-optional", help="table1/table2: also run the rows beyond the "
                                       "paper's that methods declare optional (e.g. the classical post-filters)."),
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of run records."),
    executor: str = typer.Option("local", "--executor", "-x", help="local, slurm, or submitit-local (submitit's "
                                 "local executor: SLURM's code path without a cluster)."),
    workers: str = typer.Option("auto", "--workers", help="local: parallel workers; auto = one per visible GPU "
                                "(one at a time without GPUs)."),
    workers_per_gpu: int = typer.Option(1, "--workers-per-gpu", help="Cells that share each GPU at once (on the "
                                        "CPU: cells at once); on SLURM, chains each job runs at once per GPU. "
                                        "Cells sharing a stage stay in order."),
    compile_modules: bool = typer.Option(False, "--compile", help="torch.compile each method's modules (CUDA "
                                         "graphs on a GPU); off by default, not part of a run's identity."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (default auto)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto, fp32, bf16 or fp16."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run failed cells again (resuming their checkpoint)."),
    force: bool = typer.Option(False, "--force", help="Run every cell again from scratch, finished ones included."),
    status: bool = typer.Option(False, "--status", help="Show every cell's status and run nothing."),
    no_predictions: bool = typer.Option(False, "--no-predictions", help="Do not save predicted volumes."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    partition: Optional[str] = typer.Option(None, "--partition", help="SLURM partition.", rich_help_panel="SLURM"),
    gpus_per_job: int = typer.Option(1, "--gpus-per-job", help="GPUs per SLURM job.", rich_help_panel="SLURM"),
    cpus_per_job: Optional[int] = typer.Option(None, "--cpus-per-job", help="CPUs per SLURM job.", rich_help_panel="SLURM"),
    mem_gb: Optional[float] = typer.Option(None, "--mem-gb", help="Memory per SLURM job in GB.", rich_help_panel="SLURM"),
    time_limit: str = typer.Option("24:00:00", "--time", help="Time limit per SLURM job (minutes, HH:MM:SS or "
                                   "D-HH:MM:SS); a job that reaches it is requeued and resumes.",
                                   rich_help_panel="SLURM"),
    array_parallelism: Optional[int] = typer.Option(None, "--array-parallelism",
                                                    help="At most this many SLURM jobs at once.", rich_help_panel="SLURM"),
    max_requeues: int = typer.Option(3, "--max-requeues", help="Time-outs after which a job is not requeued.",
                                     rich_help_panel="SLURM"),
    slurm_setup: Optional[list[str]] = typer.Option(None, "--slurm-setup", help="Shell line run before each job, "
                                                    "e.g. 'source .venv/bin/activate' (repeatable).",
                                                    rich_help_panel="SLURM"),
    slurm_param: Optional[list[str]] = typer.Option(None, "--slurm", help="Other submitit SLURM parameter key=value, "
                                                    "e.g. account=proj, qos=high, constraint=a100 (repeatable).",
                                                    rich_help_panel="SLURM"),
    slurm_folder: Optional[Path] = typer.Option(None, "--slurm-folder", help="Job logs and pickles "
                                                "(default <results>/.grids/<grid>/jobs).", rich_help_panel="SLURM"),
    wait_for_jobs: bool = typer.Option(True, "--wait/--no-wait", help="Wait for the SLURM jobs and print the summary, "
                                       "or submit and return.", rich_help_panel="SLURM"),
    strict: bool = typer.Option(False, "--strict", help="A cell's malformed run record is an error (default: a "
                                "warning, and the cell runs again)."),
    mlflow_uri: Optional[str] = typer.Option(None, "--mlflow-uri", help="MLflow tracking server for the runs (with "
                                             "petbench[mlflow]; default: the file store mlruns/ in --results)."),
) -> None:
    """Run a grid of runs: the paper's Table I (table1), Table II (table2) or a TOML grid.

    Finished cells are skipped, interrupted ones resume from their checkpoint, a failing cell is recorded and the others go on; run the same command again to continue. Exit code 1 if a cell failed.
    """  # noqa: E501 (one paragraph: Typer keeps the docstring's line breaks)
    if executor not in EXECUTORS:
        raise UserError(f"--executor {executor!r} is not valid: use {', '.join(EXECUTORS)}")
    writable_dir(results, "--results")
    use_mlflow_uri(mlflow_uri)
    datasets = None
    if dataset is not None:
        extra = parse_assignments(dataset_option)
        if data_root is not None:
            extra["data_root"] = str(data_root)
        datasets = [type(v)(v.name, {**v.options, **extra}) for v in parse_entry(dataset, "dataset")]
    elif dataset_option or data_root is not None:
        raise UserError("-D/--data-root need --dataset")
    wanted = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    spec = resolve_grid(
        name, datasets, optional=with_optional or bool(wanted),
        seeds=parse_int_list(seeds, "--seeds") if seeds is not None else None,
        drfs=parse_int_list(drf, "--drf") if drf is not None else None,
        preset=preset, n_train=parse_int_list(n_train, "--n-train") if n_train is not None else None,
        n_test=n_test, n_unpaired=parse_int_list(n_unpaired, "--n-unpaired") if n_unpaired is not None else None,
        split_seed=split_seed, n_val=n_val, val_every=val_every, val_metric=val_metric,
        metrics=[m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
        device=device, precision=precision, save_predictions=False if no_predictions else None,
        compile=True if compile_modules else None)
    if wanted:
        known = {m.name for m in spec.methods} | {m.label for m in spec.methods}
        missing = [m for m in wanted if m not in known]
        if missing:
            raise UserError(f"--methods: {missing[0]!r} is not in grid {spec.name!r} "
                            f"({', '.join(m.label for m in spec.methods)})")

    console = Console()
    log = lambda text: console.print(text, markup=False, highlight=False)  # noqa: E731
    host = get_host()
    grid_preset, preset_note = resolve_grid_preset(spec, "slurm" if executor == "slurm" else "local", gpus_per_job)
    plan = plan_grid(host, spec, results, preset=grid_preset, preset_note=preset_note)
    problems = [read_record(Path(results) / planned.task.run_id)[1] for planned in plan.cells]
    report_problems([p for p in problems if p], strict, warn_line, "its cell runs again")
    if status:
        print_summary(console, plan)
        return

    if executor == "local":
        runner = LocalExecutor(workers=resolve_workers(workers, workers_per_gpu), progress=not quiet)
    else:
        options = SlurmOptions(partition=partition, gpus_per_job=gpus_per_job, cpus_per_job=cpus_per_job,
                               mem_gb=mem_gb, time_min=parse_time_min(time_limit), array_parallelism=array_parallelism,
                               job_name=f"petbench-{spec.name}", setup=list(slurm_setup or []),
                               extra=parse_assignments(slurm_param), max_requeues=max_requeues)
        folder = slurm_folder or (Path(results) / ".grids" / safe_name(spec.name) / "jobs")
        runner = SubmititExecutor(folder=Path(folder), options=options,
                                  cluster="slurm" if executor == "slurm" else "local",
                                  name="slurm" if executor == "slurm" else "submitit-local",
                                  per_gpu=resolve_per_gpu(workers_per_gpu))
    try:
        outcome = run_grid(host, plan, runner, retry_failed=retry_failed, force=force, methods=wanted,
                           wait_for_jobs=wait_for_jobs, log=log)
    except KeyboardInterrupt:
        print_summary(console, plan)
        raise typer.Exit(130) from None
    print_summary(console, plan)
    if outcome.submitted:
        log(f"run `petbench grid {name} ... --status` (same options) to follow them, or the same command to resume")
        return
    if spec.table and not outcome.failed:
        log(f"next: petbench compare --table {spec.table} --results {results}")
    elif not outcome.failed and plan.cells and plan.cells[0].cell.varied:
        axis = plan.cells[0].cell.varied[-1]
        log(f"next: petbench compare --by {axis} --results {results}; "
            f"petbench figure efficiency --x {axis} --results {results} --out efficiency.png")
    if outcome.failed:
        log(f"{len(outcome.failed)} cell(s) failed; see the errors above, then run again with --retry-failed")
        raise typer.Exit(1)


def print_summary(console: Console, plan: Plan) -> None:
    varied = plan.cells[0].cell.varied if plan.cells else ()
    table = Table("Method", "Dataset", "DRF", *varied, "Seed", "Status", "Run / error", title=f"grid {plan.spec.name}",
                  caption=plan.summary_line().partition(": ")[2] + f" — {plan.preset_note}")
    for planned in plan.cells:
        cell = planned.cell
        detail = planned.note or planned.task.run_id
        if planned.error:
            detail = first_line(planned.error)
        table.add_row(Text(cell.method.label), Text(cell.dataset.label), str(cell.drf),
                      *(str(getattr(cell, axis)) for axis in varied), str(cell.seed),
                      Text(planned.status, style=STATUS_STYLE.get(planned.status, "")), Text(detail))
    console.print(table)


def first_line(text: str, width: int = 120) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= width else line[:width - 1] + "…"


def add_to(app: typer.Typer) -> None:
    app.command("grid")(grid)
