"""pytest plugin shipped with petbench (entry point ``pytest11``): fixtures for plugin authors.

- ``petbench_host``: an isolated plugin host (built-ins + the tiny toy dataset and method; no
  entry-point plugins) installed as the CLI's host for the test.
- ``tiny_dataset``: a :class:`petbench.testing.TinyDataset` with a few small subjects.
"""
import pytest

from ..plugins import set_host
from .toys import TOY_PLUGIN, TinyDataset, isolated_host


@pytest.fixture
def petbench_host():
    host = isolated_host(TOY_PLUGIN)
    set_host(host)
    yield host
    set_host(None)


@pytest.fixture
def tiny_dataset():
    return TinyDataset(n_subjects=6, size=16, depth=8)
