"""Training-step and inference throughput of the five baselines (pytest-benchmark; not pass/fail).

    pytest benchmarks/test_baselines_speed.py --benchmark-columns=mean,stddev,rounds
    BASELINES_BENCH_SIZE=64 BASELINES_BENCH_DEVICE=cuda pytest benchmarks/test_baselines_speed.py

A training benchmark is one call of the method's stage ``step`` (generator and discriminator
updates: forward, backward, Adam) on a batch of the preset's size (the paper preset on a CPU
with a batch of 4, which is too slow otherwise); inference is one ``predict`` call on 32 slices.
Throughput (slices per second) and the parameter count are stored in ``extra_info``.
"""
import os

import pytest
import torch

pytest.importorskip("pytest_benchmark")
petbench = pytest.importorskip("petbench")
plugin = pytest.importorskip("petbench_baselines.plugin")

SIZE = int(os.environ.get("BASELINES_BENCH_SIZE", "128"))
DEVICE = torch.device(os.environ.get("BASELINES_BENCH_DEVICE", "cpu"))
METHODS = {cls.name: cls for cls in plugin.METHODS}
PRESETS = ("quick", "paper")


def build(name, preset):
    torch.manual_seed(0)
    options = {"batch_size": 4} if preset == "paper" and DEVICE.type == "cpu" else {}
    method = METHODS[name](options, preset)
    method.nets.to(DEVICE)
    return method


def synchronise():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def slices(n):
    return torch.rand(n, 1, SIZE, SIZE, device=DEVICE)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", list(METHODS))
def test_training_step(benchmark, name, preset):
    method = build(name, preset)
    stage = method.stages()[0]
    ctx = petbench.TrainContext(DEVICE, None, torch.amp.GradScaler(enabled=False))
    n = stage.batch_size
    batch = {"lpet": slices(n), "spet": slices(n), "lpet_u": slices(n), "spet_u": slices(n)}
    method.nets.eval()
    for module in stage.modules:
        method.nets[module].train()

    def step():
        stage.step(batch, ctx)
        synchronise()

    benchmark.pedantic(step, rounds=3, warmup_rounds=1)
    benchmark.extra_info.update(batch_size=n, size=SIZE, device=str(DEVICE),
                                slices_per_s=round(n / benchmark.stats.stats.mean, 2))


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", list(METHODS))
def test_inference(benchmark, name, preset):
    method = build(name, preset)
    lpet = slices(32)

    def predict():
        method.predict(lpet)
        synchronise()

    benchmark.pedantic(predict, rounds=3, warmup_rounds=1)
    benchmark.extra_info.update(batch_size=32, size=SIZE, device=str(DEVICE), parameters=method.parameter_count(),
                                slices_per_s=round(32 / benchmark.stats.stats.mean, 1))
