"""A scanned data root: its subjects, their usable sources, every problem; conversion through the cache.

Shared by the ``udpet`` and ``folder`` datasets. Scanning checks each source from its headers
(DICOM: every file's header; NIfTI: the whole volume once) and checks the doses of a subject
against each other; a subject is *usable* when its standard dose passed. Converting (the pixels
of a DICOM series, the preprocessing crop) happens on first load and is cached. How a source of
each kind is read is the dataset's to say (``read_info`` at the scan, ``readers`` when converting).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ...data.subject import Subject
from ...data.volume_checks import degenerate
from ...errors import UserError
from .cache import ConversionCache
from .labels import read_label_maps
from .names import FULL_DOSE, FoundSource, dose_label
from .nifti_source import nifti_volume
from .preprocess import Block, choose_block, crop, crop_affine
from .problems import Problem, SourceProblem, logger
from .source_info import SourceInfo

AFFINE_TOLERANCE_MM = 1e-2


@dataclass
class Source:
    """One usable dose of a subject."""

    drf: int
    path: Path
    kind: str  # "dicom" or "nifti"
    info: SourceInfo
    signature: str


@dataclass
class SubjectRecord:
    id: str
    location: Path  # the subject's folder (the file itself for a one-file subject)
    layout: str
    sources: dict[int, Source] = field(default_factory=dict)  # usable doses, by DRF (1 = full dose)
    problems: list[Problem] = field(default_factory=list)
    scanner: str = "unknown"

    @property
    def usable(self) -> bool:
        return FULL_DOSE in self.sources

    @property
    def drfs(self) -> tuple[int, ...]:
        return tuple(sorted(d for d in self.sources if d != FULL_DOSE))

    @property
    def reference(self) -> Source | None:
        """The source the others must match and the crop is decided on: the full dose, else the lowest DRF."""
        if not self.sources:
            return None
        return self.sources.get(FULL_DOSE) or self.sources[min(self.sources)]


@dataclass
class Index:
    """Everything found under a data root."""

    root: Path
    subjects: dict[str, SubjectRecord]
    problems: list[Problem]  # every problem, the subjects' included

    def usable_ids(self) -> list[str]:
        return sorted(sid for sid, record in self.subjects.items() if record.usable)

    def record(self, subject_id: str, dataset: str) -> SubjectRecord:
        record = self.subjects.get(subject_id)
        if record is None:
            raise UserError(f"{dataset}: no subject {subject_id!r} under {self.root} "
                            f"({len(self.usable_ids())} usable subjects found)")
        return record


InfoReader = Callable[[FoundSource], SourceInfo]
SourceFilter = Callable[[FoundSource, SourceInfo], "Problem | None"]


def build_record(subject_id: str, location: Path, layout: str, found: list[FoundSource], read_info: InfoReader,
                 accept: SourceFilter, expected_drfs: tuple[int, ...], needs_full_dose: bool = True) -> SubjectRecord:
    """Check one subject's sources and keep the usable ones; every reason to drop one is a problem."""
    record = SubjectRecord(subject_id, location, layout)
    by_drf: dict[int, list[FoundSource]] = {}
    for source in found:
        by_drf.setdefault(source.drf, []).append(source)

    for drf, candidates in sorted(by_drf.items()):
        if len(candidates) > 1:
            names = ", ".join(repr(c.path.name) for c in candidates)
            record.problems.append(Problem(str(location), f"{len(candidates)} sources for the {dose_label(drf)} "
                                           f"({names}); none is used"))
            continue
        source = candidates[0]
        try:
            info = read_info(source)
            signature = source.signature
        except SourceProblem as exc:
            record.problems.append(exc.problem())
            continue
        except OSError as exc:  # vanished or unreadable between the walk and now
            record.problems.append(Problem(str(exc.filename or source.path), f"cannot be read ({exc.strerror or exc})"))
            continue
        if record.scanner == "unknown":  # the full dose's, when it can be read (DRFs come in order)
            record.scanner = info.scanner
        record.problems.extend(Problem(str(source.path), note, notice=True) for note in info.notes)
        refused = accept(source, info)
        if refused is not None:
            record.problems.append(refused)
            continue
        record.sources[drf] = Source(drf, source.path, source.kind, info, signature)

    reference = record.reference
    if reference is not None:
        for drf, source in list(record.sources.items()):
            mismatch = grid_mismatch(reference, source)
            if mismatch:
                record.problems.append(Problem(str(source.path), mismatch))
                del record.sources[drf]

    if needs_full_dose and FULL_DOSE not in record.sources:
        why = "is unusable (see above)" if FULL_DOSE in by_drf else "was not found"
        record.problems.append(Problem(str(location), f"its standard (full) dose {why}; the subject is skipped"))
    absent = [drf for drf in expected_drfs if drf not in by_drf]
    if absent and record.sources:
        record.problems.append(Problem(str(location), "missing dose level(s): "
                                       + ", ".join(dose_label(d) for d in absent)))
    return record


def cached_info(cache: ConversionCache, source: FoundSource, read_info: InfoReader, extra: dict | None = None) -> SourceInfo:
    """Header facts of a source (``read_info(source)``), read once per version of its files; ``extra``
    is whatever else they depend on (e.g. a metadata CSV row)."""
    key = {"kind": source.kind, "source": source.signature, "csv": extra}
    cached = cache.get_json("headers", key)
    if cached is not None:
        return SourceInfo.from_json(cached)
    info = read_info(source)
    cache.put_json("headers", key, info.to_json())
    return info


def grid_mismatch(reference: Source, source: Source) -> str:
    """Why ``source`` is not on the voxel grid of ``reference`` ("" when it is)."""
    if source is reference:
        return ""
    if tuple(source.info.shape) != tuple(reference.info.shape):
        return (f"shape (z, y, x) {tuple(source.info.shape)} differs from the {dose_label(reference.drf)}'s "
                f"{tuple(reference.info.shape)} ({reference.path}); the {dose_label(source.drf)} is skipped")
    if not np.allclose(source.info.affine_array, reference.info.affine_array, atol=AFFINE_TOLERANCE_MM):
        return (f"voxel grid (spacing/position/orientation) differs from the {dose_label(reference.drf)}'s "
                f"({reference.path}); the {dose_label(source.drf)} is skipped")
    return ""


VolumeReader = Callable[["Source"], np.ndarray]
NIFTI_READERS: dict[str, VolumeReader] = {"nifti": nifti_volume}


def read_source_volume(source: Source, readers: dict[str, VolumeReader] = NIFTI_READERS) -> np.ndarray:
    """The source's voxels, ``[z, y, x]`` float32, in its stored units."""
    volume = readers[source.kind](source)
    if tuple(volume.shape) != tuple(source.info.shape):
        raise SourceProblem(source.path, f"holds {volume.shape}, its header said {tuple(source.info.shape)}; "
                            "the data changed since it was scanned")
    problem = degenerate(volume)  # DICOM pixels are first decoded here (NIfTI ones were checked at the scan)
    if problem:
        raise SourceProblem(source.path, problem)
    return volume


class Converter:
    """Loads subjects: source -> crop -> (cached) volume, in the source's units or SUV."""

    def __init__(self, cache: ConversionCache, crop_mode: str, size: int, units_label: str, dataset: str,
                 to_suv: bool = False, readers: dict[str, VolumeReader] = NIFTI_READERS,
                 labels_root: Path | None = None) -> None:
        self.cache = cache
        self.readers = readers
        self.labels_root = labels_root  # the folder of optional label NIfTIs (labels.py)
        self.crop_mode = crop_mode
        self.size = size
        self.units_label = units_label
        self.to_suv = to_suv  # multiply each dose by its own SUV factor
        self.dataset = dataset

    def load(self, record: SubjectRecord, drfs: tuple[int, ...]) -> Subject:
        missing = [drf for drf in drfs if drf not in record.sources]
        if missing:
            have = ", ".join(str(d) for d in record.drfs) or "none"
            raise UserError(f"{self.dataset}: subject {record.id!r} ({record.location}) has no usable "
                            f"{', '.join(dose_label(d) for d in missing)} (DRFs it has: {have}); "
                            f"see `petbench data inspect {self.dataset}`")
        reference = record.reference
        if reference is None:
            raise UserError(f"{self.dataset}: subject {record.id!r} ({record.location}) has no usable volume")
        try:
            reference_volume, affine, block = self.volume(reference, None)
            volumes = {reference.drf: reference_volume}
            for drf in drfs:
                if drf not in volumes:
                    volumes[drf] = self.volume(record.sources[drf], block)[0]
        except SourceProblem as exc:
            raise UserError(f"{self.dataset}: subject {record.id!r}: {exc.problem().line()}") from None

        factors = {drf: record.sources[drf].info.suv_factor for drf in volumes}
        if self.to_suv:
            volumes = {drf: (volume * np.float32(factors[drf])).astype(np.float32) for drf, volume in volumes.items()}
        spet = volumes.pop(FULL_DOSE, None)
        lpet = {drf: volumes[drf] for drf in drfs}
        labels = read_label_maps(self.labels_root, record.id, reference.info, block, self.cache, self.dataset) \
            if self.labels_root is not None else {}
        return Subject(
            id=record.id, spet=spet, lpet=lpet, affine=affine, units=self.units_label, labels=labels,
            meta={"scanner": record.scanner, "model": reference.info.model, "tracer": reference.info.tracer,
                  "layout": record.layout, "location": str(record.location),
                  "source_shape": list(reference.info.shape), "suv_factor": factors,
                  "crop": {"mode": self.crop_mode, **(block.to_json() if block else {})}},
        )

    def volume(self, source: Source, block: Block | None) -> tuple[np.ndarray, np.ndarray, Block | None]:
        """The cropped volume and affine; the reference (``block`` None) decides the block."""
        decide = block is None
        if self.crop_mode == "none" and source.kind == "nifti":  # nothing to convert: read the file itself
            return read_source_volume(source, self.readers), source.info.affine_array, None
        key = {"source": source.signature, "crop": self.crop_mode, "size": self.size,
               "block": "decide" if decide else block.to_json()}
        cached = self.cache.get_volume(key)
        if cached is not None:
            volume, affine, meta = cached
            return volume, affine, Block.from_json(meta["block"]) if meta.get("block") else None
        full = read_source_volume(source, self.readers)
        if decide:
            block = choose_block(self.crop_mode, full, self.size)
        volume = crop(full, block)
        affine = crop_affine(source.info.affine_array, block)
        self.cache.put_volume(key, volume, affine, {"block": block.to_json() if block else None,
                                                   "source": str(source.path)})
        return volume, affine, block


def prepare(converter: Converter, index: Index, subject_ids: list[str], drfs: tuple[int, ...],
            label: str) -> None:
    """Convert these subjects now, with a progress bar; every failure is reported, then one error raised."""
    from rich.progress import Progress

    failures: list[str] = []
    with Progress(transient=True) as progress:
        task = progress.add_task(f"{label}: converting", total=len(subject_ids))
        for subject_id in subject_ids:
            record = index.record(subject_id, label)
            wanted = tuple(d for d in drfs if d in record.sources)
            try:
                converter.load(record, wanted)
            except UserError as exc:
                failures.append(str(exc))
            progress.advance(task)
    if failures:
        for failure in failures:
            logger.warning("%s", failure)
        raise UserError(f"{len(failures)} of {len(subject_ids)} subjects could not be converted; first: {failures[0]}")
