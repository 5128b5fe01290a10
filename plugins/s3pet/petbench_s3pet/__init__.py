"""petbench-s3pet: S3PET (semi-supervised SPET reconstruction via dose-aware token swap) for petbench."""
__version__ = "0.1.0"

from .method import METHODS, S3PET, S3PETBaseline, S3PETDsMAE, S3PETDsMAEDKD, VARIANTS

__all__ = ["METHODS", "S3PET", "S3PETBaseline", "S3PETDsMAE", "S3PETDsMAEDKD", "VARIANTS", "__version__"]
