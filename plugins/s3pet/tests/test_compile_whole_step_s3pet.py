"""--compile on S3PET: every stage's whole step is captured and the three stages train as eager does
(aot_eager on the CPU: capture and AOT autograd, no code generation; eager's random masks)."""
import pytest
import torch
from s3pet_tiny import structured_batch, tiny

from petbench.data.slices import TrainingData
from petbench.engine import train
from petbench.engine.compile import compile_method
from petbench.method import RunContext
from petbench_s3pet.method import S3PET

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("fresh_dynamo")


def trained(compiled: bool):
    data = TrainingData(structured_batch(n=8))
    method = tiny(S3PET, stage1_steps_per_epoch=2, stage2_steps_per_epoch=2)
    run = RunContext(dataset="tiny", drf=4, device=CPU, slice_shape=(32, 32), slice_counts=lambda source: 8)
    stages = method.stages()
    report = compile_method(method, stages, CPU, backend="aot_eager", data=data, run=run) if compiled else None
    return method, train(method, stages, data, seed=0, device=CPU, progress=False, run=run), report


def test_s3pet_whole_steps_train_as_eager():
    eager, eager_reports, _ = trained(False)
    compiled, compiled_reports, report = trained(True)
    assert report.whole_step and [c.stage for c in report.stages] == [r.name for r in eager_reports]
    for (name, a), (_, b) in zip(eager.nets.named_parameters(), compiled.nets.named_parameters()):
        if name.endswith("attn.qkv.bias"):  # the key bias: softmax ignores it, its gradient is rounding
            a, b = a.view(3, -1)[0::2], b.view(3, -1)[0::2]  # noise that Adam scales up; compare q and v
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    for a, b in zip(eager_reports, compiled_reports):
        assert b.steps == a.steps
        for name, value in a.final_losses.items():
            assert b.final_losses[name] == pytest.approx(value, rel=1e-5, abs=1e-7), (a.name, name)
