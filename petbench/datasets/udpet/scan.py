"""Scan a UDPET download into an :class:`Index`: discovery, header reading, UDPET's own rules.

The rules: only 18F-FDG (the organisers list seven uEXPLORER subjects labelled FDG that are
68Ga-DOTA, skipped by name), only the chosen scanner, values in Bq/mL (DICOM ``Units`` BQML), and
with ``units="suv"`` every dose must carry what SUV needs.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ...errors import UserError
from ..scanned.cache import ConversionCache
from ..scanned.collection import NIFTI_READERS, Index, VolumeReader, build_record, cached_info
from ..scanned.names import FoundSource, dose_label
from ..scanned.problems import Problem
from ..scanned.source_info import SourceInfo, is_fdg, scanner_from_header
from .discovery import FoundSubject, discover
from .nifti_layouts import read_nifti_info, read_test_csvs

EXPECTED_DRFS = (4, 10, 20, 50, 100)
SCANNERS = ("quadra", "uexplorer", "all")
# dataset.md "Issues": uEXPLORER subjects labelled 18F-FDG that are 68Ga-DOTA.
KNOWN_NON_FDG = frozenset({
    "Anonymous_ANO_20220224_1711567_102845", "Anonymous_ANO_20220224_1709580_104139",
    "Anonymous_ANO_20220224_1707578_105431", "Anonymous_ANO_20220224_1705576_110625",
    "Anonymous_ANO_20220224_1703593_111906", "Anonymous_ANO_20220224_1701584_113106",
    "Anonymous_ANO_20220224_1713571_101453",
})
LAYOUT_HINT = ("expected series folders named Full_dose / '1-<N> dose' (Siemens Quadra, *.IMA) or "
               "'2.886 x 600 WB NORMAL' / '... WB D<N>' (uEXPLORER, *.dcm), or NIfTI files <id>_DRF-<N>.nii.gz")


def scan_udpet(root: Path, scanner: str, units: str, cache: ConversionCache) -> Index:
    if not root.is_dir():
        raise UserError(f"UDPET data root {root} does not exist or is not a folder")
    discovery = discover(root)
    if discovery.files_seen == 0:
        raise UserError(f"UDPET data root {root} is empty; point --data-root at the unpacked challenge download")
    if not discovery.subjects:
        raise UserError(f"{root} does not look like UDPET data: no dose-level series or files found ({LAYOUT_HINT})")

    problems = list(discovery.problems)
    csv_rows: dict[Path, dict] = {}
    subjects = {}
    ignored: Counter = Counter()

    def read_info(source: FoundSource) -> SourceInfo:
        row = csv_rows.get(source.path.parent, {}).get(source.path.name)
        return cached_info(cache, source, lambda found: source_info(found, row), row)

    def accept(source: FoundSource, info: SourceInfo) -> Problem | None:
        return udpet_rules(source, info, units)

    for found in discovery.subjects:
        if found.folder.name in KNOWN_NON_FDG:
            problems.append(Problem(str(found.folder), "listed by the organisers as 68Ga-DOTA, not FDG; skipped",
                                    notice=True))
            continue
        seen_scanner, tracer = peek_dicom(found)  # one header decides before every file is read
        if scanner != "all" and seen_scanner and seen_scanner != scanner:
            ignored[seen_scanner] += 1
            continue
        if tracer and not is_fdg(tracer):
            problems.append(Problem(str(found.folder), f"tracer is {tracer!r}, not FDG; skipped", notice=True))
            continue
        if "challenge-test" in found.layout and found.folder not in csv_rows:
            csv_rows[found.folder], csv_problems = read_test_csvs(found.folder)
            problems.extend(csv_problems)
        test_set = "challenge-test" in found.layout
        record = build_record(found.name, found.folder, found.layout, found.sources, read_info, accept,
                              EXPECTED_DRFS, needs_full_dose=not test_set)
        if test_set:
            record.problems.insert(0, Problem(str(found.folder), f"{found.name}: challenge test set, low dose only "
                                              "(no reference): not usable for training or evaluation", notice=True))
        if record.scanner == "unknown":
            record.scanner = seen_scanner or next((s.name_scanner for s in found.sources if s.name_scanner), "unknown")
        # a subject nothing could be read from stays, so that its problems are shown
        if scanner != "all" and record.scanner != scanner and (record.sources or record.scanner != "unknown"):
            ignored[record.scanner] += 1
            continue
        subjects[record.id] = record
        problems.extend(record.problems)
    if ignored:
        counts = ", ".join(f"{n} {name}" for name, n in sorted(ignored.items()))
        problems.append(Problem(str(root), f"subjects of other scanners ignored ({counts}) because scanner={scanner}; "
                                "-D scanner=all uses them", notice=True))
    return Index(root, subjects, problems)


def source_info(source: FoundSource, csv_row: dict | None) -> SourceInfo:
    """Header facts of a DICOM series (every file's header) or a NIfTI file (+ its test-set CSV row)."""
    if source.kind == "dicom":
        from . import dicom_series  # pydicom only when needed

        return dicom_series.read_series_info(source.path, source.files)
    return read_nifti_info(source.path, csv_row)


def dicom_volume(source) -> np.ndarray:
    from . import dicom_series  # pydicom only when converting

    return dicom_series.read_series_volume(source.path, source.info)


#: How UDPET sources are read when converted (:meth:`ScannedDataset.volume_readers`).
UDPET_READERS: dict[str, VolumeReader] = {**NIFTI_READERS, "dicom": dicom_volume}


def udpet_rules(source: FoundSource, info: SourceInfo, units: str) -> Problem | None:
    """Why UDPET refuses this source, or None."""
    label = dose_label(source.drf)
    if info.tracer and not is_fdg(info.tracer):
        return Problem(str(source.path), f"tracer is {info.tracer!r}, not FDG; the {label} is skipped", notice=True)
    if info.units and info.units != "BQML":
        return Problem(str(source.path), f"image units are {info.units!r}, not BQML (Bq/mL); the {label} is skipped")
    if units == "suv" and info.suv_factor is None:
        return Problem(str(source.path), f"no SUV for the {label}: {info.suv_missing}; use -D units=bq_ml")
    return None


def peek_dicom(found: FoundSubject) -> tuple[str, str]:
    """(scanner, tracer) of a DICOM subject from one file of its lowest-DRF series; ("", "") if unknown."""
    dicom = [s for s in found.sources if s.kind == "dicom"]
    if not dicom:
        return "", ""
    source = min(dicom, key=lambda s: s.drf)
    import pydicom

    from .dicom_series import tracer_name

    try:
        ds = pydicom.dcmread(source.path / sorted(source.files)[0], stop_before_pixels=True)
    except Exception:
        return source.name_scanner, ""  # the full read reports the problem
    seen = scanner_from_header(str(ds.get("Manufacturer", "")), str(ds.get("ManufacturerModelName", "")))
    return ("" if seen == "unknown" else seen), tracer_name(ds)
