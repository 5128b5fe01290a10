"""The engine against a bare PyTorch loop doing the same steps on the same data, in one run (pytest-benchmark).

    pytest benchmarks/test_engine_vs_bare_loop.py --benchmark-columns=min,mean,rounds
    BENCH_STEPS=320 BENCH_ROUNDS=3 BENCH_DEVICE=cuda pytest benchmarks/test_engine_vs_bare_loop.py

``test_engine_vs_bare_loop``: a small CNN (petbench's TinyMethod, width 8) trained for ``BENCH_STEPS``
steps (default 320: 20 epochs of 16 batches of 16 slices of 64²) by ``petbench.engine.train`` and by
a bare loop (shuffle, index, forward, L1, zero_grad, backward, Adam step). Both start from the same
weights on the same slices, in the same process, so with the same allocator settings
(:func:`petbench.engine.allocator.tune_allocator` is applied at import, as ``petbench run`` does);
rounds alternate bare/engine. The ratio bare time / engine time (1.0 = as fast) of the fastest round
of each is asserted to be at least 0.95 and stored in ``extra_info``. Each loop's CPU time (user +
system, ``time.process_time``) is the measure compared: on a shared machine the wall time also counts
the time other processes held the cores, which differs between rounds; both are reported.

``test_engine_overhead_per_step``: the engine's own host work per step, in microseconds. The model is
one scalar weight (``x + x * w``, L1, SGD) on batches of 2 slices of 4², so a step costs a few dozen
microseconds and the difference between the two loops is not lost in the noise of a loaded machine.
``BENCH_OVERHEAD_STEPS`` steps (default 3,000, one epoch) by the engine (default settings: a window of
50 steps, no progress bar, no checkpoint directory) and by the bare loop (index, forward, L1,
zero_grad, backward, step), alternating for ``BENCH_OVERHEAD_ROUNDS`` rounds (default 11); (engine -
bare) CPU time of the fastest round of each, per step. Target: at most 20 µs (asserted; every round is
in ``extra_info``).

``test_engine_loop_work_per_step``: the same with a null step (it returns one new 0-d loss and trains
nothing), against a bare loop that only slices the order, gathers the two batches and makes the loss:
what is left is the engine's loop, batches and loss bookkeeping alone, a few microseconds that a loaded
machine blurs far less than the difference of two ~200 µs steps. Nothing is asserted; the figure is
printed and in ``extra_info``.

``test_mallopt_on_the_bare_loop``: the same bare loop in fresh processes, with malloc as glibc leaves
it, with ``MALLOC_MMAP_THRESHOLD_`` raised in the environment, and with petbench's ``mallopt`` calls.
Each process runs the loop once and reports its time; the ratios are what to compare.
"""
import json
import os
import subprocess
import sys
import time

import torch

DEVICE = torch.device(os.environ.get("BENCH_DEVICE", "cpu"))
STEPS = int(os.environ.get("BENCH_STEPS", "320"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BATCH, SIZE, WIDTH, SLICES = 16, 64, 8, 256


def slices():
    generator = torch.Generator().manual_seed(0)
    spet = torch.nn.functional.avg_pool2d(torch.rand(SLICES, 1, SIZE, SIZE, generator=generator), 5, 1, 2)
    lpet = spet + 0.1 * torch.randn(spet.shape, generator=generator)
    return lpet, spet


def method_and_stage():
    from petbench.testing.toys import TinyMethod

    torch.manual_seed(0)
    method = TinyMethod({"width": WIDTH, "batch_size": BATCH, "epochs": STEPS // (SLICES // BATCH)}, "quick")
    method.nets.to(DEVICE)
    return method, method.stages()


def synchronise():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


class Clock:
    """Wall and CPU seconds of a block (CPU: this process's user + system time)."""

    def __enter__(self):
        synchronise()
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        synchronise()
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def bare_loop(lpet, spet, steps=STEPS) -> Clock:
    """The same model, optimiser, loss and batches in plain PyTorch; returns its clock."""
    method, _ = method_and_stage()
    net = method.nets["net"].train()
    optimizer = torch.optim.Adam(net.parameters(), lr=method.options["lr"])
    lpet, spet = lpet.to(DEVICE), spet.to(DEVICE)
    generator = torch.Generator().manual_seed(0)
    per_epoch = len(lpet) // BATCH
    with Clock() as clock:
        done = 0
        while done < steps:
            order = torch.randperm(len(lpet), generator=generator).to(DEVICE)
            for step in range(min(per_epoch, steps - done)):
                index = order[step * BATCH:(step + 1) * BATCH]
                x, y = lpet[index], spet[index]
                loss = (x + net(x) - y).abs().mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            done += per_epoch
    return clock


def engine_run(lpet, spet) -> Clock:
    from petbench.data.slices import TrainingData
    from petbench.engine import train

    method, stages = method_and_stage()
    with Clock() as clock:
        (report,) = train(method, stages, TrainingData({"lpet": lpet, "spet": spet}), seed=0, device=DEVICE,
                          progress=False)
    assert report.steps == STEPS
    return clock


def test_engine_vs_bare_loop(benchmark):
    from petbench.engine.allocator import tune_allocator

    allocator = tune_allocator()
    torch.set_num_threads(1)  # a shared machine: one thread each, the same for both
    lpet, spet = slices()
    bare_times = []
    engine_times = []

    def setup():  # runs before each engine round: a bare-loop round, timed here
        bare_times.append(bare_loop(lpet, spet))

    def run():
        engine_times.append(engine_run(lpet, spet))

    bare_loop(lpet, spet, steps=SLICES // BATCH)  # warm-up of both
    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, warmup_rounds=1)
    fastest = {kind: {clock: min(getattr(c, clock) for c in clocks) for clock in ("wall", "cpu")}
               for kind, clocks in (("bare", bare_times), ("engine", engine_times))}
    ratio = {clock: fastest["bare"][clock] / fastest["engine"][clock] for clock in ("wall", "cpu")}
    benchmark.extra_info.update(steps=STEPS, batch=BATCH, size=SIZE, width=WIDTH, device=str(DEVICE),
                                allocator=allocator, speed_ratio_cpu=round(ratio["cpu"], 3),
                                speed_ratio_wall=round(ratio["wall"], 3),
                                **{f"{kind}_{clock}_s": [round(getattr(c, clock), 3) for c in clocks]
                                   for kind, clocks in (("bare", bare_times), ("engine", engine_times))
                                   for clock in ("wall", "cpu")})
    for clock in ("cpu", "wall"):
        print(f"\n{clock}: bare loop {fastest['bare'][clock]:.2f} s, engine {fastest['engine'][clock]:.2f} s "
              f"(fastest of {len(engine_times)} rounds each, {STEPS} steps): engine at {ratio[clock]:.3f} of the "
              f"bare loop's speed", end="")
    print(f"\nallocator {allocator}; rounds: bare {[(round(c.wall, 2), round(c.cpu, 2)) for c in bare_times]}, "
          f"engine {[(round(c.wall, 2), round(c.cpu, 2)) for c in engine_times]} (wall, cpu)")
    assert ratio["cpu"] >= 0.95, f"the engine ran at {ratio['cpu']:.3f} of the bare loop's speed (target >= 0.95)"


OVERHEAD_STEPS = int(os.environ.get("BENCH_OVERHEAD_STEPS", "3000"))
OVERHEAD_ROUNDS = int(os.environ.get("BENCH_OVERHEAD_ROUNDS", "11"))
OVERHEAD_TARGET_US = 20.0


class Scale(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        return x * self.weight


def overhead_setup():
    from petbench import Method, Stage

    class OneWeight(Method):  # a step of a few microseconds of arithmetic: what is left is the loop
        name = "one-weight"
        defaults = {}

        def __init__(self):
            super().__init__({}, None)
            self.nets["net"] = Scale()

        def stages(self):
            optimizer = torch.optim.SGD(self.nets["net"].parameters(), lr=1e-3)

            def step(batch, ctx):
                loss = (batch["lpet"] + self.nets["net"](batch["lpet"]) - batch["spet"]).abs().mean()
                ctx.backward_step(loss, optimizer)
                return {"l1": loss}
            return [Stage("train", step, {"sgd": optimizer}, modules=("net",), epochs=1, batch_size=2)]

        def predict(self, lpet):
            return lpet

    torch.manual_seed(0)
    method = OneWeight()
    method.nets.to(DEVICE)
    return method


def overhead_data():
    generator = torch.Generator().manual_seed(0)
    spet = torch.rand(2 * OVERHEAD_STEPS, 1, 4, 4, generator=generator)  # one epoch of OVERHEAD_STEPS steps
    return spet + 0.1 * torch.randn(spet.shape, generator=generator), spet


def overhead_bare(lpet, spet) -> Clock:
    method = overhead_setup()
    net = method.nets["net"].train()
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)
    lpet, spet = lpet.to(DEVICE), spet.to(DEVICE)
    generator = torch.Generator().manual_seed(0)
    with Clock() as clock:
        order = torch.randperm(len(lpet), generator=generator).to(DEVICE)
        for step in range(OVERHEAD_STEPS):
            start = (step * 2) % len(order)
            index = order[start:start + 2]
            x, y = lpet[index], spet[index]
            loss = (x + net(x) - y).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return clock


def overhead_engine(lpet, spet, method=None) -> Clock:
    from petbench.data.slices import TrainingData
    from petbench.engine import train

    method = method or overhead_setup()
    stages = method.stages()
    with Clock() as clock:
        (report,) = train(method, stages, TrainingData({"lpet": lpet, "spet": spet}), seed=0, device=DEVICE,
                          progress=False)
    assert report.steps == OVERHEAD_STEPS
    return clock


def test_engine_overhead_per_step(benchmark):
    from petbench.engine.allocator import tune_allocator

    tune_allocator()
    torch.set_num_threads(1)
    lpet, spet = overhead_data()
    bare, engine = [], []
    overhead_bare(lpet, spet), overhead_engine(lpet, spet)  # warm-up of both

    def setup():
        bare.append(overhead_bare(lpet, spet))

    benchmark.pedantic(lambda: engine.append(overhead_engine(lpet, spet)), setup=setup, rounds=OVERHEAD_ROUNDS,
                       warmup_rounds=0)
    per_step = {clock: 1e6 * (min(getattr(c, clock) for c in engine) - min(getattr(c, clock) for c in bare))
                / OVERHEAD_STEPS for clock in ("cpu", "wall")}
    bare_step = 1e6 * min(c.cpu for c in bare) / OVERHEAD_STEPS
    pairs = sorted(1e6 * (e.cpu - b.cpu) / OVERHEAD_STEPS for b, e in zip(bare, engine))
    per_step["paired_median_cpu"] = pairs[len(pairs) // 2]  # each engine round against the bare round before it
    benchmark.extra_info.update(steps=OVERHEAD_STEPS, rounds=OVERHEAD_ROUNDS, overhead_us_cpu=round(per_step["cpu"], 2),
                                overhead_us_wall=round(per_step["wall"], 2), bare_step_us_cpu=round(bare_step, 2),
                                bare_cpu_s=[round(c.cpu, 4) for c in bare], engine_cpu_s=[round(c.cpu, 4) for c in engine])
    benchmark.extra_info["overhead_us_cpu_paired_median"] = round(per_step["paired_median_cpu"], 2)
    print(f"\nengine overhead: {per_step['cpu']:.1f} µs per step CPU time ({per_step['wall']:.1f} µs wall; median of "
          f"adjacent pairs {per_step['paired_median_cpu']:.1f} µs CPU), on a bare "
          f"step of {bare_step:.1f} µs; fastest of {OVERHEAD_ROUNDS} alternating rounds of {OVERHEAD_STEPS} steps; "
          f"rounds (cpu s): bare {[round(c.cpu, 3) for c in bare]}, engine {[round(c.cpu, 3) for c in engine]}")
    assert per_step["cpu"] <= OVERHEAD_TARGET_US, \
        f"the engine spends {per_step['cpu']:.1f} µs per step over a bare loop (target <= {OVERHEAD_TARGET_US:g})"


def null_setup():
    from petbench import Method, Stage

    loss = torch.tensor(0.5)

    class Null(Method):
        name = "null-step"
        defaults = {}

        def __init__(self):
            super().__init__({}, None)
            self.nets["net"] = Scale()

        def stages(self):
            return [Stage("train", lambda batch, ctx: {"l1": loss * 1}, {}, modules=("net",), epochs=1, batch_size=2)]

        def predict(self, lpet):
            return lpet
    return Null(), loss


def null_bare(lpet, spet) -> Clock:
    _, loss = null_setup()
    generator = torch.Generator().manual_seed(0)
    with Clock() as clock:
        order = torch.randperm(len(lpet), generator=generator)
        for step in range(OVERHEAD_STEPS):
            index = order[step * 2:step * 2 + 2]
            batch = {"lpet": lpet[index], "spet": spet[index]}
            losses = {"l1": loss * 1}
    assert batch and losses
    return clock


def null_engine(lpet, spet) -> Clock:
    return overhead_engine(lpet, spet, null_setup()[0])


def test_engine_loop_work_per_step(benchmark):
    torch.set_num_threads(1)
    lpet, spet = overhead_data()
    bare, engine = [], []
    null_bare(lpet, spet), null_engine(lpet, spet)

    benchmark.pedantic(lambda: engine.append(null_engine(lpet, spet)), setup=lambda: bare.append(null_bare(lpet, spet)),
                       rounds=OVERHEAD_ROUNDS, warmup_rounds=0)
    fastest = 1e6 * (min(c.cpu for c in engine) - min(c.cpu for c in bare)) / OVERHEAD_STEPS
    pairs = sorted(1e6 * (e.cpu - b.cpu) / OVERHEAD_STEPS for b, e in zip(bare, engine))
    benchmark.extra_info.update(loop_us_cpu=round(fastest, 2), loop_us_cpu_paired_median=round(pairs[len(pairs) // 2], 2))
    print(f"\nengine loop work with a null step: {fastest:.1f} µs per step CPU time (median of adjacent pairs "
          f"{pairs[len(pairs) // 2]:.1f} µs), on a bare null step of {1e6 * min(c.cpu for c in bare) / OVERHEAD_STEPS:.1f} µs")


def test_mallopt_on_the_bare_loop():
    results = {}
    variants = {"glibc default": {"PETBENCH_MALLOPT": "0"},
                "MALLOC_MMAP_THRESHOLD_=32 MiB": {"PETBENCH_MALLOPT": "0", "MALLOC_MMAP_THRESHOLD_": str(32 << 20)},
                "petbench mallopt": {}}
    for name, extra in variants.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        env.update(extra)
        out = subprocess.run([sys.executable, __file__, "bare"], env=env, capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    base, cpu_base = results["glibc default"]["seconds"], results["glibc default"]["cpu_s"]
    print()
    for name, result in results.items():
        print(f"{name:32s} wall {result['seconds']:6.2f} s  ({base / result['seconds']:.2f}x the default's speed)  "
              f"cpu {result['cpu_s']:6.2f} s ({cpu_base / result['cpu_s']:.2f}x)  mallopt: {result['allocator']}")
    assert results["petbench mallopt"]["allocator"] == {"mmap_threshold": 32 << 20, "trim_threshold": 1 << 30}
    assert results["glibc default"]["allocator"] == {}


if __name__ == "__main__" and sys.argv[1:] == ["bare"]:
    from petbench.engine.allocator import tune_allocator

    applied = tune_allocator()  # as petbench's start-up does (a no-op with PETBENCH_MALLOPT=0)
    torch.set_num_threads(1)
    clock = bare_loop(*slices())
    print(json.dumps({"seconds": clock.wall, "cpu_s": clock.cpu, "allocator": applied}))
