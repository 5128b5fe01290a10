"""One run: dataset -> protocol split -> normalised slices -> stages -> evaluation -> record."""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from .data.nifti import save_volume
from .data.protocol import Protocol, split_subjects
from .data.slices import TrainingData, to_slices
from .engine import train
from .engine.checkpoint import seed_everything
from .engine.device import resolve_device, resolve_precision
from .errors import TrainingDiverged, UserError
from .evaluation import predict_volume, score
from .method import SOURCES
from .plugins import PluginHost
from .registry import unknown_name_message
from .results.environment import environment
from .results.record import RunRecord

DEFAULT_RESULTS = Path("petbench-results")
PRESETS = ("auto", "paper", "quick")


@dataclass
class RunConfig:
    """Everything that identifies a run (the device does not change the result's identity)."""

    method: str
    dataset: str
    method_options: dict = field(default_factory=dict)
    dataset_options: dict = field(default_factory=dict)
    protocol: Protocol = field(default_factory=Protocol)
    seed: int = 0
    preset: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    metrics: list[str] | None = None  # None = every registered metric
    save_predictions: bool = True


def resolve_preset(preset: str, device: torch.device) -> tuple[str, str]:
    if preset not in PRESETS:
        raise UserError(unknown_name_message("preset", preset, list(PRESETS)))
    if preset != "auto":
        return preset, f"preset {preset!r} as requested"
    if device.type == "cuda":
        return "paper", "preset auto -> 'paper' (a GPU is in use)"
    return "quick", "preset auto -> 'quick' (running on the CPU; use --preset paper for the paper's schedule)"


def run_id_for(identity: dict) -> str:
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]
    p = identity["protocol"]
    return f"{identity['method']}_{identity['dataset']}_drf{p['drf']}_seed{identity['seed']}_{digest}"


def execute(host: PluginHost, config: RunConfig, results_dir: Path = DEFAULT_RESULTS, *, force: bool = False,
            progress: bool = True, log: Callable[[str], None] = print) -> RunRecord:
    """Train, evaluate and record one run; returns its record (an existing finished one unless
    ``force``). A user's mistake raises :class:`UserError` before anything is written."""
    results_dir = Path(results_dir)
    device = resolve_device(config.device)
    amp_dtype = resolve_precision(config.precision, device)
    preset, preset_note = resolve_preset(config.preset, device)
    method_entry, dataset_entry = host.methods.entry(config.method), host.datasets.entry(config.dataset)
    metric_names = config.metrics or host.metrics.names()
    metrics = [host.metrics.get(name) for name in metric_names]
    dataset = dataset_entry.load()(**config.dataset_options)
    if config.protocol.drf not in dataset.drfs:
        raise UserError(f"dataset {dataset.name!r} has no DRF {config.protocol.drf}; "
                        f"valid: {', '.join(map(str, dataset.drfs))}")
    seed_everything(config.seed)
    method = method_entry.load()(config.method_options, preset)
    identity = {"method": method.name, "method_options": method.options, "dataset": dataset.name,
                "dataset_options": dataset.options, "protocol": config.protocol.as_dict(), "seed": config.seed,
                "metrics": metric_names}
    run_id = run_id_for(identity)
    run_dir = results_dir / run_id
    existing = RunRecord.load(run_dir)
    if existing is not None and existing.finished and not force:
        log(f"run {run_id} is already finished (use --force to run it again)")
        return existing
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    has_drf = getattr(dataset, "available_drfs", None)
    splits = split_subjects(dataset.name, dataset.subject_ids(), config.protocol,
                            (lambda sid: config.protocol.drf in has_drf(sid)) if has_drf else (lambda sid: True))
    log(preset_note)
    record = RunRecord(run_dir, {
        "run_id": run_id, "status": "running", "started_at": now(), "finished_at": None,
        "config": {**identity, "preset": preset, "preset_requested": config.preset, "device": str(device),
                   "precision": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32"},
        "method": {"name": method.name, "plugin": method_entry.plugin, "dist": method_entry.dist,
                   "description": method_entry.description, "options": method.options,
                   "parameters": method.parameter_count(), **method_extras(method)},
        "dataset": {"name": dataset.name, "plugin": dataset_entry.plugin, "dist": dataset_entry.dist,
                    "options": dataset.options, "units": dataset.units,
                    "normalization": dataset.normalization.describe()},
        "protocol": config.protocol.as_dict(),
        "splits": splits.as_dict(),
        "metrics": {m.name: {"higher_is_better": m.higher_is_better, "convention": m.convention, "unit": m.unit,
                             "description": m.description} for m in metrics},
        "environment": environment(device, [method_entry.dist, dataset_entry.dist]),
        "summary": {}, "timings": {}, "error": None,
    })
    record.save()
    started = time.perf_counter()
    try:
        run_body(record, method, dataset, splits, metrics, config, device, amp_dtype, results_dir, progress, log)
    except BaseException as exc:
        record.data["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        record.data["error"] = f"{type(exc).__name__}: {exc}"
        record.data["finished_at"] = now()
        record.save()
        notify(host, record, log)
        raise
    record.data["timings"]["total_s"] = round(time.perf_counter() - started, 3)
    record.data["status"] = "finished"
    record.data["finished_at"] = now()
    record.save()
    notify(host, record, log)
    return record


def run_body(record: RunRecord, method, dataset, splits, metrics, config: RunConfig, device, amp_dtype,
             results_dir: Path, progress: bool, log) -> None:
    protocol = config.protocol
    method.nets.to(device)
    stages = method.stages()
    sources = sorted({source for stage in stages for source in stage.sources})
    record.data["method"]["training_sources"] = sources
    record.data["method"]["stages"] = [{"name": s.name, "epochs": s.epochs, "batch_size": s.batch_size,
                                        "steps_per_epoch": s.steps_per_epoch, "sources": list(s.sources)}
                                       for s in stages]
    record.save()

    dataset.prepare(splits.test + splits.train, (protocol.drf,))
    train_subjects = [dataset.load(sid, (protocol.drf,)) for sid in splits.train]
    if train_subjects:
        scale = dataset.normalization.fit([s.spet for s in train_subjects])
    elif stages:
        raise UserError(f"method {method.name!r} trains but --n-train is 0: give it paired training subjects")
    else:
        scale = 1.0
    record.data["dataset"]["scale"] = scale

    timings = record.data["timings"]
    if stages:
        tensors = {}
        if {"paired", "unpaired_lpet"} & set(sources):
            tensors["lpet"] = torch.cat([to_slices(s.lpet[protocol.drf], scale) for s in train_subjects])
            tensors["spet"] = torch.cat([to_slices(s.spet, scale) for s in train_subjects])
            tensors["lpet_u"] = tensors["lpet"]  # the Stage-I LPET set is the paired-train LPET
        if "unpaired_spet" in sources:
            dataset.prepare(splits.unpaired, ())
            tensors["spet_u"] = torch.cat([to_slices(dataset.load(sid, ()).spet, scale) for sid in splits.unpaired]) \
                if splits.unpaired else torch.empty(0, 1, 1, 1)
        data = TrainingData({k: v for k, v in tensors.items() if any(k in SOURCES[s] for s in sources)})
        del train_subjects
        started = time.perf_counter()
        reports = train(method, stages, data, seed=config.seed, device=device, amp_dtype=amp_dtype,
                        checkpoint_dir=record.path / "checkpoints", stage_cache_dir=results_dir / ".stages",
                        data_fingerprint={"dataset": dataset.fingerprint(), "protocol": protocol.as_dict(),
                                          "splits": record.data["splits"]},
                        run_id=record.run_id, progress=progress)
        timings["train_s"] = round(time.perf_counter() - started, 3)
        timings["stages"] = [r.__dict__ for r in reports]
        for report in reports:
            if report.reused_from:
                log(f"stage {report.name!r} reused from run {report.reused_from}")

    rows = []
    started = time.perf_counter()
    with Progress(disable=not progress) as bar:
        for sid in bar.track(splits.test, description="evaluating"):
            subject = dataset.load(sid, (protocol.drf,))
            pred = predict_volume(method, subject.lpet[protocol.drf], scale, device, amp_dtype=amp_dtype)
            if not np.all(np.isfinite(pred)):
                raise TrainingDiverged(f"method {method.name!r} predicted non-finite values for subject {sid}")
            if config.save_predictions:
                save_volume(record.path / "predictions" / f"{sid}.nii.gz", pred, subject.affine, dataset.units)
            rows += [{"subject": sid, "metric": name, "value": value}
                     for name, value in score(pred, subject.spet, metrics).items()]
    timings["evaluate_s"] = round(time.perf_counter() - started, 3)
    frame = pd.DataFrame(rows, columns=["subject", "metric", "value"])
    record.write_rows(frame)
    record.data["summary"] = {
        name: {"mean": float(group.mean()), "std": float(group.std(ddof=0)), "n": int(group.count())}
        for name, group in frame.groupby("metric", sort=False)["value"]}


def method_extras(method) -> dict:
    """Optional descriptive attributes a method may declare (e.g. Table II components)."""
    extras = {}
    for name in ("components", "variant_of", "paper_name"):
        value = getattr(method, name, None)
        if value is not None:
            extras[name] = value
    return extras


def notify(host: PluginHost, record: RunRecord, log) -> None:
    for impl in host.pm.hook.run_finished.get_hookimpls():
        try:
            impl.function(record=record)
        except Exception as exc:  # a logger plugin must not lose the run
            log(f"plugin {impl.plugin_name!r} failed in run_finished: {type(exc).__name__}: {exc}")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

