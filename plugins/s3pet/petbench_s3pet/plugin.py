"""The ``s3pet`` entry point of the ``petbench`` group: registers S3PET and its Table II variants."""
from petbench import hookimpl

from .method import METHODS


@hookimpl
def register_methods(register):
    for method in METHODS:
        register(method)
