"""--compile on the shipped baselines: Auto-Context's whole step is captured and trains as eager does
(aot_eager on the CPU); the GANs' steps freeze their discriminators with ``requires_grad_``, a graph break
dynamo does not make on purpose, so they are compiled per module and the report says where."""
import pytest
import torch

from petbench.data.slices import TrainingData
from petbench.engine import train
from petbench.engine.compile import compile_method
from petbench_baselines.argan import ARGAN
from petbench_baselines.autocontext import AutoContext

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("fresh_dynamo")


def data(size=16, n=12):
    generator = torch.Generator().manual_seed(0)
    spet = torch.nn.functional.avg_pool2d(torch.rand(n, 1, size, size, generator=generator), 3, 1, 1)
    return TrainingData({"lpet": spet + 0.1 * torch.rand(spet.shape, generator=generator), "spet": spet})


def trained(compiled: bool):
    torch.manual_seed(0)
    method = AutoContext({**AutoContext.test_options, "epochs": 2}, "quick")
    stages = method.stages()
    report = compile_method(method, stages, CPU, backend="aot_eager", data=data()) if compiled else None
    (stage_report,) = train(method, stages, data(), seed=0, device=CPU, progress=False)
    return method, stage_report, report


def test_autocontext_whole_step_trains_as_eager():
    eager, eager_report, _ = trained(False)
    compiled, compiled_report, report = trained(True)
    assert report.whole_step and report.compiled == [] and report.stages[0].graphs >= 2
    for (name, a), (_, b) in zip(eager.nets.named_parameters(), compiled.nets.named_parameters()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    assert compiled_report.steps == eager_report.steps == 6
    for name, value in eager_report.final_losses.items():
        assert compiled_report.final_losses[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name


def test_a_gan_falls_back_per_module_naming_the_break():
    torch.manual_seed(0)
    method = ARGAN(dict(ARGAN.test_options), "quick")
    report = compile_method(method, method.stages(), CPU, backend="aot_eager", data=data(size=32))
    assert not report.whole_step and report.compiled == list(method.nets.keys())
    assert "requires_grad_" in report.stages[0].reason and "gan_losses.py:" in report.stages[0].reason
