"""The image viewer's data: for each chosen test subject, SPET, LPET and every method's prediction as an
8-bit volume (zlib-deflated, base64), downsampled to at most ``image_size`` voxels along each axis.

All volumes of one subject share one scale (0 .. the largest value among them), so the page's SUV
window and its error maps (|method − SPET|, computed in the page from these 8-bit values) compare like
with like; one grey step is ``scale / 255``. The metrics on the page come from the run records, never
from these images. Where the dataset knows the true lesions, their centres are listed so the page can
jump to them.

SPET and LPET come from the dataset, loaded through the plugin registry with the record's dataset name
and options (as ``petbench figure`` does); predictions from each run's ``predictions/`` folder, named by
the run's own test split (no file content picks a path).
"""
from __future__ import annotations

import base64
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.nifti import load_volume
from ..results.record import RunRecord
from .sections import Gap

DEFAULT_IMAGE_SIZE = 64
DEFAULT_IMAGE_SUBJECTS = 4


@dataclass
class ViewerData:
    subjects: list[dict] = field(default_factory=list)  # JSON-ready, one per subject
    gaps: list[Gap] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    available: list[str] = field(default_factory=list)  # every subject some run predicted


def predicted_subjects(record: RunRecord) -> list[str]:
    """The test subjects of ``record`` that have a prediction file (names from its split, not the folder)."""
    folder = record.path / "predictions"
    if not folder.is_dir():
        return []
    test = record.data.get("splits", {}).get("test") if isinstance(record.data.get("splits"), dict) else None
    if not isinstance(test, list):
        return []
    return [s for s in test if isinstance(s, str) and safe_subject(s) and (folder / f"{s}.nii.gz").is_file()]


def safe_subject(subject: str) -> bool:
    return bool(subject) and "/" not in subject and "\\" not in subject and subject not in (".", "..") \
        and not subject.startswith(".")


def choose_subjects(available: list[str], wanted: str | None) -> list[str]:
    """``wanted``: None (the first :data:`DEFAULT_IMAGE_SUBJECTS`), ``all``, a count, or comma-separated ids."""
    from ..errors import UserError

    if wanted is None:
        return available[:DEFAULT_IMAGE_SUBJECTS]
    if wanted == "all":
        return list(available)
    if wanted.isdigit():
        return available[:int(wanted)]
    ids = [s.strip() for s in wanted.split(",") if s.strip()]
    unknown = [s for s in ids if s not in available]
    if unknown:
        raise UserError(f"--image-subjects: {unknown[0]!r} has no prediction in these runs; "
                        f"valid: {', '.join(available) or 'none'}")
    return ids


def downsample(volume: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """Block means by the smallest integer factor that brings every axis to at most ``size``."""
    from skimage.transform import downscale_local_mean

    factor = max(1, math.ceil(max(volume.shape) / size))
    if factor == 1:
        return np.asarray(volume, np.float32), 1
    return downscale_local_mean(np.asarray(volume, np.float32), (factor,) * volume.ndim).astype(np.float32), factor


def finite_max(volume: np.ndarray) -> float:
    finite = volume[np.isfinite(volume)]
    return float(finite.max()) if finite.size else 0.0


def encode(volume: np.ndarray, scale: float) -> str:
    """8-bit ``volume / scale``; NaN and negative values are 0, values above ``scale`` (and +inf) 255."""
    volume = np.nan_to_num(np.asarray(volume, np.float64), nan=0.0, posinf=scale, neginf=0.0)
    quantized = np.clip(np.rint(np.clip(volume, 0, None) / scale * 255), 0, 255).astype(np.uint8)
    return base64.b64encode(zlib.compress(np.ascontiguousarray(quantized).tobytes(), 9)).decode("ascii")


def decode(text: str, shape) -> np.ndarray:
    """The inverse of :func:`encode` up to the scale (for tests and readers of the page)."""
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), np.uint8).reshape(shape)


def lesion_centres(subject, factor: int) -> list[dict]:
    labels = getattr(subject, "labels", {}) or {}
    lesions = labels.get("lesions")
    if lesions is None:
        return []
    from scipy import ndimage

    array = np.asarray(lesions.array)
    values = lesions.present()
    if not values:
        return []
    centres = ndimage.center_of_mass(np.ones_like(array, dtype=np.uint8), array, values)
    return [{"name": str(lesions.names.get(v, f"lesion {v}")),
             "z": int(c[0] // factor), "y": int(c[1] // factor), "x": int(c[2] // factor)}
            for v, c in zip(values, centres)]


def viewer_data(host, columns: list[tuple[str, RunRecord]], wanted: str | None, image_size: int,
                tick=lambda: None, reference: RunRecord | None = None) -> ViewerData:
    """``columns``: (title, record) per method, in the leaderboard's order, all of one dataset and DRF;
    ``reference``: a record of that dataset and DRF whose test subjects SPET and LPET show when no
    method column has predictions (e.g. a page of the low-dose input alone)."""
    result = ViewerData()
    reference = columns[0][1] if columns else reference
    if reference is None:
        result.gaps.append(Gap("images", "no run to show"))
        return result
    have = {}
    for title, record in columns:
        have[title] = predicted_subjects(record)
        if not have[title]:
            result.gaps.append(Gap(f"images of {title}", f"run {record.run_id} saved no predictions (it ran with "
                                   "--no-predictions, or they were removed); rerun it with --force to see them"))
    shown = [(t, r) for t, r in columns if have[t]]
    result.available = sorted({s for t, _ in shown for s in have[t]})
    drf = reference.data["protocol"]["drf"]
    dataset, why = load_dataset(host, reference)
    if not shown and dataset is not None:  # no prediction to show: the dataset's own volumes still are
        test = reference.data.get("splits", {}).get("test") if isinstance(reference.data.get("splits"), dict) else None
        result.available = sorted(s for s in (test or []) if isinstance(s, str) and safe_subject(s))
    subjects = choose_subjects(result.available, wanted)
    if dataset is None:
        result.gaps.append(Gap("SPET, LPET and error maps", why))
    result.columns = (["SPET", "LPET"] if dataset is not None else []) + [t for t, _ in shown]
    for sid in subjects:
        try:
            result.subjects.append(subject_entry(sid, dataset, drf, shown, have, image_size, result.gaps))
        except Exception as exc:  # one unreadable subject leaves a gap, not a broken page
            result.gaps.append(Gap(f"images of subject {sid}", f"could not be read ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''})"))
        tick()
    return result


def load_dataset(host, record: RunRecord):
    name = record.dataset
    if host is None or name not in host.datasets:
        return None, (f"dataset {name!r} is not installed here: the page shows the predictions only "
                      "(install its plugin and rebuild the page to see SPET, LPET and error maps)")
    try:
        return host.datasets.get(name)(**record.data["dataset"].get("options", {})), None
    except Exception as exc:
        return None, f"dataset {name!r} could not be opened with the run's options ({type(exc).__name__}: {exc})"


def subject_entry(sid: str, dataset, drf: int, shown, have, image_size: int, gaps: list[Gap]) -> dict:
    volumes: list[tuple[str, str | None, np.ndarray]] = []
    lesions: list[dict] = []
    factor = 1
    reference_shape = None
    if dataset is not None:
        subject = dataset.load(sid, (drf,))
        reference_shape = subject.spet.shape
        spet, factor = downsample(subject.spet, image_size)
        volumes += [("SPET", None, spet), ("LPET", None, downsample(subject.lpet[drf], image_size)[0])]
        lesions = lesion_centres(subject, factor)
    for title, record in shown:
        if sid not in have[title]:
            gaps.append(Gap(f"{title}, subject {sid}", f"run {record.run_id} has no prediction of this subject"))
            continue
        try:
            volume, _ = load_volume(record.path / "predictions" / f"{sid}.nii.gz")
        except Exception as exc:  # a damaged file loses its column, not the subject
            gaps.append(Gap(f"{title}, subject {sid}", f"prediction unreadable ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})"))
            continue
        if volume.ndim != 3:
            gaps.append(Gap(f"{title}, subject {sid}", f"prediction has {volume.ndim} dimensions, not 3"))
            continue
        if reference_shape is not None and volume.shape != reference_shape:
            gaps.append(Gap(f"{title}, subject {sid}", f"prediction has shape {volume.shape}, the dataset's SPET "
                            f"{reference_shape}"))
            continue
        small, factor_here = downsample(volume, image_size)
        if reference_shape is None:
            factor = factor_here
            reference_shape = volume.shape
        volumes.append((title, record.run_id, small))
    if not volumes:
        raise ValueError("no volume of this subject could be read")
    scale = max(finite_max(v) for _, _, v in volumes) or 1.0
    spet_volume = volumes[0][2] if dataset is not None else None
    window = float(np.nanpercentile(spet_volume, 99.5)) if spet_volume is not None else scale
    first = volumes[0][2]
    depth, height, width = first.shape
    start = [int(np.argmax(np.nan_to_num(first).reshape(depth, -1).sum(axis=1))), height // 2, width // 2]
    return {"id": sid, "shape": list(first.shape), "factor": factor, "scale": scale, "start": start,
            "window": [0.0, window or scale], "units": getattr(dataset, "units", "") or "",
            "columns": [{"title": t, "run": r, "data": encode(v, scale)} for t, r, v in volumes],
            "lesions": lesions}
