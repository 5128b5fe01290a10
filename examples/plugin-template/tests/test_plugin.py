"""The template's tests: petbench's conformance checks on everything the plugin registers, a run
through the real command line, and tests of the plugin's own behaviour."""
import importlib.metadata

import numpy as np
import pytest

import petbench_plugin_template.plugin as plugin
from petbench.plugins import get_plugin_manager
from petbench.testing import check_method, conformance_tests
from petbench_plugin_template.metric import mean_absolute_error

# One test per method, dataset and metric the plugin registers: trains template-cnn for two steps
# on tiny data and checks its predictions, checkpoints and determinism; checks template-mae.
test_conformance = conformance_tests(plugin)


def test_a_wider_configuration_also_conforms():
    check_method("template-cnn", options={"width": 8, "depth": 4}, plugin=plugin)


def test_runs_through_petbench_run(petbench_host, petbench_cli, tmp_path):
    petbench_host.add(plugin, name="template")
    result = petbench_cli("run", "--method", "template-cnn", "--dataset", "tiny", "--drf", "4",
                          "--n-train", "3", "--n-test", "2", "--n-unpaired", "0", "--preset", "quick",
                          "-o", "epochs=1", "-o", "steps_per_epoch=2", "--metrics", "psnr,template-mae",
                          "--results", tmp_path, "-q")
    assert result.exit_code == 0, result.output
    assert "template-mae" in result.output
    compare = petbench_cli("compare", "--results", tmp_path, "--format", "csv")
    assert compare.exit_code == 0 and "template-cnn" in compare.output


def test_mean_absolute_error():
    ref = np.zeros((2, 3, 4))
    assert mean_absolute_error(ref + 2.0, ref) == pytest.approx(2.0)
    assert mean_absolute_error(ref, ref) == 0.0


def installed() -> bool:
    try:
        importlib.metadata.distribution("petbench-plugin-template")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not installed(), reason="pip install -e . first: tests the installed entry point")
def test_installed_plugin_shows_up_in_petbench():
    host = get_plugin_manager()
    assert "template" in host.infos, [f.line() for f in host.failures]
    assert host.infos["template"].dist == "petbench-plugin-template==0.1.0"
    assert host.methods.entry("template-cnn").plugin == "template"
    assert host.metrics.entry("template-mae").dist == "petbench-plugin-template==0.1.0"
