"""The NIfTI forms of UDPET data: the challenge test set (+ its metadata CSV) and per-subject folders.

Test set (2025): a flat folder of ``<id>_DRF-<N>.nii.gz`` in Bq/mL (low dose only) and a CSV of
DICOM-header values, one row per file (header in :data:`TEST_CSV_COLUMNS`). Per-subject folders:
``<subject>/Full_dose.nii.gz``, ``<subject>/1-10 dose.nii.gz`` ... (any UDPET dose name), or
``<subject>/<dose name>/<one file>.nii.gz``. NIfTI volumes are taken to be in Bq/mL, as the
challenge distributes them.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..scanned.nifti_source import nifti_info
from ..scanned.problems import Problem
from ..scanned.source_info import SourceInfo, scanner_from_header, suv_factor

#: Header of the 2025 test-set metadata CSV (``PET_info_noNORMAL.csv``), verbatim.
TEST_CSV_COLUMNS = (
    "SubjectID", "DoseReductionFactor", "NiftiFileName", "PatientWeight_kg", "ImageUnits", "PixelSpacing_x_mm",
    "PixelSpacing_y_mm", "SliceThickness_mm", "Manufacturer", "ManufacturerModelName", "ReconstructionMethod",
    "RadiopharmaceuticalName", "TimeFromInjectionToAcquisition_s", "RadionuclideTotalDose_Bq",
    "RadionuclideHalfLife_s", "DecayCorrection",
)
SPACING_TOLERANCE_MM = 0.01


def read_test_csvs(folder: Path) -> tuple[dict[str, dict], list[Problem]]:
    """Rows of every metadata CSV in ``folder``, keyed by NiftiFileName."""
    rows: dict[str, dict] = {}
    problems: list[Problem] = []
    for path in sorted(folder.glob("*.csv")):
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                header = [name.strip() for name in reader.fieldnames or []]
                missing = [name for name in TEST_CSV_COLUMNS if name not in header]
                if "NiftiFileName" in missing:
                    continue  # some other CSV
                if missing:
                    problems.append(Problem(str(path), f"metadata CSV lacks columns {', '.join(missing)}"))
                for row in reader:
                    row = {key.strip(): (value or "").strip() for key, value in row.items() if key}
                    rows[row["NiftiFileName"]] = row
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            problems.append(Problem(str(path), f"unreadable CSV ({type(exc).__name__}: {exc})"))
    return rows, problems


def read_nifti_info(path: Path, csv_row: dict | None = None) -> SourceInfo:
    """The NIfTI's own description, completed from the test-set CSV row when there is one."""
    info = nifti_info(path)
    if csv_row is not None:
        apply_csv_row(path, info, csv_row)
    return info


def apply_csv_row(path: Path, info: SourceInfo, row: dict) -> None:
    """Scanner, tracer, units and SUV factor from the test-set CSV; its spacing must match the file's."""
    info.model = row.get("ManufacturerModelName", "") or row.get("Manufacturer", "")
    info.scanner = scanner_from_header(row.get("Manufacturer", ""), row.get("ManufacturerModelName", ""))
    info.tracer = row.get("RadiopharmaceuticalName", "")
    info.units = row.get("ImageUnits", "BQML").upper() or "BQML"
    elapsed = 0.0 if row.get("DecayCorrection", "").upper() == "ADMIN" \
        else number(row.get("TimeFromInjectionToAcquisition_s"))
    info.suv_factor, info.suv_missing = suv_factor(
        number(row.get("PatientWeight_kg")), number(row.get("RadionuclideTotalDose_Bq")),
        number(row.get("RadionuclideHalfLife_s")), elapsed)
    zooms = np.sqrt((info.affine_array[:3, :3] ** 2).sum(axis=0))  # x, y, z
    listed = [number(row.get(key)) for key in ("PixelSpacing_x_mm", "PixelSpacing_y_mm", "SliceThickness_mm")]
    if all(value is not None for value in listed) and not np.allclose(zooms, listed, atol=SPACING_TOLERANCE_MM):
        # The first 2025 CSV had a wrong Quadra SliceThickness: the file's header wins.
        info.notes.append(f"voxel size {tuple(round(float(z), 4) for z in zooms)} mm differs from the metadata "
                          f"CSV's {tuple(listed)} mm; the file's header is used")


def number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None
