"""Scoring, the cheap step kept apart from training: metrics of predicted test volumes against their
references, for a run that has just trained and for finished runs that lack a metric (``petbench score``).

A finished run is scored from its saved predictions (``predictions/<subject>.nii.gz``); a run saved
without them is predicted again from its final weights (``checkpoints/last.pt``), which needs the method's
plugin. Nothing here trains.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from .data.nifti import load_volume
from .engine.checkpoint import derive_seed, seed_everything
from .engine.device import resolve_precision
from .engine.trainer import load_trained_weights
from .errors import PluginRunError, UserError, plugin_code
from .evaluation import predict_volume
from .metric import NAN, Metric, MetricContext, as_float64, degenerate
from .registry import Entry
from .results.identity import describe, method_identity
from .results.record import RunRecord

#: Evaluation draws its RNG state from (run seed, this constant), so a resumed run predicts as an
#: uninterrupted one would (the stages use 1, 2, ...).
EVALUATION_SEED = 1_000_003
RECORDED_PRECISION = {"bfloat16": "bf16", "float16": "fp16"}  # run.json's names -> --precision's


def metric_info(metric: Metric, entry: Entry | None) -> dict:
    """What a record keeps of a metric: its direction, convention and unit, and who computed it."""
    return {**metric.info(), "plugin": entry.plugin if entry else "", "dist": entry.dist if entry else ""}


def score_subject(metrics: list[Metric], pred: np.ndarray, subject, blame,
                  failed: Callable[[Metric, PluginRunError], None] | None = None) -> dict[str, float]:
    """Every metric that applies to this subject (its label maps), sharing per-pair work between them;
    ``blame(metric)`` is the context manager that attributes a metric's exception to its plugin. With
    ``failed``, a metric that raises is handed to it (with the error) and the others are still scored;
    without, the error propagates."""
    context = MetricContext.from_subject(subject).for_pair()
    pred, ref = as_float64(pred), as_float64(subject.spet)
    bad = degenerate(ref) is not None
    values = {}
    for metric in metrics:
        if not metric.applies(context):
            continue
        try:
            with blame(metric):
                values[metric.name] = NAN if bad else float(metric.score(pred, ref, context))
        except PluginRunError as exc:
            if failed is None:
                raise
            failed(metric, exc)
    return values


def summarise(frame: pd.DataFrame) -> dict:
    return {name: {"mean": float(group.mean()), "std": float(group.std(ddof=0)), "n": int(group.count())}
            for name, group in frame.groupby("metric", sort=False)["value"]}


def score_record(host, record: RunRecord, names: list[str], *, device: torch.device, progress: bool = True,
                 log: Callable[[str], None] = print, strict: bool = False, rebuild: bool = False) -> dict[str, str]:
    """Add the metrics ``names`` to a finished record (its metrics file and run.json, each written
    atomically); returns ``{metric: error}`` for those that raised, which are left out while the
    others are kept. ``strict`` raises the first such error instead. ``rebuild``: the metrics file is
    damaged, so it is written anew from ``names`` alone (its old rows are not read)."""
    entries = {name: host.metrics.entry(name) for name in names}
    metrics = {name: host.metrics.get(name) for name in names}
    data = record.data
    dataset_entry = needed_plugin(host.datasets, data["dataset"]["name"], "dataset", record)
    with plugin_code("dataset", dataset_entry, "construction"):
        dataset = dataset_entry.load()(**data["dataset"].get("options", {}))
    test, drf = list(data["splits"]["test"]), int(data["protocol"]["drf"])
    saved = {sid: prediction_path(record, sid) for sid in test}
    method = None
    if not all(path.exists() for path in saved.values()):
        method = restore_method(host, record, device)
        log(f"run {record.run_id}: no saved predictions; predicting the test subjects again from its final weights")
    with plugin_code("dataset", dataset_entry, "loading data"):
        dataset.prepare(test, (drf,) if method is not None else ())
    seed_everything(derive_seed(int(data["config"].get("seed", 0)), EVALUATION_SEED))
    recorded = data["config"].get("precision", "fp32")  # the runner records "bfloat16", "float16" or "fp32"
    amp_dtype = resolve_precision(RECORDED_PRECISION.get(recorded, recorded), device) \
        if device.type == "cuda" else None
    rows, failed = [], {}
    with Progress(disable=not progress) as bar:
        for sid in bar.track(test, description=f"scoring {record.run_id}"):
            with plugin_code("dataset", dataset_entry, "loading data"):
                subject = dataset.load(sid, (drf,) if method is not None else ())
            if method is not None:
                pred = predict_volume(method, subject.lpet[drf], float(data["dataset"]["scale"]), device,
                                      amp_dtype=amp_dtype)
                if not np.all(np.isfinite(pred)):
                    raise UserError(f"run {record.run_id}: its final weights predict non-finite values for subject "
                                    f"{sid}; the run cannot be scored (run it again with --force)")
            else:
                pred = read_prediction(saved[sid])
            for name in list(metrics):
                try:
                    values = score_subject([metrics[name]], pred, subject,
                                           lambda m: plugin_code("metric", entries[m.name], "scoring"))
                except PluginRunError as exc:
                    if strict:
                        raise
                    failed[name] = exc.line()
                    log(f"{exc.line()}; it is not added to run {record.run_id}")
                    del metrics[name]
                    continue
                rows += [{"subject": sid, "metric": n, "value": v} for n, v in values.items()]
    added = [name for name in names if name not in failed]
    if not added:
        return failed
    scored = {row["metric"] for row in rows}
    inapplicable = [name for name in added if name not in scored]  # no subject has the labels it needs
    added = [name for name in added if name in scored]
    if inapplicable:
        data["metrics_not_applicable"] = sorted(set(data.get("metrics_not_applicable", [])) | set(inapplicable))
    if not added:
        record.save()
        return failed
    new = pd.DataFrame([row for row in rows if row["metric"] in added], columns=["subject", "metric", "value"])
    old = record.rows() if not rebuild else new.iloc[0:0]
    frame = pd.concat([old[~old["metric"].isin(added)], new], ignore_index=True)
    record.write_rows(frame)  # first the rows, then run.json: a crash in between leaves the metric to score again
    for name in added:
        data.setdefault("metrics", {})[name] = metric_info(metrics[name], entries[name])
    data["summary"] = {**data.get("summary", {}), **summarise(new)}
    data.setdefault("scored", []).append({"metrics": added, "from": "predictions" if method is None else "weights"})
    record.save()
    log(f"run {record.run_id}: added {', '.join(added)}")
    return failed


def prediction_path(record: RunRecord, subject_id: str) -> Path:
    """``<run>/predictions/<subject>.nii.gz`` for a subject id that is one safe name (a record's split
    is validated, so this holds for every record read; checked again because it becomes a path)."""
    from .results.schema import is_safe_name

    if not is_safe_name(subject_id, 128):
        raise UserError(f"run {record.run_id}: subject id {str(subject_id)[:60]!r} is not a safe name; the record "
                        f"is damaged")
    return record.path / "predictions" / f"{subject_id}.nii.gz"


def needed_plugin(registry, name: str, role: str, record: RunRecord) -> Entry:
    if name not in registry:
        raise UserError(f"run {record.run_id} needs the {role} {name!r} to be scored, and no installed plugin "
                        f"provides it; install its plugin (see `petbench plugins`)")
    return registry.entry(name)


def restore_method(host, record: RunRecord, device: torch.device):
    data = record.data
    entry = needed_plugin(host.methods, data["method"]["name"], "method", record)
    with plugin_code("method", entry, "construction"):
        method = entry.load()(data["method"].get("options", {}), None)
    trained_by = data.get("identity", {}).get("method", {})
    installed = method_identity(method, entry.dist)
    if trained_by and (trained_by.get("dist"), trained_by.get("source")) != (installed["dist"], installed["source"]):
        raise UserError(f"run {record.run_id} was trained by {describe(data['identity'])} but "
                        f"{describe({'method': installed})} is installed, and the run has no saved predictions; "
                        f"install the version that trained it to score it")
    method.nets.to(device)
    load_trained_weights(method, record.path / "checkpoints", device)
    return method


def read_prediction(path: Path) -> np.ndarray:
    try:
        volume, _affine = load_volume(path)
    except Exception as exc:
        raise UserError(f"prediction {path} cannot be read ({type(exc).__name__}: {exc}); "
                        f"remove it and score again to predict from the final weights") from None
    volume = np.asarray(volume, dtype=np.float32)
    if not np.all(np.isfinite(volume)):
        raise UserError(f"prediction {path} holds non-finite values (NaN or Inf), so it cannot be scored; a "
                        f"method that predicts them fails its run: run it again with --force")
    return volume
