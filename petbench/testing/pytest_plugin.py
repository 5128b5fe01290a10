"""pytest plugin shipped with petbench (entry point ``pytest11``): fixtures for plugin authors.

Installed with petbench, so any test suite has these fixtures without a conftest:

- ``petbench_host``: an isolated plugin host (the built-ins plus the tiny toy dataset ``tiny`` and
  method ``tiny-cnn``; no entry-point plugins), installed as the CLI's host for the test. Add
  your plugin with ``petbench_host.add(my_plugin_module, name="mine")``.
- ``petbench_host_factory``: ``make(*plugins, builtins=True, toys=True)`` -> such a host with your
  plugin objects in it, installed as the CLI's host.
- ``petbench_cli``: ``petbench_cli("run", "--method", ...)`` invokes the command line on the
  current host (``petbench_host`` unless a factory host was made) and returns Click's result.
- ``tiny_dataset``: a :class:`petbench.testing.TinyDataset` with a few small subjects.
- ``fresh_dynamo``: ``torch.compile``'s caches and counters emptied before the test, the caches after
  (for tests of ``--compile``: ``pytestmark = pytest.mark.usefixtures("fresh_dynamo")``).

The conformance checks themselves are plain functions: see :mod:`petbench.testing.conformance`.
"""
import pytest

from .. import plugins
from .toys import TOY_PLUGIN, TinyDataset, isolated_host


@pytest.fixture
def petbench_host_factory():
    previous = plugins._default_host

    def make(*extra, builtins: bool = True, toys: bool = True):
        host = isolated_host(*((TOY_PLUGIN,) if toys else ()), *extra, builtins=builtins)
        plugins.set_host(host)
        return host

    yield make
    plugins.set_host(previous)


@pytest.fixture
def petbench_host(petbench_host_factory):
    return petbench_host_factory()


@pytest.fixture
def petbench_cli(petbench_host):
    from typer.testing import CliRunner

    from ..cli import create_app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(create_app(plugins.get_host()), [str(a) for a in args])

    return invoke


@pytest.fixture
def tiny_dataset():
    return TinyDataset(n_subjects=6, size=16, depth=8)


@pytest.fixture
def fresh_dynamo():
    import torch
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()
