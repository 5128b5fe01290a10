"""``petbench data generate phantom --subjects N --drf 10,20 --out DIR``: write simulated subjects
as ``DIR/<subject>/spet.nii.gz`` and ``DIR/<subject>/lpet_drf<N>.nii.gz``."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import UserError
from ..options import parse_assignments
from .data_cmd import data_app


@data_app.command("generate")
def generate_command(
    dataset: str = typer.Argument(..., help="What to generate: phantom (the only generated dataset)."),
    subjects: int = typer.Option(20, "--subjects", help="Number of subjects (phantom-0000, phantom-0001, ...)."),
    drf: str = typer.Option("10", "--drf", help="Dose reduction factors, comma-separated (2,4,10,20,50,100)."),
    anatomy: str = typer.Option("brain", "--anatomy", help="brain (128³ head block) or torso."),
    seed: int = typer.Option(0, "--seed", help="Subject i is a function of (seed, i)."),
    size: int = typer.Option(128, "--size", help="Voxels per side; smaller keeps the field of view."),
    out: Path = typer.Option(..., "--out", help="Output folder (existing valid files are kept)."),
    option: Optional[List[str]] = typer.Option(None, "--option", "-o",
                                               help="Other phantom option key=value, e.g. counts=2e5 (repeatable)."),
) -> None:
    """Simulate phantom subjects and write them as NIfTI, with a progress bar."""
    from ..datasets.phantom import SubjectStore, generate_subjects, subject_id
    from ..default_plugins.phantom import Phantom

    if dataset != "phantom":
        raise UserError(f"only the built-in 'phantom' dataset can be generated, not {dataset!r}")
    if subjects < 1:
        raise UserError(f"--subjects must be at least 1, not {subjects}")
    drfs = parse_drfs(drf)
    options = {**parse_assignments(option), "anatomy": anatomy, "seed": seed, "size": size, "n_subjects": subjects}
    phantom = Phantom(**options)
    drfs = phantom.checked_drfs(drfs)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    store = SubjectStore(out)
    before = sum(all(store.has(subject_id(i), kind) for kind in (None, *drfs)) for i in range(subjects))
    generate_subjects(phantom.config, store, range(subjects), drfs, verify=True)  # a bad existing file is redone
    typer.echo(f"{subjects} subjects in {out} ({before} were already complete); "
               f"DRF {', '.join(map(str, drfs))}; {phantom.config.anatomy} {phantom.config.size}³")


def parse_drfs(text: str) -> tuple[int, ...]:
    try:
        drfs = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"--drf {text!r} is not a comma-separated list of integers (e.g. 10,20)") from None
    if not drfs:
        raise UserError("--drf needs at least one dose reduction factor (e.g. 10)")
    return drfs
