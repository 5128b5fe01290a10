"""Run a method's stages: batches, mixed precision, schedules, progress, checkpoints, resume, reuse,
NaN guard, per-epoch history and validation-based model selection.

No step waits for the GPU: a step's losses are kept where they are (:mod:`.losses`), summed and read
to the host every ``sync_every`` steps and at the end of each epoch, for the progress bar and the
NaN/Inf guard (which so stops a diverged run within ``sync_every`` steps, naming the window of steps).
The loop's own work per step is a few Python operations: the bar advances at a window's end or at
most every ``BAR_SECONDS``, autocast is entered only when a precision asks for it. Checkpoints are
written at the end of every epoch, or, with ``checkpoint_every`` (:mod:`.intervals`), at the end of
the first window after a number of steps or seconds, mid-epoch included; a run resumed from a
mid-epoch checkpoint continues bit for bit.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..atomic import atomic_path, atomic_write_text
from ..data.slices import TrainingData
from ..errors import TrainingDiverged, UserError
from ..method import SOURCES, Method, RunContext, Stage, TrainContext, is_scheduler_factory, steps_for
from ..results.schema import checkpoint_problem, stage_file_problem
from .checkpoint import (UnreadableFile, Warn, atomic_torch_save, derive_seed, first_line, load_plain, move_aside,
                         rng_state, seed_everything, set_rng_state)
from .intervals import EVERY_EPOCH, CheckpointEvery
from .losses import LossMeter, first_non_finite
from .selection import Selection

CHECKPOINT_NAME = "last.pt"
PREVIOUS_NAME = "previous.pt"  # the checkpoint before last.pt: the fallback when last.pt is unusable
FORMAT = 2  # "history" and "selection" were added as optional keys: older checkpoints still load
SYNC_EVERY = 50  # default number of steps between reads of the losses to the host
REFRESH_PER_SECOND = 2
BAR_SECONDS = 0.25  # the bar's position is updated at most this often between windows
HISTORY_NAME = "history.jsonl"

EpochHook = Callable[[dict], None]


@dataclass
class StageReport:
    name: str
    epochs: int
    steps: int
    seconds: float
    reused_from: str | None = None  # the run whose stage result was reused
    final_losses: dict | None = None  # the mean losses of the stage's last epoch


REPORT_FIELDS = {"name", "epochs", "steps", "seconds", "reused_from", "final_losses"}  # StageReport's


@dataclass
class Position:
    """Where training continues: stage ``stage`` at epoch ``epoch``, step ``step`` of it (both 0: the
    stage starts afresh with its own seed; otherwise the RNG state of the checkpoint is restored).
    A mid-epoch position (``step`` > 0) is at a window's end and carries the epoch's loss sums."""

    stage: int = 0
    epoch: int = 0
    seconds: float = 0.0  # training time already spent in this stage
    step: int = 0
    meter: dict | None = None  # LossMeter.state_dict() at a mid-epoch position


@dataclass
class Done:
    """What training has produced so far besides weights and optimiser states (all checkpointed):
    the finished stages' reports and one history entry per trained epoch."""

    reports: list[StageReport] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)


def stage_cache_payload(stage: Stage, data_fingerprint: dict, seed: int) -> str:
    return json.dumps({"stage": stage.reuse_key, "data": data_fingerprint, "seed": seed}, sort_keys=True, default=str)


def stage_cache_key(stage: Stage, data_fingerprint: dict, seed: int) -> str:
    return hashlib.sha256(stage_cache_payload(stage, data_fingerprint, seed).encode()).hexdigest()[:20]


def train(method: Method, stages: list[Stage], data: TrainingData, *, seed: int, device: torch.device,
          amp_dtype: torch.dtype | None = None, checkpoint_dir: Path | None = None,
          stage_cache_dir: Path | None = None, data_fingerprint: dict | None = None,
          run_id: str = "", progress: bool = True, warn: Warn = print, run: RunContext | None = None,
          sync_every: int = SYNC_EVERY, history_path: Path | None = None, on_epoch: EpochHook | None = None,
          selection: Selection | None = None, checkpoint_every: CheckpointEvery = EVERY_EPOCH) -> list[StageReport]:
    """Train ``method`` (its nets already on ``device``) through ``stages`` (from
    ``method.stages()``) on ``data``; returns one report per stage.

    A checkpoint in ``checkpoint_dir`` from an interrupted run of the same configuration is
    resumed from, exactly: the checkpoint holds the state of every stage's optimisers, schedulers
    and declared ``state`` objects, the history and the model selection, so a run killed anywhere
    ends with the weights of an uninterrupted one. An unusable checkpoint is named in a warning,
    moved aside, and training continues from the one before it (or from the start). A stage with a
    ``reuse_key`` whose result is in ``stage_cache_dir`` is loaded instead of trained.

    After every trained epoch its entry (stage, epoch, steps, mean losses, seconds, validation
    score when scored) is added to the history, which is rewritten whole and atomically to
    ``history_path`` (so after a resume it holds exactly the checkpointed epochs and those trained
    since), and passed to ``on_epoch``. With ``selection`` the final stage is scored on validation
    subjects at the epochs it names and ends with the weights of the best-scoring epoch.
    """
    if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
        raise UserError(f"sync_every={sync_every!r} must be an integer >= 1 (steps between reads of the losses)")
    check_sources(stages, data)
    data = place(data, device)
    build_schedulers(method, stages, data)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    checkpoint_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    position, done = resume(method, stages, scaler, selection, checkpoint_path, device, warn)
    write_history(history_path, done.history)
    for index, stage in enumerate(stages):
        if index < position.stage:
            continue
        starting = index > position.stage or (position.epoch == 0 and position.step == 0)
        cache_file = None
        if stage.reuse_key is not None and stage_cache_dir is not None:
            cache_file = Path(stage_cache_dir) / f"{stage_cache_key(stage, data_fingerprint or {}, seed)}.pt"
            payload = stage_cache_payload(stage, data_fingerprint or {}, seed)
            cached = load_stage(method, stage, cache_file, payload, device, warn) if starting else None
            if cached is not None:
                if cached["run_id"] == run_id and run_id:  # this run stored it, then was killed: as trained
                    done.reports.append(StageReport(**cached["report"]))
                    done.history.extend(dict(entry) for entry in cached["history"])
                    write_history(history_path, done.history)
                else:
                    done.reports.append(StageReport(stage.name, stage.epochs, 0, 0.0, reused_from=cached["run_id"]))
                save(checkpoint_path, method, stages, Position(index + 1, 0), scaler, done, selection)
                continue
        report = run_stage(method, stages, index, data, seed=seed, device=device, amp_dtype=amp_dtype,
                           scaler=scaler, checkpoint_path=checkpoint_path, done=done,
                           first_epoch=0 if starting else position.epoch,
                           resume_at=None if starting else position,
                           seconds=0.0 if starting else position.seconds, progress=progress, run=run,
                           checkpoint_every=checkpoint_every,
                           sync_every=sync_every, history_path=history_path, on_epoch=on_epoch,
                           selection=selection if index == len(stages) - 1 else None)
        done.reports.append(report)
        if cache_file is not None:  # before the checkpoint: a kill in between retrains the last epoch, same result
            atomic_torch_save({"format": FORMAT, "key": payload, "run_id": run_id,
                               "modules": {n: method.nets[n].state_dict() for n in stage.modules},
                               "report": dict(report.__dict__),
                               "history": [e for e in done.history if e.get("stage") == stage.name]}, cache_file)
        if index == len(stages) - 1 and selection is not None and selection.best_nets is not None:
            method.nets.load_state_dict(selection.best_nets)  # the final checkpoint holds the selected weights
        save(checkpoint_path, method, stages, Position(index + 1, 0), scaler, done, selection)
    return done.reports


def build_schedulers(method: Method, stages: list[Stage], data: TrainingData) -> None:
    """Replace each scheduler factory by the scheduler it builds for the stage's real length."""
    for stage in stages:
        for name, entry in list(stage.schedulers.items()):
            if not is_scheduler_factory(entry):
                continue
            total = stage.epochs * (steps_per_epoch(stage, data) if stage.schedulers_per == "step" else 1)
            built = entry(total)
            if not (callable(getattr(built, "step", None)) and callable(getattr(built, "state_dict", None))
                    and callable(getattr(built, "load_state_dict", None))):
                raise UserError(f"method {method.name!r}, stage {stage.name!r}: scheduler factory {name!r} "
                                f"returned {type(built).__name__}, not a scheduler (step, state_dict, load_state_dict)")
            stage.schedulers[name] = built


def resume(method: Method, stages: list[Stage], scaler, selection: Selection | None, checkpoint_path: Path | None,
           device, warn: Warn) -> tuple[Position, Done]:
    """Load the newest usable checkpoint into ``method``, the stages' optimisers, ``scaler`` and
    ``selection``; returns where to continue and what was done before."""
    if checkpoint_path is None:
        return Position(), Done()
    initial = snapshot(method, stages, scaler, selection)
    for path in (checkpoint_path, checkpoint_path.with_name(PREVIOUS_NAME)):
        if not path.exists():
            continue
        try:
            state = load_plain(path, device)
            return apply_checkpoint(state, method, stages, scaler, selection)
        except (UnreadableFile, CheckpointMismatch) as exc:
            restore(initial, method, stages, scaler, selection)
            move_aside(path, str(exc), warn, "training continues from an earlier checkpoint or from the start")
    return Position(), Done()


class CheckpointMismatch(Exception):
    pass


def apply_checkpoint(state, method: Method, stages: list[Stage], scaler,
                     selection: Selection | None) -> tuple[Position, Done]:
    problem = checkpoint_problem(state)  # its layout, before anything of it is applied (or compared)
    if problem is not None:
        raise CheckpointMismatch(f"it is not a checkpoint as petbench writes it ({problem})")
    if state["format"] != FORMAT:
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
        if selection is not None and state.get("selection") is not None:
            selection.load_state_dict(state["selection"])
        position = Position(int(state["position"]["stage"]), int(state["position"]["epoch"]),
                            float(state.get("stage_seconds", 0.0)), int(state["position"].get("step", 0)),
                            state.get("meter"))
        done = Done([StageReport(**r) for r in state["reports"]], [dict(e) for e in state.get("history", [])])
        if position.epoch > 0 or position.step > 0:  # inside the guard: a checkpoint without its RNG state is damaged
            set_rng_state(state["rng"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise CheckpointMismatch(f"it does not fit this method ({first_line(exc)})") from None
    return position, done


def snapshot(method: Method, stages: list[Stage], scaler, selection: Selection | None) -> dict:
    return copy.deepcopy({"nets": method.nets.state_dict(), "stages": stage_states(stages),
                          "scaler": scaler.state_dict(),
                          "selection": selection.state_dict() if selection is not None else None})


def restore(initial: dict, method: Method, stages: list[Stage], scaler, selection: Selection | None) -> None:
    method.nets.load_state_dict(initial["nets"])
    for index, stage in enumerate(stages):
        for kind, objects in (("optimizers", stage.optimizers), ("schedulers", stage.schedulers),
                              ("state", stage.state)):
            for name, obj in objects.items():
                obj.load_state_dict(copy.deepcopy(initial["stages"][index][kind][name]))
    scaler.load_state_dict(initial["scaler"])
    if selection is not None:
        selection.load_state_dict(copy.deepcopy(initial["selection"]))


def stage_states(stages: list[Stage]) -> list[dict]:
    return [{kind: {name: obj.state_dict() for name, obj in objects.items()}
             for kind, objects in (("optimizers", stage.optimizers), ("schedulers", stage.schedulers),
                                   ("state", stage.state))} for stage in stages]


def load_stage(method: Method, stage: Stage, cache_file: Path, payload: str, device, warn: Warn) -> dict | None:
    """Load a shared stage's stored modules; returns what was stored with them (the run id that trained
    them, its report and history entries), or None to train the stage."""
    if not cache_file.exists():
        return None
    initial = {name: copy.deepcopy(method.nets[name].state_dict()) for name in stage.modules}
    try:
        cached = load_plain(cache_file, device)
        problem = stage_file_problem(cached)  # its layout, before any module is loaded (or compared)
        if problem is not None:
            raise CheckpointMismatch(f"it is not a stage result as petbench writes it ({problem})")
        if cached["format"] != FORMAT or cached["key"] != payload:
            raise CheckpointMismatch("it is not the stored result of this stage")
        for name in stage.modules:
            method.nets[name].load_state_dict(cached["modules"][name])
        history, report = cached.get("history", []), cached.get("report")
        if not isinstance(history, list) or not all(isinstance(entry, dict) for entry in history) or \
                (report is not None and not (isinstance(report, dict) and set(report) <= REPORT_FIELDS)):
            raise CheckpointMismatch("its history or report is not what petbench stores")
        return {"run_id": str(cached.get("run_id", "")), "history": list(history),
                "report": report or {"name": stage.name, "epochs": stage.epochs, "steps": 0, "seconds": 0.0}}
    except (UnreadableFile, CheckpointMismatch, KeyError, TypeError, RuntimeError) as exc:
        for name, state in initial.items():
            method.nets[name].load_state_dict(state)
        move_aside(cache_file, str(exc) if not isinstance(exc, (KeyError, TypeError, RuntimeError))
                   else f"it does not fit this stage ({first_line(exc)})", warn,
                   f"stage {stage.name!r} is trained again")
        return None


def run_stage(method, stages: list[Stage], index: int, data: TrainingData, *, seed, device, amp_dtype, scaler,
              checkpoint_path, done: Done, first_epoch: int, seconds: float, progress, run, sync_every: int,
              history_path, on_epoch, selection: Selection | None, resume_at: Position | None = None,
              checkpoint_every: CheckpointEvery = EVERY_EPOCH) -> StageReport:
    stage = stages[index]
    steps = steps_per_epoch(stage, data)
    ctx = TrainContext(device, amp_dtype, scaler, run=run, steps_per_epoch=steps, epochs=stage.epochs)
    first_step = resume_at.step if resume_at is not None else 0
    if first_epoch == 0 and first_step == 0:
        seed_everything(derive_seed(seed, index + 1))
    set_train_mode(method, stage)
    per_step = stage.schedulers_per == "step"
    call = stage.step if amp_dtype is None else autocast_step(stage.step, device, amp_dtype)
    scaling = scaler.is_enabled()
    meter, losses = LossMeter(), {}
    due = CheckpointClock(checkpoint_every)
    with make_progress(progress) as bar:
        task = bar.add_task(f"{stage.name}", total=steps * (stage.epochs - first_epoch) - first_step)
        for epoch in range(first_epoch, stage.epochs):
            started = time.perf_counter()
            ctx.epoch = epoch
            meter.new_epoch()
            start = first_step if epoch == first_epoch else 0
            if start and resume_at is not None and resume_at.meter is not None:
                meter.load_state_dict(resume_at.meter)
            shown, bar_time = start, started
            for step_index, batch in enumerate(batches(stage, data, steps, derive_seed(seed, index + 1, epoch), device,
                                                       start=start), start=start):
                ctx.step_index = epoch * steps + step_index
                raw = call(batch, ctx)
                if scaling and ctx.stepped:  # the fp16 loss scale adapts once per step, after all its updates
                    scaler.update()
                    ctx.stepped = False
                if per_step:
                    for scheduler in stage.schedulers.values():
                        scheduler.step()
                meter.add(raw)
                last = step_index + 1 == steps
                if (step_index + 1) % sync_every == 0 or last:  # the only places the loop waits for the device
                    window, epoch_means = meter.read_window(with_epoch=last)
                    check_finite(stage, epoch, meter.window_first, step_index, window)
                    due.count(step_index + 1 - meter.window_first)
                    meter.window_first = step_index + 1
                    if last:
                        losses = epoch_means
                    if progress:
                        bar.update(task, advance=step_index + 1 - shown, description=f"{stage.name} {epoch + 1}/"
                                   f"{stage.epochs} " + " ".join(f"{k}={v:.4g}" for k, v in window.items()))
                        shown = step_index + 1
                    if not last and due.due():
                        save(checkpoint_path, method, stages,
                             Position(index, epoch, seconds + time.perf_counter() - started, step_index + 1,
                                      meter.state_dict()), scaler, done, selection)
                        due.reset()
                elif progress:
                    now = time.perf_counter()
                    if now - bar_time >= BAR_SECONDS:
                        bar.update(task, advance=step_index + 1 - shown)
                        shown, bar_time = step_index + 1, now
            if not per_step:
                for scheduler in stage.schedulers.values():
                    scheduler.step()
            entry = {"stage": stage.name, "epoch": epoch + 1, "steps": steps, "losses": losses}
            if selection is not None and selection.due(epoch, stage.epochs):
                with isolated_rng():  # scoring never changes the training's random stream
                    entry["validation"] = {selection.metric: selection.observe(epoch, method.nets)}
                set_train_mode(method, stage)
            seconds += time.perf_counter() - started
            entry["seconds"] = round(seconds, 3)
            done.history.append(entry)
            write_history(history_path, done.history)
            if epoch + 1 < stage.epochs and (checkpoint_every.per_epoch or due.due()):
                save(checkpoint_path, method, stages, Position(index, epoch + 1, seconds), scaler, done, selection)
                due.reset()
            if on_epoch is not None:
                on_epoch(dict(entry))
    method.nets.eval()
    return StageReport(stage.name, stage.epochs, steps * stage.epochs, seconds, final_losses=losses)


def autocast_step(step, device: torch.device, amp_dtype: torch.dtype):
    """``step`` under autocast to ``amp_dtype`` (without a precision the step is called as it is: entering
    a disabled autocast still costs every step)."""
    def under_autocast(batch, ctx):
        with torch.autocast(device_type=device.type, dtype=amp_dtype):
            return step(batch, ctx)
    return under_autocast


class CheckpointClock:
    """Whether a checkpoint is due under ``every`` at a window's end: after ``every.steps`` steps or
    ``every.seconds`` seconds since the last checkpoint (the default, every epoch, is never due mid-epoch)."""

    def __init__(self, every: CheckpointEvery) -> None:
        self.every = every
        self.reset()

    def reset(self) -> None:
        self.steps, self.since = 0, time.monotonic()

    def count(self, steps: int) -> None:
        self.steps += steps

    def due(self) -> bool:
        if self.every.per_epoch:
            return False
        return (self.every.steps is not None and self.steps >= self.every.steps) or \
            (self.every.seconds is not None and time.monotonic() - self.since >= self.every.seconds)


def check_finite(stage: Stage, epoch: int, first: int, last: int, window: dict[str, float]) -> None:
    """The NaN/Inf guard, on a window's mean losses (a non-finite loss at any step of it shows)."""
    bad = first_non_finite(window)
    if bad is None:
        return
    steps = f"step {last + 1}" if first == last else f"steps {first + 1}-{last + 1}"
    raise TrainingDiverged(f"stage {stage.name!r}, epoch {epoch + 1}, {steps}: loss {bad} = {window[bad]} "
                           f"(its mean over those steps); the run is stopped")


@contextmanager
def isolated_rng():
    """Run a block with every RNG the engine relies on saved and restored afterwards."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def write_history(path: Path | None, history: list[dict]) -> None:
    """The whole history as JSON lines, replaced atomically (never a half-written line)."""
    if path is None:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(path), "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in history))


def save(path: Path | None, method: Method, stages: list[Stage], position: Position, scaler, done: Done,
         selection: Selection | None = None) -> None:
    """Checkpoint at ``position``; the checkpoint it replaces is kept as ``previous.pt``."""
    if path is None:
        return
    state = {"format": FORMAT, "position": {"stage": position.stage, "epoch": position.epoch, "step": position.step},
             "meter": position.meter,
             "stage_names": [s.name for s in stages], "nets": method.nets.state_dict(),
             "stages": stage_states(stages), "scaler": scaler.state_dict(), "rng": rng_state(),
             "stage_seconds": position.seconds, "reports": [r.__dict__ for r in done.reports],
             "history": [dict(e) for e in done.history],
             "selection": selection.state_dict() if selection is not None else None}
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
    return steps_for(data.count(stage.sources[0]), stage.batch_size, stage.steps_per_epoch)


def batches(stage: Stage, data: TrainingData, steps: int, seed: int, device: torch.device, start: int = 0):
    """Shuffled batches of the first source; the other sources are drawn independently. A batch depends
    only on the epoch's seed and its step, so ``start`` resumes an epoch mid-way with the same batches.
    Everything that does not change between steps (each order on its slices' device, which tensors
    need a copy to ``device``, every step's indices) is settled once per epoch: a step only gathers."""
    generator = torch.Generator().manual_seed(seed)
    orders = {source: torch.randperm(data.count(source), generator=generator) for source in stage.sources}
    plan = []  # per source and slices' device: every step's indices and its (key, slices, copied?) entries
    for source, order in orders.items():
        per_device: dict[torch.device, list] = {}
        for key in SOURCES[source]:
            tensor = data.tensors[key]
            per_device.setdefault(tensor.device, []).append((key, tensor, tensor.device != device))
        plan.extend((step_indices(order.to(where), stage.batch_size, start, steps), entries)
                    for where, entries in per_device.items())
    for position in range(steps - start):
        batch = {}
        for rows, entries in plan:
            index = rows[position]
            for key, tensor, copy in entries:
                picked = tensor[index]
                batch[key] = picked.to(device, non_blocking=True) if copy else picked
        yield batch


def step_indices(order: torch.Tensor, size: int, start: int, steps: int):
    """The indices into the slices of steps ``start`` … ``steps - 1``: ``size`` consecutive entries of
    ``order`` from ``step * size``, wrapping around a short source (one that holds fewer slices than a
    batch gives what it has, and then wraps)."""
    length = len(order)
    if length >= size:
        begins = torch.arange(start, max(start, steps), device=order.device) * size % length
        extended = torch.cat([order, order[:size]])
        return extended[begins[:, None] + torch.arange(size, device=order.device)].unbind(0)
    rows = []
    for step in range(start, steps):
        begin = step * size % length
        index = order[begin:begin + size]
        if length - begin < length:
            index = torch.cat([index, order[:size - (length - begin)]])
        rows.append(index)
    return rows


def set_train_mode(method: Method, stage: Stage) -> None:
    method.nets.eval()
    for name in stage.modules:
        method.nets[name].train()


def make_progress(enabled: bool) -> Progress:
    """The bar is drawn by rich's refresh thread at most ``REFRESH_PER_SECOND`` times a second, however
    fast the steps are; its loss figures change at each read of the losses."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), disable=not enabled, transient=False,
                    refresh_per_second=REFRESH_PER_SECOND)


def load_trained_weights(method: Method, checkpoint_dir: Path, device: torch.device) -> None:
    """Load a finished run's final weights (its last checkpoint, written after its last stage)."""
    path = Path(checkpoint_dir) / CHECKPOINT_NAME
    if not path.exists():
        raise UserError(f"{path} is missing: the run's final weights are gone, so it cannot be predicted again")
    try:
        state = load_plain(path, device)
    except UnreadableFile as exc:
        raise UserError(f"{path} is unusable: {exc}") from None
    if checkpoint_problem(state) is not None or state["format"] != FORMAT \
            or state["position"]["stage"] != len(state.get("stage_names", [None])):
        raise UserError(f"{path} is not the checkpoint of a finished run of this petbench version")
    try:
        method.nets.load_state_dict(state["nets"])
    except (RuntimeError, KeyError) as exc:
        raise UserError(f"{path} does not fit method {method.name!r} as installed ({first_line(exc)})") from None
    method.nets.eval()
