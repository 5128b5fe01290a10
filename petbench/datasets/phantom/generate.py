"""Subjects on demand: read from the store, or simulate what is missing and write it there."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from ...data.nifti import affine_from_spacing
from ...data.subject import LabelMap
from .anatomy import Anatomy, make_anatomy, spacing_for
from .cache import SubjectStore
from .labels import label_maps
from .simulate import Physics, simulate_subject, stream

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
                truth = make_anatomy(config.anatomy, config.size, stream(config.seed, index, "anatomy"))
                arrays = write_anatomy(config, store, sid, truth)
    return label_maps(config.anatomy, arrays["tissue"], arrays["lesions"])


def generate_subjects(config: PhantomConfig, store: SubjectStore, indices, drfs, progress: bool = True,
             verify: bool = False, device="cpu") -> int:
    """Make sure the given subjects exist in ``store`` with SPET and LPET at ``drfs``.

    Files already there are trusted unless ``verify`` (they are checked whenever read anyway);
    returns how many subjects were visited to be simulated or checked.
    """
    todo = [i for i in indices if verify or not all(store.has(subject_id(i), kind) for kind in (None, *drfs))]
    if not todo:
        return 0
    if not progress:
        for index in todo:
            materialize(config, store, index, drfs, device)
        return len(todo)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"phantom {config.anatomy} {config.size}³", total=len(todo))
        for index in todo:
            materialize(config, store, index, drfs, device)
            bar.advance(task)
    return len(todo)
