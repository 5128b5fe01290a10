"""The plugin module named by the ``petbench`` entry point in pyproject.toml.

petbench imports it, finds the functions marked with ``@hookimpl`` and calls them; each hook
receives a ``register`` callback. Keep this module light: import your heavy code inside the hooks
or register lazy ``"module:Class"`` strings if importing it is slow.
"""
from petbench import hookimpl

from .method import TemplateCNN
from .metric import MAE


@hookimpl
def register_methods(register):
    register(TemplateCNN)


@hookimpl
def register_metrics(register):
    register(MAE)
