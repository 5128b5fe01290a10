"""Run a grid: plan every cell (validated before anything runs), skip the finished ones, resume the
interrupted ones, record failures and carry on, and keep a status summary.

A cell's status comes from its run record (``<results>/<run id>/run.json``) when there is one, else from
the grid's state file ``<results>/.grids/<grid>.json``, which also keeps errors raised before a record
existed and the SLURM job ids of submitted cells.

| status | meaning | a re-run of the grid |
|---|---|---|
| finished | the run's record is complete | skips it (``--force``: runs it again from scratch) |
| interrupted | stopped (Ctrl-C, preemption, a killed process) | resumes it from its checkpoint |
| running | its record says running: another process, or one that was killed | resumes it |
| failed | an error (diverged, a plugin bug, bad data) | skips it (``--retry-failed``: resumes it) |
| queued | a SLURM job for it is still pending or running | skips it |
| pending | never started | runs it |
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from functools import cache
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..engine.device import resolve_device
from ..errors import PluginError, UserError
from ..data.protocol import split_subjects
from ..method import RunContext, call_stages, validate_stages
from ..run_data import RunData
from ..options import check_against_run, constraints_of
from ..plugins import PluginHost
from ..atomic import atomic_write_json
from ..results.reading import Damaged, read_json
from ..results.record import warn_line
from ..results.schema import validate_grid_state
from ..results.record import RunRecord
from ..results.identity import run_id_for, run_identity
from ..runner import resolve_preset
from ..results.lock import RunBusy, RunLock
from ..scoring import score_record
from .executors import CellJob, CellTask, LocalExecutor, SubmititExecutor, slurm_job_active
from .spec import Cell, GridSpec

Log = Callable[[str], None]
RUNNABLE = {"pending", "interrupted", "running"}


@dataclass
class PlannedCell:
    cell: Cell
    task: CellTask
    status: str = "pending"
    error: str | None = None
    share: list[str] = field(default_factory=list)  # stage-cache keys this cell would write or reuse
    job_id: str | None = None
    note: str = ""
    plan_error: str | None = None  # its plugin failed while the grid was planned


@dataclass
class Plan:
    spec: GridSpec
    results: Path
    preset: str
    preset_note: str
    cells: list[PlannedCell]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for planned in self.cells:
            counts[planned.status] = counts.get(planned.status, 0) + 1
        return counts

    def summary_line(self) -> str:
        counts = self.counts()
        order = ["finished", "failed", "interrupted", "running", "queued", "pending"]
        parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
        return f"grid {self.spec.name}: {len(self.cells)} cells: " + ", ".join(parts)


# -- state file ------------------------------------------------------------------------------------------------
class GridState:
    """``<results>/.grids/<name>.json``: per cell the run id, last status, error and SLURM job."""

    def __init__(self, results: Path, name: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "grid"
        self.path = Path(results) / ".grids" / f"{safe}.json"
        self.damaged: str | None = None  # why the file on disk could not be used (then it is rebuilt)
        try:
            self.data = validate_grid_state(read_json(self.path, within=self.path.parent))
        except FileNotFoundError:
            self.data = {}
        except (Damaged, OSError) as exc:
            self.damaged = str(exc) if isinstance(exc, Damaged) else f"unreadable ({exc.strerror})"
            warn_line(f"grid state {self.path} is damaged ({self.damaged}); it is rebuilt from the run records")
            self.data = {}
        self.data.setdefault("cells", {})

    def cell(self, key: str) -> dict:
        return self.data["cells"].get(key, {})

    def update(self, key: str, **fields) -> None:
        entry = self.data["cells"].setdefault(key, {})
        entry.update({k: v for k, v in fields.items()})
        entry["updated"] = now()

    def save(self, spec: GridSpec | None = None) -> None:
        if spec is not None:
            self.data["grid"] = spec.as_dict()
        self.data["updated"] = now()
        atomic_write_json(self.path, self.data)


def finished_run_ids(results: Path, grid: str) -> list[str]:
    """The finished runs of grid ``grid`` (a built-in name, a grid's name or its TOML file) under
    ``results``, in the grid's cell order: what ``export --grid``, ``report --grid`` and ``figure curves
    --grid`` read. A grid never run there is one ``Error:`` line."""
    from .spec import load_toml_grid

    name = load_toml_grid(Path(grid)).name if grid.lower().endswith(".toml") else grid
    state = GridState(results, name)
    if not state.path.is_file():
        raise UserError(f"--grid {grid}: no grid {name!r} in {results} (no {state.path}); run "
                        f"`petbench grid {grid} --results {results}` first, or give --run ID")
    finished = [entry["run_id"] for entry in state.data["cells"].values()
                if isinstance(entry, dict) and entry.get("status") == "finished" and isinstance(entry.get("run_id"), str)]
    return list(dict.fromkeys(finished))


# -- planning -------------------------------------------------------------------------------------------------
def resolve_grid_preset(spec: GridSpec, executor: str, gpus_per_job: int = 0) -> tuple[str, str]:
    """``auto`` is resolved once for the whole grid: ``paper`` where the cells will have a GPU (here,
    or SLURM jobs with ``--gpus-per-job`` ≥ 1), ``quick`` otherwise."""
    if spec.preset != "auto":
        return spec.preset, f"preset {spec.preset!r} as requested"
    if executor == "slurm":
        on_gpu = gpus_per_job > 0
        return ("paper", "preset auto -> 'paper' (SLURM jobs with a GPU)") if on_gpu else \
            ("quick", "preset auto -> 'quick' (SLURM jobs without a GPU)")
    return resolve_preset("auto", resolve_device(spec.device))


def plan_grid(host: PluginHost, spec: GridSpec, results: Path, *, preset: str, preset_note: str = "",
              state: GridState | None = None, check_jobs: bool = True) -> Plan:
    """Validate every cell (names, options, DRFs, metrics) and find its run id and status; a mistake in
    the grid is a :class:`UserError` before anything runs."""
    results = Path(results)
    state = state or GridState(results, spec.name)
    metric_names = list(spec.metrics) if spec.metrics else host.metrics.names()
    for name in metric_names:
        host.metrics.entry(name)
    datasets, methods, contexts, planned = {}, {}, {}, []
    for cell in spec.cells():
        config = spec.run_config(cell, preset)
        try:
            if cell.dataset.label not in datasets:
                dataset_cls = host.datasets.get(cell.dataset.name)
                with blame("dataset", cell.dataset.name):
                    datasets[cell.dataset.label] = dataset_cls(**cell.dataset.options)
            dataset = datasets[cell.dataset.label]
            if cell.drf not in dataset.drfs:
                raise UserError(f"dataset {dataset.name!r} has no DRF {cell.drf}; "
                                f"valid: {', '.join(map(str, dataset.drfs))}")
            if cell.method.label not in methods:
                methods[cell.method.label] = make_method(host, cell.method.name, cell.method.options, preset)
            method = methods[cell.method.label]
            setting = (cell.method.label, cell.dataset.label, cell.drf, cell.n_train, cell.n_unpaired)
            if setting not in contexts:  # stages(run) may depend on the cell's data (not on its seed)
                contexts[setting] = reuse_keys_of(method, planning_context(dataset, config.protocol,
                                                                           resolve_device(spec.device)))
            reuse_keys = contexts[setting]
        except PluginError as exc:  # a broken plugin fails its cells, not the grid
            identity = {"method": cell.method.name, "method_options": cell.method.options,
                        "dataset": cell.dataset.name, "dataset_options": cell.dataset.options,
                        "protocol": config.protocol.as_dict(), "seed": cell.seed, "unplanned": True}
            planned.append(PlannedCell(cell=cell, task=CellTask(cell.key, config, run_id_for(identity)),
                                       plan_error=str(exc)))
            continue
        identity = run_identity(method, host.methods.entry(cell.method.name).dist, dataset,
                                host.datasets.entry(cell.dataset.name).dist, config.protocol.as_dict(), cell.seed)
        task = CellTask(key=cell.key, config=config, run_id=run_id_for(identity))
        fingerprint = {"dataset": dataset.fingerprint(), "protocol": config.protocol.as_dict()}
        share = [f"{i}:{json.dumps(key, sort_keys=True, default=str)}:"
                 f"{json.dumps(fingerprint, sort_keys=True, default=str)}:{cell.seed}" for i, key in reuse_keys]
        planned.append(PlannedCell(cell=cell, task=task, share=share))
    plan = Plan(spec=spec, results=results, preset=preset, preset_note=preset_note, cells=planned)
    refresh(plan, state, check_jobs=check_jobs)
    return plan


def make_method(host: PluginHost, name: str, options: dict, preset: str):
    """The method (its name, resolved options and class make its run identity)."""
    method_cls = host.methods.get(name)  # an unknown name is a UserError
    with blame("method", name):
        return method_cls(options, preset)  # a bad option is a UserError


def planning_context(dataset, protocol, device) -> RunContext:
    """The run context a cell's run will hand ``stages(run)``: the dataset, DRF and (the planner's) device
    at once; the slice shape and counts read the cell's training data on first use, as in a run (a
    method that never asks costs nothing)."""
    @cache
    def data() -> RunData:
        has_drf = getattr(dataset, "available_drfs", None)
        with blame("dataset", dataset.name):
            splits = split_subjects(dataset.name, dataset.subject_ids(), protocol,
                                    (lambda sid: protocol.drf in has_drf(sid)) if has_drf else (lambda sid: True))
        return RunData(dataset, splits, protocol, lambda: blame("dataset", dataset.name))

    return RunContext(dataset=dataset.name, drf=protocol.drf, device=device, slice_shape=lambda: data().slice_shape(),
                      slice_counts=lambda source: data().count(source))


def reuse_keys_of(method, run: RunContext) -> list:
    """The reuse keys of the method's stages for a cell (``run``: its planning context)."""
    reuse_keys = []
    check_against_run(f"method {method.name!r}", method.options, constraints_of(method), run)  # e.g. patch <= slice
    try:
        stages = call_stages(method, run)
    except UserError:
        raise
    except Exception:  # a plugin bug shows when the cell runs, where it is recorded
        stages = []
    validate_stages(stages, method)  # a bad epoch count or batch size is the grid's mistake, said before it runs
    for stage in stages:
        if stage.reuse_key is not None:
            reuse_keys.append((stage.name, stage.reuse_key))
    return reuse_keys


@contextmanager
def blame(role: str, name: str):
    """A plugin's exception while the grid is planned becomes one line naming it (not a traceback)."""
    try:
        yield
    except (UserError, PluginError):
        raise
    except Exception as exc:
        raise PluginError(f"{role} {name!r} raised while the grid was planned: {type(exc).__name__}: {exc}") from exc


def refresh(plan: Plan, state: GridState | None = None, *, check_jobs: bool = False) -> None:
    """Re-read every cell's status from its record (and the grid state)."""
    state = state or GridState(plan.results, plan.spec.name)
    for planned in plan.cells:
        record = RunRecord.load(plan.results / planned.task.run_id)
        entry = state.cell(planned.cell.key)
        if entry.get("run_id") not in (None, planned.task.run_id):
            entry = {}  # the cell's identity changed (another preset or code): its old state does not apply
        planned.job_id = entry.get("job_id")
        planned.error, planned.note = None, ""
        if record is not None:
            if record.finished:
                planned.status = "finished"
            elif record.status == "failed":
                planned.status, planned.error = "failed", record.data.get("error")
            elif record.status in {"interrupted", "running"}:
                planned.status = record.status
            else:
                planned.status = "interrupted"
        elif planned.plan_error is not None:
            planned.status, planned.error = "failed", planned.plan_error
        elif entry.get("status") == "failed":
            planned.status, planned.error = "failed", entry.get("error")
        else:
            planned.status = "pending"
        if planned.status != "finished" and check_jobs and entry.get("executor") == "slurm" and planned.job_id \
                and slurm_job_active(entry.get("folder", ""), planned.job_id):
            planned.status, planned.note = "queued", f"SLURM job {planned.job_id}"


def select(plan: Plan, *, retry_failed: bool = False, force: bool = False,
           methods: list[str] | None = None) -> list[PlannedCell]:
    """The cells to run now, in grid order."""
    chosen = []
    for planned in plan.cells:
        if methods and planned.cell.method.name not in methods and planned.cell.method.label not in methods:
            continue
        if planned.status == "queued":
            continue
        if force or planned.status in RUNNABLE or (retry_failed and planned.status == "failed"):
            chosen.append(planned)
    return chosen


def score_finished(host: PluginHost, plan: Plan, cells: list[PlannedCell], log: Log) -> None:
    """A finished cell that lacks a metric of the grid (e.g. one a plugin installed since) is scored from
    its saved predictions, never retrained; a metric that raises is said and left out."""
    wanted = list(plan.spec.metrics) if plan.spec.metrics else host.metrics.names()
    for planned in cells:
        record = RunRecord.load(plan.results / planned.task.run_id)
        lacking = [m for m in wanted if record is not None and m not in record.scored_metrics()]
        if not lacking:
            continue
        try:
            with RunLock(plan.results, planned.task.run_id):  # another process may be writing it right now
                log(f"  scoring {', '.join(lacking)}: {planned.cell.title}")
                score_record(host, record, lacking, device=resolve_device(plan.spec.device), progress=False, log=log)
        except RunBusy as busy:
            log(f"  not scored now: {busy}")


def chains(cells: list[PlannedCell]) -> list[list[PlannedCell]]:
    """Group cells that share a trained stage (same stage-cache key) so that one job runs them in order;
    the others are chains of one. Order within and between chains follows the grid."""
    parent = list(range(len(cells)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for index, planned in enumerate(cells):
        for key in planned.share:
            if key in owner:
                parent[find(index)] = find(owner[key])
            else:
                owner[key] = index
    groups: dict[int, list[PlannedCell]] = {}
    for index, planned in enumerate(cells):
        groups.setdefault(find(index), []).append(planned)
    return sorted(groups.values(), key=lambda group: cells.index(group[0]))


# -- running --------------------------------------------------------------------------------------------------
@dataclass
class GridResult:
    plan: Plan
    ran: list[dict]
    submitted: list[str] = field(default_factory=list)  # job ids when not waiting

    @property
    def failed(self) -> list[PlannedCell]:
        return [p for p in self.plan.cells if p.status == "failed"]


def run_grid(host: PluginHost, plan: Plan, executor: LocalExecutor | SubmititExecutor, *, retry_failed: bool = False,
             force: bool = False, methods: list[str] | None = None, wait_for_jobs: bool = True,
             log: Log = print) -> GridResult:
    """Run the selected cells of ``plan`` with ``executor``; the plan's statuses are refreshed at the end."""
    state = GridState(plan.results, plan.spec.name)
    todo = select(plan, retry_failed=retry_failed, force=force, methods=methods)
    if not force:
        score_finished(host, plan, [p for p in plan.cells if p.status == "finished"], log)
    groups = chains(todo)
    jobs = [CellJob([p.task for p in group], plan.results, force=force) for group in groups]
    if isinstance(executor, SubmititExecutor):  # --workers-per-gpu: several chains per SLURM job
        jobs, groups = executor.bundle(jobs, groups)
    by_key = {p.cell.key: p for p in plan.cells}
    total = len(todo)
    done = [0]
    ran: list[dict] = []
    for planned in plan.cells:
        state.update(planned.cell.key, run_id=planned.task.run_id, status=planned.status, error=planned.error)
    state.save(plan.spec)

    def on_outcome(outcome: dict) -> None:
        planned = by_key[outcome["key"]]
        if outcome["status"] == "started":
            log(f"[{done[0] + 1}/{total}] {planned.cell.title}" + (" (resuming)" if planned.status in
                                                                   {"interrupted", "running"} else ""))
            return
        done[0] += 1
        ran.append(outcome)
        fields = {"status": outcome["status"], "error": outcome.get("error"), "executor": executor.name}
        if outcome.get("job_id"):
            fields["job_id"] = outcome["job_id"]
        state.update(outcome["key"], run_id=planned.task.run_id, **fields)
        state.save()
        line = f"  {outcome['status']}: {planned.cell.title}"
        if outcome.get("seconds"):
            line += f" in {outcome['seconds']:.1f} s"
        if outcome.get("resumed"):
            line += " (resumed from its checkpoint)"
        if outcome.get("reused_stages"):
            line += f" (reused stage {', '.join(outcome['reused_stages'])})"
        if outcome.get("error"):
            line += f" — {outcome['error']}"
        log(line)

    for planned in plan.cells:
        if planned.plan_error is not None and planned not in todo:
            log(f"  failed: {planned.cell.title} — {planned.plan_error}")
    if not jobs:
        failed = " or failed (--retry-failed to retry)" if plan.counts().get("failed") else ""
        log(f"nothing to run: every cell is finished{failed}")
        return GridResult(plan, ran)
    log(f"{plan.preset_note}; {total} of {len(plan.cells)} cells to run in {len(jobs)} job(s)")
    submitted_ids: list[str] = []
    try:
        if isinstance(executor, SubmititExecutor):
            submitted = executor.submit(jobs)
            for sub, group in zip(submitted, groups):
                for planned in group:
                    state.update(planned.cell.key, run_id=planned.task.run_id, status="queued", error=None,
                                 executor=executor.name, job_id=str(sub.job_id), folder=str(executor.folder / "%j"))
                    planned.status, planned.note = "queued", f"{executor.cluster} job {sub.job_id}"
            state.save()
            submitted_ids = [str(sub.job_id) for sub in submitted]
            log(f"submitted {len(submitted)} job(s) to {executor.cluster}: {', '.join(submitted_ids)} "
                f"(logs in {executor.folder})")
            if wait_for_jobs:
                executor.wait(submitted, jobs, on_outcome, log)
        else:
            executor.run(host, jobs, on_outcome, log)
    except KeyboardInterrupt:
        state.save()
        refresh(plan, state)
        log("interrupted: run the same command again to resume (finished cells are kept)")
        raise
    if submitted_ids and not wait_for_jobs:
        return GridResult(plan, ran, submitted_ids)  # the state says "queued" until a later run looks again
    refresh(plan, state)
    for planned in plan.cells:
        state.update(planned.cell.key, run_id=planned.task.run_id, status=planned.status)
    state.save()
    return GridResult(plan, ran)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

