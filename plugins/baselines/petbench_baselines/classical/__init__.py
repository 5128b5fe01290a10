"""Classical post-filters with no trainable network: Gaussian, non-local means, BM3D slice by slice.

Each has one parameter, fitted on the paired training slices only (``search.py``), and runs through the
host's protocol, evaluation and records like every method.
"""
from .bm3d_filter import BM3DFilter, bm3d_available
from .gaussian import GaussianFilter
from .nlm import NonLocalMeans

__all__ = ["BM3DFilter", "GaussianFilter", "NonLocalMeans", "bm3d_available"]
