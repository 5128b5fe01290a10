"""Reading the Ultra-low Dose PET Imaging Challenge (UDPET) data exactly as it is handed out.

discovery (walk + name classification) -> dicom_series / nifti_layouts (headers, pixels) ->
scan (UDPET's rules). Checks, conversion, the crop and the cache are the shared layer
:mod:`petbench.datasets.scanned`, which the ``folder`` dataset uses too.
The ``udpet`` dataset plugin is :mod:`petbench.default_plugins.udpet`.
"""
from ..scanned.names import FULL_DOSE
from ..scanned.problems import Problem
from .discovery import classify_dose_name, discover

__all__ = ["FULL_DOSE", "Problem", "classify_dose_name", "discover"]
