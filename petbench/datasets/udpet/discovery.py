"""Find UDPET subjects under a root: walk the tree, classify folders and files by name.

Nothing here depends on listing order or nesting depth: every folder is visited, a folder holding
DICOM files is a *series folder*, and its name alone says which dose it holds. The patient
(subject) is the series folder's parent. Names are matched with anchored patterns so that
``1-10 dose`` can never be read as ``1-100 dose``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..scanned.labels import LABELS_DIR
from ..scanned.names import FULL_DOSE, FoundSource, nifti_stem
from ..scanned.problems import Problem


DICOM_SUFFIXES = (".ima", ".dcm")

# uEXPLORER series folders are named after the series description: "2.886 x 600 WB <dose>"
# (slice thickness x field of view, whole body); the dose part is what matters.
UEXPLORER_PREFIX = re.compile(r"^\d+(?:\.\d+)?\s*x\s*\d+\s+wb\s+", re.IGNORECASE)
FULL_DOSE_NAME = re.compile(r"^(?:full[ _]dose|normal)$", re.IGNORECASE)
LOW_DOSE_NAMES = (
    re.compile(r"^1-(\d+)\s*dose$", re.IGNORECASE),  # Quadra and 2022 uEXPLORER: "1-10 dose"
    re.compile(r"^d(\d+)$", re.IGNORECASE),  # uEXPLORER 2023+: "D10"
    re.compile(r"^drf[ _]?(\d+)$", re.IGNORECASE),  # uEXPLORER 2022: "DRF_10"
)
# Challenge test set (2025): "<id>_DRF-<N>.nii.gz", low dose only.
TEST_SET_FILE = re.compile(r"^(?P<id>.+)_DRF-(?P<drf>\d+)\.nii(?:\.gz)?$", re.IGNORECASE)


def classify_dose_name(name: str) -> int | None:
    """The DRF a series folder (or NIfTI file stem) holds: 1 for the full dose, None if not a dose name."""
    text = UEXPLORER_PREFIX.sub("", " ".join(name.split()))
    if FULL_DOSE_NAME.match(text):
        return FULL_DOSE
    for pattern in LOW_DOSE_NAMES:
        match = pattern.match(text)
        if match and int(match.group(1)) > 1:
            return int(match.group(1))
    return None


def scanner_hint(name: str) -> str:
    """The scanner a series folder name points to ("uexplorer" for "2.886 x 600 WB ..."), else ""."""
    return "uexplorer" if UEXPLORER_PREFIX.match(" ".join(name.split())) else ""


@dataclass
class FoundSubject:
    """The sources found for one subject; ``layout`` is "dicom", "nifti" or "challenge-test"."""

    name: str
    folder: Path
    layout: str
    sources: list[FoundSource] = field(default_factory=list)


@dataclass
class Discovery:
    subjects: list[FoundSubject]
    problems: list[Problem]
    files_seen: int  # files of any kind under the root (0: an empty root)


def discover(root: Path) -> Discovery:
    """Walk ``root`` and group what looks like UDPET data into subjects."""
    subjects: dict[tuple[Path, str], FoundSubject] = {}
    problems: list[Problem] = []
    files_seen = 0

    def subject(folder: Path, name: str, layout: str) -> FoundSubject:
        found = subjects.setdefault((folder, name), FoundSubject(name=name, folder=folder, layout=layout))
        if layout not in found.layout.split("+"):  # DICOM series and NIfTI files side by side
            found.layout += "+" + layout
        return found

    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:  # a symbolic link loop
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if Path(dirpath) == Path(root):  # the user's label maps are not scans (scanned/labels.py)
            dirnames[:] = [d for d in dirnames if d != LABELS_DIR]
        filenames = sorted(f for f in filenames if not f.startswith("."))
        files_seen += len(filenames)
        folder = Path(dirpath)
        dicom_files = tuple(f for f in filenames if f.lower().endswith(DICOM_SUFFIXES))
        nifti_files = [f for f in filenames if nifti_stem(f) is not None]

        if dicom_files:
            drf = classify_dose_name(folder.name)
            if drf is None:
                problems.append(Problem(str(folder), "holds DICOM files but its name is not a UDPET dose level "
                                        "(Full_dose, 1-<N> dose, ... WB NORMAL, ... WB D<N>, DRF_<N>); ignored",
                                        notice=True))
            else:
                subject(folder.parent, folder.parent.name, "dicom").sources.append(
                    FoundSource(drf, folder, "dicom", dicom_files, scanner_hint(folder.name)))

        folder_drf = classify_dose_name(folder.name)
        for file_name in nifti_files:
            path = folder / file_name
            test_match = TEST_SET_FILE.match(file_name)
            stem_drf = classify_dose_name(nifti_stem(file_name) or "")
            if test_match:
                subject(folder, test_match.group("id"), "challenge-test").sources.append(
                    FoundSource(int(test_match.group("drf")), path, "nifti"))
            elif stem_drf is not None:  # <subject>/Full_dose.nii.gz, <subject>/1-10 dose.nii.gz
                subject(folder, folder.name, "nifti").sources.append(FoundSource(stem_drf, path, "nifti"))
            elif folder_drf is not None and len(nifti_files) == 1:  # <subject>/Full_dose/<any>.nii.gz
                subject(folder.parent, folder.parent.name, "nifti").sources.append(
                    FoundSource(folder_drf, path, "nifti", name_scanner=scanner_hint(folder.name)))
            else:
                problems.append(Problem(str(path), "NIfTI file whose name is not a UDPET dose level "
                                        "(<id>_DRF-<N>.nii.gz, Full_dose.nii.gz, 1-<N> dose.nii.gz, ...); ignored",
                                        notice=True))

    found = sorted(subjects.values(), key=lambda s: (s.name, str(s.folder)))
    assign_unique_names(found, root)
    return Discovery(found, problems, files_seen)


def assign_unique_names(subjects: list[FoundSubject], root: Path) -> None:
    """Subject ids are folder (or test-set) names; where two collide, the path from the root tells them apart."""
    counts: dict[str, int] = {}
    for found in subjects:
        counts[found.name] = counts.get(found.name, 0) + 1
    for found in subjects:
        if counts[found.name] > 1:
            try:
                relative = found.folder.relative_to(root)
            except ValueError:
                relative = found.folder
            parts = [p for p in relative.parts if p not in ("", ".")]
            if found.layout != "challenge-test" and parts and parts[-1] == found.name:
                parts = parts[:-1]
            found.name = "__".join([*parts, found.name])
