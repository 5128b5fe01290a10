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
from typing import Callable

import pandas as pd

from ..atomic import atomic_write_json, atomic_write_text
from .duplicates import count_each_run_once

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

    def scored_metrics(self) -> set[str]:
        """Metrics this finished run has: described in run.json and present in its metrics file."""
        described = set(self.data.get("metrics", {}))
        inapplicable = set(self.data.get("metrics_not_applicable", []))  # tried: no subject has its labels
        try:
            return (described & set(self.rows()["metric"].astype(str))) | inapplicable
        except (OSError, ValueError, KeyError):
            return inapplicable

    def rows(self) -> pd.DataFrame:
        """Per-subject metric rows: subject, metric, value."""
        return pd.read_csv(self.path / METRICS_FILE, dtype={"subject": str})

    # -- writing -------------------------------------------------------------------------
    def save(self) -> None:
        atomic_write_json(self.path / RUN_FILE, self.data)

    def write_rows(self, rows: pd.DataFrame) -> None:
        atomic_write_text(self.path / METRICS_FILE, rows.to_csv(index=False))


# -- checking what was read -------------------------------------------------------------------
STATUSES = ("running", "finished", "failed", "interrupted")


def read_record(path: Path) -> tuple[RunRecord | None, str | None]:
    """``(record, None)`` for a usable record (a finished one is checked in full, see
    :func:`record_problem`), ``(None, None)`` when ``path`` holds no ``run.json``, and
    ``(None, problem)`` for an unreadable or malformed one: ``problem`` is one line naming the file."""
    path = Path(path)
    run_file = path / RUN_FILE
    try:
        text = run_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{run_file}: unreadable ({type(exc).__name__}: {exc})"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"{run_file}: " + ("empty" if not text.strip() else f"not valid JSON, truncated? ({exc})")
    if not isinstance(data, dict):
        return None, f"{run_file}: a JSON {type(data).__name__}, not a run record (an object)"
    record = RunRecord(path, data)
    problem = record_problem(record)
    return (None, problem) if problem else (record, None)


def record_problem(record: RunRecord) -> str | None:
    """What makes ``record`` unusable, as one line naming its file, or None. A record that is not
    finished needs a known status only; a finished one every field that tables and figures read,
    and a metrics file of numbers for the metrics it describes."""
    where = record.path / RUN_FILE
    try:
        problem = structure_problem(record.data)
        if problem is None and record.data["status"] == "finished":
            problem = rows_problem(record)
            where = record.path / METRICS_FILE if problem else where
    except Exception as exc:  # a check must never be the traceback it guards against
        problem = f"cannot be checked ({type(exc).__name__}: {exc})"
    return f"{where}: {problem}" if problem else None


def expect_type(data: dict, key: str, kind, what: str, required: bool = True) -> str | None:
    if key not in data:
        return f"{what} is missing" if required else None
    value, kinds = data[key], kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):  # True is an int
        return f"{what} is {shorten(value)}, not {kind_name(kinds)}"
    return None


def kind_name(kinds: tuple) -> str:
    names = {dict: "an object", str: "a string", int: "an integer", bool: "true/false", list: "a list",
             float: "a number", type(None): "null"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def shorten(value, width: int = 40) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[:width - 1] + "…"


def structure_problem(data: dict) -> str | None:
    status = data.get("status")
    if status not in STATUSES:
        return f"status is {shorten(status)}, not one of {', '.join(STATUSES)}"
    checks = [(data, "run_id", str, "run_id", False)]
    if status == "finished":
        checks += [(data, "method", dict, "method", True), (data, "dataset", dict, "dataset", True),
                   (data, "protocol", dict, "protocol", True), (data, "config", dict, "config", True),
                   (data, "metrics", dict, "metrics", True), (data, "summary", dict, "summary", False),
                   (data, "timings", dict, "timings", False), (data, "finished_at", (str, type(None)), "finished_at", False)]
    for where, key, kind, what, required in checks:
        problem = expect_type(where, key, kind, what, required)
        if problem:
            return problem
    if status != "finished":
        return None
    method, dataset, protocol, config = data["method"], data["dataset"], data["protocol"], data["config"]
    nested = [(method, "name", str, "method.name", True), (method, "options", dict, "method.options", False),
              (method, "parameters", (int, type(None)), "method.parameters", False),
              (method, "components", (dict, type(None)), "method.components", False),
              (dataset, "name", str, "dataset.name", True), (dataset, "options", dict, "dataset.options", False),
              (protocol, "drf", int, "protocol.drf", True), (config, "seed", int, "config.seed", True)]
    for where, key, kind, what, required in nested:
        problem = expect_type(where, key, kind, what, required)
        if problem:
            return problem
    for key in ("n_train", "n_test", "n_unpaired", "split_seed"):
        problem = expect_type(protocol, key, int, f"protocol.{key}", False)
        if problem:
            return problem
    if not method["name"] or not dataset["name"]:
        return "method.name and dataset.name must not be empty"
    for name, info in data["metrics"].items():
        if not isinstance(info, dict):
            return f"metrics.{name} is {shorten(info)}, not an object"
        problem = expect_type(info, "higher_is_better", bool, f"metrics.{name}.higher_is_better") or \
            expect_type(info, "unit", (str, type(None)), f"metrics.{name}.unit", False) or \
            expect_type(info, "convention", (str, type(None)), f"metrics.{name}.convention", False)
        if problem:
            return problem
    stages = data.get("timings", {}).get("stages", [])
    if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
        return "timings.stages is not a list of objects"
    return None


def rows_problem(record: RunRecord) -> str | None:
    metrics_file = record.path / METRICS_FILE
    if not metrics_file.is_file():
        return "missing (the record says finished)"
    try:
        rows = record.rows()
    except pd.errors.EmptyDataError:
        return "empty"
    except Exception as exc:  # random bytes raise UnicodeDecodeError, ParserError, ...
        return f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    missing = [c for c in ("subject", "metric", "value") if c not in rows.columns]
    if missing:
        return f"has no column {missing[0]!r} (columns: {', '.join(map(str, rows.columns)) or 'none'})"
    if rows.empty:
        return "has no rows"
    # NaN is a metric that does not apply to a subject (written as an empty cell or "nan"); text is damage
    values = pd.to_numeric(rows["value"], errors="coerce")
    bad = rows[values.isna() & ~rows["value"].isna() & ~rows["value"].astype(str).str.lower().isin(["nan"])]
    if len(bad):
        first = bad.iloc[0]
        return (f"{len(bad)} value(s) are not numbers (first: {first['metric']} of subject "
                f"{first['subject']}: {str(first['value'])!r})")
    undescribed = sorted(set(map(str, rows["metric"])) - set(record.data["metrics"]))
    if undescribed:
        return f"metric {undescribed[0]!r} is not described in {RUN_FILE}"
    duplicated = rows.duplicated(["subject", "metric"])
    if duplicated.any():
        first = rows[duplicated].iloc[0]
        return f"subject {first['subject']} has metric {first['metric']} twice"
    return None


def find_records(results_dir: Path, finished_only: bool = True,
                 problems: list[str] | None = None) -> list[RunRecord]:
    """Every usable run record under ``results_dir`` (sorted by id); each unreadable or malformed
    one is left out, and said in ``problems`` when a list is given."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return []
    records = []
    for run_file in sorted(results_dir.glob(f"*/{RUN_FILE}")):
        record, problem = read_record(run_file.parent)
        if problem is not None and problems is not None:
            problems.append(problem)
        if record is not None and (record.finished or not finished_only):
            records.append(record)
    return records


def report_problems(problems: list[str], strict: bool, warn: Callable[[str], None],
                    consequence: str = "left out") -> None:
    """Each problem as one warning line saying ``consequence``, or (``strict``) the first as a
    :class:`UserError`."""
    from ..errors import UserError

    if strict and problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"malformed run record: {problems[0]}{more}; repair or remove it, "
                        "(without --strict it is said and passed over)")
    for problem in problems:
        warn(f"malformed run record ({consequence}): {problem}")


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
