"""The ``baselines`` plugin: the five comparison methods of the S3PET paper's Table I and the classical post-filters."""
from petbench import hookimpl

from .argan import ARGAN
from .autocontext import AutoContext
from .classical import BM3DFilter, GaussianFilter, NonLocalMeans, bm3d_available
from .cvtgan import CVTGAN
from .cyclegan import CycleGAN
from .semipet import SemiPET

METHODS = (CycleGAN, AutoContext, ARGAN, CVTGAN, SemiPET)
#: the classical post-filters (no trainable network); BM3D only where its optional package is installed
CLASSICAL = (GaussianFilter, NonLocalMeans) + ((BM3DFilter,) if bm3d_available() else ())


@hookimpl
def register_methods(register):
    for method in METHODS + CLASSICAL:
        register(method)
