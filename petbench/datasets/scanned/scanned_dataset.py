"""A :class:`~petbench.Dataset` backed by a scanned :class:`Index` (the ``udpet`` and ``folder`` datasets).

Subclasses say where the root comes from and how to scan it; this class gives them
``subject_ids`` (usable subjects only), ``available_drfs``, ``load``, ``prepare``,
``fingerprint`` and ``inspect`` (what ``petbench data inspect`` prints).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...data.subject import Subject
from ...dataset import Dataset
from ...errors import UserError
from .cache import ConversionCache
from .collection import NIFTI_READERS, Converter, Index, VolumeReader, prepare
from .labels import LABELS_DIR
from .names import FULL_DOSE
from .preprocess import CROP_MODES, describe
from .problems import Problem, log_problems, logger


@dataclass
class InspectReport:
    """What a data root holds, for ``petbench data inspect``."""

    dataset: str
    root: str
    settings: dict[str, str]
    rows: list[dict[str, str]]  # one per subject found: id, scanner, drfs, shape, spacing, units, suv, status
    problems: list[Problem] = field(default_factory=list)

    @property
    def usable(self) -> int:
        return sum(row["status"] == "usable" for row in self.rows)


class ScannedDataset(Dataset):
    """Base of datasets read from a user's folder; subclasses implement :meth:`scan`."""

    root_env: str = ""  # environment variable that may hold the data root

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        root = str(self.options.get("data_root") or os.environ.get(self.root_env, "")).strip()
        if not root:
            raise UserError(self.no_root_message())
        self.check_choice("crop", CROP_MODES)
        if int(self.options["size"]) < 1:
            raise UserError(f"dataset {self.name!r} option size={self.options['size']} must be a positive integer")
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise UserError(f"{self.name} data root {self.root} does not exist or is not a folder")
        self.options["data_root"] = str(self.root)  # the fingerprint names the data actually read
        self.cache = ConversionCache(self.name)
        self._index: Index | None = None

    # -- what subclasses provide ---------------------------------------------------------------
    def no_root_message(self) -> str:
        return f"dataset {self.name!r} needs --data-root DIR (or {self.root_env})"

    def scan(self) -> Index:
        raise NotImplementedError

    def to_suv(self) -> bool:
        """Whether loaded volumes are converted to SUV."""
        return False

    def volume_readers(self) -> dict[str, VolumeReader]:
        """How each kind of source found by :meth:`scan` is read when converted."""
        return NIFTI_READERS

    # -- helpers -------------------------------------------------------------------------------
    def check_choice(self, key: str, choices) -> None:
        if self.options[key] not in choices:
            raise UserError(f"dataset {self.name!r} option {key}={self.options[key]!r} is not one of "
                            f"{', '.join(choices)}")

    @property
    def index(self) -> Index:
        """The scanned root; its problems are logged as warnings once (a skipped subject never goes unnoticed)."""
        if self._index is None:
            self._index = self.scan()
            log_problems(self._index.problems, self.name)
            logger.info("%s: %d usable subjects under %s (%d found)", self.name, len(self._index.usable_ids()),
                        self.root, len(self._index.subjects))
        return self._index

    @property
    def converter(self) -> Converter:
        return Converter(self.cache, self.options["crop"], int(self.options["size"]), self.units, self.name,
                         to_suv=self.to_suv(), readers=self.volume_readers(), labels_root=self.root / LABELS_DIR)

    # -- the Dataset API -----------------------------------------------------------------------
    def subject_ids(self) -> list[str]:
        """Subjects with a readable standard dose (unpaired-SPET candidates); see :meth:`available_drfs`."""
        ids = self.index.usable_ids()
        if not ids:
            faults = [p for p in self.index.problems if not p.notice]
            first = f"; first: {faults[0].line()}" if faults else ""
            raise UserError(f"{self.name}: no usable subject under {self.root} ({len(faults)} problems{first}); "
                            f"run `petbench data inspect {self.name} --data-root {self.root}`")
        return ids

    def available_drfs(self, subject_id: str) -> tuple[int, ...]:
        """The low doses this subject can be loaded with (empty for a standard-dose-only subject)."""
        return self.index.record(subject_id, self.name).drfs

    def load(self, subject_id: str, drfs: tuple[int, ...] = ()) -> Subject:
        return self.converter.load(self.index.record(subject_id, self.name), tuple(drfs))

    def prepare(self, subject_ids: list[str], drfs: tuple[int, ...]) -> None:
        prepare(self.converter, self.index, list(subject_ids), tuple(drfs), self.name)

    def source_files(self, subject_id: str) -> dict[str, str]:
        """The files (or DICOM series folders) each dose is read from: ``spet`` and ``drf<N>``."""
        sources = self.index.record(subject_id, self.name).sources
        return {("spet" if drf == FULL_DOSE else f"drf{drf}"): str(source.path) for drf, source in sorted(sources.items())}

    def fingerprint(self) -> dict[str, Any]:
        """Name + options + a digest of the usable sources, so changed data never reuses old stages."""
        content = [(sid, drf, source.signature) for sid in self.index.usable_ids()
                   for drf, source in sorted(self.index.subjects[sid].sources.items())]
        digest = hashlib.sha256(json.dumps(content).encode()).hexdigest()[:16]
        return {"name": self.name, "options": self.options, "content": digest}

    def inspect(self) -> InspectReport:
        """Every subject found and every problem (the report shows them: nothing is logged)."""
        if self._index is None:
            self._index = self.scan()
        rows = []
        for subject_id in sorted(self.index.subjects):
            record = self.index.subjects[subject_id]
            reference = record.reference
            info = reference.info if reference else None
            spacing = ""
            if info is not None:
                zooms = np.sqrt((info.affine_array[:3, :3] ** 2).sum(axis=0))
                spacing = " x ".join(f"{z:.4g}" for z in zooms[::-1])
            if record.usable:
                status = "usable"
            elif record.sources and "challenge-test" in record.layout:
                status = "low dose only"
            else:
                status = "skipped"
            suv = [record.sources[d].info.suv_factor is not None for d in record.sources]
            rows.append({
                "id": subject_id, "scanner": record.scanner, "layout": record.layout,
                "full": "yes" if FULL_DOSE in record.sources else "no",
                "drfs": " ".join(str(d) for d in record.drfs) or "-",
                "shape": " x ".join(str(n) for n in info.shape) if info else "-",
                "spacing": spacing or "-",
                "units": self.units,
                "suv": "yes" if suv and all(suv) else ("partly" if any(suv) else "no"),
                "status": status,
            })
        settings = {"preprocessing": describe(self.options["crop"], int(self.options["size"])),
                    **{k: str(v) for k, v in self.options.items() if k not in ("data_root", "crop", "size")}}
        return InspectReport(self.name, str(self.root), settings, rows, list(self.index.problems))
