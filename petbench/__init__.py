"""petbench: a benchmark suite for low-dose -> standard-dose PET reconstruction.

The public plugin API: subclass :class:`Dataset` or :class:`Method`, build a :class:`Metric`,
and register them from ``@hookimpl`` functions (see docs/writing-plugins.md).
"""
__version__ = "0.1.0"

from .data.normalization import FixedScale, Normalization, TrainPercentile
from .data.subject import Subject
from .dataset import Dataset
from .errors import UserError
from .hookspecs import hookimpl
from .method import Method, Stage, TrainContext
from .metric import Metric
from .optim import adam

__all__ = [
    "Dataset", "FixedScale", "Method", "Metric", "Normalization", "Stage", "Subject", "TrainContext",
    "TrainPercentile", "UserError", "adam", "hookimpl", "__version__",
]
