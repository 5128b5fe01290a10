"""The five methods run end to end through the host (engine, evaluation, records) on tiny data."""
import importlib.metadata
import json

import pytest

from petbench.data.protocol import Protocol
from petbench.runner import RunConfig, execute
from petbench.testing import isolated_host
from petbench.testing.toys import TOY_PLUGIN
from petbench_baselines import plugin

from test_baselines_methods import SOURCES, TINY

PROTOCOL = Protocol(n_train=2, n_test=1, n_unpaired=2, drf=4)



@pytest.fixture(scope="module")
def host():
    return isolated_host(TOY_PLUGIN, plugin)


@pytest.mark.parametrize("name", list(TINY))
def test_run_through_the_host(host, tmp_path, name):
    options = {**TINY[name], "epochs": 2, "steps_per_epoch": 2}
    record = execute(host, RunConfig(method=name, dataset="tiny", method_options=options,
                                     dataset_options={"n_subjects": 6, "size": 32, "depth": 4},
                                     protocol=PROTOCOL, preset="quick", device="cpu", save_predictions=False),
                     tmp_path, progress=False, log=lambda _: None)
    assert record.data["status"] == "finished"
    assert record.data["method"]["training_sources"] == sorted(SOURCES[name])
    assert record.data["method"]["parameters"] > 0
    assert record.data["timings"]["stages"][0]["steps"] == 4
    json.dumps(record.data)  # options are JSON-serialisable
    assert set(record.data["summary"]) >= {"psnr"}


def test_entry_point_is_declared():
    try:
        eps = importlib.metadata.entry_points(group="petbench")
    except Exception:  # pragma: no cover
        pytest.skip("no entry points")
    found = [ep for ep in eps if ep.name == "baselines"]
    if not found:
        pytest.skip("petbench-baselines is not installed (pip install -e plugins/baselines)")
    assert found[0].value == "petbench_baselines.plugin"
