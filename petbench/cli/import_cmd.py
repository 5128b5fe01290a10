"""``petbench import``: predictions made by any tool, checked, scored and recorded as a run marked external."""
from pathlib import Path
from typing import Optional

import typer

from ..data.protocol import Protocol
from ..errors import UserError
from ..external.predictions import ExternalMethod, import_predictions
from ..external.split import ProtocolSplit
from ..paths import writable_dir
from ..plugins import get_host
from ..runner import DEFAULT_RESULTS
from .run_cmd import print_run
from .split_cmd import dataset_options


def parse_places(places: Optional[list[str]]) -> dict[int, int]:
    """``--place 1:5`` (Table I, position 5) -> ``{1: 5}``."""
    parsed = {}
    for text in places or []:
        table, _, position = text.partition(":")
        try:
            table_number, position_number = int(table), float(position)
        except ValueError:
            raise UserError(f"--place {text!r}: give TABLE:POSITION, e.g. 1:5 (Table I, after the rows placed "
                            f"before 5)") from None
        if table_number not in (1, 2):
            raise UserError(f"--place {text!r}: the table is 1 or 2")
        parsed[table_number] = int(position_number) if position_number.is_integer() else position_number
    return parsed


def import_command(
    name: str = typer.Option(..., "--name", help="Your method's name (its rows in compare and the tables)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="The dataset the predictions are of."),
    predictions: Path = typer.Option(..., "--predictions", help="Folder of <subject>.nii.gz, one per test subject."),
    drf: int = typer.Option(10, "--drf", help="Dose reduction factor of the low-dose input that was predicted from."),
    description: str = typer.Option("", "--description", help="How the predictions were made (kept in the record)."),
    parameters: Optional[int] = typer.Option(None, "--parameters", help="The method's parameter count, if known."),
    display_name: Optional[str] = typer.Option(None, "--display-name", help="Row label (default: --name)."),
    place: Optional[list[str]] = typer.Option(None, "--place", help="TABLE:POSITION, e.g. 1:5: the row's place in "
                                              "Table I or II (repeatable; the shipped methods' places are 10, 20, ...)."),
    seed: int = typer.Option(0, "--seed", help="The training seed of the predictions (import each seed's "
                             "predictions for a seed spread)."),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the subject split."),
    n_train: int = typer.Option(30, "--n-train", help="Paired training subjects."),
    n_test: int = typer.Option(20, "--n-test", help="Test subjects."),
    n_unpaired: int = typer.Option(120, "--n-unpaired", help="Unpaired standard-dose subjects."),
    n_val: int = typer.Option(0, "--n-val", help="Paired validation subjects of the protocol."),
    dataset_option: Optional[list[str]] = typer.Option(None, "--dataset-option", "-D",
                                                       help="Dataset option key=value, as for run (repeatable)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Where the dataset's files are (udpet, folder)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metrics (default: all)."),
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of run records."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Score predictions made outside petbench as a trained run is scored, and record them (marked external).

    The folder must hold exactly the protocol's test subjects (see `petbench split`), each on its reference's
    grid, in its units, with finite values. Importing the same files again does nothing."""
    writable_dir(results, "--results")
    host = get_host()
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    for metric in names or []:
        host.metrics.entry(metric)  # an unknown metric is an error before any work
    method = ExternalMethod(name=name, description=description, parameters=parameters, display_name=display_name,
                            table_places=parse_places(place), seed=seed)
    if parameters is not None and parameters < 0:
        raise UserError(f"--parameters must be 0 or more, not {parameters}")
    protocol = Protocol(n_train=n_train, n_test=n_test, n_unpaired=n_unpaired, split_seed=split_seed, drf=drf,
                        n_val=n_val)
    the_split = ProtocolSplit(host, dataset, dataset_options(dataset_option, data_root), protocol)
    record, made = import_predictions(host, the_split, predictions, method, results, metric_names=names,
                                      progress=not quiet, log=typer.echo)
    if made:
        from rich.console import Console

        print_run(Console(), record)


def add_to(app: typer.Typer) -> None:
    app.command("import")(import_command)
