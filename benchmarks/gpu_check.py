"""The measurements of ``benchmarks/gpu_check.sh``, one sub-command per part; each writes JSON into ``--out``.

    python benchmarks/gpu_check.py step --method s3pet --device cuda --out DIR   # one method's steps
    python benchmarks/gpu_check.py grid --workers-per-gpu 4 --device cuda --out DIR
    python benchmarks/gpu_check.py summary --out DIR                               # the table for the docs

``step``: every stage of the method's ``paper`` preset, one optimiser step as the engine makes it (bf16
autocast, the scaler's update) on 128² slices, eager and compiled by ``compile_method`` (inductor, CUDA
graphs and channels_last on a GPU; whole steps where each stage's trial step on random slices allows it,
else per module, as ``compile`` in ``step-<method>.json`` says); the mean ms after warm-up, the FLOPs of one step (counted by
``torch.utils.flop_counter`` on the eager step) and so the achieved TFLOP/s of each, and its share of the
bf16 peak (``--peak-tflops``; 989 = NVIDIA's dense BF16 Tensor Core figure for the H100 SXM). With
``--device cpu`` it is a smoke run of the same code: ``quick`` preset, 32² slices, fp32, the
``aot_eager`` backend; its numbers are not GPU figures.

``grid``: ``petbench grid table1`` end to end on a small phantom protocol with every method's ``quick``
preset, K cells at once per GPU; the wall time of the grid and each cell's ``timings.total_s``.

``summary``: prints the cost table of docs/reproducing.md's shape from what the other parts wrote.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

METHODS = ["cyclegan", "autocontext", "argan", "cvtgan", "semipet", "s3pet"]
COUNTS = {"paired": 30 * 128, "unpaired_lpet": 30 * 128, "unpaired_spet": 120 * 128}  # the paper protocol


def settings(device: str) -> dict:
    gpu = device.startswith("cuda")
    return {"preset": "paper" if gpu else "quick", "size": 128 if gpu else 32, "amp": "bfloat16" if gpu else None,
            "backend": None if gpu else "aot_eager", "rounds": 20 if gpu else 2, "warmup": 3 if gpu else 1}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1))
    os.replace(temporary, path)


# -- step --------------------------------------------------------------------------------------
def measure_steps(method_name: str, device_name: str, out_file: Path) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from petbench.engine.compile import compile_method
    from petbench.method import RunContext, TrainContext, call_stages, steps_for
    from petbench.plugins import get_host

    s = settings(device_name)
    device = torch.device(device_name)
    gpu = device.type == "cuda"
    amp = getattr(torch, s["amp"]) if s["amp"] else None

    def synchronise():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def build():
        torch.manual_seed(0)
        cls = get_host().methods.get(method_name)
        # the CPU smoke run takes the method's tiny test model: what it proves is that the code runs
        options = {} if gpu else dict(getattr(cls, "test_options", None) or {})
        method = cls(options, s["preset"])
        method.nets.to(device)
        run = RunContext(dataset="bench", drf=10, device=device, amp_dtype=amp, slice_shape=(s["size"],) * 2,
                         slice_counts=COUNTS)
        return method, call_stages(method, run)

    def runner(method, stage):
        scaler = torch.amp.GradScaler(enabled=False)
        ctx = TrainContext(device, amp, scaler)
        generator = torch.Generator().manual_seed(0)
        batch = {k: torch.rand(stage.batch_size, 1, s["size"], s["size"], generator=generator).to(device)
                 for k in ("lpet", "spet", "lpet_u", "spet_u")}
        method.nets.eval()
        for module in stage.modules:
            method.nets[module].train()

        def step():
            with torch.autocast(device_type=device.type, dtype=amp or torch.float32, enabled=amp is not None):
                stage.step(batch, ctx)
            if ctx.stepped:
                scaler.update()
                ctx.stepped = False
        return step

    def mean_ms(step) -> tuple[float, float]:
        started = time.perf_counter()
        for _ in range(s["warmup"]):  # a compiled step's first calls compile and record its graphs
            step()
        synchronise()
        warm_s = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(s["rounds"]):
            step()
        synchronise()
        return 1000 * (time.perf_counter() - started) / s["rounds"], warm_s

    method, stages = build()
    parameters = sum(p.numel() for p in method.nets.parameters())
    result = {"method": method_name, "device": device_name, "gpu": gpu_name(device), **s, "parameters": parameters,
              "stages": {}}
    for stage in stages:
        step = runner(method, stage)
        step()
        with FlopCounterMode(display=False) as counter:
            step()
        ms, _ = mean_ms(step)
        per_epoch = steps_for(COUNTS.get(stage.sources[0], 0), stage.batch_size, stage.steps_per_epoch)
        result["stages"][stage.name] = {"batch_size": stage.batch_size, "epochs": stage.epochs,
                                        "steps_per_epoch": per_epoch, "flops": counter.get_total_flops(),
                                        "eager_ms": ms}
    write_json(out_file, result)  # the eager figures stay if compiling runs out of time
    method, stages = build()
    report = compile_method(method, stages, device, amp, backend=s["backend"], data=trial_data(stages, s["size"]))
    result["compile"] = report.as_dict()  # whole steps or per module, and why, per stage
    for stage in stages:
        ms, warm_s = mean_ms(runner(method, stage))
        entry = result["stages"][stage.name]
        entry.update(compiled_ms=ms, compile_warmup_s=round(warm_s, 2))
        for kind in ("eager", "compiled"):
            entry[f"{kind}_tflops"] = entry["flops"] / (entry[f"{kind}_ms"] / 1000) / 1e12
    return result


def trial_data(stages, size: int):
    """Random slices for ``compile_method``'s trial step of each stage (every source, two batches' worth)."""
    import torch

    from petbench.data.slices import TrainingData

    count = 2 * max(stage.batch_size for stage in stages)
    generator = torch.Generator().manual_seed(0)
    return TrainingData({key: torch.rand(count, 1, size, size, generator=generator)
                         for key in ("lpet", "spet", "lpet_u", "spet_u")})


def gpu_name(device) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


# -- grid --------------------------------------------------------------------------------------
#: The CPU smoke run's grid: the two quickest cells (the quick presets train their full step count, which a
#: loaded CPU needs minutes for); the grid machinery is the same for every method.
SMOKE_GRID_METHODS = "lpet,autocontext"
GRID_PROTOCOL = {"cuda": ["-D", "size=64", "--n-train", "4", "--n-test", "2", "--n-unpaired", "8"],
                 "cpu": ["-D", "size=32", "--n-train", "2", "--n-test", "1", "--n-unpaired", "2"]}


def run_grid(device: str, per_gpu: int, out: Path, methods: str | None, limit_s: float | None) -> dict:
    kind = "cuda" if device.startswith("cuda") else "cpu"
    results = out / f"grid-k{per_gpu}"
    command = ["petbench", "grid", "table1", "--dataset", "phantom", *GRID_PROTOCOL[kind], "--preset", "quick",
               "--seeds", "0", "--device", device, "--workers-per-gpu", str(per_gpu), "--results", str(results),
               "--no-predictions", "--quiet"]
    methods = methods or (None if kind == "cuda" else SMOKE_GRID_METHODS)
    if methods:
        command += ["--methods", methods]
    started = time.perf_counter()
    with open(out / f"grid-k{per_gpu}-petbench.log", "w") as log:
        grid = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = grid.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:  # stop the grid and its workers; the finished cells still count
            os.killpg(grid.pid, signal.SIGTERM)
            grid.wait()
            returncode = "timeout"
    wall = time.perf_counter() - started
    cells = {}
    for run_json in sorted(results.glob("**/run.json")):
        record = json.loads(run_json.read_text())
        cells[record["method"]["name"]] = {"status": record.get("status"),
                                           "total_s": record.get("timings", {}).get("total_s"),
                                           "psnr": record.get("summary", {}).get("psnr", {}).get("mean")}
    return {"workers_per_gpu": per_gpu, "device": device, "command": " ".join(command), "returncode": returncode,
            "limit_s": limit_s,
            "wall_s": round(wall, 1), "cells": cells}


def prepare_grid_data(device: str) -> None:
    """Simulate the grid's phantom subjects before the timed grids, so neither includes it."""
    from petbench.default_plugins.phantom import Phantom

    kind = "cuda" if device.startswith("cuda") else "cpu"
    size = int(GRID_PROTOCOL[kind][1].split("=")[1])
    dataset = Phantom(size=size)
    dataset.prepare(dataset.subject_ids(), (10,))


# -- engine against a bare loop -------------------------------------------------------------------
def engine_summary(bench_json: Path) -> dict:
    """The ratio benchmarks/test_engine_vs_bare_loop.py stored (pytest-benchmark's JSON)."""
    bench = next(b for b in json.loads(bench_json.read_text())["benchmarks"] if b["name"] == "test_engine_vs_bare_loop")
    info = bench["extra_info"]
    text = (f"{info['steps']} steps of {info['batch']} slices of {info['size']}² on {info['device']}: bare loop "
            f"{min(info['bare_wall_s']):.2f} s, engine {min(info['engine_wall_s']):.2f} s wall (fastest round of each); "
            f"the engine runs at {info['speed_ratio_wall']:.3f} of the bare loop's speed in wall time, "
            f"{info['speed_ratio_cpu']:.3f} in CPU time")
    return {**info, "summary": text}


# -- summary -----------------------------------------------------------------------------------
def summary(out: Path) -> str:
    lines = []
    steps = {p.stem.removeprefix("step-"): json.loads(p.read_text()) for p in sorted(out.glob("step-*.json"))}
    any_step = next(iter(steps.values()), None)
    if any_step:
        lines.append(f"Steps: {any_step['gpu']}, {any_step['preset']} preset, {any_step['size']}² slices, "
                     f"{any_step['amp'] or 'fp32'}, compile backend {any_step['compile']['backend'] or 'inductor'} "
                     f"mode {any_step['compile']['mode']}")
        lines.append("")
        lines.append("| method | stage | batch | GFLOP / step | eager ms / step | eager TFLOP/s "
                     "| `--compile` ms / step | `--compile` TFLOP/s | speed-up |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for name in METHODS:
            if name not in steps:
                lines.append(f"| {name} | not measured (see step-{name}.log) | | | | | | | |")
                continue
            for stage, e in steps[name]["stages"].items():
                eager_tflops = e["flops"] / (e["eager_ms"] / 1000) / 1e12
                compiled = (f"{e['compiled_ms']:.2f} | {e['compiled_tflops']:.3g} | {e['eager_ms'] / e['compiled_ms']:.2f}×"
                            if "compiled_ms" in e else "not measured (ran out of time) | | ")
                lines.append(f"| {name} | {stage} | {e['batch_size']} | {e['flops'] / 1e9:.3g} | {e['eager_ms']:.2f} | "
                             f"{eager_tflops:.3g} | {compiled} |")
        peak_file = out / "peak.json"
        if "s3pet" in steps and "compiled_ms" in steps["s3pet"]["stages"].get("stage2", {}) and peak_file.exists():
            peak = json.loads(peak_file.read_text())["peak_tflops"]
            e = steps["s3pet"]["stages"]["stage2"]
            lines.append("")
            lines.append(f"S3PET Stage II: {e['compiled_tflops']:.3g} TFLOP/s compiled, "
                         f"{100 * e['compiled_tflops'] / peak:.3g} % of the {peak:g} TFLOP/s bf16 peak "
                         f"(eager {e['eager_tflops']:.3g} TFLOP/s, {100 * e['eager_tflops'] / peak:.3g} %)")
    if steps:
        lines.append("")
        lines.append("Cost table (docs/reproducing.md, \"What it costs\"), from these steps and the paper protocol's "
                     "schedule (30 × 128 paired, 120 × 128 unpaired slices); training time = steps × compiled ms:")
        lines.append("")
        lines.append(f"| method | parameters | schedule (`{any_step['preset']}` preset) | optimiser steps per seed | "
                     f"{any_step['gpu']} {any_step['amp'] or 'fp32'} ms / step, eager / `--compile` | "
                     "≈ training time, eager / `--compile` |")
        lines.append("|---|---|---|---|---|---|")
        for name in METHODS:
            if name not in steps:
                continue
            stages = steps[name]["stages"]
            if not all("epochs" in e for e in stages.values()):
                continue
            schedule = ", ".join(f"{stage} {e['epochs']} × {e['steps_per_epoch']} (batch {e['batch_size']})"
                                 for stage, e in stages.items())
            total_steps = sum(e["epochs"] * e["steps_per_epoch"] for e in stages.values())
            ms = "; ".join((f"{stage} " if len(stages) > 1 else "") + f"{e['eager_ms']:.1f} / "
                           + (f"{e['compiled_ms']:.1f}" if "compiled_ms" in e else "–") for stage, e in stages.items())
            eager_h = sum(e["epochs"] * e["steps_per_epoch"] * e["eager_ms"] for e in stages.values()) / 3.6e6
            compiled_h = (sum(e["epochs"] * e["steps_per_epoch"] * e["compiled_ms"] for e in stages.values()) / 3.6e6
                          if all("compiled_ms" in e for e in stages.values()) else float("nan"))
            lines.append(f"| {name} | {steps[name]['parameters'] / 1e6:.2f} M | {schedule} | {total_steps:,} | {ms} | "
                         f"{eager_h:.2f} h / {compiled_h:.2f} h |")
    engine = out / "engine.json"
    if engine.exists():
        data = json.loads(engine.read_text())
        lines.append("")
        lines.append(f"Engine against a bare loop: {data['summary']}")
    grids = [json.loads(p.read_text()) for p in sorted(out.glob("grid-k*.json"))]
    if grids:
        lines.append("")
        names = sorted({m for g in grids for m in g["cells"]})
        lines.append("| short grid (table1, quick presets) | " + " | ".join(f"K = {g['workers_per_gpu']}" for g in grids) + " |")
        lines.append("|---|" + "---|" * len(grids))
        lines.append("| wall time of the grid | " + " | ".join(
            f"{g['wall_s']:.0f} s" + ("" if g["returncode"] == 0 else f" (exit {g['returncode']})") for g in grids) + " |")
        for name in names:
            cells = [g["cells"].get(name) for g in grids]
            lines.append(f"| {name} | " + " | ".join(
                "–" if c is None else f"{c['total_s'] or 0:.0f} s, {c['status']}, {c['psnr'] or float('nan'):.2f} dB"
                for c in cells) + " |")
    timings = out / "sections.tsv"
    if timings.exists():
        lines.append("")
        lines.append("Sections (wall s): " + ", ".join(
            "{} {}".format(*line.split("\t")[:2]) for line in timings.read_text().splitlines() if line))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["step", "grid", "prepare-grid", "engine", "summary", "peak"])
    parser.add_argument("--method", choices=METHODS)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers-per-gpu", type=int, default=1)
    parser.add_argument("--methods", default=None, help="grid: only these methods (comma-separated)")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--limit", type=float, default=None, help="grid: stop it after this many seconds")
    parser.add_argument("--bench-json", type=Path, help="engine: pytest-benchmark's JSON of the engine benchmark")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part == "step":
        out_file = args.out / f"step-{args.method}.json"
        write_json(out_file, measure_steps(args.method, args.device, out_file))
    elif args.part == "prepare-grid":
        prepare_grid_data(args.device)
    elif args.part == "grid":
        result = run_grid(args.device, args.workers_per_gpu, args.out, args.methods, args.limit)
        write_json(args.out / f"grid-k{args.workers_per_gpu}.json", result)
        if result["returncode"] != 0:
            print(f"grid with K={args.workers_per_gpu} exited {result['returncode']}; see "
                  f"{args.out}/grid-k{args.workers_per_gpu}-petbench.log", file=sys.stderr)
            return 1
    elif args.part == "engine":
        write_json(args.out / "engine.json", engine_summary(args.bench_json))
    elif args.part == "peak":
        write_json(args.out / "peak.json", {"peak_tflops": args.peak_tflops})
    else:
        text = summary(args.out)
        (args.out / "summary.md").write_text(text + "\n")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
