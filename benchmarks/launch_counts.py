"""Kernel-issuing operations and FLOPs of one training step of each shipped method, as the engine calls it.

    python benchmarks/launch_counts.py                     # every method's paper preset, CPU, counts only
    python benchmarks/launch_counts.py --method cyclegan -o step_batching=none   # Cycle-GAN's unbatched step
    python benchmarks/launch_counts.py --flops            # also each step's FLOPs and the tables' lower limit

**What is counted.** A ``TorchDispatchMode`` sees every ATen operation after autograd, as it goes to
the device's kernels: the forward ops, the backward ops the autograd engine runs, the gradient
accumulation and the optimiser's ops. View and allocation ops (``view``, ``t``, ``empty``, ``detach``,
...) issue no kernel and are left out; every other op is counted once. On a GPU almost each of these
ops is one kernel launch (a few are more: cuDNN may run two kernels for one convolution; a foreach
or fused optimiser op is one launch per chunk of tensors), so the count is a load-independent proxy
for the launches of a step, measured without a GPU. ``gpu_launch_check.py`` counts real CUDA kernels.

**Which step.** The method's ``paper`` preset and its own batch size, slices of ``--size`` (128, the
paper's), random inputs, one warm-up step (optimiser state created) and the image pools filled
beforehand (so the step is in its steady state), then one counted step. The count depends on the
batch size only through per-sample loops; it does not depend on the slice size.

**FLOPs** (``--flops``): ``torch.utils.flop_counter`` over the same step (forward, backward;
convolutions and matrix products, which is where the arithmetic is), times the number of optimiser
steps each stage runs under the paper protocol (``STEPS``), summed per table. The compute-bound lower
limit of a table is those FLOPs at the GPU's dense bf16 peak (``--peak-tflops``, default 989: the H100
SXM's): no schedule can train it faster on one GPU.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

#: ops that issue no kernel: allocations and metadata (view ops are recognised by their schema)
NO_KERNEL = {"empty", "empty_strided", "empty_like", "new_empty", "new_empty_strided", "detach", "lift_fresh",
             "set_", "resize_", "_unsafe_view", "is_same_size", "_has_compatible_shallow_copy_type",
             "_record_function_enter_new", "_record_function_exit"}  # the last two: profiler labels

#: the paper protocol: 30 x 128 paired slices, the same LPET unpaired, 120 x 128 unpaired SPET
COUNTS = {"paired": 30 * 128, "unpaired_lpet": 30 * 128, "unpaired_spet": 120 * 128}
#: which runs each table trains once per seed (Table II's Stage I is S3PET's, shared with Table I)
TABLE_1 = ["cyclegan", "autocontext", "argan", "cvtgan", "semipet", "s3pet"]
TABLE_2_MORE = [("s3pet", {"use_dsmae": False, "use_dkd": False, "use_dkl": False}, ["stage2"]),
                ("s3pet", {"use_dkd": False, "use_dkl": False}, ["stage2"]),
                ("s3pet", {"use_dkl": False}, ["stage2"])]


class KernelOps(TorchDispatchMode):
    """Counts the ATen ops that reach a device kernel, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if not func.is_view and name not in NO_KERNEL:
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))


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
        with torch.autocast(device_type=device.type, dtype=amp or torch.float32, enabled=amp is not None):
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


def measure(name: str, options: dict | None = None, size: int = 128, flops: bool = False,
            only: list[str] | None = None, repeats: int = 0) -> list[dict]:
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
        if flops:
            row["flops_per_step"] = flops_of_step(step)
        if repeats:
            row.update(step_seconds(step, repeats))
        rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", action="append", help="a method name (repeatable; default: all six)")
    parser.add_argument("-o", dest="options", action="append", default=[], help="key=value method option")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--flops", action="store_true", help="also FLOPs per step and the tables' lower limit")
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
    for name in args.method or TABLE_1:
        rows += measure(name, options, args.size, args.flops, repeats=args.time)
    if args.flops and not args.method:
        for name, extra, only in TABLE_2_MORE:
            rows += [{**row, "table2_only": True} for row in measure(name, extra, args.size, True, only)]
    print(f"{'method':12s} {'stage':14s} {'batch':>5s} {'kernel ops/step':>15s} {'steps/seed':>10s}"
          + (f" {'GFLOP/step':>11s}" if args.flops else ""))
    for row in rows:
        print(f"{row['method'] + ('*' if row.get('table2_only') else ''):12s} {row['stage']:14s} {row['batch']:5d} "
              f"{row['kernel_ops']:15d} {row['steps_per_seed']:10d}"
              + (f" {row['flops_per_step'] / 1e9:11.2f}" if args.flops else "")
              + (f"  step {row['cpu_s_min'] * 1000:.0f} ms CPU (fastest of {args.time})" if args.time else ""))
    if args.flops and not args.method:
        print_lower_limits(rows, args.peak_tflops)
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
