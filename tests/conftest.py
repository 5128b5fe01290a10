"""Shared fixtures: an isolated plugin host with the toy dataset and method, a results folder."""
import pytest
import torch

from petbench.plugins import set_host
from petbench.testing.toys import TOY_PLUGIN, isolated_host


@pytest.fixture
def host():
    host = isolated_host(TOY_PLUGIN)
    set_host(host)
    yield host
    set_host(None)


@pytest.fixture
def results(tmp_path):
    return tmp_path / "results"


# Tiny tensors: torch's thread pool costs more than it saves, and runs stay reproducible.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def no_mlflow_unless_asked(monkeypatch):
    """The MLflow logger (on wherever mlflow is installed) costs seconds per run; its own tests switch it on."""
    monkeypatch.setenv("PETBENCH_MLFLOW", "0")
