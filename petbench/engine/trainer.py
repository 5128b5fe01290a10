"""Run a method's stages: batches, mixed precision, progress, checkpoints, resume, reuse, NaN guard."""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..data.slices import TrainingData
from ..errors import TrainingDiverged, UserError
from ..method import SOURCES, Method, Stage, TrainContext
from .checkpoint import atomic_torch_save, derive_seed, rng_state, seed_everything, set_rng_state

CHECKPOINT_NAME = "last.pt"


@dataclass
class StageReport:
    name: str
    epochs: int
    steps: int
    seconds: float
    reused_from: str | None = None  # the run whose stage result was reused
    final_losses: dict | None = None


def stage_cache_key(stage: Stage, data_fingerprint: dict, seed: int) -> str:
    payload = json.dumps({"stage": stage.reuse_key, "data": data_fingerprint, "seed": seed}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def train(method: Method, stages: list[Stage], data: TrainingData, *, seed: int, device: torch.device,
          amp_dtype: torch.dtype | None = None, checkpoint_dir: Path | None = None,
          stage_cache_dir: Path | None = None, data_fingerprint: dict | None = None,
          run_id: str = "", progress: bool = True) -> list[StageReport]:
    """Train ``method`` (its nets already on ``device``) through ``stages`` (from
    ``method.stages()``) on ``data``; returns one report per stage.

    A checkpoint in ``checkpoint_dir`` from an interrupted run of the same configuration is
    resumed from. A stage with a ``reuse_key`` whose result is in ``stage_cache_dir`` is loaded
    instead of trained.
    """
    check_sources(stages, data)
    data = place(data, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    checkpoint_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    resume = torch.load(checkpoint_path, map_location=device, weights_only=False) \
        if checkpoint_path and checkpoint_path.exists() else None
    if resume is not None:
        method.nets.load_state_dict(resume["nets"])
    reports: list[StageReport] = []
    for index, stage in enumerate(stages):
        if resume is not None and index < resume["stage"]:
            reports.append(StageReport(**resume["reports"][index]))
            continue
        mid_stage = resume is not None and index == resume["stage"]
        cache_file = None
        if stage.reuse_key is not None and stage_cache_dir is not None:
            cache_file = Path(stage_cache_dir) / f"{stage_cache_key(stage, data_fingerprint or {}, seed)}.pt"
            if not mid_stage and cache_file.exists():
                cached = torch.load(cache_file, map_location=device, weights_only=False)
                for name in stage.modules:
                    method.nets[name].load_state_dict(cached["modules"][name])
                reports.append(StageReport(stage.name, stage.epochs, 0, 0.0, reused_from=cached["run_id"]))
                save(checkpoint_path, method, stage, index + 1, 0, scaler, reports)
                continue
        report = run_stage(method, stage, index, data, seed=seed, device=device, amp_dtype=amp_dtype,
                           scaler=scaler, checkpoint_path=checkpoint_path, reports=reports,
                           resume=resume if mid_stage else None, progress=progress)
        reports.append(report)
        save(checkpoint_path, method, stage, index + 1, 0, scaler, reports)
        if cache_file is not None:
            atomic_torch_save({"run_id": run_id, "modules": {n: method.nets[n].state_dict() for n in stage.modules}},
                              cache_file)
    return reports


def run_stage(method, stage: Stage, index: int, data: TrainingData, *, seed, device, amp_dtype, scaler,
              checkpoint_path, reports, resume, progress) -> StageReport:
    ctx = TrainContext(device, amp_dtype, scaler)
    first_epoch = 0
    seconds = 0.0
    if resume is not None:
        for name, optimizer in stage.optimizers.items():
            optimizer.load_state_dict(resume["optimizers"][name])
        for name, scheduler in stage.schedulers.items():
            scheduler.load_state_dict(resume["schedulers"][name])
        scaler.load_state_dict(resume["scaler"])
        set_rng_state(resume["rng"])
        first_epoch = resume["epoch"]
        seconds = resume.get("stage_seconds", 0.0)
    else:
        seed_everything(derive_seed(seed, index + 1))
    steps = steps_per_epoch(stage, data)
    set_train_mode(method, stage)
    losses: dict = {}
    with make_progress(progress) as bar:
        task = bar.add_task(f"{stage.name}", total=steps * (stage.epochs - first_epoch))
        for epoch in range(first_epoch, stage.epochs):
            started = time.perf_counter()
            ctx.epoch = epoch
            for step_index, batch in enumerate(batches(stage, data, steps, derive_seed(seed, index + 1, epoch), device)):
                ctx.step_index = epoch * steps + step_index
                with torch.autocast(device_type=device.type, dtype=amp_dtype or torch.float32,
                                    enabled=amp_dtype is not None):
                    raw = stage.step(batch, ctx)
                if ctx.stepped:  # the fp16 loss scale adapts once per step, after all its updates
                    scaler.update()
                    ctx.stepped = False
                losses = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in raw.items()}
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    raise TrainingDiverged(f"stage {stage.name!r}, epoch {epoch + 1}, step {step_index + 1}: "
                                           f"loss {bad[0]} = {losses[bad[0]]}; the run is stopped")
                bar.update(task, advance=1, description=f"{stage.name} {epoch + 1}/{stage.epochs} "
                           + " ".join(f"{k}={v:.4g}" for k, v in losses.items()))
            for scheduler in stage.schedulers.values():
                scheduler.step()
            seconds += time.perf_counter() - started
            if epoch + 1 < stage.epochs:
                save(checkpoint_path, method, stage, index, epoch + 1, scaler, reports, stage_seconds=seconds)
    method.nets.eval()
    return StageReport(stage.name, stage.epochs, steps * stage.epochs, seconds, final_losses=losses)


def save(path, method, stage, stage_index, epoch, scaler, reports, stage_seconds=0.0) -> None:
    """Checkpoint: ``stage_index`` is the stage to (re)start, at ``epoch`` (0 = a new stage)."""
    if path is None:
        return
    atomic_torch_save({
        "stage": stage_index, "epoch": epoch, "nets": method.nets.state_dict(),
        "optimizers": {n: o.state_dict() for n, o in stage.optimizers.items()},
        "schedulers": {n: s.state_dict() for n, s in stage.schedulers.items()},
        "scaler": scaler.state_dict(), "rng": rng_state(), "stage_seconds": stage_seconds,
        "reports": [r.__dict__ for r in reports],
    }, path)


def check_sources(stages: list[Stage], data: TrainingData) -> None:
    for stage in stages:
        for source in stage.sources:
            if source not in SOURCES:
                raise UserError(f"stage {stage.name!r} asks for unknown data source {source!r}; valid: {', '.join(SOURCES)}")
            if any(key not in data.tensors for key in SOURCES[source]) or data.count(source) == 0:
                raise UserError(f"stage {stage.name!r} needs {source} training slices but there are none; "
                                f"check --n-train/--n-unpaired")


def place(data: TrainingData, device: torch.device) -> TrainingData:
    """Keep training slices on the GPU when they fit in half its free memory (no per-batch copies)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        if data.nbytes() < free // 2:
            return data.to(device)
        return TrainingData({k: v.pin_memory() for k, v in data.tensors.items()})
    return data


def steps_per_epoch(stage: Stage, data: TrainingData) -> int:
    count = data.count(stage.sources[0])
    steps = max(1, count // stage.batch_size) if count >= stage.batch_size else 1
    return min(steps, stage.steps_per_epoch) if stage.steps_per_epoch else steps


def batches(stage: Stage, data: TrainingData, steps: int, seed: int, device: torch.device):
    """Shuffled batches of the first source; the other sources are drawn independently."""
    generator = torch.Generator().manual_seed(seed)
    orders = {source: torch.randperm(data.count(source), generator=generator) for source in stage.sources}
    for step in range(steps):
        batch = {}
        for source, order in orders.items():
            start = (step * stage.batch_size) % len(order)
            index = order[start:start + stage.batch_size]
            if len(index) < min(stage.batch_size, len(order)):  # wrap around for a short source
                index = torch.cat([index, order[:stage.batch_size - len(index)]])
            for key in SOURCES[source]:
                tensor = data.tensors[key]
                batch[key] = tensor[index.to(tensor.device)].to(device, non_blocking=True)
        yield batch


def set_train_mode(method: Method, stage: Stage) -> None:
    method.nets.eval()
    for name in stage.modules:
        method.nets[name].train()


def make_progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), disable=not enabled, transient=False)
