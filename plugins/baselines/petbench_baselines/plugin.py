"""The ``baselines`` plugin: registers the five comparison methods of the S3PET paper's Table I."""
from petbench import hookimpl

from .argan import ARGAN
from .autocontext import AutoContext
from .cvtgan import CVTGAN
from .cyclegan import CycleGAN
from .semipet import SemiPET

METHODS = (CycleGAN, AutoContext, ARGAN, CVTGAN, SemiPET)


@hookimpl
def register_methods(register):
    for method in METHODS:
        register(method)
