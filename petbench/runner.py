"""One run: dataset -> protocol split -> normalised slices -> stages -> evaluation -> record."""
from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
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
from .engine import train
from .engine.selection import Selection
from .engine.trainer import HISTORY_NAME, SYNC_EVERY
from .engine.checkpoint import derive_seed, seed_everything
from .engine.allocator import tune_allocator
from .engine.compile import compile_method
from .engine.intervals import parse_checkpoint_every
from .engine.device import resolve_device, resolve_precision
from .errors import PluginError, PluginRunError, TrainingDiverged, UserError, file_system_error, plugin_code
from .evaluation import predict_volume
from .method import call_stages, validate_stages
from .plugins import PluginHost
from .names import unknown_name_message
from .options import SEED_MAX, check_against_run, constraints_of
from .registry import Entry
from .results.environment import environment
from .results.identity import run_id_for, run_identity
from .results.lock import RunLock
from .results.record import DamagedRun, RunRecord, read_run_folder
from .results.schema import is_safe_name
from .run_data import RunData, checked
from .scoring import EVALUATION_SEED, prediction_path, metric_info, score_record, score_subject, summarise

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
    # how the run is carried out, not what it computes (not part of the identity)
    sync_every: int = SYNC_EVERY  # steps between reads of the losses to the host
    checkpoint_every: str = "epoch"  # "epoch", N steps or a time ("30m"): engine/intervals.py
    predict_batch_size: int = 32  # slices per predict() call in evaluation
    compile: bool = False  # torch.compile the method's modules (petbench.engine.compile); not in the identity


def resolve_preset(preset: str, device: torch.device) -> tuple[str, str]:
    """``auto`` -> ``paper`` on a GPU, ``quick`` elsewhere. Every method has ``paper`` and ``quick``; any
    other name is one of a method's own presets (e.g. a ``reference`` preset), checked when the method
    is built (an unknown name is an error listing the method's presets)."""
    if not isinstance(preset, str) or not preset.strip() or not preset.replace("-", "").replace("_", "").isalnum():
        raise UserError(unknown_name_message("preset", str(preset), list(PRESETS)))
    if preset != "auto":
        return preset, f"preset {preset!r} as requested"
    if device.type == "cuda":
        return "paper", "preset auto -> 'paper' (a GPU is in use)"
    return "quick", "preset auto -> 'quick' (running on the CPU; use --preset paper for the paper's schedule)"


def execute(host: PluginHost, config: RunConfig, results_dir: Path = DEFAULT_RESULTS, *, force: bool = False,
            progress: bool = True, log: Callable[[str], None] = print, wait: bool = False,
            warn: Callable[[str], None] | None = None) -> RunRecord:
    """Train, evaluate and record one run; returns its record. A run that already finished is not
    trained again (unless ``force``): the metrics it lacks are scored from its saved predictions.
    A user's mistake raises :class:`UserError` before anything is written.

    One process at a time writes a run: a second one raises :class:`RunBusy` naming the holder, or
    waits for it with ``wait``.

    An exception from a plugin's code (the method, the dataset or a metric) is raised as a
    :class:`PluginRunError` naming the plugin and its distribution; once the record exists it is
    saved as ``failed`` with that error and a ``failure`` entry (role, plugin, dist, phase,
    traceback)."""
    results_dir = Path(results_dir)
    warn = warn or log
    tune_allocator()  # once per process (grid workers too); see petbench/engine/allocator.py
    device = resolve_device(config.device)
    amp_dtype = resolve_precision(config.precision, device)
    preset, preset_note = resolve_preset(config.preset, device)
    method_entry, dataset_entry = host.methods.entry(config.method), host.datasets.entry(config.dataset)
    metric_names = list(config.metrics or host.metrics.names())
    metrics = [host.metrics.get(name) for name in metric_names]
    metric_entries = {name: host.metrics.entry(name) for name in metric_names}
    check_run_options(config)
    validation_metric = host.metrics.get(config.protocol.val_metric) if config.protocol.n_val else None
    dataset_cls = dataset_entry.load()
    with plugin_code("dataset", dataset_entry, "construction"):
        dataset = dataset_cls(**config.dataset_options)
    if config.protocol.drf not in dataset.drfs:
        raise UserError(f"dataset {dataset.name!r} has no DRF {config.protocol.drf}; "
                        f"valid: {', '.join(map(str, dataset.drfs))}")
    seed_everything(config.seed)
    method_cls = method_entry.load()
    presets = getattr(method_cls, "presets", None) or {}
    if preset not in presets:  # "paper", "quick" or one of the method's own
        raise UserError(f"method {method_entry.name!r}: " + unknown_name_message("preset", preset, sorted(presets)))
    with plugin_code("method", method_entry, "construction"):
        method = method_cls(config.method_options, preset)
        parameters, extras = method.parameter_count(), method_extras(method)
    identity = run_identity(method, method_entry.dist, dataset, dataset_entry.dist, config.protocol.as_dict(),
                            config.seed)
    run_id = run_id_for(identity)
    run_dir = results_dir / run_id
    if not is_safe_name(run_id):  # a plugin's name with "/" or a leading dot must not place a run elsewhere
        raise PluginError(f"method {method.name!r} on dataset {dataset.name!r} gives the run id {run_id[:80]!r}, "
                          f"which is not one folder name; the plugin's registered name must not hold / or "
                          f"start with a dot")
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise UserError(f"{run_dir} is not a folder (a link or a file is where this run's folder goes); remove it "
                        f"and run again")
    if (run_dir / "run.json").is_dir():
        raise UserError(f"{run_dir / 'run.json'} is a folder; remove it and run again")
    has_drf = getattr(dataset, "available_drfs", None)
    with plugin_code("dataset", dataset_entry, "listing subjects"):
        splits = split_subjects(dataset.name, dataset.subject_ids(), config.protocol,
                                (lambda sid: config.protocol.drf in has_drf(sid)) if has_drf else (lambda sid: True))
    data = RunData(dataset, splits, config.protocol, lambda: plugin_code("dataset", dataset_entry, "loading data"))
    with RunLock(results_dir, run_id, wait=wait, on_wait=lambda busy: log(f"{busy}; waiting")):
        found = read_run_folder(run_dir)
        existing = found if isinstance(found, RunRecord) else None
        if isinstance(found, DamagedRun):  # run again: resumed from its checkpoint, its record written anew
            warn(f"warning: damaged run record {found.line()}; the run is resumed and its record rebuilt")
        if existing is not None and existing.finished and not force:
            log(f"run {run_id} is already finished (use --force to run it again)")
            missing = [name for name in metric_names if name not in existing.scored_metrics()]
            if missing:
                score_record(host, existing, missing, device=device, progress=progress, log=log,
                             strict=bool(config.metrics))
            return existing
        # stages() may ask the run context for slice counts: the training data is read then (once)
        run_context = data.context(device, amp_dtype)
        with plugin_code("dataset", dataset_entry, "loading data"):
            check_against_run(f"dataset {dataset.name!r}", dataset.options, constraints_of(dataset), run_context)
            check_against_run(f"method {method.name!r}", method.options, constraints_of(method), run_context)
        with plugin_code("method", method_entry, "stages()"):
            method.nets.to(device)
            stages = call_stages(method, run_context)
        validate_stages(stages, method)
        check_protocol_feeds(method.name, stages, splits)
        compiled = None
        if config.compile:  # after stages(): its optimisers and any copies of modules exist
            with plugin_code("dataset", dataset_entry, "loading data"):
                training = data.training(sorted({source for stage in stages for source in stage.sources}))
            with plugin_code("method", method_entry, "compilation"):
                report = compile_method(method, stages, device, amp_dtype, data=training, run=run_context)
            log(report.line())
            compiled = report.as_dict()
        return train_and_record(host, config, results_dir, run_dir, identity, method, stages, splits, method_entry,
                                dataset, dataset_entry, metrics, metric_entries, parameters, extras, device,
                                amp_dtype, preset, preset_note, force=force, progress=progress, log=log, warn=warn,
                                compiled=compiled, data=data, validation_metric=validation_metric)


def train_and_record(host, config: RunConfig, results_dir: Path, run_dir: Path, identity: dict, method, stages,
                     splits, method_entry: Entry, dataset, dataset_entry: Entry, metrics, metric_entries, parameters,
                     extras, device, amp_dtype, preset, preset_note, *, force, progress, log, warn,
                     compiled: dict | None = None, data: RunData | None = None,
                     validation_metric=None) -> RunRecord:
    run_id = run_dir.name
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    log(preset_note)
    record = RunRecord(run_dir, {
        "run_id": run_id, "status": "running", "started_at": now(), "finished_at": None,
        "identity": identity,
        "config": {"method": method.name, "method_options": method.options, "dataset": dataset.name,
                   "dataset_options": dataset.options, "protocol": config.protocol.as_dict(), "seed": config.seed,
                   "metrics": [m.name for m in metrics], "preset": preset, "preset_requested": config.preset,
                   "device": str(device), "compile": compiled,
                   "precision": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32",
                   "sync_every": config.sync_every, "predict_batch_size": config.predict_batch_size,
                   "checkpoint_every": config.checkpoint_every},
        "method": {"name": method.name, "plugin": method_entry.plugin, "dist": method_entry.dist,
                   "description": method_entry.description, "options": method.options,
                   "source": identity["method"]["source"], "parameters": parameters,
                   "preset_differences": preset_differences(method, preset), **extras},
        "dataset": {"name": dataset.name, "plugin": dataset_entry.plugin, "dist": dataset_entry.dist,
                    "options": dataset.options, "units": dataset.units,
                    "normalization": dataset.normalization.describe()},
        "protocol": config.protocol.as_dict(),
        "splits": splits.as_dict(),
        "metrics": {m.name: metric_info(m, metric_entries[m.name]) for m in metrics},
        "environment": environment(device, [method_entry.dist, dataset_entry.dist]),
        "provenance": {"kind": "trained"},
        "summary": {}, "timings": {}, "error": None,
    })
    previous = RunRecord.load(run_dir)
    if previous is not None and previous.data.get("timings"):  # resuming: keep what is known of the earlier try
        record.data["started_at"] = previous.data.get("started_at", record.data["started_at"])
    record.save()
    started = time.perf_counter()
    try:
        run_body(record, method, stages, dataset, splits, metrics, config, device, amp_dtype, results_dir,
                 progress, log, warn=warn,
                 entries={"method": {method.name: method_entry}, "dataset": {dataset.name: dataset_entry},
                          "metric": metric_entries},
                 data=data, validation_metric=validation_metric, host=host)
    except UserError:
        forget_unstarted(record)  # a user's mistake leaves no record behind
        raise
    except BaseException as exc:
        disk = file_system_error(exc)  # a full disk: resumable once there is space, never "failed"
        record.data["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) or disk else "failed"
        record.data["error"] = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, PluginRunError):
            record.data["error"] = exc.line()
            record.data["failure"] = exc.as_dict()
        record.data["finished_at"] = now()
        try:
            record.save()
        except OSError:  # the disk is still full: a "running" record whose lock is free reads as interrupted
            if disk is None:
                raise
        notify(host, record, log)
        if disk is not None:
            raise disk from None
        raise
    record.data["timings"]["total_s"] = round(time.perf_counter() - started, 3)
    record.data["status"] = "finished"
    record.data["finished_at"] = now()
    record.save()
    notify(host, record, log)
    return record


#: Upper bounds of the protocol's counts: far beyond any dataset, low enough that a typo is caught.
MAX_SUBJECTS = 1_000_000
MAX_DRF = 10_000


def check_run_options(config: RunConfig) -> None:
    """Every number of the command line in its range (one ``Error:`` line before any work)."""
    parse_checkpoint_every(config.checkpoint_every)
    protocol = config.protocol
    limits = (("--sync-every", config.sync_every, 1, 10**9), ("--predict-batch-size", config.predict_batch_size, 1, 10**6),
              ("--seed", config.seed, 0, SEED_MAX), ("--split-seed", protocol.split_seed, 0, SEED_MAX),
              ("--drf", protocol.drf, 1, MAX_DRF), ("--n-train", protocol.n_train, 0, MAX_SUBJECTS),
              ("--n-test", protocol.n_test, 1, MAX_SUBJECTS), ("--n-unpaired", protocol.n_unpaired, 0, MAX_SUBJECTS),
              ("--n-val", protocol.n_val, 0, MAX_SUBJECTS), ("--val-every", protocol.val_every, 1, 10**6))
    for name, value, low, high in limits:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise UserError(f"{name} must be an integer in {low}…{high:,}, not {value!r}")
    if protocol.n_train_pool is not None and not (protocol.n_train <= protocol.n_train_pool <= MAX_SUBJECTS):
        raise UserError(f"the paired-train pool ({protocol.n_train_pool}) must hold --n-train ({protocol.n_train})")


def check_protocol_feeds(method_name: str, stages: list, splits) -> None:
    """Every data source a stage draws must have subjects under this protocol (checked before any record)."""
    sources = {source for stage in stages for source in stage.sources}
    if not stages and splits.validation:
        raise UserError(f"method {method_name!r} trains nothing, so there is no epoch to select: "
                        f"--n-val must be 0 for it")
    if stages and not splits.train:
        raise UserError(f"method {method_name!r} trains but --n-train is 0: give it paired training subjects")
    if "unpaired_spet" in sources and not splits.unpaired:
        raise UserError(f"method {method_name!r} trains on unpaired standard-dose subjects but --n-unpaired is 0")


def forget_unstarted(record: RunRecord) -> None:
    """Remove the record of a run that a user error stopped before it trained anything."""
    if not (record.path / "checkpoints").exists():
        shutil.rmtree(record.path, ignore_errors=True)
    else:
        record.data["status"] = "interrupted"
        record.save()


def run_body(record: RunRecord, method, stages, dataset, splits, metrics, config: RunConfig, device, amp_dtype,
             results_dir: Path, progress: bool, log, warn=None, entries: dict[str, dict[str, Entry]] | None = None,
             data: RunData | None = None, validation_metric=None, host: PluginHost | None = None) -> None:
    """The body of a run. ``entries`` (role -> name -> registry entry) says which plugin supplied
    the method, the dataset and each metric, so an exception in their code names that plugin."""
    entries = entries or {}
    warn = warn or log

    def blame(role: str, name: str, phase: str):
        entry = entries.get(role, {}).get(name)
        return plugin_code(role, entry, phase) if entry is not None else nullcontext()

    protocol = config.protocol
    sources = sorted({source for stage in stages for source in stage.sources})
    record.data["method"]["training_sources"] = sources
    record.data["method"]["stages"] = [{"name": s.name, "epochs": s.epochs, "batch_size": s.batch_size,
                                        "steps_per_epoch": s.steps_per_epoch, "sources": list(s.sources)}
                                       for s in stages]
    record.save()

    data = data or RunData(dataset, splits, protocol, lambda: blame("dataset", dataset.name, "loading data"))
    scale = data.scale
    record.data["dataset"]["scale"] = scale

    timings = record.data["timings"]
    if stages:
        selection = None
        if validation_metric is not None:
            selection = Selection(validation_metric.name, validation_metric.higher_is_better, protocol.val_every,
                                  lambda: validation_score(method, data, validation_metric, scale, device, amp_dtype,
                                                           config.predict_batch_size, blame))
        training = data.training(sources)
        started = time.perf_counter()
        fingerprint = {"dataset": dataset.fingerprint(), "protocol": protocol.as_dict(),
                       "splits": record.data["splits"]}
        with blame("method", method.name, "training"):
            reports = train(method, stages, training, seed=config.seed, device=device, amp_dtype=amp_dtype,
                            checkpoint_dir=record.path / "checkpoints", stage_cache_dir=results_dir / ".stages",
                            data_fingerprint=fingerprint, run_id=record.run_id, progress=progress, warn=warn,
                            run=data.context(device, amp_dtype), sync_every=config.sync_every,
                            checkpoint_every=parse_checkpoint_every(config.checkpoint_every),
                            history_path=record.path / HISTORY_NAME, selection=selection,
                            on_epoch=lambda entry: epoch_finished(host, record, entry, log))
        timings["train_s"] = round(time.perf_counter() - started, 3)
        timings["stages"] = [r.__dict__ for r in reports]
        for report in reports:
            if report.reused_from:
                log(f"stage {report.name!r} reused from run {report.reused_from}")
        if selection is not None:
            record.data["validation"] = selection.summary()
            record.save()

    with blame("method", method.name, "fitted_parameters()"):
        fitted = fitted_of(method)
    if fitted:
        record.data["method"]["fitted"] = fitted
    started = time.perf_counter()
    seed_everything(derive_seed(config.seed, EVALUATION_SEED))  # a resumed run predicts from the same RNG state
    rows = []
    kept = {metric.name for metric in metrics}

    def leave_out(metric, exc: PluginRunError) -> None:
        nonlocal rows
        if config.metrics:  # asked for by name: the run fails
            raise exc
        if metric.name not in kept:  # already left out (the next subject was being scored meanwhile)
            return
        # one of "every registered metric": a broken metric plugin must not fail every run
        log(f"{exc.line()}; it is left out of this run")
        metrics.remove(metric)
        kept.discard(metric.name)
        record.data["metrics"].pop(metric.name, None)
        record.data.setdefault("metrics_left_out", {})[metric.name] = exc.as_dict()
        rows = [row for row in rows if row["metric"] != metric.name]

    def score(sid: str, pred: np.ndarray, subject) -> tuple[str, dict, list]:
        """All metrics of one subject in one call, so the work they share per pair (a normalised volume,
        region statistics) is done once; failures are handed back to the main thread."""
        failures = []
        values = score_subject(list(metrics), pred, subject, lambda m: blame("metric", m.name, "scoring"),
                               failed=lambda metric, exc: failures.append((metric, exc)))
        return sid, values, failures

    def collect(future) -> None:
        nonlocal rows
        sid, values, failures = future.result()
        for metric, exc in failures:
            leave_out(metric, exc)
        rows += [{"subject": sid, "metric": name, "value": value} for name, value in values.items() if name in kept]

    # A subject is scored in a second thread while the next one is loaded, predicted and saved: the
    # metrics (numpy, scipy) and the prediction (torch) then use both cores. Results are collected in
    # the subjects' order, so the rows are the same as one after the other.
    with Progress(disable=not progress) as bar, ThreadPoolExecutor(max_workers=1) as scorer:
        pending = None
        for sid in bar.track(splits.test, description="evaluating"):
            with blame("dataset", dataset.name, "loading data"):
                subject = checked(dataset, dataset.load(sid, (protocol.drf,)), protocol.drf)
            with blame("method", method.name, "prediction"):
                pred = predict_volume(method, subject.lpet[protocol.drf], scale, device,
                                      batch_size=config.predict_batch_size, amp_dtype=amp_dtype)
            if not np.all(np.isfinite(pred)):
                raise TrainingDiverged(f"method {method.name!r} predicted non-finite values for subject {sid}")
            if config.save_predictions:
                save_volume(prediction_path(record, sid), pred, subject.affine, dataset.units)
            if pending is not None:
                collect(pending)
            pending = scorer.submit(score, sid, pred, subject)
        if pending is not None:
            collect(pending)
    timings["evaluate_s"] = round(time.perf_counter() - started, 3)
    frame = pd.DataFrame(rows, columns=["subject", "metric", "value"])
    inapplicable = sorted(m.name for m in metrics if m.name not in set(frame["metric"]))
    if inapplicable:  # no test subject has the label maps they need
        record.data["metrics_not_applicable"] = inapplicable
        for name in inapplicable:
            record.data["metrics"].pop(name, None)
    record.write_rows(frame)
    record.data["summary"] = summarise(frame)


def validation_score(method, data: RunData, metric, scale: float, device, amp_dtype, batch_size: int, blame) -> float:
    """The mean of ``metric`` over the validation subjects, predicted from their LPET (the method never
    sees their SPET: the host scores)."""
    values = []
    for subject in data.validation:
        with blame("method", method.name, "prediction"):
            pred = predict_volume(method, subject.lpet[data.protocol.drf], scale, device, batch_size=batch_size,
                                  amp_dtype=amp_dtype)
        scores = score_subject([metric], pred, subject, lambda m: blame("metric", m.name, "scoring"))
        if metric.name in scores:
            values.append(scores[metric.name])
    return float(np.mean(values)) if values else float("nan")


def epoch_finished(host: PluginHost | None, record: RunRecord, entry: dict, log) -> None:
    """Call every plugin's ``epoch_finished``: a logger that raises is named in one line and the run goes on."""
    if host is None:
        return
    arguments = {"record": record, "stage": entry["stage"], "epoch": entry["epoch"],
                 "losses": dict(entry["losses"]), "validation": entry.get("validation")}
    for impl in host.pm.hook.epoch_finished.get_hookimpls():
        try:
            impl.function(**{name: arguments[name] for name in impl.argnames})
        except Exception as exc:
            info = host.infos.get(impl.plugin_name)
            dist = info.dist if info and info.dist else "in-process"
            log(f"plugin {impl.plugin_name!r} ({dist}) failed in epoch_finished: {type(exc).__name__}: {exc}; "
                f"training goes on")


def method_extras(method) -> dict:
    """Optional descriptive attributes a method may declare (e.g. Table II components), and how the
    paper's tables and figures show it (so `compare --table` and `figure` need no installed plugin).
    ``table_places`` is stored as ``{"1": [position, label]}`` (JSON keys are strings)."""
    from .method import places_of, provenance_of

    extras = {}
    for name in ("components", "variant_of", "paper_name"):
        value = getattr(method, name, None)
        if value is not None:
            extras[name] = value
    extras.update(provenance_of(method))
    extras["display_name"] = getattr(method, "display_name", None) or method.name
    places = places_of(method)
    if places:
        extras["table_places"] = {str(table): [position, label] for table, (position, label) in places.items()}
    if getattr(method, "table_reference", False):
        extras["table_reference"] = True
    labels = getattr(method, "figure_labels", None)
    if labels:
        extras["figure_labels"] = {str(table): str(label) for table, label in labels.items()}
    if getattr(method, "efficiency_place", None) is not None:
        extras["efficiency_place"] = method.efficiency_place
    return extras


def fitted_of(method) -> dict:
    """``method.fitted_parameters()`` as plain JSON data (a method written before the hook has none)."""
    import json

    report = getattr(method, "fitted_parameters", None)
    values = report() if callable(report) else {}
    if not isinstance(values, dict):
        raise TypeError(f"fitted_parameters() returned {type(values).__name__}, not a dict")
    return json.loads(json.dumps(values, default=float))


def preset_differences(method, preset: str | None) -> dict:
    """The run's options that differ from ``preset``'s (the method's defaults under that preset):
    ``{key: {"preset": value, "run": value}}``, for the tables' notes."""
    from .options import resolve_options

    presets = getattr(method, "presets", {}) or {}
    if preset not in presets:
        return {}
    base = resolve_options(f"method {method.name!r}", method.defaults, presets, preset, {})
    return {key: {"preset": base.get(key), "run": value} for key, value in method.options.items()
            if key in base and base[key] != value}


def notify(host: PluginHost, record: RunRecord, log) -> None:
    for impl in host.pm.hook.run_finished.get_hookimpls():
        try:
            impl.function(record=record)
        except Exception as exc:  # a logger plugin must not lose the run
            info = host.infos.get(impl.plugin_name)
            dist = info.dist if info and info.dist else "in-process"
            log(f"plugin {impl.plugin_name!r} ({dist}) failed in run_finished: {type(exc).__name__}: {exc}")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")

