"""Read one PET DICOM series with pydicom: headers first (cheap, cached), pixels when converting.

Slices are ordered by their position along the slice normal (never by file name); each slice's
own RescaleSlope/RescaleIntercept is applied (Siemens stores int16 with a slope per slice);
spacing and affine come from ImagePositionPatient/ImageOrientationPatient/PixelSpacing. Values
stay in Bq/mL; the SUV factor uses the injected activity decayed to the series start.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.tag import Tag

from ..scanned.problems import SourceProblem
from ..scanned.source_info import SourceInfo, scanner_from_header, suv_factor

PIXEL_DATA = Tag(0x7FE0, 0x0010)
UNDEFINED_LENGTH = 0xFFFFFFFF
REQUIRED = ("Rows", "Columns", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
SPACING_TOLERANCE = 0.02  # relative; a missing slice doubles a gap, a duplicate makes it zero
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class SliceHeader:
    path: Path
    ds: pydicom.Dataset
    position: np.ndarray  # ImagePositionPatient
    orientation: np.ndarray  # ImageOrientationPatient
    pixel_spacing: tuple[float, float]  # (between rows, between columns)


def read_series_info(folder: Path, file_names) -> SourceInfo:
    """Check every file's header and return the series geometry; a problem raises :class:`SourceProblem`."""
    slices = [read_slice_header(folder / name) for name in file_names]
    first = slices[0]
    if str(first.ds.get("Modality", "")).upper() != "PT":
        raise SourceProblem(folder, f"modality is {first.ds.get('Modality', 'missing')!r}, not PT (PET)")
    for key in ("SeriesInstanceUID", "Rows", "Columns", "PixelSpacing"):
        values = {str(s.ds.get(key, "")) for s in slices}
        if len(values) > 1:
            raise SourceProblem(folder, f"files disagree on {key} ({len(values)} different values): "
                                "the folder mixes series")
    for other in slices:
        if not np.allclose(other.orientation, first.orientation, atol=1e-4):
            raise SourceProblem(other.path, "its ImageOrientationPatient differs from the rest of the series")
    row_dir, col_dir = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row_dir, col_dir)
    ordered = sorted(slices, key=lambda s: float(s.position @ normal))
    along = np.array([s.position @ normal for s in ordered])
    dy, dx = first.pixel_spacing

    if len(ordered) > 1:
        gaps = np.diff(along)
        step = float(np.median(gaps))
        bad = np.flatnonzero(np.abs(gaps - step) > SPACING_TOLERANCE * abs(step) + 1e-4)
        if step <= 0 or bad.size:
            i = int(bad[0]) if bad.size else 0
            raise SourceProblem(folder, f"slices are not evenly spaced: {gaps[i]:.3f} mm between "
                                f"{ordered[i].path.name} and {ordered[i + 1].path.name}, {step:.3f} mm elsewhere "
                                "(a missing or duplicated slice?)")
        slice_step = (ordered[-1].position - ordered[0].position) / (len(ordered) - 1)
    else:
        slice_step = normal * (number(first.ds.get("SliceThickness")) or 1.0)

    lps = np.eye(4)
    lps[:3, 0] = row_dir * dx  # x index runs along the row direction (across columns)
    lps[:3, 1] = col_dir * dy
    lps[:3, 2] = slice_step
    lps[:3, 3] = ordered[0].position
    factor, suv_missing = series_suv_factor(first.ds)
    manufacturer = str(first.ds.get("Manufacturer", ""))
    model = str(first.ds.get("ManufacturerModelName", ""))
    return SourceInfo(
        shape=(len(ordered), int(first.ds.Rows), int(first.ds.Columns)),
        affine=(LPS_TO_RAS @ lps).tolist(),
        files=tuple(s.path.name for s in ordered),
        scanner=scanner_from_header(manufacturer, model),
        model=model or manufacturer,
        tracer=tracer_name(first.ds),
        units=str(first.ds.get("Units", "")).upper(),
        suv_factor=factor,
        suv_missing=suv_missing,
    )


def read_slice_header(path: Path) -> SliceHeader:
    """One file's header (pixels left on disk), checked for the tags we need and for truncation."""
    try:
        ds = pydicom.dcmread(path, defer_size=256)
    except Exception as exc:
        raise SourceProblem(path, f"unreadable DICOM file ({type(exc).__name__}: {exc})") from None
    missing = [key for key in REQUIRED if key not in ds]
    if missing:
        raise SourceProblem(path, f"not a complete PET image: missing {', '.join(missing)} (truncated file?)")
    try:
        position = np.array([float(v) for v in ds.ImagePositionPatient])
        orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
        spacing = tuple(float(v) for v in ds.PixelSpacing)
        rows, columns = int(ds.Rows), int(ds.Columns)
    except (TypeError, ValueError) as exc:
        raise SourceProblem(path, f"unreadable geometry tags ({exc})") from None
    if position.shape != (3,) or orientation.shape != (6,) or len(spacing) != 2 \
            or not np.isfinite([*position, *orientation, *spacing]).all() or min(spacing) <= 0:
        raise SourceProblem(path, "ImagePositionPatient, ImageOrientationPatient or PixelSpacing is malformed")
    for key in ("RescaleSlope", "RescaleIntercept"):
        if key in ds and number(ds.get(key)) is None:
            raise SourceProblem(path, f"{key} is {ds.get(key)!r}, not a finite number")
    raw = ds.get_item(PIXEL_DATA, keep_deferred=True)
    if raw is None:
        raise SourceProblem(path, "has no pixel data (truncated file?)")
    transfer_syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    compressed = transfer_syntax is not None and transfer_syntax.is_compressed
    if compressed:
        check_decoder(path, transfer_syntax)
    elif raw.length != UNDEFINED_LENGTH:
        present = len(raw.value) if raw.value is not None else os.path.getsize(path) - raw.value_tell
        expected = rows * columns * int(ds.get("BitsAllocated", 16)) // 8 * int(ds.get("NumberOfFrames", 1) or 1)
        if present < expected:
            raise SourceProblem(path, f"truncated: {present} of {expected} bytes of pixel data")
    return SliceHeader(path, ds, position, orientation, spacing)


def check_decoder(path: Path, transfer_syntax) -> None:
    from pydicom.pixels import get_decoder

    try:
        available = get_decoder(transfer_syntax).is_available
    except Exception:
        available = False
    if not available:
        raise SourceProblem(path, f"pixel data is compressed ({transfer_syntax.name}) and no decoder is installed: "
                            "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg")


def read_series_volume(folder: Path, info: SourceInfo) -> np.ndarray:
    """Decode the slices in ``info.files`` order into a float32 ``[z, y, x]`` volume in the stored units."""
    volume = np.empty(info.shape, dtype=np.float32)
    for index, name in enumerate(info.files):
        path = folder / name
        try:
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array
        except Exception as exc:
            raise SourceProblem(path, f"pixel data cannot be read ({type(exc).__name__}: {exc})") from None
        if pixels.shape != info.shape[1:]:
            raise SourceProblem(path, f"slice is {pixels.shape}, the series {info.shape[1:]}")
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)  # per slice: Siemens varies it slice by slice
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        volume[index] = pixels.astype(np.float64) * slope + intercept
        if not np.isfinite(volume[index]).all():
            raise SourceProblem(path, "pixel values include NaN or infinity")
    return volume


def radiopharmaceutical(ds):
    sequence = ds.get("RadiopharmaceuticalInformationSequence")
    return sequence[0] if sequence else None


def tracer_name(ds) -> str:
    info = radiopharmaceutical(ds)
    return str(info.get("Radiopharmaceutical", "") if info is not None else "").strip()


def series_suv_factor(ds) -> tuple[float | None, str]:
    """SUVbw factor of this series: the injected activity decayed to the series start (DecayCorrection START)."""
    info = radiopharmaceutical(ds)
    if info is None:
        return None, "no RadiopharmaceuticalInformationSequence"
    weight = number(ds.get("PatientWeight"))
    dose = number(info.get("RadionuclideTotalDose"))
    half_life = number(info.get("RadionuclideHalfLife"))
    elapsed = seconds_since_injection(ds, info)
    return suv_factor(weight, dose, half_life, elapsed)


def seconds_since_injection(ds, info) -> float | None:
    correction = str(ds.get("DecayCorrection", "START")).upper()
    if correction == "ADMIN":  # already decay-corrected to the injection time
        return 0.0
    date = ds.get("SeriesDate") or ds.get("AcquisitionDate")
    series = date_time(date, ds.get("SeriesTime") or ds.get("AcquisitionTime"))
    start_dt = info.get("RadiopharmaceuticalStartDateTime")
    if start_dt:
        start = date_time(str(start_dt)[:8], str(start_dt)[8:])
    else:
        start = date_time(date, info.get("RadiopharmaceuticalStartTime"))
    if series is None or start is None:
        return None
    elapsed = (series - start).total_seconds()
    if elapsed < 0 and not start_dt:  # injected before midnight, scanned after it
        elapsed += 24 * 3600
    return elapsed


def date_time(date, time) -> datetime.datetime | None:
    """DICOM DA + TM -> datetime (the date may be missing: any fixed day will do for a difference)."""
    if not time:
        return None
    text = str(time).replace(":", "").strip()
    try:
        hours, minutes = int(text[0:2]), int(text[2:4] or 0)
        seconds = float(text[4:] or 0)
        day = datetime.datetime.strptime(str(date).strip()[:8], "%Y%m%d") if date else datetime.datetime(2000, 1, 1)
    except ValueError:
        return None
    return day + datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def number(value) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if np.isfinite(result) else None
