"""--compile: compiled training equals eager training on the CPU, modules really are compiled, methods opt out.

The CPU tests use the ``aot_eager`` backend (dynamo capture + AOT autograd, no code generation):
inductor works on this machine but its first compilation of even the tiny CNN took 72 s on a loaded
2-core box, too slow for CI. ``PETBENCH_TEST_INDUCTOR=1`` adds the inductor case.
"""
import os

import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters

from petbench.data.protocol import Protocol
from petbench.data.slices import TrainingData
from petbench.engine import train
from petbench.engine.compile import compile_method, compile_settings, graph_step
from petbench.errors import UserError
from petbench.runner import RunConfig, execute
from petbench.testing.toys import TOY_PLUGIN, TinyMethod, isolated_host

CPU = torch.device("cpu")
BACKENDS = ["aot_eager"] + (["inductor"] if os.environ.get("PETBENCH_TEST_INDUCTOR") else [])


pytestmark = pytest.mark.usefixtures("fresh_dynamo")


def slices():
    generator = torch.Generator().manual_seed(0)
    lpet = torch.rand(24, 1, 16, 16, generator=generator)
    return TrainingData({"lpet": lpet, "spet": 0.5 * lpet + 0.1 * lpet.roll(1, dims=-1)})


def trained(compiled: bool, backend: str = "aot_eager"):
    torch.manual_seed(0)
    method = TinyMethod({"epochs": 2, "batch_size": 8}, "quick")
    stages = method.stages()
    if compiled:
        report = compile_method(method, stages, CPU, backend=backend)
        assert report.compiled == ["net"]
    reports = train(method, stages, slices(), seed=0, device=CPU, progress=False)
    with torch.no_grad():
        prediction = method.predict(slices().tensors["lpet"][:6])
    return method, reports, prediction


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_training_equals_eager_on_cpu(backend):
    eager, eager_reports, eager_prediction = trained(False)
    assert not counters["frames"]
    compiled, compiled_reports, compiled_prediction = trained(True, backend)
    # the module was traced (TinyMethod's net is an nn.Sequential, which nn.Module.compile() leaves eager)
    assert counters["frames"]["ok"] >= 1
    for (name, a), (_, b) in zip(eager.nets.named_parameters(), compiled.nets.named_parameters()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(compiled_prediction, eager_prediction, rtol=1e-5, atol=1e-6)
    assert compiled_reports[0].steps == eager_reports[0].steps == 6
    assert list(compiled.nets.state_dict()) == list(eager.nets.state_dict())  # checkpoints keep their keys


class TwoNets(TinyMethod):
    name = "two-nets"

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        self.nets["critic"] = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())


def test_compile_exclude_and_opt_out():
    method = TwoNets({}, "quick")
    type(method).compile_exclude = ("critic",)
    try:
        report = compile_method(method, method.stages(), CPU, backend="aot_eager")
    finally:
        del type(method).compile_exclude
    assert report.compiled == ["net"] and report.excluded == ["critic"]
    assert "forward" in vars(method.nets["net"]) and "forward" not in vars(method.nets["critic"])

    opted_out = TwoNets({}, "quick")
    opted_out.compile = False
    report = compile_method(opted_out, opted_out.stages(), CPU, backend="aot_eager")
    assert report.compiled == [] and report.excluded == ["net", "critic"]
    assert not any("forward" in vars(module) for module in opted_out.nets.values())


def test_compile_exclude_of_an_unknown_module_is_a_user_error():
    method = TwoNets({}, "quick")
    method.compile_exclude = ("discriminator",)
    with pytest.raises(UserError, match="compile_exclude names 'discriminator'.*net, critic"):
        compile_method(method, method.stages(), CPU, backend="aot_eager")


def test_settings_cuda_graphs_only_on_a_gpu(monkeypatch):
    monkeypatch.delenv("PETBENCH_COMPILE_BACKEND", raising=False)
    monkeypatch.delenv("PETBENCH_COMPILE_MODE", raising=False)
    assert compile_settings(CPU) == ("inductor", None)
    assert compile_settings(torch.device("cuda")) == ("inductor", "reduce-overhead")
    monkeypatch.setenv("PETBENCH_COMPILE_BACKEND", "aot_eager")
    assert compile_settings(torch.device("cuda")) == ("aot_eager", None)


def test_graph_step_copies_losses_out_of_graph_memory():
    loss = torch.tensor(2.0, requires_grad=True) * 1.5
    step = graph_step(lambda batch, ctx: {"l1": loss, "lr": 0.1})
    out = step({}, None)
    assert out["lr"] == 0.1 and out["l1"].item() == 3.0
    assert out["l1"].data_ptr() != loss.data_ptr() and not out["l1"].requires_grad


def test_run_compile_is_recorded_equal_and_not_part_of_the_identity(tmp_path, monkeypatch):
    monkeypatch.setenv("PETBENCH_COMPILE_BACKEND", "aot_eager")
    host = isolated_host(TOY_PLUGIN)
    protocol = Protocol(n_train=2, n_test=2, n_unpaired=0, drf=4)
    records = {}
    for compiled in (False, True):
        config = RunConfig(method="tiny-cnn", dataset="tiny", protocol=protocol, preset="quick", device="cpu",
                           method_options={"epochs": 1}, compile=compiled, save_predictions=False)
        records[compiled] = execute(host, config, tmp_path / str(compiled), progress=False, log=lambda _: None)
    eager, compiled = records[False], records[True]
    assert compiled.run_id == eager.run_id
    assert eager.data["config"]["compile"] is None
    assert compiled.data["config"]["compile"]["whole_step"]  # tests/test_compile_whole_step.py
    assert counters["frames"]["ok"] >= 1
    for name, stats in eager.summary.items():
        assert compiled.summary[name]["mean"] == pytest.approx(stats["mean"], rel=1e-4, abs=1e-6), name


def test_cli_compile_flags_reach_the_run_and_the_grid(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from petbench.cli import create_app
    from petbench.grids.spec import resolve_grid
    from petbench.plugins import set_host
    from petbench.results import find_records

    monkeypatch.setenv("PETBENCH_COMPILE_BACKEND", "aot_eager")
    host = isolated_host(TOY_PLUGIN)
    try:
        result = CliRunner().invoke(create_app(host), [
            "run", "-m", "tiny-cnn", "-d", "tiny", "--drf", "4", "--n-train", "2", "--n-test", "1",
            "--n-unpaired", "0", "--preset", "quick", "-o", "epochs=1", "--device", "cpu", "--no-predictions",
            "-q", "--compile", "--results", str(tmp_path)])
    finally:
        set_host(None)
    assert result.exit_code == 0, result.output
    (record,) = find_records(tmp_path)
    assert record.data["config"]["compile"]["stages"][0]["whole_step"]
    grid = tmp_path / "g.toml"
    grid.write_text('methods = ["tiny-cnn"]\ndataset = "tiny"\ndrf = 4\n')
    assert resolve_grid(str(grid), compile=True).run_config(resolve_grid(str(grid)).cells()[0]).compile
    assert not resolve_grid(str(grid)).run_config(resolve_grid(str(grid)).cells()[0]).compile
