"""The tidy frame: one row per (run, seed, subject, metric), the only input of the statistics step."""
from __future__ import annotations

from typing import Callable

import pandas as pd

from .record import RunRecord

TIDY_FRAME_COLUMNS = ["run_id", "method", "dataset", "drf", "seed", "subject", "metric", "value"]


def tidy_frame(records: list[RunRecord], key: Callable[[RunRecord], object] | None = None,
               metrics: list[str] | None = None) -> pd.DataFrame:
    """Rows of every record's metrics file, with its run id, method (or ``key(record)``: what a table
    compares, e.g. a method with one option set), dataset, DRF and seed; only ``metrics`` when given."""
    frames = []
    for record in records:
        rows = record.rows()
        if metrics is not None:
            rows = rows[rows["metric"].isin(metrics)]
        frames.append(rows.assign(run_id=record.run_id, method=key(record) if key else record.method,
                                  dataset=record.dataset, drf=record.data["protocol"]["drf"],
                                  seed=record.data["config"]["seed"], subject=rows["subject"].astype(str)))
    if not frames:
        return pd.DataFrame(columns=TIDY_FRAME_COLUMNS)
    return pd.concat(frames, ignore_index=True)[TIDY_FRAME_COLUMNS]
