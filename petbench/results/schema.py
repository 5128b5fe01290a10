"""The schema of every file petbench reads back from a results folder: ``run.json``, ``metrics.csv``,
``history.jsonl`` and a grid's state file (pydantic models; see docs/architecture.md for why pydantic).

Everything here judges *content* only and knows no location, so a record that arrives another way (a
bundle merged from another lab) is validated by the same functions:

- :func:`validate_record` (a run.json's parsed content) -> a model, or :class:`Damaged` with the reason;
- :func:`record_problem` the same as one line or None;
- :func:`metrics_problem` (a metrics file's bytes against its record: columns, numbers, the test
  split's subjects, the described metrics, duplicates, non-finite values, the seal);
- :func:`validate_history` (``history.jsonl`` text) and :func:`validate_grid_state` (a grid state);
- :func:`checkpoint_problem` and :func:`stage_file_problem` (a training checkpoint's or a stored stage
  result's top-level layout, as loaded with ``torch.load(weights_only=True)``), one line or None.

Names that become paths (the run id, subject ids in the splits, which name ``predictions/<id>.nii.gz``)
must be one safe path component (:data:`SAFE_NAME`).
"""
from __future__ import annotations

import hashlib
import io
import math
import re
from typing import Annotated, Any, Literal, Union

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from .reading import Damaged, parse_json

#: One path component petbench may build from a name it read: no separator, no control character, no
#: leading dot or dash (and, checked apart, no "..").
SAFE_NAME = r"^[^/\\\x00-\x1f.\-][^/\x00-\x1f]*$"
SAFE = re.compile(SAFE_NAME)
SEED_MAX = 2**32 - 1
STATUSES = ("running", "finished", "failed", "interrupted")
SEAL_MISMATCH = "differs from the file its run.json describes"
#: The columns of ``metrics.csv``, in order.
METRIC_COLUMNS = ("subject", "metric", "value")

RunId = Annotated[str, StringConstraints(pattern=SAFE_NAME, max_length=200)]
SubjectId = Annotated[str, StringConstraints(pattern=SAFE_NAME, max_length=128)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Count = Annotated[int, Field(ge=0, le=10**9)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def is_safe_name(name: Any, max_length: int = 200) -> bool:
    """Whether ``name`` can be one path component petbench builds (see :data:`SAFE_NAME`)."""
    return isinstance(name, str) and len(name) <= max_length and SAFE.match(name) is not None and ".." not in name


class Open(BaseModel):
    """Strict types for the fields petbench reads; other fields are kept as they are."""

    model_config = ConfigDict(strict=True, extra="allow")


class MetricInfo(Open):
    higher_is_better: bool
    unit: str | None = None
    convention: str | None = None


class MethodInfo(Open):
    name: Name
    options: dict[str, Any] = {}
    parameters: Count | None = None
    components: dict[str, bool] | None = None
    display_name: str | None = None
    table_places: dict[str, list[Union[int, float, str]]] | None = None
    figure_labels: dict[str, str] | None = None
    efficiency_place: Union[int, float, None] = None


class DatasetInfo(Open):
    name: Name
    options: dict[str, Any] = {}
    units: str | None = None


class ProtocolInfo(Open):
    drf: Annotated[int, Field(ge=1)]
    n_train: Count | None = None
    n_test: Count | None = None
    n_unpaired: Count | None = None
    split_seed: Annotated[int, Field(ge=0, le=SEED_MAX)] | None = None
    n_train_pool: Count | None = None
    n_val: Count | None = None


class ConfigInfo(Open):
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)]


class Splits(Open):
    train: list[SubjectId] = []
    test: list[SubjectId]
    unpaired: list[SubjectId] = []
    validation: list[SubjectId] = []


class Timings(Open):
    stages: list[dict[str, Any]] = []


class MetricsSeal(Open):
    """What run.json says of its metrics file, so a file changed afterwards is found."""

    rows: Count
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class FinishedRecord(Open):
    run_id: RunId | None = None
    status: Literal["finished"]
    method: MethodInfo
    dataset: DatasetInfo
    protocol: ProtocolInfo
    config: ConfigInfo
    splits: Splits
    metrics: dict[Name, MetricInfo]
    summary: dict[str, Any] = {}
    timings: Timings = Timings()
    finished_at: str | None = None
    metrics_not_applicable: list[str] = []
    metrics_file: MetricsSeal | None = None


class UnfinishedRecord(Open):
    run_id: RunId | None = None
    status: Literal["running", "failed", "interrupted"]


def first_error(exc: ValidationError) -> str:
    """A pydantic error as one line: where, what is wrong, what was there."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "the file"
    if not where.isprintable() or len(where) > 80:  # a key read from the file: never a line break in the message
        where = ascii(where[:80])
    given = error.get("input")
    shown = repr(given) if not isinstance(given, (dict, list)) else type(given).__name__
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if error["type"] == "missing":
        return f"{where} is missing{more}"
    return f"{where}: {error['msg'][0].lower()}{error['msg'][1:]}, not {shown}{more}"


# -- run.json --------------------------------------------------------------------------------------------
def validate_record(data: Any) -> FinishedRecord | UnfinishedRecord:
    """The parsed content of a run.json as its model; :class:`Damaged` (one line) when it does not fit."""
    if not isinstance(data, dict):
        raise Damaged(f"a JSON {type(data).__name__}, not a run record (an object)")
    status = data.get("status")
    if status not in STATUSES:
        raise Damaged(f"status is {str(status)[:40]!r}, not one of {', '.join(STATUSES)}")
    model = FinishedRecord if status == "finished" else UnfinishedRecord
    try:
        record = model.model_validate(data)
    except ValidationError as exc:
        raise Damaged(first_error(exc)) from None
    if isinstance(record, FinishedRecord):
        problem = finished_problem(record)
        if problem:
            raise Damaged(problem)
    return record


def finished_problem(record: FinishedRecord) -> str | None:
    splits = record.splits
    named = [("train", splits.train), ("test", splits.test), ("unpaired", splits.unpaired),
             ("validation", splits.validation)]
    seen: dict[str, str] = {}
    for split, ids in named:
        for sid in ids:
            if ".." in sid:
                return f"splits.{split}: subject id {sid!r} is not a safe name"
            if sid in seen:
                return f"subject {sid} is in splits.{seen[sid]} and splits.{split} (or twice)"
            seen[sid] = split
    if not splits.test:
        return "splits.test is empty: a finished run has test subjects"
    if record.run_id is not None and ".." in record.run_id:
        return f"run_id {record.run_id!r} is not a safe name"
    return None


def record_problem(data: Any) -> str | None:
    """What makes ``data`` (a run.json's content) unusable, as one line, or None."""
    try:
        validate_record(data)
    except Damaged as exc:
        return str(exc)
    return None


def parse_record(text: str) -> FinishedRecord | UnfinishedRecord:
    """A run.json's text, parsed (bounded nesting) and validated; :class:`Damaged` otherwise."""
    return validate_record(parse_json(text))


# -- metrics.csv -----------------------------------------------------------------------------------------
def seal(text: bytes) -> dict:
    """What run.json keeps of its metrics file (:class:`MetricsSeal`)."""
    rows = max(0, text.count(b"\n") - 1)
    return {"rows": rows, "sha256": hashlib.sha256(text).hexdigest()}


def parse_metrics(text: bytes) -> pd.DataFrame:
    """The rows of a metrics file: subject (text), metric (text), value (a float; NaN for an empty cell
    or ``nan``); :class:`Damaged` when it is not such a table."""
    if not text.strip():
        raise Damaged("empty")
    try:
        rows = pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False, encoding="utf-8")
    except Exception as exc:  # random bytes: UnicodeDecodeError, ParserError, ...
        message = str(exc).splitlines()[0] if str(exc) else ""
        raise Damaged(f"unreadable ({type(exc).__name__}: {message[:120]})") from None
    missing = [c for c in METRIC_COLUMNS if c not in rows.columns]
    if missing:
        raise Damaged(f"has no column {missing[0]!r} (columns: {', '.join(map(str, rows.columns))[:80] or 'none'})")
    if rows.empty:
        raise Damaged("has no rows")
    text_values = rows["value"].str.strip()
    nan_words = text_values.str.lower().isin(["", "nan"])
    values = pd.to_numeric(text_values.where(~nan_words, "nan"), errors="coerce")
    bad = rows[values.isna() & ~nan_words]
    if len(bad):
        first = bad.iloc[0]
        raise Damaged(f"{len(bad)} value(s) are not numbers (first: {first['metric']} of subject "
                      f"{first['subject']}: {str(first['value'])[:40]!r})")
    return pd.DataFrame({"subject": rows["subject"].astype(str), "metric": rows["metric"].astype(str),
                         "value": values.astype(float)})


def metrics_problem(text: bytes, data: dict) -> str | None:
    """What is wrong with a metrics file (its bytes) as the metrics of the finished record ``data``
    (already valid, see :func:`validate_record`), as one line, or None: it must parse, have only
    described metrics, only test subjects, every test subject, no row twice, no ±inf (NaN is a
    metric that does not apply to a subject or a degenerate reference, docs/metrics.md), and match
    the seal run.json keeps of it."""
    try:
        rows = parse_metrics(text)
    except Damaged as exc:
        return str(exc)
    described = set(data.get("metrics", {}))
    undescribed = sorted(set(rows["metric"]) - described)
    if undescribed:
        return f"metric {undescribed[0][:40]!r} is not described in run.json"
    test = list(data["splits"]["test"])
    outside = sorted(set(rows["subject"]) - set(test))
    if outside:
        return f"subject {outside[0][:40]!r} is not in the record's test split ({len(outside)} such)"
    absent = [sid for sid in test if sid not in set(rows["subject"])]
    if absent:
        return f"test subject {absent[0]} has no rows ({len(absent)} of {len(test)} missing)"
    duplicated = rows.duplicated(["subject", "metric"])
    if duplicated.any():
        first = rows[duplicated].iloc[0]
        return f"subject {first['subject']} has metric {first['metric']} twice"
    # +inf is the best value of an unbounded higher-is-better metric (the PSNR of an exact prediction,
    # docs/metrics.md); any other infinity is damage
    best_unbounded = {name for name, info in data["metrics"].items() if info.get("higher_is_better") is True}
    infinite = rows[rows["value"].map(math.isinf) & ~((rows["value"] > 0) & rows["metric"].isin(best_unbounded))]
    if len(infinite):
        first = infinite.iloc[0]
        return f"{first['metric']} of subject {first['subject']} is {first['value']}, not a finite number"
    stored = data.get("metrics_file")
    if stored is not None and seal(text)["sha256"] != stored["sha256"]:
        return SEAL_MISMATCH + " (changed after the run, or a copy of another run's)"
    return None


# -- history.jsonl ------------------------------------------------------------------------------------------
class HistoryEntry(Open):
    stage: Name
    epoch: Annotated[int, Field(ge=0)]
    losses: dict[str, Union[float, None]] = {}
    validation: dict[str, Union[float, None]] | None = None


def validate_history(text: str) -> list[dict]:
    """The entries of a ``history.jsonl`` (one JSON object per line); :class:`Damaged` naming the line."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = parse_json(line)
            if not isinstance(entry, dict):
                raise Damaged(f"a JSON {type(entry).__name__}, not an entry (an object)")
            HistoryEntry.model_validate(entry)
        except Damaged as exc:
            raise Damaged(f"line {number}: {exc}") from None
        except ValidationError as exc:
            raise Damaged(f"line {number}: {first_error(exc)}") from None
        entries.append(entry)
    return entries


# -- a checkpoint and a stored stage result (petbench.engine.trainer) ---------------------------------------
# Tensors and the objects' own state dicts are left to ``load_state_dict`` (inside the trainer's guard);
# these models check the layout the trainer indexes into, so a file that does not fit is named before
# anything of it is applied, never a KeyError or TypeError half-way.
class Closed(BaseModel):
    """Strict types and no other fields: a file only petbench writes."""

    model_config = ConfigDict(strict=True, extra="forbid")


class CheckpointPosition(Closed):
    stage: Count
    epoch: Count
    step: Count = 0


class StageReportFields(Closed):
    """``petbench.engine.trainer.StageReport``'s fields."""

    name: Name
    epochs: Count
    steps: Count
    seconds: Seconds
    reused_from: str | None = None
    final_losses: dict[str, Union[float, None]] | None = None


class StageObjects(Closed):
    optimizers: dict[str, dict[str, Any]]
    schedulers: dict[str, dict[str, Any]]
    state: dict[str, dict[str, Any]]


class RngEntry(Open):
    torch: Any
    numpy: dict[str, Any]
    python: Union[tuple[Any, ...], list[Any]]


class MeterState(Closed):
    """``petbench.engine.losses.LossMeter.state_dict()``: an epoch's loss sums (tensors or floats) so far."""

    epoch: dict[str, Any]
    epoch_counts: dict[str, Count]
    window_first: Count

    @model_validator(mode="after")
    def sums_are_numbers(self):
        for name, value in self.epoch.items():
            if not (type(value) is float or type(value).__name__ == "Tensor"):
                raise ValueError(f"meter.epoch.{ascii(name[:40])} is a {type(value).__name__}, not a loss sum")
        if set(self.epoch) != set(self.epoch_counts):
            raise ValueError("meter.epoch and meter.epoch_counts name different losses")
        return self


class CheckpointLayout(Closed):
    format: int
    position: CheckpointPosition
    meter: MeterState | None = None
    stage_names: list[Name]
    nets: dict[str, Any]
    stages: list[StageObjects]
    scaler: dict[str, Any]
    rng: RngEntry | None = None
    stage_seconds: Seconds
    reports: list[StageReportFields]
    history: list[HistoryEntry] = []
    selection: dict[str, Any] | None = None

    @model_validator(mode="after")
    def consistent(self):
        if (self.position.epoch > 0 or self.position.step > 0) and self.rng is None:
            raise ValueError("rng is missing (a checkpoint inside a stage needs its RNG state)")
        if self.position.step > 0 and self.meter is None:
            raise ValueError("meter is missing (a mid-epoch checkpoint needs the epoch's loss sums)")
        if len(self.stages) != len(self.stage_names):
            raise ValueError(f"{len(self.stages)} stage states for {len(self.stage_names)} stages")
        if self.position.stage > len(self.stage_names) or len(self.reports) > len(self.stage_names):
            raise ValueError(f"position or reports beyond its {len(self.stage_names)} stages")
        return self


class StageFileLayout(Closed):
    format: int
    key: str
    run_id: str = ""
    modules: dict[str, dict[str, Any]]
    report: StageReportFields | None = None
    history: list[HistoryEntry] = []


def layout_problem(model: type[BaseModel], data: Any, what: str) -> str | None:
    if not isinstance(data, dict):
        return f"a {type(data).__name__}, not {what} (a dict)"
    try:
        model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        if error["type"] == "value_error":  # a model's own check: its message says where
            return str(error["ctx"]["error"])
        return first_error(exc)
    return None


def checkpoint_problem(state: Any) -> str | None:
    """What makes a loaded checkpoint's layout unusable, as one line, or None."""
    return layout_problem(CheckpointLayout, state, "a checkpoint")


def stage_file_problem(cached: Any) -> str | None:
    """What makes a loaded stage file's layout unusable, as one line, or None."""
    return layout_problem(StageFileLayout, cached, "a stage result")


# -- a conversion cache's sidecar (udpet, folder) --------------------------------------------------------
class CacheSidecar(Open):
    """What ``petbench.datasets.scanned.cache`` writes beside each cached volume."""

    key: dict[str, Any]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    shape: list[Annotated[int, Field(ge=1, le=100_000)]]
    meta: dict[str, Any] = {}


def cache_sidecar_problem(data: Any) -> str | None:
    """What is wrong with a cache sidecar's content, as one line, or None."""
    try:
        CacheSidecar.model_validate(data)
    except ValidationError as exc:
        return first_error(exc)
    return None


# -- a grid's state file --------------------------------------------------------------------------------------
class CellState(Open):
    run_id: RunId | None = None
    status: Literal["pending", "queued", "running", "finished", "failed", "interrupted"] | None = None
    error: str | None = None
    job_id: Union[str, int, None] = None
    executor: str | None = None
    folder: str | None = None
    updated: str | None = None


class GridStateFile(Open):
    cells: dict[str, CellState] = {}
    grid: dict[str, Any] | None = None
    updated: str | None = None


def validate_grid_state(data: Any) -> dict:
    """A grid state file's parsed content, validated; :class:`Damaged` with the reason otherwise."""
    if not isinstance(data, dict):
        raise Damaged(f"a JSON {type(data).__name__}, not a grid state (an object)")
    try:
        GridStateFile.model_validate(data)
    except ValidationError as exc:
        raise Damaged(first_error(exc)) from None
    return data
