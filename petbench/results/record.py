"""A run's record: one directory with run.json, metrics.csv, predictions and checkpoints.

``run.json`` is written atomically at the start (status ``running``) and again at the end
(``finished`` or ``failed``). Only a ``finished`` record with its metrics file is ever read as a
result; a record is readable without the plugin that made it (directions and conventions of
the metrics are stored in it).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..atomic import atomic_write_json, atomic_write_text
from ..errors import UserError
from . import reading, schema
from .duplicates import count_each_run_once
from .reading import Damaged

RUN_FILE = "run.json"
METRICS_FILE = "metrics.csv"


@dataclass
class RunRecord:
    path: Path
    data: dict

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> "RunRecord | None":
        """The record in ``path``; None when it is missing, unreadable or a malformed finished
        record (:func:`read_record` says why)."""
        return read_record(path)[0]

    @property
    def run_id(self) -> str:
        """The folder's name: on disk, a run is its folder (a stored id that differs is damage)."""
        return self.path.name

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

    def scored_metrics(self) -> set[str]:
        """Metrics this finished run has: described in run.json and present in its metrics file."""
        described = set(self.data.get("metrics", {}))
        inapplicable = set(self.data.get("metrics_not_applicable", []))  # tried: no subject has its labels
        try:
            return (described & set(self.rows()["metric"].astype(str))) | inapplicable
        except (OSError, ValueError, KeyError):
            return inapplicable

    def rows(self) -> pd.DataFrame:
        """Per-subject metric rows: subject, metric, value (read bounded, like every file read back)."""
        try:
            text = reading.read_bytes(self.path / METRICS_FILE, within=self.path, limit=reading.MAX_BYTES["csv"])
            return schema.parse_metrics(text)
        except Damaged as exc:
            raise ValueError(f"{self.path / METRICS_FILE}: {exc}") from None

    # -- writing -------------------------------------------------------------------------
    def save(self) -> None:
        atomic_write_json(self.path / RUN_FILE, self.data)

    def write_rows(self, rows: pd.DataFrame) -> None:
        """Write the metrics file and keep its seal in :attr:`data` (saved with the next :meth:`save`)."""
        text = rows.to_csv(index=False)
        atomic_write_text(self.path / METRICS_FILE, text)
        self.data["metrics_file"] = schema.seal(text.encode("utf-8"))


# -- checking what was read -------------------------------------------------------------------
STATUSES = schema.STATUSES


@dataclass(frozen=True)
class DamagedRun:
    """A run folder whose record cannot be used: ``file`` (run.json or metrics.csv) and why."""

    path: Path
    file: Path
    reason: str
    #: run.json's content when it is valid and only the metrics file is damaged (it can be rebuilt)
    data: dict | None = None

    def line(self) -> str:
        return f"{self.file}: {self.reason}"

    def __str__(self) -> str:
        return self.line()


def read_run_folder(path: Path) -> "RunRecord | DamagedRun | None":
    """The record in the run folder ``path``, read and validated in full; a :class:`DamagedRun` naming
    the file and its reason when it cannot be used; None when the folder holds no ``run.json``.

    The run's identity is its folder's name: a stored ``run_id`` that differs makes it damaged. Only
    regular files are read, bounded in size, never through a link that leaves the folder. A finished
    record's metrics file is checked against its test split and metric list
    (:func:`petbench.results.schema.metrics_problem`). A ``running`` record that no live process holds
    (its writer was killed, or hit a full disk) reads as ``interrupted``."""
    found = read_once(Path(path))
    if isinstance(found, DamagedRun) and found.reason.startswith(schema.SEAL_MISMATCH):
        # a writer replaces metrics.csv, then run.json: read again once it may have finished
        time.sleep(0.2)
        found = read_once(Path(path))
    return found


def read_once(path: Path) -> "RunRecord | DamagedRun | None":
    run_file = path / RUN_FILE
    try:
        if path.is_symlink() or not path.is_dir():
            if not path.exists() and not path.is_symlink():
                return None
            return DamagedRun(path, path, "not a folder (a run is a folder holding run.json)")
        data = reading.read_json(run_file, within=path)
        schema.validate_record(data)
    except FileNotFoundError:
        return None
    except (Damaged, OSError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        return DamagedRun(path, run_file, str(exc) if isinstance(exc, Damaged) else
                          f"unreadable ({getattr(exc, 'strerror', None) or type(exc).__name__})")
    stored = data.get("run_id")
    if stored is not None and stored != path.name:
        return DamagedRun(path, run_file, f"its run_id {str(stored)[:60]!r} is not its folder's name {path.name!r} "
                                          f"(copied or renamed by hand?)")
    if not schema.is_safe_name(path.name):
        return DamagedRun(path, path, "the folder's name is not a run id petbench makes")
    record = RunRecord(path, data)
    if data["status"] == "finished":
        metrics_file = path / METRICS_FILE
        try:
            text = reading.read_bytes(metrics_file, within=path, limit=reading.MAX_BYTES["csv"])
        except FileNotFoundError:
            return DamagedRun(path, metrics_file, "missing (the record says finished)", data)
        except (Damaged, OSError) as exc:
            return DamagedRun(path, metrics_file, str(exc) if isinstance(exc, Damaged) else
                              f"unreadable ({getattr(exc, 'strerror', None) or type(exc).__name__})", data)
        try:
            problem = schema.metrics_problem(text, data)
        except Exception as exc:  # a check must never be the traceback it guards against
            problem = f"cannot be checked ({type(exc).__name__}: {str(exc)[:80]})"
        if problem:
            return DamagedRun(path, metrics_file, problem, data)
    elif data["status"] == "running" and not held(path):
        data["status"] = "interrupted"  # in memory only: what a re-run will do with it
    return record


def held(run_dir: Path) -> bool:
    from .lock import is_locked

    try:
        return is_locked(run_dir.parent, run_dir.name) is not None
    except Exception:  # a lock we cannot look at: say it is held (the safe answer)
        return True


def read_record(path: Path) -> tuple[RunRecord | None, str | None]:
    """``(record, None)`` for a usable record, ``(None, None)`` when ``path`` holds no ``run.json``,
    and ``(None, problem)`` for a damaged one: ``problem`` is one line naming the file
    (:func:`read_run_folder` as a pair)."""
    found = read_run_folder(path)
    if isinstance(found, DamagedRun):
        return None, found.line()
    return found, None


def find_runs(results_dir: Path) -> tuple[list[RunRecord], list[DamagedRun]]:
    """Every run folder under ``results_dir`` (sorted by name): the usable records (any status) and the
    damaged ones. Hidden entries (``.locks``, ``.stages``, ``.grids``) and files that are no run are
    passed over; a linked folder is damaged."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return [], []
    try:
        folders = sorted(entry for entry in results_dir.iterdir() if not entry.name.startswith("."))
    except OSError as exc:
        raise UserError(f"{results_dir}: cannot be listed ({exc.strerror}); give a readable results folder") from None
    records, damaged = [], []
    for folder in folders:
        if not folder.is_symlink() and not (folder.is_dir() and os.path.lexists(folder / RUN_FILE)):
            continue  # another file, or a folder that is no run
        found = read_run_folder(folder)
        if isinstance(found, DamagedRun):
            damaged.append(found)
        elif found is not None:
            records.append(found)
    return records, damaged


def find_records(results_dir: Path, finished_only: bool = True,
                 problems: list[str] | None = None) -> list[RunRecord]:
    """Every usable run record under ``results_dir`` (sorted by id); each damaged one is left out, and
    said in ``problems`` when a list is given."""
    records, damaged = find_runs(results_dir)
    if problems is not None:
        problems.extend(found.line() for found in damaged)
    return [record for record in records if record.finished or not finished_only]


def report_problems(problems: list[str], strict: bool, warn: Callable[[str], None],
                    consequence: str = "left out") -> None:
    """Each problem as one warning line saying ``consequence``, or (``strict``) the first as a
    :class:`UserError`."""
    from ..errors import UserError

    if strict and problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"damaged run record: {problems[0]}{more}; repair or remove it, "
                        "(without --strict it is said and passed over)")
    for problem in problems:
        warn(f"damaged run record ({consequence}): {problem}")


def select_records(results_dir: Path, dataset: str | None, drf: int | None, hint: str, *,
                   strict: bool = False, warn: Callable[[str], None] | None = None,
                   note: Callable[[str], None] | None = None) -> list[RunRecord]:
    """The finished records under ``results_dir`` on ``dataset`` at ``drf`` (None = any); none
    at all is a :class:`UserError` whose message ends with ``hint`` (what to run first). Each
    malformed record is said through ``warn`` and skipped; with ``strict`` it is an error. Each run
    counts once (:func:`~petbench.results.duplicates.count_each_run_once`; ``note`` says what was left
    out)."""
    from ..errors import UserError

    if Path(results_dir).exists() and not Path(results_dir).is_dir():
        raise UserError(f"--results {results_dir} is not a folder; give the folder of run records")
    problems: list[str] = []
    records = find_records(results_dir, problems=problems)
    report_problems(problems, strict, warn or warn_line)
    if not records:
        raise UserError(f"no finished runs under {results_dir}; {hint}")
    if dataset is not None:
        records = [r for r in records if r.dataset == dataset]
    if drf is not None:
        records = [r for r in records if r.data["protocol"]["drf"] == drf]
    if not records:
        raise UserError(f"no finished runs under {results_dir} match --dataset {dataset} --drf {drf}")
    return count_each_run_once(records, note or note_line)


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


def warn_line(text: str) -> None:
    """A warning on stderr, in the CLI's ``warning:`` form."""
    import sys

    print(f"warning: {text}", file=sys.stderr)


def note_line(text: str) -> None:
    """A note on stderr, in the CLI's ``note:`` form."""
    import sys

    print(f"note: {text}", file=sys.stderr)
