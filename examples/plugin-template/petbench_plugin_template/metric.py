"""``template-mae``: the mean absolute error over the whole volume, in the data's units."""
import numpy as np

from petbench import Metric


def mean_absolute_error(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean of |pred - ref| over every voxel of the re-stacked 3D volumes (physical units)."""
    return float(np.mean(np.abs(pred - ref)))


MAE = Metric("template-mae", mean_absolute_error, higher_is_better=False, unit="",
             description="Template plugin: mean absolute error over the whole volume (units of the data)",
             convention="template")  # your own convention's name; "challenge" would credit the UDPET evaluator
