"""S3PET training and inference throughput per stage (pytest-benchmark; not a pass/fail test).

    pytest benchmarks/test_s3pet_speed.py --benchmark-columns=mean,stddev,rounds
    S3PET_BENCH_SIZE=64 S3PET_BENCH_DEVICE=cuda pytest benchmarks/test_s3pet_speed.py

Each training benchmark is one optimisation step of a stage (forward, backward, Adam) on a batch
of the preset's size; inference is one ``predict`` call on a batch of 32 slices. Throughput
(slices per second) is stored in each result's ``extra_info``.
"""
import os

import pytest
import torch

pytest.importorskip("pytest_benchmark")
petbench = pytest.importorskip("petbench")
s3pet = pytest.importorskip("petbench_s3pet")

SIZE = int(os.environ.get("S3PET_BENCH_SIZE", "128"))
DEVICE = torch.device(os.environ.get("S3PET_BENCH_DEVICE", "cpu"))
#: the paper model is slow on a CPU: benchmark it with a smaller batch there
PAPER_BATCH = {"stage1_batch_size": 8, "stage2_batch_size": 8} if DEVICE.type == "cpu" else {}
CONFIGS = {"quick": ("quick", {}), "paper": ("paper", PAPER_BATCH)}
STAGES = ("stage1-lpet", "stage1-spet", "stage2")


def build(config, variant="full"):
    preset, options = CONFIGS[config]
    torch.manual_seed(0)
    method = s3pet.S3PET({**options, "variant": variant}, preset)
    method.nets.to(DEVICE)
    return method


def synchronise():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def slices(n):
    return torch.rand(n, 1, SIZE, SIZE, device=DEVICE)


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("stage_name", STAGES)
def test_training_step(benchmark, config, stage_name):
    method = build(config)
    stage = next(s for s in method.stages() if s.name == stage_name)
    ctx = petbench.TrainContext(DEVICE, None, torch.amp.GradScaler(enabled=False))
    n = stage.batch_size
    batch = {"lpet": slices(n), "spet": slices(n), "lpet_u": slices(n), "spet_u": slices(n)}
    method.nets.eval()
    for name in stage.modules:
        method.nets[name].train()

    def step():
        stage.step(batch, ctx)
        synchronise()

    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    benchmark.extra_info.update(batch_size=n, size=SIZE, device=str(DEVICE),
                                slices_per_s=round(n / benchmark.stats.stats.mean, 1))


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("variant", ["full", "baseline"])
def test_inference(benchmark, config, variant):
    method = build(config, variant)
    method.nets.eval()
    lpet = slices(32)

    def predict():
        method.predict(lpet)
        synchronise()

    benchmark.pedantic(predict, rounds=5, warmup_rounds=1)
    benchmark.extra_info.update(batch_size=32, size=SIZE, device=str(DEVICE),
                                slices_per_s=round(32 / benchmark.stats.stats.mean, 1),
                                parameters=method.parameter_count())
