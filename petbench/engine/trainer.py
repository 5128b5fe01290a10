"""Run a method's stages: batches, mixed precision, progress, checkpoints, resume, reuse, NaN guard."""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..data.slices import TrainingData
from ..errors import TrainingDiverged, UserError
from ..method import SOURCES, Method, Stage, TrainContext
from ..atomic import atomic_path
from .checkpoint import (UnreadableFile, Warn, atomic_torch_save, derive_seed, first_line, load_plain, move_aside,
                         rng_state, seed_everything, set_rng_state)

CHECKPOINT_NAME = "last.pt"
PREVIOUS_NAME = "previous.pt"  # the checkpoint before last.pt: the fallback when last.pt is unusable
FORMAT = 2


@dataclass
class StageReport:
    name: str
    epochs: int
    steps: int
    seconds: float
    reused_from: str | None = None  # the run whose stage result was reused
    final_losses: dict | None = None


@dataclass
class Position:
    """Where training continues: stage ``stage`` at epoch ``epoch`` (0: the stage starts afresh with
    its own seed; otherwise the RNG state of the checkpoint is restored)."""

    stage: int = 0
    epoch: int = 0
    seconds: float = 0.0  # training time already spent in this stage


def stage_cache_payload(stage: Stage, data_fingerprint: dict, seed: int) -> str:
    return json.dumps({"stage": stage.reuse_key, "data": data_fingerprint, "seed": seed}, sort_keys=True, default=str)


def stage_cache_key(stage: Stage, data_fingerprint: dict, seed: int) -> str:
    return hashlib.sha256(stage_cache_payload(stage, data_fingerprint, seed).encode()).hexdigest()[:20]


def train(method: Method, stages: list[Stage], data: TrainingData, *, seed: int, device: torch.device,
          amp_dtype: torch.dtype | None = None, checkpoint_dir: Path | None = None,
          stage_cache_dir: Path | None = None, data_fingerprint: dict | None = None,
          run_id: str = "", progress: bool = True, warn: Warn = print) -> list[StageReport]:
    """Train ``method`` (its nets already on ``device``) through ``stages`` (from
    ``method.stages()``) on ``data``; returns one report per stage.

    A checkpoint in ``checkpoint_dir`` from an interrupted run of the same configuration is
    resumed from, exactly: the checkpoint holds the state of every stage's optimisers, schedulers
    and declared ``state`` objects, so a run killed anywhere ends with the weights of an
    uninterrupted one. An unusable checkpoint is named in a warning, moved aside, and training
    continues from the one before it (or from the start). A stage with a ``reuse_key`` whose result
    is in ``stage_cache_dir`` is loaded instead of trained.
    """
    check_sources(stages, data)
    data = place(data, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    checkpoint_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    position, reports = resume(method, stages, scaler, checkpoint_path, device, warn)
    for index, stage in enumerate(stages):
        if index < position.stage:
            continue
        starting = index > position.stage or position.epoch == 0
        cache_file = None
        if stage.reuse_key is not None and stage_cache_dir is not None:
            cache_file = Path(stage_cache_dir) / f"{stage_cache_key(stage, data_fingerprint or {}, seed)}.pt"
            payload = stage_cache_payload(stage, data_fingerprint or {}, seed)
            reused = load_stage(method, stage, cache_file, payload, device, warn) if starting else None
            if reused is not None:
                reports.append(StageReport(stage.name, stage.epochs, 0, 0.0, reused_from=reused))
                save(checkpoint_path, method, stages, Position(index + 1, 0), scaler, reports)
                continue
        report = run_stage(method, stages, index, data, seed=seed, device=device, amp_dtype=amp_dtype,
                           scaler=scaler, checkpoint_path=checkpoint_path, reports=reports,
                           first_epoch=0 if starting else position.epoch,
                           seconds=0.0 if starting else position.seconds,
                           progress=progress)
        reports.append(report)
        if cache_file is not None:  # before the checkpoint: a kill in between retrains the last epoch, same result
            atomic_torch_save({"format": FORMAT, "key": payload, "run_id": run_id,
                               "modules": {n: method.nets[n].state_dict() for n in stage.modules}}, cache_file)
        save(checkpoint_path, method, stages, Position(index + 1, 0), scaler, reports)
    return reports


def resume(method: Method, stages: list[Stage], scaler, checkpoint_path: Path | None, device, warn: Warn):
    """Load the newest usable checkpoint into ``method``, the stages' optimisers and ``scaler``;
    returns where to continue and the reports of the stages already done."""
    if checkpoint_path is None:
        return Position(), []
    initial = snapshot(method, stages, scaler)
    for path in (checkpoint_path, checkpoint_path.with_name(PREVIOUS_NAME)):
        if not path.exists():
            continue
        try:
            state = load_plain(path, device)
            position, reports = apply_checkpoint(state, method, stages, scaler)
        except (UnreadableFile, CheckpointMismatch) as exc:
            restore(initial, method, stages, scaler)
            move_aside(path, str(exc), warn, "training continues from an earlier checkpoint or from the start")
            continue
        return position, reports
    return Position(), []


class CheckpointMismatch(Exception):
    pass


def apply_checkpoint(state, method: Method, stages: list[Stage], scaler) -> tuple[Position, list[StageReport]]:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointMismatch("it is not a checkpoint of this petbench version")
    if state.get("stage_names") != [s.name for s in stages]:
        raise CheckpointMismatch(f"its stages {state.get('stage_names')} are not this method's "
                                 f"{[s.name for s in stages]}")
    try:
        method.nets.load_state_dict(state["nets"])
        for index, stage in enumerate(stages):
            saved = state["stages"][index]
            for kind, objects in (("optimizers", stage.optimizers), ("schedulers", stage.schedulers),
                                  ("state", stage.state)):
                for name, obj in objects.items():
                    obj.load_state_dict(saved[kind][name])
        scaler.load_state_dict(state["scaler"])
        position = Position(int(state["position"]["stage"]), int(state["position"]["epoch"]),
                            float(state.get("stage_seconds", 0.0)))
        reports = [StageReport(**r) for r in state["reports"]]
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointMismatch(f"it does not fit this method ({first_line(exc)})") from None
    if position.epoch > 0:
        set_rng_state(state["rng"])
    return position, reports


def snapshot(method: Method, stages: list[Stage], scaler) -> dict:
    return copy.deepcopy({"nets": method.nets.state_dict(), "stages": stage_states(stages),
                          "scaler": scaler.state_dict()})


def restore(initial: dict, method: Method, stages: list[Stage], scaler) -> None:
    method.nets.load_state_dict(initial["nets"])
    for index, stage in enumerate(stages):
        for kind, objects in (("optimizers", stage.optimizers), ("schedulers", stage.schedulers),
                              ("state", stage.state)):
            for name, obj in objects.items():
                obj.load_state_dict(copy.deepcopy(initial["stages"][index][kind][name]))
    scaler.load_state_dict(initial["scaler"])


def stage_states(stages: list[Stage]) -> list[dict]:
    return [{kind: {name: obj.state_dict() for name, obj in objects.items()}
             for kind, objects in (("optimizers", stage.optimizers), ("schedulers", stage.schedulers),
                                   ("state", stage.state))} for stage in stages]


def load_stage(method: Method, stage: Stage, cache_file: Path, payload: str, device, warn: Warn) -> str | None:
    """Load a shared stage's stored modules; returns the run id that trained them, or None to train."""
    if not cache_file.exists():
        return None
    initial = {name: copy.deepcopy(method.nets[name].state_dict()) for name in stage.modules}
    try:
        cached = load_plain(cache_file, device)
        if not isinstance(cached, dict) or cached.get("format") != FORMAT or cached.get("key") != payload:
            raise CheckpointMismatch("it is not the stored result of this stage")
        for name in stage.modules:
            method.nets[name].load_state_dict(cached["modules"][name])
        return str(cached.get("run_id", ""))
    except (UnreadableFile, CheckpointMismatch, KeyError, TypeError, RuntimeError) as exc:
        for name, state in initial.items():
            method.nets[name].load_state_dict(state)
        move_aside(cache_file, str(exc) if not isinstance(exc, (KeyError, TypeError, RuntimeError))
                   else f"it does not fit this stage ({first_line(exc)})", warn,
                   f"stage {stage.name!r} is trained again")
        return None


def run_stage(method, stages: list[Stage], index: int, data: TrainingData, *, seed, device, amp_dtype, scaler,
              checkpoint_path, reports, first_epoch: int, seconds: float, progress) -> StageReport:
    stage = stages[index]
    ctx = TrainContext(device, amp_dtype, scaler)
    if first_epoch == 0:
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
                save(checkpoint_path, method, stages, Position(index, epoch + 1, seconds), scaler, reports)
    method.nets.eval()
    return StageReport(stage.name, stage.epochs, steps * stage.epochs, seconds, final_losses=losses)


def save(path: Path | None, method: Method, stages: list[Stage], position: Position, scaler, reports) -> None:
    """Checkpoint at ``position``; the checkpoint it replaces is kept as ``previous.pt``."""
    if path is None:
        return
    state = {"format": FORMAT, "position": {"stage": position.stage, "epoch": position.epoch},
             "stage_names": [s.name for s in stages], "nets": method.nets.state_dict(),
             "stages": stage_states(stages), "scaler": scaler.state_dict(), "rng": rng_state(),
             "stage_seconds": position.seconds, "reports": [r.__dict__ for r in reports]}
    with atomic_path(path, ".pt") as tmp:
        torch.save(state, tmp)
        if path.exists():
            os.replace(path, path.with_name(PREVIOUS_NAME))


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


def load_trained_weights(method: Method, checkpoint_dir: Path, device: torch.device) -> None:
    """Load a finished run's final weights (its last checkpoint, written after its last stage)."""
    path = Path(checkpoint_dir) / CHECKPOINT_NAME
    if not path.exists():
        raise UserError(f"{path} is missing: the run's final weights are gone, so it cannot be predicted again")
    try:
        state = load_plain(path, device)
    except UnreadableFile as exc:
        raise UserError(f"{path} is unusable: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT \
            or state.get("position", {}).get("stage") != len(state.get("stage_names", [None])):
        raise UserError(f"{path} is not the checkpoint of a finished run of this petbench version")
    try:
        method.nets.load_state_dict(state["nets"])
    except (RuntimeError, KeyError) as exc:
        raise UserError(f"{path} does not fit method {method.name!r} as installed ({first_line(exc)})") from None
    method.nets.eval()
