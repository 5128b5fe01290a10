"""--compile of whole steps: a method whose trial step breaks the graph only where dynamo means to gets
each stage's step (forward, backward, Adam) compiled as one unit and trains as eager does; one whose
trial step breaks it elsewhere, or that opts out, is compiled per module and the record says why.

The backend is ``aot_eager`` (capture and AOT autograd without code generation), as in test_compile.py,
or a recording backend that keeps the graphs dynamo hands it.
"""
import pytest
import torch
from torch._dynamo.utils import counters

from petbench.data.protocol import Protocol
from petbench.engine import train
from petbench.engine.compile import compile_method
from petbench.runner import RunConfig, execute
from petbench.testing.toys import TOY_PLUGIN, TinyMethod, isolated_host

from test_compile import slices

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("fresh_dynamo")


class PerModule(TinyMethod):
    name = "tiny-per-module"
    compile_whole_step = False


class ReadsTheLoss(TinyMethod):
    """A step that reads its loss to the host: a graph break dynamo does not make on purpose."""
    name = "tiny-reads"

    def stages(self):
        (stage,) = super().stages()
        step = stage.step

        def reading(batch, ctx):
            losses = step(batch, ctx)
            return {**losses, "host": losses["l1"].item()}
        stage.step = reading
        return [stage]


def trained(method_cls, compiled: bool, backend="aot_eager"):
    torch.manual_seed(0)
    method = method_cls({"epochs": 2, "batch_size": 8}, "quick")
    stages = method.stages()
    report = compile_method(method, stages, CPU, backend=backend, data=slices()) if compiled else None
    (stage_report,) = train(method, stages, slices(), seed=0, device=CPU, progress=False)
    return method, stage_report, report


def assert_same_training(a, b):
    (method_a, report_a, _), (method_b, report_b, _) = a, b
    for (name, x), (_, y) in zip(method_a.nets.named_parameters(), method_b.nets.named_parameters()):
        torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-6, msg=name)
    assert report_b.final_losses["l1"] == pytest.approx(report_a.final_losses["l1"], rel=1e-5, abs=1e-7)
    assert report_a.steps == report_b.steps == 6


def test_a_whole_step_trains_as_eager_and_compiles_the_optimiser_with_the_step():
    graphs = []

    def recording(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    eager = trained(TinyMethod, False)
    compiled = trained(TinyMethod, True, backend=recording)
    assert_same_training(eager, compiled)  # and so the trial step was undone
    method, _, report = compiled
    assert report.whole_step and report.compiled == [] and "forward" not in vars(method.nets["net"])
    (stage,) = report.as_dict()["stages"]
    assert stage["whole_step"] and stage["reason"] is None and stage["graphs"] >= 2
    assert "optimizer" in stage["breaks_at"]
    called = {str(node.target) for gm in graphs for node in gm.graph.nodes if node.op in ("call_function", "call_method")}
    assert any("conv2d" in name for name in called)  # the forward ...
    assert any("sqrt" in name or "addcdiv" in name for name in called)  # ... and Adam's update, in one compiled step
    assert "whole steps of stage 'supervised'" in report.line()


def test_a_step_with_another_graph_break_falls_back_per_module_and_says_where():
    eager = trained(ReadsTheLoss, False)
    compiled = trained(ReadsTheLoss, True)
    assert_same_training(eager, compiled)
    method, _, report = compiled
    assert not report.whole_step and report.compiled == ["net"] and "forward" in vars(method.nets["net"])
    (stage,) = report.as_dict()["stages"]
    assert not stage["whole_step"]
    assert "Tensor.item()" in stage["reason"] and "test_compile_whole_step.py:" in stage["reason"]
    assert report.line().startswith("compile (aot_eager): per module (net); stage 'supervised': graph break")


def test_a_method_that_opts_out_is_compiled_per_module_without_a_trial():
    method = PerModule({}, "quick")
    report = compile_method(method, method.stages(), CPU, backend="aot_eager", data=slices())
    assert report.compiled == ["net"] and not report.whole_step and not counters["frames"]
    assert report.as_dict()["stages"] == [{"stage": "supervised", "whole_step": False, "graphs": 0, "graph_breaks": 0,
                                           "breaks_at": [], "reason": "the method sets compile_whole_step = False"}]


def test_without_training_data_or_with_excluded_modules_there_is_no_trial():
    method = TinyMethod({}, "quick")
    report = compile_method(method, method.stages(), CPU, backend="aot_eager")
    assert report.compiled == ["net"] and report.stages[0].reason == "no training data to try the whole step on"
    assert not counters["frames"]  # nothing was traced
    excluding = TinyMethod({}, "quick")
    excluding.compile_exclude = ("net",)
    report = compile_method(excluding, excluding.stages(), CPU, backend="aot_eager", data=slices())
    assert report.compiled == [] and report.excluded == ["net"]
    assert report.stages[0].reason == "compile_exclude keeps net eager"


def test_the_run_records_and_shows_the_whole_step(tmp_path, monkeypatch):
    monkeypatch.setenv("PETBENCH_COMPILE_BACKEND", "aot_eager")
    host = isolated_host(TOY_PLUGIN)
    protocol = Protocol(n_train=2, n_test=2, n_unpaired=0, drf=4)
    lines, records = [], {}
    for compiled in (False, True):
        config = RunConfig(method="tiny-cnn", dataset="tiny", protocol=protocol, preset="quick", device="cpu",
                           method_options={"epochs": 1}, compile=compiled, save_predictions=False)
        records[compiled] = execute(host, config, tmp_path / str(compiled), progress=False, log=lines.append)
    entry = records[True].data["config"]["compile"]
    assert entry["whole_step"] and entry["compiled"] == [] and entry["stages"][0]["stage"] == "supervised"
    assert [line for line in lines if line.startswith("compile")] == [
        "compile (aot_eager): whole steps of stage 'supervised' "
        f"({entry['stages'][0]['graphs']} graphs, breaks only at {', '.join(entry['stages'][0]['breaks_at'])})"]
    for name, stats in records[False].summary.items():
        assert records[True].summary[name]["mean"] == pytest.approx(stats["mean"], rel=1e-4, abs=1e-6), name
