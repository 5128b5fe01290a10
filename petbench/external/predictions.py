"""Predictions made by any tool, checked against the protocol's test split, scored as a trained run is,
and recorded as a run marked external (``petbench import``).

The record is the same kind as a trained run's, so compare, the tables, the figures, ``score`` and the
statistics read it unchanged; only its ``provenance`` block (``kind: external``: the files' SHA-256, the
description) and the method's missing plugin tell it apart. Its identity is the predictions' content:
importing the same files again finds the finished record and does nothing, changed files make a new one.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from ..data.nifti import load_volume, save_volume
from ..errors import PluginRunError, UserError, plugin_code
from ..paths import shown_path
from ..results.environment import environment
from ..results.identity import IDENTITY_VERSION, run_id_for
from ..results.lock import RunLock
from ..results.record import RunRecord
from ..scoring import metric_info, score_subject, summarise
from .split import ProtocolSplit

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
AFFINE_TOLERANCE = 1e-3  # mm: NIfTI stores the affine in float32
SUFFIXES = (".nii.gz", ".nii")


@dataclass
class ExternalMethod:
    """What the user says of the predictions' method."""

    name: str
    description: str = ""
    parameters: int | None = None
    display_name: str | None = None
    table_places: dict[int, int] = field(default_factory=dict)  # table -> position
    seed: int = 0


def check_name(host, name: str) -> None:
    if not NAME.match(name or ""):
        raise UserError(f"--name {name!r}: use letters, digits and _ . + - (at most 64, starting with a letter "
                        f"or digit); it names the run's folder")
    if name in host.methods:
        raise UserError(f"--name {name!r} is a registered method; give your predictions' method its own name")


def prediction_files(folder: Path) -> dict[str, Path]:
    """``{subject id: file}`` for every NIfTI file in ``folder`` (not below it); anything else is an error."""
    if not folder.is_dir():
        raise UserError(f"--predictions {folder} is not a folder; give the folder of <subject>.nii.gz files")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        suffix = next((s for s in SUFFIXES if path.name.endswith(s)), None)
        if suffix is None or not path.is_file() or path.is_symlink():
            what = "a link" if path.is_symlink() else "a folder" if path.is_dir() else "not a .nii or .nii.gz file"
            raise UserError(f"{shown_path(path)}: {what}; the predictions folder holds one <subject>.nii.gz file per test "
                            f"subject and nothing else")
        subject = path.name[:-len(suffix)]
        if subject in found:
            raise UserError(f"{shown_path(path)}: subject {shown_path(subject)} has two files "
                            f"({shown_path(found[subject].name)} and {shown_path(path.name)}); "
                            f"keep one")
        found[subject] = path
    return found


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_volume(path: Path, subject, units: str) -> np.ndarray:
    """The prediction in ``path`` as ``[z, y, x]`` float32, after checking it against the reference subject."""
    volume, affine = load_volume(path)
    reference = subject.spet
    if volume.shape != reference.shape:
        raise UserError(f"{path}: shape {volume.shape[::-1]} (x, y, z) differs from the reference "
                        f"{reference.shape[::-1]}; predict on the test input's grid (see split.json)")
    if not np.allclose(affine, subject.affine, atol=AFFINE_TOLERANCE):
        raise UserError(f"{path}: its affine differs from the reference's by up to "
                        f"{np.abs(affine - subject.affine).max():.4g} mm; save it with the test input's affine")
    described = nib.load(str(path)).header["descrip"].tobytes().split(b"\0")[0].decode("utf-8", "replace").strip()
    if described and described != units:
        raise UserError(f"{path}: its header says units {described!r}, the reference is in {units!r}; "
                        f"convert it (or leave the header's descrip empty if it is in {units})")
    bad = int(np.count_nonzero(~np.isfinite(volume)))
    if bad:
        raise UserError(f"{path}: {bad} voxel(s) are NaN or infinite; every voxel must be a finite number")
    return volume


def import_predictions(host, split: ProtocolSplit, folder: Path, method: ExternalMethod, results_dir: Path, *,
                       metric_names: list[str] | None = None, save_predictions: bool = True,
                       progress: bool = True, log: Callable[[str], None] = print) -> tuple[RunRecord, bool]:
    """Check, score and record the predictions in ``folder``; returns ``(record, made)`` where ``made`` is
    False when the same files were imported already. Every problem is a :class:`UserError` raised before
    anything is written."""
    check_name(host, method.name)
    folder = Path(folder)
    files = prediction_files(folder)
    test = list(split.splits.test)
    missing = [sid for sid in test if sid not in files]
    if missing:
        raise UserError(f"{folder / (missing[0] + '.nii.gz')}: missing; the test split has {len(test)} subjects "
                        f"and {len(missing)} have no prediction (see `petbench split`)")
    extra = sorted(set(files) - set(test))
    if extra:
        raise UserError(f"{shown_path(files[extra[0]])}: subject {shown_path(extra[0])} is not in the protocol's test split "
                        f"({len(extra)} such file(s)); remove it or check --n-test/--split-seed/--dataset-option")
    digests = {sid: sha256(files[sid]) for sid in test}
    dataset, entry, protocol = split.dataset, split.entry, split.protocol
    identity = {"version": IDENTITY_VERSION,
                "method": {"name": method.name, "external": True,
                           "predictions": hashlib.sha256("".join(f"{s}:{d}\n" for s, d in sorted(digests.items()))
                                                         .encode()).hexdigest()},
                "dataset": {"name": dataset.name, "options": dataset.options, "dist": entry.dist,
                            "fingerprint": dataset.fingerprint()},
                "protocol": protocol.as_dict(), "seed": int(method.seed)}
    run_id = run_id_for(identity)
    run_dir = Path(results_dir) / run_id
    names = list(metric_names or host.metrics.names())
    metrics = [host.metrics.get(name) for name in names]
    entries = {name: host.metrics.entry(name) for name in names}
    with RunLock(Path(results_dir), run_id):
        existing = RunRecord.load(run_dir)
        if existing is not None and existing.finished:
            log(f"these predictions were imported already as run {run_id}; nothing to do")
            return existing, False
        with plugin_code("dataset", entry, "loading data"):
            dataset.prepare(test, (protocol.drf,))
        rows, volumes = [], {}
        with Progress(disable=not progress) as bar:
            for sid in bar.track(test, description=f"scoring {method.name}"):
                subject = split.load(sid, with_low_dose=True)
                volume = check_volume(files[sid], subject, dataset.units)
                volumes[sid] = (volume, subject.affine)
                for metric in list(metrics):
                    try:
                        values = score_subject([metric], volume, subject,
                                               lambda m: plugin_code("metric", entries[m.name], "scoring"))
                    except PluginRunError as exc:
                        if metric_names:
                            raise UserError(exc.line()) from None
                        log(f"{exc.line()}; it is left out of this run")
                        metrics.remove(metric)
                        rows = [row for row in rows if row["metric"] != metric.name]
                        continue
                    rows += [{"subject": sid, "metric": n, "value": v} for n, v in values.items()]
        frame = pd.DataFrame(rows, columns=["subject", "metric", "value"])
        scored = set(frame["metric"])
        record = RunRecord(run_dir, external_record(run_id, identity, method, split, metrics, entries, scored,
                                                    folder, {sid: (files[sid].name, digests[sid]) for sid in test}))
        record.data["summary"] = summarise(frame)
        try:
            record.write_rows(frame)
            if save_predictions:  # copies, so that `petbench score` and the figures find them as for a run
                for sid, (volume, affine) in volumes.items():
                    save_volume(run_dir / "predictions" / f"{sid}.nii.gz", volume, affine, dataset.units)
            record.save()  # last: a record exists only once everything it names does
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
    log(f"imported {method.name}: run {run_id} ({len(test)} test subjects, metrics {', '.join(sorted(scored))})")
    return record, True


def external_record(run_id: str, identity: dict, method: ExternalMethod, split: ProtocolSplit, metrics, entries,
                    scored: set, folder: Path, files: dict[str, tuple[str, str]]) -> dict:
    """A finished run record like a trained one, with ``provenance.kind == "external"``."""
    from ..runner import now

    dataset, entry, protocol = split.dataset, split.entry, split.protocol
    display = method.display_name or method.name
    info = {"name": method.name, "plugin": "", "dist": "", "description": method.description,
            "options": {}, "source": None, "parameters": method.parameters, "display_name": display,
            "training_sources": [], "stages": []}
    if method.table_places:
        info["table_places"] = {str(t): [p, display] for t, p in sorted(method.table_places.items())}
    applicable = [m for m in metrics if m.name in scored]
    record = {
        "run_id": run_id, "status": "finished", "started_at": now(), "finished_at": now(),
        "identity": identity,
        "config": {"method": method.name, "method_options": {}, "dataset": dataset.name,
                   "dataset_options": dataset.options, "protocol": protocol.as_dict(), "seed": int(method.seed),
                   "metrics": [m.name for m in metrics], "preset": None, "device": "cpu"},
        "method": info,
        "dataset": {"name": dataset.name, "plugin": entry.plugin, "dist": entry.dist, "options": dataset.options,
                    "units": dataset.units, "normalization": dataset.normalization.describe()},
        "protocol": protocol.as_dict(),
        "splits": split.splits.as_dict(),
        "metrics": {m.name: metric_info(m, entries[m.name]) for m in applicable},
        "environment": environment(torch.device("cpu"), [entry.dist]),  # where it was scored
        "provenance": {"kind": "external", "description": method.description, "parameters": method.parameters,
                       "imported_from": str(folder.resolve()),
                       "files": {sid: {"file": name, "sha256": digest} for sid, (name, digest) in files.items()}},
        "summary": {}, "timings": {}, "error": None,
    }
    not_applicable = sorted(m.name for m in metrics if m.name not in scored)
    if not_applicable:
        record["metrics_not_applicable"] = not_applicable
    return record
