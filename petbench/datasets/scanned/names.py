"""What a scanned dataset finds on disk: one source per dose, named by its dose reduction factor."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .cache import source_signature

#: The dose reduction factor of the standard (full) dose.
FULL_DOSE = 1

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def nifti_stem(file_name: str) -> str | None:
    """``"Full_dose.nii.gz"`` -> ``"Full_dose"``; None for a file that is not NIfTI."""
    lowered = file_name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lowered.endswith(suffix):
            return file_name[: -len(suffix)]
    return None


def dose_label(drf: int) -> str:
    return "full dose" if drf == FULL_DOSE else f"DRF {drf}"


@dataclass
class FoundSource:
    """One dose of one subject as found on disk: a DICOM series folder or a NIfTI file."""

    drf: int
    path: Path
    kind: str  # "dicom" or "nifti"
    files: tuple[str, ...] = ()  # DICOM file names inside ``path`` (unordered)
    name_scanner: str = ""  # scanner suggested by the folder name

    @cached_property
    def signature(self) -> str:
        """Identifies this version of the files (names, sizes, mtimes), for the cache."""
        return source_signature(self.path, self.files)
