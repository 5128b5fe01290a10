"""``petbench run``: train, evaluate, record, print the metric table."""
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ..data.protocol import Protocol
from ..options import parse_assignments
from ..paths import writable_dir
from ..plugins import get_host
from ..runner import DEFAULT_RESULTS, RunConfig, execute


def run(
    method: str = typer.Option(..., "--method", "-m", help="A registered method (see `petbench list methods`)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="A registered dataset (see `petbench list datasets`)."),
    drf: int = typer.Option(10, "--drf", help="Dose reduction factor of the low-dose input."),
    preset: str = typer.Option("auto", "--preset", help="auto (paper on a GPU, quick on a CPU), paper, quick, or one of the method's own presets (petbench info METHOD)."),
    seed: int = typer.Option(0, "--seed", help="Training seed."),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the subject split."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 on a GPU), fp32, bf16 or fp16."),
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of run records."),
    n_train: int = typer.Option(30, "--n-train", help="Paired training subjects."),
    n_test: int = typer.Option(20, "--n-test", help="Test subjects."),
    n_unpaired: int = typer.Option(120, "--n-unpaired", help="Unpaired standard-dose subjects."),
    n_val: int = typer.Option(0, "--n-val", help="Paired validation subjects, disjoint from the other splits: "
                              "the test set is scored with the best validation epoch's weights (default 0: the "
                              "paper's protocol, the last epoch)."),
    val_every: int = typer.Option(1, "--val-every", help="With --n-val: score the validation subjects every K epochs "
                                  "(and at the last)."),
    val_metric: str = typer.Option("psnr", "--val-metric", help="With --n-val: the metric that picks the best epoch."),
    predict_batch_size: int = typer.Option(32, "--predict-batch-size", help="Slices per predict() call in "
                                           "evaluation (memory only; the result and the run id do not change)."),
    sync_every: int = typer.Option(50, "--sync-every", help="Training steps between reads of the losses to the host "
                                   "(progress bar, NaN/Inf guard); a diverged run stops within this many steps."),
    checkpoint_every: str = typer.Option("epoch", "--checkpoint-every", help="When to write the checkpoint: 'epoch' "
                                         "(each epoch's end), N steps (e.g. 500) or a time (e.g. 30m, 90s, 2h), "
                                         "checked every --sync-every steps; resume is exact either way."),
    option: Optional[list[str]] = typer.Option(None, "--option", "-o", help="Method option key=value (repeatable)."),
    dataset_option: Optional[list[str]] = typer.Option(None, "--dataset-option", "-D",
                                                       help="Dataset option key=value (repeatable)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Where the dataset's files are (udpet, folder)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metrics (default: all)."),
    no_predictions: bool = typer.Option(False, "--no-predictions", help="Do not save predicted volumes."),
    force: bool = typer.Option(False, "--force", help="Run again even if this run already finished."),
    wait: bool = typer.Option(False, "--wait", help="If another process is running this run, wait for it "
                              "(default: say which process and exit with code 2)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    compile_modules: bool = typer.Option(False, "--compile", help="torch.compile the method's modules (CUDA graphs "
                                         "on a GPU); off by default, not part of the run's identity."),
    mlflow_uri: Optional[str] = typer.Option(None, "--mlflow-uri", help="MLflow tracking server for the run (with "
                                             "petbench[mlflow]; default: the file store mlruns/ in --results)."),
) -> None:
    """Train METHOD on DATASET under the semi-supervised protocol, evaluate, and record the run."""
    writable_dir(results, "--results")
    use_mlflow_uri(mlflow_uri)
    dataset_options = parse_assignments(dataset_option)
    if data_root is not None:
        dataset_options["data_root"] = str(data_root)
    config = RunConfig(
        method=method, dataset=dataset, method_options=parse_assignments(option), dataset_options=dataset_options,
        protocol=Protocol(n_train=n_train, n_test=n_test, n_unpaired=n_unpaired, split_seed=split_seed, drf=drf,
                          n_val=n_val, val_every=val_every, val_metric=val_metric),
        seed=seed, preset=preset, device=device, precision=precision,
        metrics=[m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
        save_predictions=not no_predictions, predict_batch_size=predict_batch_size, sync_every=sync_every,
        checkpoint_every=checkpoint_every, compile=compile_modules)
    console = Console()
    log = lambda text: console.print(text, markup=False, highlight=False)  # noqa: E731
    if config.metrics:
        for name in config.metrics:
            get_host().metrics.entry(name)  # an unknown metric is a UserError before any work
    record = execute(get_host(), config, results, force=force, progress=not quiet, log=log, wait=wait,
                     warn=lambda text: typer.echo(text, err=True))
    print_run(console, record)


def use_mlflow_uri(uri: Optional[str]) -> None:
    """``--mlflow-uri``: the MLflow logger (petbench.loggers.mlflow) and grid workers read it from the environment."""
    if uri:
        import os

        from ..loggers.mlflow import URI_VARIABLE

        os.environ[URI_VARIABLE] = uri


def print_run(console: Console, record) -> None:
    table = Table("Metric", "Mean ± std", "n", title=f"{record.method} on {record.dataset} "
                  f"(DRF {record.data['protocol']['drf']}, seed {record.data['config']['seed']})")
    for name, stats in record.summary.items():
        info = record.data["metrics"][name]
        arrow = "↑" if info["higher_is_better"] else "↓"
        table.add_row(f"{name} {arrow}", f"{stats['mean']:.4f} ± {stats['std']:.4f}", str(stats["n"]))
    console.print(table)
    timings = record.data.get("timings", {})
    parameters = record.data['method'].get('parameters')
    console.print(f"parameters: {'unknown' if parameters is None else format(parameters, ',')}   "
                  f"total: {timings.get('total_s', 0):.1f} s   record: {record.path}", markup=False, highlight=False)


def add_to(app: typer.Typer) -> None:
    app.command("run")(run)



