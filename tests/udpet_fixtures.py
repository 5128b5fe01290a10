"""Builders of small UDPET-like trees, written in the real layouts with pydicom and nibabel.

PET series carry the real tags (Units BQML, DecayCorrection START, the radiopharmaceutical
sequence, Siemens/UIH model names), int16 pixels with a rescale slope that differs per slice,
file names shuffled so that name order is not slice order, and small matrices.
"""
from __future__ import annotations

import datetime
import random
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, PositronEmissionTomographyImageStorage, generate_uid

from petbench.data.nifti import save_volume

SHAPE = (12, 10, 9)  # z, y, x: small, and every axis different so transposes show
DRFS = (4, 10, 20, 50, 100)
HALF_LIFE = {"quadra": 6586.2, "uexplorer": 6588.0}
SCAN_SECONDS = {"quadra": 365.0, "uexplorer": 183.0}
MODEL = {"quadra": ("SIEMENS", "Biograph128_Vision Quadra Edge"), "uexplorer": ("UIH", "uEXPLORER")}
SPACING = {"quadra": (1.65, 1.65, 1.65), "uexplorer": (2.886, 1.666667, 1.666667)}  # dz, dy, dx
QUADRA_NAMES = {1: "Full_dose", **{d: f"1-{d} dose" for d in DRFS}}
UEXPLORER_NAMES = {1: "2.886 x 600 WB NORMAL", **{d: f"2.886 x 600 WB D{d}" for d in DRFS}}
UEXPLORER_2022_NAMES = {1: "2.886 x 600 WB normal", 4: "2.886 x 600 WB DRF_4", 10: "2.886 x 600 WB DRF_10",
                        20: "2.886 x 600 WB 1-20 dose", 50: "2.886 x 600 WB D50", 100: "2.886 x 600 WB DRF_100"}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own conversion cache and no data root from the environment."""
    monkeypatch.setenv("PETBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PETBENCH_UDPET_ROOT", raising=False)
    monkeypatch.delenv("PETBENCH_FOLDER_ROOT", raising=False)
    return tmp_path / "cache"


def phantom(seed: int = 0, shape=SHAPE) -> np.ndarray:
    """An asymmetric activity volume in Bq/mL: a gradient, a hot blob off-centre, some noise."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    volume = 2000.0 + 300.0 * z + 70.0 * y + 11.0 * x
    volume += 15000.0 * np.exp(-((z - 3) ** 2 + (y - 2) ** 2 + (x - 6) ** 2) / 3.0)
    volume += rng.normal(0.0, 50.0, shape)
    volume[:, :, 0] = 0.0  # background column outside the body
    return volume.astype(np.float32)


def low_dose(full: np.ndarray, drf: int, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed + drf).normal(0.0, 0.02 * np.sqrt(drf), full.shape)
    return (full * (1.0 + noise)).astype(np.float32)


def write_series(folder: Path, volume: np.ndarray, *, scanner: str = "quadra", extension: str = ".IMA",
                 drf: int = 1, tracer: str = "Fluorodeoxyglucose", weight_kg: float = 70.0,
                 injected_bq: float = 2.2e8, uptake_s: float = 3600.0, intercept: float = 0.0,
                 z_direction: int = 1, seed: int = 0, units: str = "BQML", modality: str = "PT") -> np.ndarray:
    """Write ``volume`` ([z, y, x], Bq/mL) as one PET series; return the values the files really hold.

    Slice k (z index) lies at patient z = -500 + z_direction * k * dz. Files are numbered in the
    opposite order (head first, as scanners do) and their names shuffled.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    manufacturer, model = MODEL[scanner]
    dz, dy, dx = SPACING[scanner]
    nz, ny, nx = volume.shape
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    injection = datetime.datetime(2022, 3, 1, 9, 30, 0)
    series_start = injection + datetime.timedelta(
        seconds=uptake_s + SCAN_SECONDS[scanner] * (0.5 - 0.5 / drf))  # window centred in the acquisition
    names = list(range(1, nz + 1))
    rng.shuffle(names)
    stored = np.empty(volume.shape, dtype=np.float32)
    for k in range(nz):
        values = volume[k].astype(np.float64)
        slope = max(float(np.abs(values - intercept).max()), 1.0) / 30000.0 * (1.0 + 0.37 * k)  # differs per slice
        pixels = np.round((values - intercept) / slope).astype(np.int16)
        stored[k] = (pixels.astype(np.float64) * float(f"{slope:.10g}") + intercept).astype(np.float32)

        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = PositronEmissionTomographyImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = PositronEmissionTomographyImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality = modality
        ds.Manufacturer = manufacturer
        ds.ManufacturerModelName = model
        ds.PatientID = folder.parent.name[:64]
        ds.PatientWeight = f"{weight_kg:g}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.SeriesDescription = folder.name
        ds.SeriesDate = series_start.strftime("%Y%m%d")
        ds.SeriesTime = series_start.strftime("%H%M%S.%f")
        ds.AcquisitionTime = ds.SeriesTime
        ds.Units = units
        ds.DecayCorrection = "START"
        info = Dataset()
        info.Radiopharmaceutical = tracer
        info.RadiopharmaceuticalStartTime = injection.strftime("%H%M%S.%f")
        info.RadionuclideTotalDose = f"{injected_bq:g}"
        info.RadionuclideHalfLife = f"{HALF_LIFE[scanner]:g}"
        ds.RadiopharmaceuticalInformationSequence = Sequence([info])
        ds.InstanceNumber = nz - k  # head first
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-100.0, -80.0, f"{-500.0 + z_direction * k * dz:.6g}"]
        ds.PixelSpacing = [f"{dy:g}", f"{dx:g}"]
        ds.SliceThickness = f"{dz:g}"
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope = f"{slope:.10g}"
        ds.RescaleIntercept = f"{intercept:g}"
        ds.PixelData = pixels.tobytes()
        name = f"{names[k]:08d}{extension}" if extension == ".dcm" else f"PET.{names[k] * 7919 % 10007:05d}{extension}"
        ds.save_as(folder / name, enforce_file_format=True)
    return stored


def quadra_subject(root: Path, patient: str = "01122021_1_20211201_164050", drfs=DRFS, seed: int = 0,
                   group: str = "Bern-Inselspital-2022/Subject_1-6", **kwargs) -> dict[int, np.ndarray]:
    """A Quadra subject in the Bern layout; returns the stored volume per DRF (1 = full dose)."""
    folder = root / group / patient
    full = phantom(seed)
    stored = {1: write_series(folder / QUADRA_NAMES[1], full, seed=seed, **kwargs)}
    for drf in drfs:
        stored[drf] = write_series(folder / QUADRA_NAMES[drf], low_dose(full, drf, seed), drf=drf, seed=seed + drf,
                                   **kwargs)
    return stored


def uexplorer_subject(root: Path, patient: str = "Anonymous_ANO_20230201_1523376_095203", drfs=DRFS,
                      names=UEXPLORER_NAMES, seed: int = 0, group: str = "Shanghai-Ruijin-Hospital-2023/PART1",
                      **kwargs) -> dict[int, np.ndarray]:
    folder = root / group / patient
    full = phantom(seed)
    options = {"scanner": "uexplorer", "extension": ".dcm", **kwargs}
    stored = {1: write_series(folder / names[1], full, seed=seed, **options)}
    for drf in drfs:
        stored[drf] = write_series(folder / names[drf], low_dose(full, drf, seed), drf=drf, seed=seed + drf,
                                   **options)
    return stored


def quadra_cohort(root: Path, count: int, drfs=(10,), start: int = 0) -> list[str]:
    """``count`` small Quadra subjects (for protocol-sized tests); returns their ids."""
    ids = []
    for i in range(start, start + count):
        patient = f"{i + 1:02d}012022_{i}_20220101_1200{i % 60:02d}"
        quadra_subject(root, patient, drfs=drfs, seed=i, group=f"Bern-Inselspital-2022/Subject_{i // 6 * 6 + 1}-"
                                                               f"{i // 6 * 6 + 6}")
        ids.append(patient)
    return ids


def write_nifti(path: Path, volume: np.ndarray, spacing=(1.65, 1.65, 1.65)) -> None:
    dz, dy, dx = spacing
    affine = np.diag([dx, dy, dz, 1.0])
    if path.name.endswith(".nii.gz"):
        save_volume(path, volume, affine)
    else:  # save_volume always gzips; a plain .nii must not be
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(np.asarray(volume, np.float32).transpose(2, 1, 0), affine), str(path))


def suv_factor(weight_kg, injected_bq, half_life_s, seconds) -> float:
    return weight_kg * 1000.0 / (injected_bq * 0.5 ** (seconds / half_life_s))


def read_header(path: Path):
    return pydicom.dcmread(path, stop_before_pixels=True)
