"""``petbench data inspect`` for a dataset that has no ``inspect()`` of its own: every subject loaded as a
run would load it, and each that cannot be used said in one line.

A dataset that reads a user's folder may define ``inspect()`` returning an
:class:`~petbench.datasets.scanned.scanned_dataset.InspectReport` (docs/writing-plugins.md, "Inspect"); any
other dataset is inspected here, through ``subject_ids()``, ``available_drfs()`` (when it has it) and ``load()``.
"""
from __future__ import annotations

import numpy as np

from ..data.volume_checks import degenerate
from ..errors import UserError
from .scanned.problems import Problem
from .scanned.scanned_dataset import InspectReport


def generic_report(dataset) -> InspectReport:
    ids = list(dataset.subject_ids())
    available = getattr(dataset, "available_drfs", None)
    rows, problems = [], []
    for sid in ids:
        drfs = tuple(available(sid)) if available else tuple(dataset.drfs)
        row = {"id": str(sid), "scanner": "unknown", "layout": "", "full": "no", "drfs": " ".join(map(str, drfs)) or "-",
               "shape": "-", "spacing": "-", "units": str(dataset.units), "suv": "-", "status": "usable"}
        try:
            subject = dataset.load(sid, drfs)
            volumes = {"standard dose": subject.spet, **{f"DRF {d}": subject.lpet.get(d) for d in drfs}}
            for what, volume in volumes.items():
                problem = "is missing" if volume is None else degenerate(volume)
                if problem:
                    raise UserError(f"the {what} volume {problem}")
            row["full"] = "yes"
            row["shape"] = " x ".join(str(n) for n in np.shape(subject.spet))
            row["spacing"] = " x ".join(f"{z:.4g}" for z in subject.spacing)
            row["scanner"] = str(subject.meta.get("scanner", "unknown"))
        except Exception as exc:  # the report shows every subject's fault instead of stopping at the first
            row["status"] = "skipped"
            message = str(exc) if isinstance(exc, UserError) else f"load() raised {type(exc).__name__}: {exc}"
            problems.append(Problem(f"subject {sid}", message))
        rows.append(row)
    settings = {k: str(v) for k, v in dataset.options.items()}
    root = str(dataset.options.get("data_root", "") or "(no data root: generated or built in)")
    return InspectReport(dataset.name, root, settings, rows, problems)
