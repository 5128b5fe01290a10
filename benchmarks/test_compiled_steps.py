"""Each shipped method's training step, eager against ``--compile``, and S3PET Stage II's share of the bf16 peak.

    BENCH_DEVICE=cuda pytest benchmarks/test_compiled_steps.py -s --benchmark-columns=mean,rounds
    BENCH_DEVICE=cuda BENCH_PEAK_TFLOPS=989 pytest benchmarks/test_compiled_steps.py -s -k fraction

On a GPU: the ``paper`` preset, 128² slices, bf16 autocast as the engine runs it, and
``compile_method``'s GPU settings (inductor, CUDA graphs, channels_last). On the CPU this is only a
smoke test of the same code (``quick`` preset, 32² slices, the ``aot_eager`` backend), not a timing.
A step is one call of the stage's ``step`` as the engine makes it (autocast, the scaler's update);
``extra_info`` holds the mean ms of eager and compiled steps after warm-up. The fraction of the bf16
peak is the FLOPs of one S3PET Stage II step (counted by ``torch.utils.flop_counter``) per second of
its compiled step time, over ``BENCH_PEAK_TFLOPS`` (default 989: NVIDIA's dense BF16 Tensor Core
figure for the H100 SXM; set your GPU's).
"""
import os
import time

import pytest
import torch

pytest.importorskip("pytest_benchmark")
from petbench.engine.compile import compile_method  # noqa: E402
from petbench.method import RunContext, TrainContext, call_stages  # noqa: E402
from petbench.plugins import get_host  # noqa: E402

DEVICE = torch.device(os.environ.get("BENCH_DEVICE", "cpu"))
ON_GPU = DEVICE.type == "cuda"
PRESET = "paper" if ON_GPU else "quick"
SIZE = 128 if ON_GPU else 32
AMP = torch.bfloat16 if ON_GPU else None
BACKEND = None if ON_GPU else "aot_eager"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20" if ON_GPU else "2"))
PEAK_TFLOPS = float(os.environ.get("BENCH_PEAK_TFLOPS", "989"))
METHODS = ["cyclegan", "autocontext", "argan", "cvtgan", "semipet", "s3pet"]
COUNTS = {"paired": 30 * 128, "unpaired_lpet": 30 * 128, "unpaired_spet": 120 * 128}  # the paper protocol


def synchronise():
    if ON_GPU:
        torch.cuda.synchronize()


def build(name: str):
    torch.manual_seed(0)
    method = get_host().methods.get(name)({}, PRESET)
    method.nets.to(DEVICE)
    run = RunContext(dataset="bench", drf=10, device=DEVICE, amp_dtype=AMP, slice_shape=(SIZE, SIZE),
                     slice_counts=COUNTS)
    return method, call_stages(method, run)


def step_runner(method, stage):
    scaler = torch.amp.GradScaler(enabled=False)
    ctx = TrainContext(DEVICE, AMP, scaler)
    n = stage.batch_size
    generator = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(n, 1, SIZE, SIZE, generator=generator).to(DEVICE) for k in ("lpet", "spet", "lpet_u", "spet_u")}
    method.nets.eval()
    for module in stage.modules:
        method.nets[module].train()

    def step():
        with torch.autocast(device_type=DEVICE.type, dtype=AMP or torch.float32, enabled=AMP is not None):
            stage.step(batch, ctx)
        if ctx.stepped:
            scaler.update()
            ctx.stepped = False
    return step


def mean_ms(step, rounds=ROUNDS, warmup=3) -> float:
    for _ in range(warmup):  # the compiled step's first calls compile and record its graphs
        step()
    synchronise()
    started = time.perf_counter()
    for _ in range(rounds):
        step()
    synchronise()
    return 1000 * (time.perf_counter() - started) / rounds


@pytest.mark.parametrize("name", METHODS)
def test_eager_vs_compiled_step(benchmark, name):
    method, stages = build(name)
    eager = {stage.name: mean_ms(step_runner(method, stage)) for stage in stages}
    method, stages = build(name)
    report = compile_method(method, stages, DEVICE, AMP, backend=BACKEND)
    compiled = {stage.name: mean_ms(step_runner(method, stage)) for stage in stages}
    last = step_runner(method, stages[-1])
    benchmark.pedantic(last, rounds=ROUNDS, warmup_rounds=1)
    benchmark.extra_info.update(device=str(DEVICE), preset=PRESET, size=SIZE, amp=str(AMP), mode=report.mode,
                                channels_last=report.channels_last, eager_ms=eager, compiled_ms=compiled)
    print(f"\n{name} ({PRESET}, {SIZE}², {AMP or 'fp32'}, {DEVICE}): " + "; ".join(
        f"{stage} eager {eager[stage]:.1f} ms, compiled {compiled[stage]:.1f} ms" for stage in eager))
    assert set(compiled) == set(eager) and all(ms > 0 for ms in compiled.values())


def test_s3pet_stage2_fraction_of_bf16_peak(benchmark):
    from torch.utils.flop_counter import FlopCounterMode

    method, stages = build("s3pet")
    stage2 = next(s for s in stages if s.name == "stage2")
    step = step_runner(method, stage2)
    step()
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    compile_method(method, stages, DEVICE, AMP, backend=BACKEND)
    compiled_step = step_runner(method, stage2)
    ms = mean_ms(compiled_step)
    benchmark.pedantic(compiled_step, rounds=ROUNDS, warmup_rounds=1)
    fraction = flops / (ms / 1000) / (PEAK_TFLOPS * 1e12)
    benchmark.extra_info.update(device=str(DEVICE), flops_per_step=flops, compiled_ms=ms, peak_tflops=PEAK_TFLOPS,
                                fraction_of_peak=fraction)
    print(f"\nS3PET stage2 ({PRESET}, batch {stage2.batch_size}, {SIZE}²): {flops / 1e9:.1f} GFLOP per step, "
          f"{ms:.2f} ms compiled: {flops / (ms / 1000) / 1e12:.2f} TFLOP/s = {100 * fraction:.2f} % of "
          f"{PEAK_TFLOPS:g} TFLOP/s" + ("" if ON_GPU else " (CPU smoke run: not a GPU figure)"))
    assert flops > 0 and ms > 0
