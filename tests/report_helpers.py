"""Results folders for the report's tests: Table I's methods (stand-ins) on the tiny dataset, with
per-subject values chosen here, NIfTI predictions and, for the trained ones, a short history.jsonl."""
from __future__ import annotations

import json
from pathlib import Path

from grid_helpers import fake_record

SUBJECTS = ["tiny003", "tiny007", "tiny008"]
METHODS = ["lpet", "cyclegan", "autocontext", "argan", "cvtgan", "semipet", "s3pet"]


def values(rank: int, seed: int) -> dict[str, list[float]]:
    """Distinct per method (rank) and seed, so that every column sorts differently: PSNR rises with the rank,
    NMSE falls with it, SSIM peaks in the middle."""
    return {"psnr": [20.0 + rank + 0.1 * seed, 21.5 + rank, 19.0 + rank - 0.2 * seed],
            "ssim": [0.80 - abs(rank - 3) / 100, 0.81, 0.70 + rank / 200],
            "nmse": [0.30 - rank / 50, 0.25 - rank / 60, 0.28 - rank / 70 + seed / 100]}


def write_history(run_dir: Path, epochs: int = 3) -> None:
    lines = [{"stage": "train", "epoch": e, "steps": 4, "losses": {"l1": 0.5 / e}, "seconds": 0.1,
              "validation": {"psnr": 20.0 + e}} for e in range(1, epochs + 1)]
    (run_dir / "history.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def table1_results(results: Path, seeds=(0, 1), subjects=SUBJECTS, predictions: bool = True, methods=METHODS) -> dict:
    """Finished records of Table I's methods; returns method -> [record per seed]."""
    made = {}
    for rank, method in enumerate(methods):
        for seed in seeds:
            record = fake_record(results, method, seed, values(rank, seed), subjects=list(subjects),
                                 predictions=predictions, noise=0.3 / (rank + 1))
            if method != "lpet":
                write_history(record.path)
            made.setdefault(method, []).append(record)
    return made


def lesion_host():
    """An isolated host whose ``tiny`` dataset has one cubic lesion (z 3-4, y 4-5, x 4-5), made hot, so that
    :func:`fake_record`'s records find it (the report needs no method plugin)."""
    import numpy as np

    from petbench import hookimpl
    from petbench.data.subject import LabelMap
    from petbench.testing.toys import TinyDataset, isolated_host

    class Labelled(TinyDataset):
        def load(self, subject_id, drfs=()):
            subject = super().load(subject_id, drfs)
            lesions = np.zeros(subject.spet.shape, np.uint8)
            lesions[3:5, 4:6, 4:6] = 1
            subject.spet[lesions == 1] += 5.0
            subject.labels = {"lesions": LabelMap(lesions, {1: "lesion 1"})}
            return subject

    @hookimpl
    def register_datasets(register):
        register(Labelled)

    import types
    return isolated_host(types.SimpleNamespace(__name__="lesion_tiny", register_datasets=register_datasets))
