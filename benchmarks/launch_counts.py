"""Kernel-issuing operations and FLOPs of one training step of each shipped method, as the engine calls it.

    python benchmarks/launch_counts.py                     # every method's paper preset, CPU, counts only
    python benchmarks/launch_counts.py --method cyclegan -o step_batching=none   # Cycle-GAN's unbatched step
    python benchmarks/launch_counts.py --flops            # FLOPs per step, per seed, and the tables' lower limit

**What is counted** (``petbench.testing.kernel_ops.KernelOps``, a ``TorchDispatchMode``): every ATen
operation after autograd, as it goes to the device's kernels (forward, backward, gradient
accumulation, the optimiser), without views and allocations. On a GPU almost each is one kernel
launch, so the count is a load-independent proxy for a step's launches, measured without a GPU.
``gpu_launch_check.py`` counts real CUDA kernels.

**Which step.** The method's ``paper`` preset and its own batch size, slices of ``--size`` (128, the
paper's), random inputs, one warm-up step (optimiser state created) and the image pools filled
beforehand (so the step is in its steady state), then one counted step. The count depends on the
batch size only through per-sample loops; it does not depend on the slice size.

**FLOPs** (``--flops``): ``torch.utils.flop_counter`` over one step of every stage on the meta
device (shapes only: the paper's batch and 128² cost no compute), forward and backward (convolutions,
matrix products and attention, which is where the arithmetic is; the optimiser's elementwise update
is not counted, and is not run), times the number of optimiser
steps each stage runs under the paper protocol (``STEPS``), summed per table. The compute-bound lower
limit of a table is those FLOPs at the GPU's dense bf16 peak (``--peak-tflops``, default 989: the H100
SXM's): no schedule can train it faster on one GPU.
"""
from __future__ import annotations

import argparse
import contextlib
import ast
import json
import sys
import time
from collections import Counter

import torch

from petbench.testing.kernel_ops import KernelOps

#: the paper protocol: 30 x 128 paired slices, the same LPET unpaired, 120 x 128 unpaired SPET
COUNTS = {"paired": 30 * 128, "unpaired_lpet": 30 * 128, "unpaired_spet": 120 * 128}
#: which runs each table trains once per seed (Table II's Stage I is S3PET's, shared with Table I)
TABLE_1 = ["cyclegan", "autocontext", "argan", "cvtgan", "semipet", "s3pet"]
TABLE_2_MORE = [("s3pet", {"variant": "baseline"}, ["stage2"]), ("s3pet", {"variant": "dsmae"}, ["stage2"]),
                ("s3pet", {"variant": "dsmae-dkd"}, ["stage2"])]


def build(name: str, options: dict | None = None, preset: str = "paper", size: int = 128,
          device: str = "cpu", amp: torch.dtype | None = None):
    from petbench.method import RunContext, call_stages
    from petbench.plugins import get_host

    torch.manual_seed(0)
    method = get_host().methods.get(name)(options or {}, preset)
    method.nets.to(device)
    run = RunContext(dataset="bench", drf=10, device=torch.device(device), amp_dtype=amp, slice_shape=(size, size),
                     slice_counts=COUNTS)
    return method, call_stages(method, run)


def step_runner(method, stage, size: int = 128, device: str = "cpu", amp: torch.dtype | None = None):
    """One call of ``stage.step`` as the engine makes it (autocast, the scaler's update), on fixed random slices."""
    from petbench import TrainContext

    device = torch.device(device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    ctx = TrainContext(device, amp, scaler)
    generator = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(stage.batch_size, 1, size, size, generator=generator).to(device)
             for k in ("lpet", "spet", "lpet_u", "spet_u")}
    method.nets.eval()
    for module in stage.modules:
        method.nets[module].train()
    def step():
        if amp is None:
            losses = stage.step(batch, ctx)
        else:
            with torch.autocast(device_type=device.type, dtype=amp):
                losses = stage.step(batch, ctx)
        if ctx.stepped:
            scaler.update()
            ctx.stepped = False
        return losses
    return step


def warm_up(stage, step) -> None:
    """One step (optimiser state, lazily built buffers), then the image pools filled to their size, so
    the counted step is in the steady state of a long run (a pool swaps only once it is full)."""
    step()
    for state in stage.state.values():
        if hasattr(state, "query") and getattr(state, "size", 0) > 0:
            while len(state) < state.size:
                like = state.images[0]
                state.query(torch.rand_like(like if like.dim() == 4 else like[None]))


def count_step(step) -> Counter:
    with KernelOps() as counter:
        step()
    return counter.ops


def flops_of_step(step) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


class BackwardOnly:
    """A TrainContext whose updates back-propagate without stepping: on the meta device (no data, no
    arithmetic) the optimisers cannot step, and their elementwise work is no FLOP the counter counts."""

    def __init__(self, device):
        self.device, self.amp_dtype, self.stepped, self.run = device, None, False, None
        self.epoch = self.step_index = 0
        self.steps_per_epoch = self.epochs = 1

    def backward_step(self, loss, *optimizers, retain_graph=False, clip_grad_norm=None):
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward(retain_graph=retain_graph)


@contextlib.contextmanager
def meta_autocast():
    """``torch.autocast(device_type="meta", ...)`` as a no-op (torch refuses the meta device; the steps only
    switch autocast off around float32 losses, which changes no FLOP count)."""
    real = torch.autocast

    def autocast(device_type, *args, **kwargs):
        return contextlib.nullcontext() if device_type == "meta" else real(device_type, *args, **kwargs)

    torch.autocast = autocast
    try:
        yield
    finally:
        torch.autocast = real


def meta_flops(name: str, options: dict | None = None, size: int = 128, only: list[str] | None = None) -> list[dict]:
    """FLOPs (forward and backward) of one step of every stage, at the paper's batch and ``size``, counted
    on the meta device: shapes only, so the paper sizes cost no compute."""
    from torch.utils.flop_counter import FlopCounterMode

    method, stages = build(name, options, size=size, device="meta")
    rows = []
    for stage in stages:
        if only and stage.name not in only:
            continue
        method.nets.eval()
        for module in stage.modules:
            method.nets[module].train()
        batch = {k: torch.empty(stage.batch_size, 1, size, size, device="meta") for k in ("lpet", "spet", "lpet_u", "spet_u")}
        with FlopCounterMode(display=False) as counter, meta_autocast():
            stage.step(batch, BackwardOnly(torch.device("meta")))
        rows.append({"method": name, "options": options or {}, "stage": stage.name, "batch": stage.batch_size,
                     "flops_per_step": counter.get_total_flops(), "steps_per_seed": steps_per_seed(stage)})
    return rows


def steps_per_seed(stage) -> int:
    from petbench.method import steps_for

    return stage.epochs * steps_for(COUNTS[stage.sources[0]], stage.batch_size, stage.steps_per_epoch)


def step_seconds(step, repeats: int) -> dict:
    """The fastest of ``repeats`` steps, CPU time (this process's user + system) and wall time."""
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        step()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return {"cpu_s_min": round(min(cpu), 4), "wall_s_min": round(min(wall), 4), "cpu_s": [round(v, 4) for v in cpu]}


def measure(name: str, options: dict | None = None, size: int = 128, only: list[str] | None = None,
              repeats: int = 0) -> list[dict]:
    method, stages = build(name, options, size=size)
    rows = []
    for stage in stages:
        if only and stage.name not in only:
            continue
        step = step_runner(method, stage, size)
        warm_up(stage, step)
        ops = count_step(step)
        row = {"method": name, "options": options or {}, "stage": stage.name, "batch": stage.batch_size,
               "kernel_ops": sum(ops.values()), "steps_per_seed": steps_per_seed(stage),
               "top_ops": dict(ops.most_common(6))}
        if repeats:
            row.update(step_seconds(step, repeats))
        rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", action="append", help="a method name (repeatable; default: all six)")
    parser.add_argument("-o", dest="options", action="append", default=[], help="key=value method option")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--flops", action="store_true",
                        help="FLOPs per step instead (on the meta device, paper batch, --size) and, for all methods, "
                             "the tables' compute-bound lower limit")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--time", type=int, default=0, metavar="N",
                        help="also time N steps per stage (the fastest, CPU and wall seconds; one thread)")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)
    options = {}
    for item in args.options:
        key, _, value = item.partition("=")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    torch.set_num_threads(1)
    rows = []
    if args.flops:
        for name in args.method or TABLE_1:
            rows += meta_flops(name, options, args.size)
        if not args.method:
            for name, extra, only in TABLE_2_MORE:
                rows += [{**row, "table2_only": True} for row in meta_flops(name, extra, args.size, only)]
        print(f"{'method':12s} {'stage':14s} {'batch':>5s} {'GFLOP/step':>11s} {'steps/seed':>10s} {'PFLOP/seed':>10s}")
        for row in rows:
            print(f"{row['method'] + ('*' if row.get('table2_only') else ''):12s} {row['stage']:14s} {row['batch']:5d} "
                  f"{row['flops_per_step'] / 1e9:11.1f} {row['steps_per_seed']:10d} "
                  f"{row['flops_per_step'] * row['steps_per_seed'] / 1e15:10.2f}")
        if not args.method:
            print_lower_limits(rows, args.peak_tflops)
    else:
        for name in args.method or TABLE_1:
            rows += measure(name, options, args.size, repeats=args.time)
        print(f"{'method':12s} {'stage':14s} {'batch':>5s} {'kernel ops/step':>15s} {'steps/seed':>10s}")
        for row in rows:
            print(f"{row['method']:12s} {row['stage']:14s} {row['batch']:5d} {row['kernel_ops']:15d} "
                  f"{row['steps_per_seed']:10d}"
                  + (f"  step {row['cpu_s_min'] * 1000:.0f} ms CPU, {row['wall_s_min'] * 1000:.0f} ms wall "
                     f"(fastest of {args.time})" if args.time else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


def print_lower_limits(rows: list[dict], peak_tflops: float) -> None:
    """Table I trains every Table-I row once; Table II adds three Stage II runs (its Stage I is S3PET's)."""
    table1 = sum(r["flops_per_step"] * r["steps_per_seed"] for r in rows if not r.get("table2_only"))
    table2_more = sum(r["flops_per_step"] * r["steps_per_seed"] for r in rows if r.get("table2_only"))
    total = table1 + table2_more
    seconds = total / (peak_tflops * 1e12)
    print(f"\nTable I, one seed: {table1 / 1e15:.1f} PFLOP; Table II adds {table2_more / 1e15:.1f} PFLOP; "
          f"both: {total / 1e15:.1f} PFLOP = {seconds / 60:.1f} min at {peak_tflops:g} TFLOP/s "
          "(the compute-bound lower limit on one GPU)")


if __name__ == "__main__":
    sys.exit(main())
