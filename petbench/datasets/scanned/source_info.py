"""What the headers of one source (DICOM series or NIfTI file) say, in a form that caches as JSON."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class SourceInfo:
    """Geometry, scanner, tracer and SUV factor of one source, read without decoding pixels (DICOM)."""

    shape: tuple[int, int, int]  # (z, y, x)
    affine: list[list[float]]  # NIfTI (RAS) affine of the volume stored [x, y, z]
    files: tuple[str, ...] = ()  # DICOM files ordered along the slice normal
    scanner: str = "unknown"  # "quadra", "uexplorer" or "unknown"
    model: str = ""  # ManufacturerModelName
    tracer: str = ""  # Radiopharmaceutical as recorded
    units: str = "BQML"
    suv_factor: float | None = None  # SUVbw = Bq/mL * suv_factor
    suv_missing: str = ""  # why there is no SUV factor
    notes: list[str] = field(default_factory=list)  # harmless oddities worth a notice

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "SourceInfo":
        data = dict(data)
        data["shape"] = tuple(data["shape"])
        data["files"] = tuple(data.get("files", ()))
        return cls(**data)

    @property
    def affine_array(self) -> np.ndarray:
        return np.asarray(self.affine, dtype=np.float64)


def suv_factor(weight_kg, injected_bq, half_life_s, seconds_since_injection) -> tuple[float | None, str]:
    """SUVbw factor: weight [g] / (injected activity decayed to the reference time) [Bq]; or why not."""
    missing = [name for name, value in (("patient weight", weight_kg), ("injected dose", injected_bq),
                                        ("half-life", half_life_s), ("injection time", seconds_since_injection))
               if value is None]
    if missing:
        return None, "no " + ", ".join(missing) + " recorded"
    if weight_kg <= 0 or injected_bq <= 0 or half_life_s <= 0:
        return None, f"non-positive weight/dose/half-life ({weight_kg} kg, {injected_bq} Bq, {half_life_s} s)"
    decayed = injected_bq * 0.5 ** (seconds_since_injection / half_life_s)
    return weight_kg * 1000.0 / decayed, ""


def is_fdg(tracer: str) -> bool:
    """The challenge is 18F-FDG only; a few series are another tracer (68Ga-DOTA) and must be skipped."""
    text = tracer.lower().replace(" ", "")
    return "fdg" in text or "deoxyglucose" in text or "fluorodeoxy" in text


def scanner_from_header(manufacturer: str, model: str) -> str:
    """"quadra" or "uexplorer" (UDPET's Siemens data all come from the Biograph Vision Quadra), else "unknown"."""
    text = f"{manufacturer} {model}".lower()
    if "quadra" in text or "siemens" in text:
        return "quadra"
    if "uexplorer" in text or "uih" in text or "united imaging" in text:
        return "uexplorer"
    return "unknown"
