"""The training engine: runs every method's stages the same way."""
from .trainer import StageReport, train

__all__ = ["StageReport", "train"]
