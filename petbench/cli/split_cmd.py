"""``petbench split``: a dataset's split under a protocol, written for a tool outside petbench."""
from pathlib import Path
from typing import Optional

import typer

from ..data.protocol import Protocol
from ..external.split import ProtocolSplit, write_split
from ..options import parse_assignments
from ..paths import writable_dir
from ..plugins import get_host


def dataset_options(dataset_option: Optional[list[str]], data_root: Optional[Path]) -> dict:
    options = parse_assignments(dataset_option)
    if data_root is not None:
        options["data_root"] = str(data_root)
    return options


def split(
    dataset: str = typer.Option(..., "--dataset", "-d", help="A registered dataset (see `petbench list datasets`)."),
    out: Path = typer.Option(..., "--out", help="Folder to write split.json (and with --volumes the NIfTI files) in."),
    drf: int = typer.Option(10, "--drf", help="Dose reduction factor of the low-dose input."),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the subject split."),
    n_train: int = typer.Option(30, "--n-train", help="Paired training subjects."),
    n_test: int = typer.Option(20, "--n-test", help="Test subjects."),
    n_unpaired: int = typer.Option(120, "--n-unpaired", help="Unpaired standard-dose subjects."),
    n_val: int = typer.Option(0, "--n-val", help="Paired validation subjects (default 0: none, the paper's protocol)."),
    dataset_option: Optional[list[str]] = typer.Option(None, "--dataset-option", "-D",
                                                       help="Dataset option key=value, as for run (repeatable)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Where the dataset's files are (udpet, folder)."),
    volumes: bool = typer.Option(False, "--volumes", help="Also write the training-side volumes and the test "
                                 "subjects' low-dose inputs as NIfTI (never a test subject's standard dose)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write the protocol's split of DATASET (train, unpaired, test, validation) as split.json.

    An outside tool trains on exactly the subjects a plugin would, predicts the test subjects and hands
    the predictions to `petbench import` (docs/external.md)."""
    writable_dir(out, "--out")
    protocol = Protocol(n_train=n_train, n_test=n_test, n_unpaired=n_unpaired, split_seed=split_seed, drf=drf,
                        n_val=n_val)
    the_split = ProtocolSplit(get_host(), dataset, dataset_options(dataset_option, data_root), protocol)
    write_split(the_split, out, volumes=volumes, progress=not quiet, log=typer.echo)


def add_to(app: typer.Typer) -> None:
    app.command("split")(split)
