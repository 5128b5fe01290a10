"""Where a grid's cells run: here (one after the other, or one worker per visible GPU) or on SLURM
through submitit (each job a chain of cells; a preempted or timed-out job is requeued and resumes).

A *job* is a :class:`CellJob`: a short chain of cells run in order in one process. Cells that share a
trained stage (a ``reuse_key``, e.g. the S3PET variants' Stage I) are put in the same chain so the
stage is trained once and reused from ``<results>/.stages/``; every other cell is a chain of one.

Several chains can share a device: locally ``--workers-per-gpu K`` runs K worker processes per GPU
(K at once on the CPU); on SLURM it makes each job a :class:`ParallelJob` of K chains per GPU of the
job, run at once. Either way one chain stays in one process, so cells that share a stage run in order.
"""
from __future__ import annotations

import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import UserError
from ..plugins import PluginHost, get_host
from ..results.lock import RunBusy, is_locked
from ..results.record import RunRecord
from ..runner import RunConfig, execute

Log = Callable[[str], None]
HostFactory = Callable[[], PluginHost]


@dataclass
class CellTask:
    """What a job needs to run one cell (picklable)."""

    key: str
    config: RunConfig
    run_id: str


def execute_cell(host: PluginHost, task: CellTask, results: Path, *, force: bool = False, progress: bool = False,
                 log: Log = print, wait: bool = False) -> dict:
    """Run one cell; a failure is returned (and recorded), not raised. Ctrl-C and a job's exit on
    preemption mark the record ``interrupted`` and propagate. A cell another live process is running
    comes back with status ``busy`` (or, with ``wait``, is taken once that process lets it go)."""
    results = Path(results)
    run_dir = results / task.run_id
    resumed = not force and (run_dir / "checkpoints" / "last.pt").exists()
    outcome = {"key": task.key, "run_id": task.run_id, "status": "failed", "error": None, "resumed": resumed,
               "seconds": 0.0, "reused_stages": []}
    started = time.perf_counter()
    def quiet_log(text: str) -> None:  # the grid says these once, in its own words
        if not text.startswith("preset ") and " reused from run " not in text:
            log(text)

    try:
        record = execute(host, task.config, results, force=force, progress=progress, log=quiet_log, wait=wait)
    except RunBusy as exc:  # not a failure: another grid or run has this cell
        outcome["status"], outcome["error"] = "busy", str(exc)
    except (KeyboardInterrupt, SystemExit):
        mark_interrupted(run_dir)
        raise
    except Exception as exc:  # recorded by the runner when it got that far; the grid carries on
        outcome["error"] = f"{type(exc).__name__}: {exc}"
    else:
        outcome["run_id"] = record.run_id
        outcome["status"] = "finished" if record.finished else record.status
        outcome["reused_stages"] = [s.get("name") for s in record.data.get("timings", {}).get("stages", [])
                                    if s.get("reused_from")]
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    return outcome


def mark_interrupted(run_dir: Path) -> None:
    """The runner records any exit other than Ctrl-C as ``failed``; a job stopped by SLURM (preemption,
    time limit) is ``interrupted``: a later run resumes it from its checkpoint."""
    record = RunRecord.load(run_dir)
    if record is not None and record.status in {"failed", "running"}:
        error = record.data.get("error") or ""
        if record.status == "running" or error.startswith(("SystemExit", "KeyboardInterrupt")):
            record.data["status"] = "interrupted"
            record.save()


class CellJob:
    """A chain of cells run in order; the callable that local workers and submitit jobs execute.

    It follows submitit's checkpointing protocol: on preemption or time-out submitit calls
    :meth:`checkpoint`, which returns a ``DelayedSubmission`` of this job in its current state, and
    requeues it. Finished cells are then skipped and the interrupted one resumes from its checkpoint
    (the runner does both). ``--force`` applies once per cell: a requeued job does not restart a cell
    it already started from scratch.
    """

    def __init__(self, tasks: list[CellTask], results: str | Path, *, force: bool = False,
                 host_factory: HostFactory | None = None, progress: bool = False) -> None:
        self.tasks = list(tasks)
        self.results = str(results)
        self.force = force
        self.host_factory = host_factory
        self.progress = progress
        self.forced: set[str] = set()
        self.attempt = 1

    @property
    def keys(self) -> list[str]:
        return [t.key for t in self.tasks]

    def __call__(self, host: PluginHost | None = None, log: Log = print,
                 on_outcome: Callable[[dict], None] | None = None) -> list[dict]:
        if host is None:
            host = self.host_factory() if self.host_factory is not None else get_host()
        outcomes, busy = [], []
        for task in self.tasks:
            outcome = self.run_task(host, task, log, on_outcome, wait=False)
            if outcome["status"] == "busy":  # held by another live process: come back to it at the end
                log(f"[petbench grid] {task.key}: {outcome['error']}; taken when it is free")
                busy.append(task)
                continue
            outcomes.append(outcome)
        for task in busy:
            outcomes.append(self.run_task(host, task, log, on_outcome, wait=True))
        return outcomes

    def run_task(self, host: PluginHost, task: CellTask, log: Log, on_outcome, *, wait: bool) -> dict:
        force = self.force and task.run_id not in self.forced
        holder = None if wait else is_locked(Path(self.results), task.run_id)
        if holder is not None:
            return {"key": task.key, "run_id": task.run_id, "status": "busy", "error": str(RunBusy(task.run_id, holder))}
        if on_outcome is not None:
            on_outcome({"key": task.key, "status": "started"})
        else:
            log(f"[petbench grid] {task.key} (attempt {self.attempt})")
        outcome = execute_cell(host, task, Path(self.results), force=force, progress=self.progress, log=log,
                               wait=wait)
        if outcome["status"] != "busy":
            self.forced.add(task.run_id)
            outcome["attempt"] = self.attempt
            if on_outcome is not None:
                on_outcome(outcome)
        return outcome

    def checkpoint(self, *args: Any, **kwargs: Any):
        """submitit's hook on preemption/time-out: requeue this job as it is now."""
        from submitit.helpers import DelayedSubmission

        self.attempt += 1
        return DelayedSubmission(self, *args, **kwargs)


# -- local ---------------------------------------------------------------------------------------------
def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_per_gpu(per_gpu: int) -> int:
    if isinstance(per_gpu, bool) or not isinstance(per_gpu, int) or per_gpu < 1:
        raise UserError(f"--workers-per-gpu must be a whole number of at least 1, not {per_gpu!r}")
    return per_gpu


def resolve_workers(workers: str | int, per_gpu: int = 1) -> int:
    """``auto`` = ``per_gpu`` workers per visible GPU (``per_gpu`` at once on the CPU), else the number
    given; ``auto`` with ``per_gpu`` 1 and at most one GPU is 1 (in this process)."""
    per_gpu = resolve_per_gpu(per_gpu)
    if isinstance(workers, str):
        if workers.strip().lower() == "auto":
            return max(1, visible_gpus()) * per_gpu
        try:
            workers = int(workers)
        except ValueError:
            raise UserError(f"--workers {workers!r} is not valid: use auto or a number") from None
    if workers < 1:
        raise UserError(f"--workers must be at least 1, not {workers}")
    if per_gpu > 1:
        raise UserError(f"give --workers {workers} or --workers-per-gpu {per_gpu}, not both "
                        "(--workers-per-gpu K runs K workers on each visible GPU, K on the CPU)")
    return workers


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # a SLURM job's allocation, not the whole node
    except AttributeError:
        return os.cpu_count() or 1


_WORKER: dict = {}


def _init_worker(slots, threads: int) -> None:
    """Runs once in each worker process: take a GPU (or none) and a share of the CPU threads. SLURM's
    preemption signal is the parent's to handle (it requeues the job); a worker keeps its cell going."""
    gpu = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    if hasattr(signal, "SIGUSR2"):
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    import torch

    torch.set_num_threads(max(1, threads))
    _WORKER["gpu"] = gpu


def _run_in_worker(job: CellJob) -> list[dict]:
    return job(log=lambda _line: None)


def run_pool(jobs: list[CellJob], workers: int, on_outcome: Callable[[dict], None], log: Log = print,
             host_factory: HostFactory | None = None) -> None:
    """Run ``jobs`` in ``workers`` processes, at most ``workers`` at once; worker ``i`` takes visible
    GPU ``i % GPUs``, so ``k`` workers per GPU share each one. A chain runs in one worker, in order."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    gpus = visible_gpus()
    workers = max(1, min(workers, len(jobs)))
    slots = context.Queue()
    for index in range(workers):
        slots.put(index % gpus if gpus else None)
    threads = max(1, usable_cpus() // workers)
    for job in jobs:
        job.progress = False
        if host_factory is not None:
            job.host_factory = host_factory
    log(f"{len(jobs)} jobs on {workers} workers ({f'{gpus} GPUs' if gpus else 'CPU'})")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                               initargs=(slots, threads))
    try:
        pending = {pool.submit(_run_in_worker, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                try:
                    outcomes = future.result()
                except Exception as exc:  # the worker died: its cells are failed, the others go on
                    outcomes = [{"key": key, "status": "failed", "error": f"worker: {type(exc).__name__}: {exc}"}
                                for key in job.keys]
                for outcome in outcomes:
                    on_outcome(outcome)
    except BaseException:  # Ctrl-C, or a SLURM job exiting to be requeued: stop the workers, do not wait
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()  # their records stay "running": the next run resumes them
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@dataclass
class LocalExecutor:
    """Sequential in this process (``workers=1``: progress bars, the caller's plugin host), or a pool
    of worker processes spread over the visible GPUs, several per GPU with ``--workers-per-gpu``."""

    workers: int = 1
    progress: bool = True
    host_factory: HostFactory | None = None
    name: str = "local"

    def run(self, host: PluginHost, jobs: list[CellJob], on_outcome: Callable[[dict], None],
            log: Log = print) -> None:
        if self.workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                job.progress = self.progress
                job(host, log=log, on_outcome=on_outcome)
            return
        run_pool(jobs, self.workers, on_outcome, log, self.host_factory)


class ParallelJob:
    """Several chains run at once in one submitit job, sharing its GPU(s): ``workers`` processes, each
    taking one chain at a time (a chain's cells stay in order). submitit requeues it as a whole on
    preemption; finished cells are skipped and interrupted ones resume (as for :class:`CellJob`)."""

    def __init__(self, jobs: list[CellJob], workers: int) -> None:
        self.jobs = list(jobs)
        self.workers = workers
        self.host_factory: HostFactory | None = None
        self.progress = False

    @property
    def keys(self) -> list[str]:
        return [key for job in self.jobs for key in job.keys]

    @property
    def tasks(self) -> list[CellTask]:
        return [task for job in self.jobs for task in job.tasks]

    def __call__(self, host: PluginHost | None = None, log: Log = print,
                 on_outcome: Callable[[dict], None] | None = None) -> list[dict]:
        outcomes: list[dict] = []

        def collect(outcome: dict) -> None:
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        for job in self.jobs:
            job.host_factory = job.host_factory or self.host_factory
        run_pool(self.jobs, self.workers, collect, log)
        return outcomes

    def checkpoint(self, *args: Any, **kwargs: Any):
        from submitit.helpers import DelayedSubmission

        for job in self.jobs:
            job.attempt += 1
        return DelayedSubmission(self, *args, **kwargs)


def bundle(jobs: list[CellJob], groups: list[list], per_job: int, workers: int) -> tuple[list, list[list]]:
    """Consecutive chains, ``per_job`` at a time, as one :class:`ParallelJob` each (``workers``
    processes); ``groups`` (the chains' cells) are merged the same way."""
    if per_job <= 1:
        return jobs, groups
    bundled, merged = [], []
    for start in range(0, len(jobs), per_job):
        part = jobs[start:start + per_job]
        bundled.append(part[0] if len(part) == 1 else ParallelJob(part, workers))
        merged.append([cell for group in groups[start:start + per_job] for cell in group])
    return bundled, merged


# -- submitit (SLURM, or submitit's local executor) ---------------------------------------------------------
@dataclass
class SlurmOptions:
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    time_min: int = 24 * 60
    array_parallelism: int | None = None
    job_name: str = "petbench"
    setup: list[str] = field(default_factory=list)  # shell lines run before each job (module load, venv)
    extra: dict[str, Any] = field(default_factory=dict)  # other submitit slurm_* parameters
    max_requeues: int = 3  # preemptions/time-outs a job may be requeued after

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {"timeout_min": int(self.time_min), "gpus_per_node": int(self.gpus_per_job),
                                  "name": self.job_name, "tasks_per_node": 1, "nodes": 1}
        if self.cpus_per_job:
            params["cpus_per_task"] = int(self.cpus_per_job)
        if self.mem_gb:
            params["mem_gb"] = float(self.mem_gb)
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.array_parallelism:
            params["slurm_array_parallelism"] = int(self.array_parallelism)
        if self.setup:
            params["slurm_setup"] = list(self.setup)
        for key, value in self.extra.items():
            params[key if key.startswith("slurm_") else f"slurm_{key}"] = value
        return params


def parse_time_min(text: str | int) -> int:
    """``90`` (minutes), ``"1:30:00"``, ``"2-00:00:00"`` or ``"45m"`` -> minutes."""
    if isinstance(text, int):
        return text
    value = str(text).strip().lower()
    try:
        if value.endswith("m"):
            return int(float(value[:-1]))
        if value.endswith("h"):
            return int(float(value[:-1]) * 60)
        days = 0
        if "-" in value:
            day_text, value = value.split("-", 1)
            days = int(day_text)
        parts = [int(p) for p in value.split(":")]
        if len(parts) == 1:
            minutes = parts[0]
        elif len(parts) == 2:
            minutes = parts[0] * 60 + parts[1]
        elif len(parts) == 3:
            minutes = parts[0] * 60 + parts[1] + (1 if parts[2] else 0)
        else:
            raise ValueError
        return days * 24 * 60 + minutes
    except ValueError:
        raise UserError(f"--time {text!r} is not valid: use minutes (90), HH:MM:SS or D-HH:MM:SS") from None


ACTIVE_SLURM_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING",
                       "REQUEUE_HOLD", "REQUEUE_FED"}


def slurm_job_active(folder: str, job_id: str) -> bool:
    """Whether a SLURM job submitted earlier is still queued or running (False when it cannot tell)."""
    try:
        from submitit.slurm.slurm import SlurmJob

        return SlurmJob(folder=folder, job_id=job_id).state.upper() in ACTIVE_SLURM_STATES
    except Exception:
        return False


@dataclass
class SubmititExecutor:
    """Each job is a submitit job (a SLURM array when there are several); ``cluster="local"`` is
    submitit's local executor (a subprocess per job), used to test this path without a cluster."""

    folder: Path
    options: SlurmOptions = field(default_factory=SlurmOptions)
    cluster: str = "slurm"
    host_factory: HostFactory | None = None
    poll_s: float = 2.0
    name: str = "slurm"
    per_gpu: int = 1  # --workers-per-gpu: chains a job runs at once on each of its GPUs

    def bundle(self, jobs: list[CellJob], groups: list[list]) -> tuple[list, list[list]]:
        """Jobs of ``per_gpu`` × GPUs-per-job chains each, run at once (one chain per job when 1)."""
        per_job = self.per_gpu * max(1, self.options.gpus_per_job)
        return bundle(jobs, groups, per_job, per_job)

    def make_executor(self):
        import submitit

        try:
            executor = submitit.AutoExecutor(folder=str(self.folder / "%j"), cluster=self.cluster,
                                             slurm_max_num_timeout=self.options.max_requeues)
            params = self.options.parameters()
            if self.cluster == "local":
                params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
                params.pop("nodes", None)
            executor.update_parameters(**params)
        except (NameError, ValueError, AssertionError, RuntimeError) as exc:
            raise UserError(f"submitit ({self.cluster}): {exc}") from None
        return executor

    def submit(self, jobs: list[CellJob]) -> list:
        executor = self.make_executor()
        for job in jobs:
            job.progress = False
            if self.host_factory is not None:
                job.host_factory = self.host_factory
        try:
            with executor.batch():
                submitted = [executor.submit(job) for job in jobs]
        except Exception as exc:  # sbatch missing or refused: nothing ran
            raise UserError(f"could not submit to {self.cluster}: {type(exc).__name__}: {exc}") from None
        return submitted

    def wait(self, submitted: list, jobs: list[CellJob], on_outcome: Callable[[dict], None], log: Log = print) -> None:
        pending = dict(zip(range(len(submitted)), zip(submitted, jobs)))
        while pending:
            for index, (sub, job) in list(pending.items()):
                if not sub.done():
                    continue
                del pending[index]
                try:
                    outcomes = sub.result()
                except Exception as exc:  # the job failed outside a cell (killed, out of memory, not requeued)
                    message = str(exc).strip().splitlines()
                    outcomes = [{"key": key, "status": "failed", "job_id": sub.job_id,
                                 "error": f"job {sub.job_id}: {message[-1] if message else type(exc).__name__}"}
                                for key in job.keys]
                for outcome in outcomes:
                    outcome.setdefault("job_id", sub.job_id)
                    on_outcome(outcome)
            if pending:
                time.sleep(self.poll_s)
