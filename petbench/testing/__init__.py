"""Tools for testing petbench and its plugins: tiny data, a tiny method, isolated hosts."""
from .toys import TinyDataset, TinyMethod, isolated_host

__all__ = ["TinyDataset", "TinyMethod", "isolated_host"]
