"""A template petbench plugin: copy this folder, rename the package, replace the method and metric."""
__version__ = "0.1.0"
