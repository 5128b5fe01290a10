"""A user's own data as NIfTI volumes in one documented layout (docs/folder-dataset.md)::

    ROOT/
      paired/
        <subject>/
          spet.nii.gz            standard dose (required)
          lpet_drf<N>.nii.gz     low dose at dose reduction factor N (e.g. lpet_drf10.nii.gz)
      unpaired_spet/
        <subject>.nii.gz         standard dose only (the unpaired SPET set)

``.nii`` works as well as ``.nii.gz``. The checks are the UDPET ones: readable files, no NaNs,
every dose of a subject on the standard dose's voxel grid, every paired subject holding every DRF
that the others hold.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError
from .scanned.cache import ConversionCache
from .scanned.collection import Index, build_record, cached_info
from .scanned.names import FULL_DOSE, FoundSource, nifti_stem
from .scanned.nifti_source import nifti_info
from .scanned.problems import Problem

PAIRED = "paired"
UNPAIRED = "unpaired_spet"
SPET_STEM = re.compile(r"^spet$", re.IGNORECASE)
LPET_STEM = re.compile(r"^lpet_drf(\d+)$", re.IGNORECASE)
LAYOUT_HINT = (f"expected {PAIRED}/<subject>/spet.nii.gz + lpet_drf<N>.nii.gz and/or {UNPAIRED}/<subject>.nii.gz "
               "(see docs/folder-dataset.md)")


def classify_paired_file(file_name: str) -> int | None:
    """``spet.nii.gz`` -> 1 (the full dose), ``lpet_drf10.nii.gz`` -> 10, anything else None."""
    stem = nifti_stem(file_name)
    if stem is None:
        return None
    if SPET_STEM.match(stem):
        return FULL_DOSE
    match = LPET_STEM.match(stem)
    return int(match.group(1)) if match and int(match.group(1)) > 1 else None


def drfs_named(root: Path) -> tuple[int, ...]:
    """The DRFs the file names under ``paired/`` promise (a listing only; nothing is read)."""
    return tuple(sorted({drf for path in (root / PAIRED).glob("*/*") if (drf := classify_paired_file(path.name))
                         and drf != FULL_DOSE}))


def find_subjects(root: Path) -> tuple[dict[str, tuple[Path, list[FoundSource]]], list[Problem]]:
    """``{subject id: (location, sources)}`` for the paired (a folder) and unpaired (a file) subjects,
    and what was ignored."""
    subjects: dict[str, tuple[Path, list[FoundSource]]] = {}
    problems: list[Problem] = []
    paired, unpaired = root / PAIRED, root / UNPAIRED
    for folder in sorted(p for p in paired.iterdir() if not p.name.startswith(".")) if paired.is_dir() else []:
        if not folder.is_dir():
            problems.append(Problem(str(folder), f"{PAIRED}/ holds one folder per subject; this file is ignored",
                                    notice=True))
            continue
        sources = []
        for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
            drf = classify_paired_file(path.name)
            if drf is None or not path.is_file():
                problems.append(Problem(str(path), "not spet.nii.gz or lpet_drf<N>.nii.gz; ignored", notice=True))
            else:
                sources.append(FoundSource(drf, path, "nifti"))
        subjects[folder.name] = (folder, sources)
    for path in sorted(p for p in unpaired.iterdir() if not p.name.startswith(".")) if unpaired.is_dir() else []:
        stem = nifti_stem(path.name)
        if stem is None or not path.is_file():
            problems.append(Problem(str(path), f"{UNPAIRED}/ holds <subject>.nii.gz files; ignored", notice=True))
        elif stem in subjects:
            problems.append(Problem(str(path), f"subject {stem!r} is also in {PAIRED}/; this copy is skipped"))
        else:
            subjects[stem] = (path, [FoundSource(FULL_DOSE, path, "nifti")])
    return subjects, problems


def scan_folder(root: Path, cache: ConversionCache) -> Index:
    if not any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise UserError(f"folder data root {root} is empty; {LAYOUT_HINT}")
    if not (root / PAIRED).is_dir() and not (root / UNPAIRED).is_dir():
        raise UserError(f"{root} is not a folder dataset: no {PAIRED}/ or {UNPAIRED}/ in it; {LAYOUT_HINT}")
    found, problems = find_subjects(root)
    if not found:
        raise UserError(f"no subjects under {root}; {LAYOUT_HINT}")
    # every paired subject should hold the DRFs the others hold: a missing one is reported
    expected = tuple(sorted({s.drf for location, sources in found.values() if location.parent == root / PAIRED
                             for s in sources} - {FULL_DOSE}))
    subjects = {}
    for subject_id, (location, sources) in found.items():
        is_paired = location.parent == root / PAIRED
        record = build_record(subject_id, location, "paired" if is_paired else "unpaired", sources,
                              lambda source: cached_info(cache, source, lambda found: nifti_info(found.path)), lambda source, info: None,
                              expected if is_paired else ())
        subjects[subject_id] = record
        problems.extend(record.problems)
    return Index(root, subjects, problems)
