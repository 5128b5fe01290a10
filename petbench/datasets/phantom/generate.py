"""Subjects on demand: read from the store, or simulate what is missing and write it there."""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ...data.nifti import affine_from_spacing
from ...data.subject import LabelMap
from ...errors import UserError
from .anatomy import Anatomy, make_anatomy, spacing_for
from .cache import SubjectStore
from .labels import label_maps
from .projector import get_projector
from .simulate import Physics, one_thread, simulate_subject, stream

# Bump when a change to the generator changes its output, so old caches are not reused.
GENERATOR_VERSION = 1
UNITS = "SUV"


@dataclass(frozen=True)
class PhantomConfig:
    """Everything a generated volume depends on, besides the subject index."""

    anatomy: str = "brain"
    size: int = 128
    seed: int = 0
    physics: Physics = field(default_factory=Physics)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return spacing_for(self.anatomy, self.size)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, self.size)

    @property
    def affine(self) -> np.ndarray:
        """Voxel sizes on the diagonal, the block centred on the scanner origin (RAS)."""
        dz, dy, dx = self.spacing_mm
        centre = (self.size - 1) / 2
        return affine_from_spacing(self.spacing_mm, origin_xyz=(-centre * dx, -centre * dy, -centre * dz))

    def cache_key(self) -> str:
        """A readable folder name plus a digest of every setting, e.g. ``brain-128-seed0-1a2b3c4d``."""
        settings = {"version": GENERATOR_VERSION, **asdict(self)}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.anatomy}-{self.size}-seed{self.seed}-{digest}"


def subject_id(index: int) -> str:
    return f"phantom-{index:04d}"


def subject_index(subject_id_: str) -> int:
    prefix, _, number = subject_id_.partition("-")
    if prefix != "phantom" or not number.isdigit() or subject_id(int(number)) != subject_id_:
        raise ValueError(f"{subject_id_!r} is not a phantom subject id (phantom-0000, phantom-0001, ...)")
    return int(number)


def materialize(config: PhantomConfig, store: SubjectStore, index: int, drfs=(),
                device="cpu") -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """SPET and LPET at ``drfs`` of subject ``index``: read, or simulated and written if missing or bad."""
    sid = subject_id(index)
    wanted = [None, *sorted({int(d) for d in drfs})]  # None = the standard dose
    volumes = {kind: store.read(sid, kind, config.shape, config.affine) for kind in wanted}
    if any(v is None for v in volumes.values()):
        with store.lock(sid):  # another process may be simulating this subject: wait, then re-read
            volumes.update({kind: store.read(sid, kind, config.shape, config.affine)
                            for kind, v in volumes.items() if v is None})
            missing = [kind for kind, v in volumes.items() if v is None]
            if missing:
                simulated = simulate_subject(index, config.seed, config.anatomy, config.size,
                                             drfs=[k for k in missing if k is not None],
                                             physics=config.physics, device=device)
                for kind in missing:
                    volume = simulated.spet if kind is None else simulated.lpet[kind]
                    volumes[kind] = store.write(sid, kind, volume, config.affine, UNITS)
                if not all(store.label_path(sid, name).is_file() for name in LABEL_FILES):
                    write_anatomy(config, store, sid, simulated.anatomy)
    return volumes[None], {kind: v for kind, v in volumes.items() if kind is not None}


LABEL_FILES = ("tissue", "lesions")


def write_anatomy(config: PhantomConfig, store: SubjectStore, sid: str, truth: Anatomy) -> dict[str, np.ndarray]:
    arrays = {"tissue": truth.labels.cpu().numpy(), "lesions": truth.lesions.cpu().numpy()}
    return {name: store.write_labels(sid, name, arrays[name], config.affine) for name in LABEL_FILES}


def subject_labels(config: PhantomConfig, store: SubjectStore, index: int) -> dict[str, LabelMap]:
    """The label maps of subject ``index`` (docs/datasets.md): read, or drawn again from the subject's
    anatomy stream (no simulation needed) and written if missing or bad."""
    sid = subject_id(index)
    arrays = {name: store.read_labels(sid, name, config.shape, config.affine) for name in LABEL_FILES}
    if any(a is None for a in arrays.values()):
        with store.lock(sid):
            arrays = {name: store.read_labels(sid, name, config.shape, config.affine) for name in LABEL_FILES}
            if any(a is None for a in arrays.values()):
                with one_thread():  # the same labels as a full simulation gives (simulate.py)
                    truth = make_anatomy(config.anatomy, config.size, stream(config.seed, index, "anatomy"))
                arrays = write_anatomy(config, store, sid, truth)
    return label_maps(config.anatomy, arrays["tissue"], arrays["lesions"])


#: Environment variable: how many processes simulate missing subjects (default: one per usable core).
WORKERS_VARIABLE = "PETBENCH_PHANTOM_WORKERS"
#: Below this much work (in 128³ subjects, ~1 s each) a pool is not worth starting: simulate in this process.
POOL_MIN_WORK = 4.0


def simulation_workers(n_subjects: int, size: int, device="cpu") -> int:
    """Processes to simulate ``n_subjects`` missing subjects of ``size``³ with: ``$PETBENCH_PHANTOM_WORKERS``
    if set, else one per usable core when the work is worth a pool, else 1 (this process)."""
    if n_subjects <= 1 or str(device) != "cpu":
        return 1
    wanted = os.environ.get(WORKERS_VARIABLE, "").strip()
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            raise UserError(f"{WORKERS_VARIABLE}={wanted!r} must be a positive integer (1 = no worker processes)")
        return min(int(wanted), n_subjects)
    if n_subjects * (size / 128) ** 3 < POOL_MIN_WORK:
        return 1
    return max(1, min(usable_cores(), n_subjects))


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def generate_subjects(config: PhantomConfig, store: SubjectStore, indices, drfs, progress: bool = True,
             verify: bool = False, device="cpu", workers: int | None = None) -> int:
    """Make sure the given subjects exist in ``store`` with SPET and LPET at ``drfs``.

    Files already there are trusted unless ``verify`` (they are checked whenever read anyway);
    returns how many subjects were visited to be simulated or checked. The subjects are simulated by
    ``workers`` processes (default :func:`simulation_workers`), each subject in one process with one
    thread, so the volumes are the same whatever the number of workers.
    """
    todo = [i for i in indices if verify or not all(store.has(subject_id(i), kind) for kind in (None, *drfs))]
    if not todo:
        return 0
    workers = simulation_workers(len(todo), config.size, device) if workers is None else min(workers, len(todo))
    with progress_bar(f"phantom {config.anatomy} {config.size}³", len(todo), progress) as advance:
        if workers <= 1:
            for index in todo:
                materialize(config, store, index, drfs, device)
                advance()
        else:
            simulate_in_pool(config, store, todo, drfs, workers, advance)
    return len(todo)


def simulate_in_pool(config: PhantomConfig, store: SubjectStore, todo: list[int], drfs, workers: int, advance) -> None:
    """``materialize`` each subject in a pool of worker processes. Each file is written atomically under
    the subject's lock, so stopping part-way leaves only whole files, and a concurrent run waits
    instead of redoing a subject.

    Workers are forked where the platform can (Linux): they start at once, with the projector built
    once in this process, and without importing the caller's ``__main__`` again, which a spawned
    worker does (a script without an ``if __name__ == "__main__":`` guard would then run again). Each
    sets torch to one thread before any work, as torch's own DataLoader workers do after a fork."""
    forking = "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if forking else "spawn")
    if forking:  # built once here, inherited by every worker of this and later pools
        get_projector(config.size, config.physics.subsets, "cpu")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=torch.set_num_threads, initargs=(1,))
    try:
        futures = [pool.submit(materialize_quietly, config, store, index, tuple(drfs)) for index in todo]
        for future in as_completed(futures):
            future.result()  # an error in a worker (e.g. an unwritable cache) is raised here
            advance()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def materialize_quietly(config: PhantomConfig, store: SubjectStore, index: int, drfs: tuple[int, ...]) -> None:
    """A worker's job: the volumes stay on disk; the parent reads them when it needs them."""
    materialize(config, store, index, drfs)


@contextmanager
def progress_bar(title: str, total: int, shown: bool = True):
    """``with progress_bar(title, total) as advance:`` a rich bar on stderr (a no-op if not ``shown``)."""
    if not shown:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(title, total=total)
        yield lambda: bar.advance(task)
