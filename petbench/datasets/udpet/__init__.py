"""Reading the Ultra-low Dose PET Imaging Challenge (UDPET) data exactly as it is handed out.

discovery (walk + name classification) -> dicom_series / nifti_layouts (headers, pixels) ->
scan (UDPET's rules) and collection (checks, conversion) -> preprocess (the crop) -> cache.
The ``udpet`` dataset plugin is :mod:`petbench.default_plugins.udpet`.
"""
from .discovery import FULL_DOSE, classify_dose_name, discover
from .problems import Problem

__all__ = ["FULL_DOSE", "Problem", "classify_dose_name", "discover"]
