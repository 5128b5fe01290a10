"""A dataset's split under a protocol, for a tool outside petbench: the manifest ``petbench split`` writes.

The manifest (``split.json``) names every subject of each split (train, unpaired, test and validation when
``n_val > 0``) with its DRF, units, the dataset's own files when it says which (``Dataset.source_files``)
and the files this command wrote; it holds the normalisation scale the host fits on the paired-train
standard dose, and the geometry (shape, affine) every test prediction must have. With volumes, the
training-side volumes (paired train, unpaired and validation) and the test subjects' low-dose inputs are
written as NIfTI; a test subject's standard dose never is.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from rich.progress import Progress

from ..atomic import atomic_write_json
from ..data.nifti import save_volume
from ..data.protocol import Protocol, Splits, split_subjects
from ..errors import UserError, plugin_code
from ..run_data import RunData, checked

MANIFEST = "split.json"
MANIFEST_VERSION = 1


class ProtocolSplit:
    """A dataset built from its options and split under ``protocol``, as a run would split it."""

    def __init__(self, host, dataset_name: str, options: dict, protocol: Protocol):
        self.entry = host.datasets.entry(dataset_name)
        self.protocol = protocol
        with plugin_code("dataset", self.entry, "construction"):
            self.dataset = self.entry.load()(**options)
        if protocol.drf not in self.dataset.drfs:
            raise UserError(f"dataset {self.dataset.name!r} has no DRF {protocol.drf}; "
                            f"valid: {', '.join(map(str, self.dataset.drfs))}")
        has_drf = getattr(self.dataset, "available_drfs", None)
        with self.blame("listing subjects"):
            self.splits: Splits = split_subjects(
                self.dataset.name, self.dataset.subject_ids(), protocol,
                (lambda sid: protocol.drf in has_drf(sid)) if has_drf else (lambda sid: True))
        self.data = RunData(self.dataset, self.splits, protocol, lambda: self.blame("loading data"))

    def blame(self, phase: str):
        return plugin_code("dataset", self.entry, phase)

    def load(self, subject_id: str, with_low_dose: bool):
        drfs = (self.protocol.drf,) if with_low_dose else ()
        with self.blame("loading data"):
            subject = self.dataset.load(subject_id, drfs)
        return checked(self.dataset, subject, self.protocol.drf) if with_low_dose else subject

    def source_files(self, subject_id: str) -> dict[str, str]:
        with self.blame("listing files"):
            files = self.dataset.source_files(subject_id) if hasattr(self.dataset, "source_files") else {}
        return {str(k): str(v) for k, v in (files or {}).items()}


#: the splits, their manifest names, and which volumes of a subject an outside tool may see
SPLIT_VOLUMES = (("train", "train", ("spet", "lpet")), ("unpaired", "unpaired", ("spet",)),
                 ("validation", "validation", ("spet", "lpet")), ("test", "test", ("lpet",)))


def write_split(split: ProtocolSplit, out: Path, *, volumes: bool, progress: bool = True,
                log: Callable[[str], None] = print) -> dict:
    """Write ``out/split.json`` (and with ``volumes`` the NIfTI files beside it); returns the manifest."""
    protocol, dataset = split.protocol, split.dataset
    drf = protocol.drf
    scale = split.data.scale  # fitted on the paired-train standard dose, as in a run
    manifest = {
        "petbench_split": MANIFEST_VERSION,
        "dataset": {"name": dataset.name, "plugin": split.entry.plugin, "dist": split.entry.dist,
                    "options": dataset.options, "units": dataset.units,
                    "normalization": dataset.normalization.describe()},
        "protocol": protocol.as_dict(),
        "drf": drf,
        "units": dataset.units,
        "scale": scale,
        "scale_note": "the host divides every volume by this scale (fitted on the paired-train standard dose) "
                      "before training and multiplies predictions back; predictions are in the dataset's units",
        "predictions": "one NIfTI file per test subject, named <subject>.nii.gz, in the test input's geometry "
                       "(shape and affine below) and units",
        "splits": {},
    }
    subjects = [(key, name, kinds, sid) for key, name, kinds in SPLIT_VOLUMES
                for sid in getattr(split.splits, key)]
    with Progress(disable=not progress) as bar:
        for key, name, kinds, sid in bar.track(subjects, description="writing the split"):
            needs_low_dose = "lpet" in kinds
            subject = split.load(sid, needs_low_dose)
            files = split.source_files(sid)
            if key == "test":  # the low-dose input only: not even the path of a test reference is handed out
                files = {k: v for k, v in files.items() if k == f"drf{drf}"}
            entry = {"id": sid, "drf": drf if needs_low_dose else None, "units": dataset.units,
                     "source_files": files}
            if key == "test":
                volume = subject.lpet[drf]
                entry["shape"] = [int(n) for n in volume.shape]
                entry["affine"] = np.asarray(subject.affine, dtype=float).round(6).tolist()
            if volumes:
                written = {}
                for kind in kinds:
                    volume = subject.spet if kind == "spet" else subject.lpet[drf]
                    file_name = "spet.nii.gz" if kind == "spet" else f"drf{drf}.nii.gz"
                    relative = f"{name}/{sid}/{file_name}"
                    save_volume(out / relative, volume, subject.affine, dataset.units)
                    written["spet" if kind == "spet" else f"drf{drf}"] = relative
                entry["files"] = written
            manifest["splits"].setdefault(name, []).append(entry)
    for _, name, _ in SPLIT_VOLUMES:
        manifest["splits"].setdefault(name, [])
    if not protocol.n_val:
        manifest["splits"].pop("validation")
    atomic_write_json(out / MANIFEST, manifest)
    counts = ", ".join(f"{len(v)} {k}" for k, v in manifest["splits"].items())
    log(f"wrote {out / MANIFEST} ({counts}; scale {scale:.6g} {dataset.units})"
        + (" and the volumes beside it (never a test subject's standard dose)" if volumes else ""))
    return manifest
