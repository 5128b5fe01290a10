"""Per method: step time, CUDA kernels and kernel-issuing ops per step, FLOPs and the share of the peak.

    python benchmarks/gpu_launch_check.py --device cuda --out launch.json        # on a GPU (bf16, paper presets)
    python benchmarks/gpu_launch_check.py --device cuda --compile                 # also with --compile's modules
    python benchmarks/gpu_launch_check.py --device cpu                            # smoke run of the same code

On CUDA: every shipped method's ``paper`` preset at 128² with bf16 autocast, as ``petbench run``
trains it; Cycle-GAN three times (``step_batching`` ``none``, ``merge``, ``stack``). For every stage:
the mean step time over ``--steps`` steps after ``--warmup`` (``torch.cuda.synchronize`` around them),
the CUDA kernels of one step (``torch.profiler``'s device kernels), its kernel-issuing ATen ops
(``launch_counts.KernelOps``), its FLOPs (``torch.utils.flop_counter``), the achieved TFLOP/s and
their share of ``--peak-tflops`` (default 989, the H100 SXM's dense bf16), the time per kernel, and
the stage's hours per seed (steps per seed x step time). The totals per table are printed at the end
next to the compute-bound lower limit (launch_counts.py's).

``--device cpu`` is a smoke run: ``quick`` presets at 32², float32, 2 timed steps, no kernel count
(there is no CUDA profiler), so that the script is known to run before it is given a GPU's time.
The CPU figures mean nothing for a GPU.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import launch_counts  # noqa: E402

CASES = [("cyclegan", {"step_batching": "none"}), ("cyclegan", {"step_batching": "merge"}),
         ("cyclegan", {"step_batching": "stack"}), ("autocontext", {}), ("argan", {}), ("cvtgan", {}),
         ("semipet", {}), ("s3pet", {})]


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cuda_kernels(step) -> int | None:
    """Device kernels of one step, from torch.profiler (None without CUDA)."""
    if not torch.cuda.is_available():
        return None
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return len(kernels)


def mean_ms(step, device, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    synchronise(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronise(device)
    return 1000 * (time.perf_counter() - started) / steps


def measure_case(name, options, args, device, amp, preset, size, compiled: bool) -> list[dict]:
    method, stages = launch_counts.build(name, options, preset=preset, size=size, device=str(device), amp=amp)
    report = None
    if compiled:
        from petbench.engine.compile import compile_method

        report = compile_method(method, stages, device, amp).as_dict()
    rows = []
    for stage in stages:
        step = launch_counts.step_runner(method, stage, size, str(device), amp)
        launch_counts.warm_up(stage, step)
        ms = mean_ms(step, device, args.steps, args.warmup)
        ops = sum(launch_counts.count_step(step).values()) if not compiled else None
        kernels = cuda_kernels(step) if device.type == "cuda" else None
        flops = launch_counts.flops_of_step(step) if not compiled else None
        per_seed = launch_counts.steps_per_seed(stage) if preset == "paper" else None
        row = {"method": name, "options": options, "stage": stage.name, "batch": stage.batch_size, "compiled": compiled,
               "compile_report": report, "ms_per_step": round(ms, 3), "kernel_ops": ops, "cuda_kernels": kernels,
               "flops_per_step": flops, "steps_per_seed": per_seed,
               "hours_per_seed": round(per_seed * ms / 3.6e6, 3) if per_seed else None}
        if flops:
            row["tflops"] = round(flops / (ms / 1000) / 1e12, 3)
            row["share_of_peak"] = round(flops / (ms / 1000) / (args.peak_tflops * 1e12), 5)
        if kernels:
            row["us_per_kernel"] = round(1000 * ms / kernels, 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per stage (default 20 on CUDA, 2 on CPU)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also each method compiled as --compile does")
    parser.add_argument("--method", action="append", help="only these methods")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--out", help="write every row to this JSON file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    if on_gpu and not torch.cuda.is_available():
        print("Error: --device cuda, but torch sees no CUDA device; use --device cpu for the smoke run", file=sys.stderr)
        return 2
    args.steps = args.steps or (20 if on_gpu else 2)
    preset, size, amp = ("paper", 128, torch.bfloat16) if on_gpu else ("quick", 32, None)
    if not on_gpu:
        torch.set_num_threads(1)
        args.warmup = min(args.warmup, 1)
    rows = []
    for name, options in CASES:
        if args.method and name not in args.method:
            continue
        rows += measure_case(name, options, args, device, amp, preset, size, compiled=False)
        if args.compile:
            rows += measure_case(name, options, args, device, amp, preset, size, compiled=True)
    print(f"\n{'method':12s} {'options':24s} {'stage':12s} {'compiled':8s} {'ms/step':>8s} {'kernels':>8s} "
          f"{'ATen ops':>8s} {'TFLOP/s':>8s} {'h/seed':>7s}")
    for r in rows:
        print(f"{r['method']:12s} {json.dumps(r['options']):24s} {r['stage']:12s} {str(r['compiled']):8s} "
              f"{r['ms_per_step']:8.2f} {str(r['cuda_kernels'] or '-'):>8s} {str(r['kernel_ops'] or '-'):>8s} "
              f"{str(r.get('tflops', '-')):>8s} {str(r['hours_per_seed'] or '-'):>7s}")
    if on_gpu:
        fastest = {}
        for r in rows:  # per method and stage, the fastest variant (Cycle-GAN: its best batching)
            key = (r["method"], r["stage"])
            if key not in fastest or r["ms_per_step"] < fastest[key]["ms_per_step"]:
                fastest[key] = r
        hours = sum(r["hours_per_seed"] or 0 for r in fastest.values())
        print(f"\nTable I, one seed, the fastest variant of each stage: {hours:.2f} h of training on {device} "
              f"({torch.cuda.get_device_name(device)}); Table II adds three S3PET Stage II runs")
    if args.out:
        Path(args.out).write_text(json.dumps({"device": str(device), "preset": preset, "size": size,
                                              "amp": str(amp), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
