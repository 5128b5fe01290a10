"""A run's record: one directory with run.json, metrics.csv, predictions and checkpoints.

``run.json`` is written atomically at the start (status ``running``) and again at the end
(``finished`` or ``failed``). Only a ``finished`` record with its metrics file is ever read as a
result; a record is readable without the plugin that made it (directions and conventions of
the metrics are stored in it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..atomic import atomic_write_json, atomic_write_text

RUN_FILE = "run.json"
METRICS_FILE = "metrics.csv"


@dataclass
class RunRecord:
    path: Path
    data: dict

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> "RunRecord | None":
        try:
            data = json.loads((Path(path) / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls(Path(path), data)

    @property
    def run_id(self) -> str:
        return self.data.get("run_id", self.path.name)

    @property
    def status(self) -> str:
        return self.data.get("status", "unknown")

    @property
    def finished(self) -> bool:
        return self.status == "finished" and (self.path / METRICS_FILE).exists()

    @property
    def method(self) -> str:
        return self.data["method"]["name"]

    @property
    def dataset(self) -> str:
        return self.data["dataset"]["name"]

    @property
    def summary(self) -> dict:
        return self.data.get("summary", {})

    @property
    def config(self) -> dict:
        return self.data.get("config", {})

    def rows(self) -> pd.DataFrame:
        """Per-subject metric rows: subject, metric, value."""
        return pd.read_csv(self.path / METRICS_FILE, dtype={"subject": str})

    # -- writing -------------------------------------------------------------------------
    def save(self) -> None:
        atomic_write_json(self.path / RUN_FILE, self.data)

    def write_rows(self, rows: pd.DataFrame) -> None:
        atomic_write_text(self.path / METRICS_FILE, rows.to_csv(index=False))


def find_records(results_dir: Path, finished_only: bool = True) -> list[RunRecord]:
    """Every run record under ``results_dir`` (sorted by id)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return []
    records = []
    for run_file in sorted(results_dir.glob(f"*/{RUN_FILE}")):
        record = RunRecord.load(run_file.parent)
        if record is not None and (record.finished or not finished_only):
            records.append(record)
    return records


def select_records(results_dir: Path, dataset: str | None, drf: int | None, hint: str) -> list[RunRecord]:
    """The finished records under ``results_dir`` on ``dataset`` at ``drf`` (None = any); none
    at all is a :class:`UserError` whose message ends with ``hint`` (what to run first)."""
    from ..errors import UserError

    records = find_records(results_dir)
    if not records:
        raise UserError(f"no finished runs under {results_dir}; {hint}")
    if dataset is not None:
        records = [r for r in records if r.dataset == dataset]
    if drf is not None:
        records = [r for r in records if r.data["protocol"]["drf"] == drf]
    if not records:
        raise UserError(f"no finished runs under {results_dir} match --dataset {dataset} --drf {drf}")
    return records


def pooled_setups(records: list[RunRecord]) -> dict[str, list[str]]:
    """Leaderboard rows (method, dataset, DRF) whose runs differ in more than the seed: the
    method's resolved options, the dataset's options or the rest of the protocol. A row pools such
    runs as if they were seeds of one setup, which is rarely what is meant. Returns method -> the
    run ids pooled."""
    setups: dict[tuple, set[str]] = {}
    run_ids: dict[tuple, list[str]] = {}
    for record in records:
        protocol = {k: v for k, v in record.data["protocol"].items() if k != "drf"}
        setup = json.dumps([record.data["method"].get("options"), record.data["dataset"].get("options"), protocol],
                           sort_keys=True, default=str)
        row = (record.method, record.dataset, record.data["protocol"]["drf"])
        setups.setdefault(row, set()).add(setup)
        run_ids.setdefault(row, []).append(record.run_id)
    return {row[0]: sorted(run_ids[row]) for row, found in setups.items() if len(found) > 1}
