"""Conformance checks: does a registered method, dataset or metric behave as petbench needs?

One call per thing, by its registered name::

    check_method("s3pet")                       # raises ConformanceError listing what failed
    check_method("my-method", options={"width": 4}, plugin=my_plugin_module)
    check_dataset("phantom", options={"n_subjects": 3})
    check_metric("psnr")

A plugin's test suite checks everything it registers with one line::

    test_conformance = conformance_tests(my_plugin_module)

``petbench check NAME`` runs the same checks from the command line (:func:`conformance_report`
returns the report without raising).

**The method check** is what ``petbench run`` does, made small: it instantiates the method from the
registry with the ``quick`` preset plus its ``test_options`` (a class attribute: tiny widths, one
epoch, a few steps; the caller's ``options`` override them), seeds as the runner does, trains it
with the host's engine on tiny data built from :class:`~petbench.testing.TinyDataset` (all three
data sources), every stage capped at ``max_epochs`` epochs of ``max_steps`` steps, then predicts a
held-out subject through the host's evaluation path. It checks the output (shape, float32, device,
finite, non-negative), that a prediction does not depend on which slices share its batch, that a
second training with the same seed gives the same predictions, that ``nets``' state dict saved
and loaded into a fresh instance gives the same predictions, and that ``predict`` is only ever
handed the held-out low-dose slices (never a standard-dose slice) and does not change them.
"""
from __future__ import annotations

import io
import json
import math
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from ..data.normalization import Normalization
from ..data.protocol import Protocol, split_subjects
from ..data.slices import TrainingData, to_slices
from ..data.subject import Subject
from ..dataset import Dataset
from ..engine import train
from ..threads import one_thread
from ..engine.checkpoint import seed_everything
from ..engine.device import resolve_device
from ..errors import PluginError, UserError
from ..evaluation import predict_volume
from ..method import Method, RunContext, Stage, call_stages, validate_stages
from ..metric import Metric
from ..options import resolve_options
from ..plugins import PluginHost, get_host
from ..registry import Entry, Registry, validate_target
from .toys import TinyDataset, isolated_host

KINDS = ("method", "dataset", "metric")

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


# -- reports ----------------------------------------------------------------------------------
@dataclass
class CheckResult:
    """One check: its name, ``passed``/``failed``/``skipped`` and what it found."""

    name: str
    status: str
    detail: str = ""


@dataclass
class Report:
    """Every check run on one method, dataset or metric."""

    kind: str
    name: str
    plugin: str
    dist: str
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == FAILED]

    def title(self) -> str:
        return f"{self.kind} {self.name!r} from plugin {self.plugin!r} ({self.dist or 'in-process'})"

    def text(self) -> str:
        marks = {PASSED: "ok  ", FAILED: "FAIL", SKIPPED: "skip"}
        lines = [self.title()]
        lines += [f"  {marks[r.status]} {r.name}" + (f": {r.detail}" if r.detail else "") for r in self.results]
        failed = len(self.failures)
        lines.append(f"  {failed} of {len(self.results)} checks failed" if failed
                     else f"  all {len(self.results)} checks passed ({self.seconds:.1f} s)")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "plugin": self.plugin, "dist": self.dist, "ok": self.ok,
                "seconds": round(self.seconds, 3), "results": [r.__dict__ for r in self.results]}


class ConformanceError(AssertionError):
    """Raised by the ``check_*`` functions when a check fails; ``report`` has every result."""

    def __init__(self, report: Report):
        self.report = report
        super().__init__("\n" + report.text())


class CheckFailed(Exception):
    """Raised inside a check with the reason it failed (any other exception fails it too)."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Checks:
    """Runs checks in order; a failed *required* check skips everything after it."""

    def __init__(self, report: Report):
        self.report = report
        self.blocked: str | None = None

    def run(self, name: str, fn: Callable[[], str | None], *, required: bool = False, needs: bool = True) -> bool:
        """Run ``fn``; ``needs=False`` skips it (its precondition failed). Returns whether it passed."""
        if self.blocked is not None or not needs:
            reason = f"needs {self.blocked!r}" if self.blocked is not None else "an earlier check it needs failed"
            self.report.results.append(CheckResult(name, SKIPPED, reason))
            return False
        try:
            detail = fn()
        except CheckFailed as exc:
            self.report.results.append(CheckResult(name, FAILED, str(exc)))
        except Exception as exc:
            self.report.results.append(CheckResult(name, FAILED, describe_exception(exc)))
        else:
            self.report.results.append(CheckResult(name, PASSED, detail or ""))
            return True
        if required:
            self.blocked = name
        return False


def describe_exception(exc: BaseException) -> str:
    """``Type: message (at file:line in function)``, the innermost frame outside torch/numpy."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if not any(part in f.filename for part in ("/torch/", "/numpy/", "/pluggy/"))]
    where = f" (at {Path(own[-1].filename).name}:{own[-1].lineno} in {own[-1].name})" if own else ""
    return f"{type(exc).__name__}: {exc}{where}"


# -- finding what to check ---------------------------------------------------------------------
def _host_for(host: PluginHost | None, plugin: object | None) -> PluginHost:
    if host is not None:
        return host
    if plugin is not None and not isinstance(plugin, str):
        return isolated_host(plugin)
    return get_host()


def _resolve(kind: str, target: Any, host: PluginHost | None, plugin: object | None) -> tuple[Entry, PluginHost]:
    """The registry entry of ``target`` (a name, or the class / Metric itself)."""
    if not isinstance(target, str):
        name = getattr(target, "name", None) or getattr(target, "__name__", repr(target))
        return Entry(name=name, target=target, plugin="(given directly)", dist="", kind=kind), host
    host = _host_for(host, plugin)
    entry = _registry(host, kind).entry(target)
    if isinstance(plugin, str) and entry.plugin != plugin:
        raise UserError(f"{kind} {target!r} is registered by plugin {entry.plugin!r}, not {plugin!r}")
    return entry, host


def _check_given_options(entry: Entry, kind: str, options: Mapping[str, Any] | None) -> None:
    """Options the caller gave that the method or dataset does not have are the caller's mistake
    (a :class:`UserError`), not a failed check."""
    if not options:
        return
    try:
        cls = entry.load()
        defaults = dict(cls.defaults)
    except Exception:
        return  # the "registered" check reports it
    resolve_options(f"{kind} {entry.name!r}", defaults, {}, None, options)


def _registry(host: PluginHost, kind: str) -> Registry:
    return {"method": host.methods, "dataset": host.datasets, "metric": host.metrics}[kind]


def registered_names(kind: str, plugin: object) -> list[str]:
    """The names of the ``kind`` (method, dataset or metric) entries a plugin registers.

    ``plugin`` is a plugin object (the module with your ``@hookimpl`` functions), loaded into an
    isolated host, or the name of an installed plugin (its ``petbench`` entry-point name). A
    plugin that fails to load or register raises :class:`PluginError`, so a test parametrised
    over these names cannot pass vacuously.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if isinstance(plugin, str):
        host, plugin_name = get_host(), plugin
        if plugin_name not in host.infos and not any(f.name == plugin_name for f in host.failures):
            raise PluginError(f"no plugin named {plugin_name!r} is installed; installed: {', '.join(host.infos)}")
    else:
        host = isolated_host(plugin)
        plugin_name = getattr(plugin, "__name__", "test-plugin-0")
    registry = _registry(host, kind)  # builds every registry: registration failures are known after this
    failures = [f for f in host.failures if f.name == plugin_name]
    if failures:
        raise PluginError(failures[0].line())
    return [entry.name for entry in registry if entry.plugin == plugin_name]


# -- methods ----------------------------------------------------------------------------------
@dataclass
class TinyRun:
    """Tiny data for a method check, split and normalised as the runner does it."""

    data: TrainingData
    test: list[Subject]
    scale: float
    drf: int
    spet_slices: set[bytes]  # every standard-dose slice (train, test and unpaired), normalised

    @classmethod
    def build(cls, size: int, depth: int, drf: int = 4, seed: int = 0) -> "TinyRun":
        dataset = TinyDataset(n_subjects=5, size=size, depth=depth, seed=seed)
        protocol = Protocol(n_train=2, n_test=1, n_unpaired=2, drf=drf)
        splits = split_subjects(dataset.name, dataset.subject_ids(), protocol)
        train_subjects = [dataset.load(sid, (drf,)) for sid in splits.train]
        scale = dataset.normalization.fit([s.spet for s in train_subjects])
        lpet = torch.cat([to_slices(s.lpet[drf], scale) for s in train_subjects])
        tensors = {"lpet": lpet, "spet": torch.cat([to_slices(s.spet, scale) for s in train_subjects]),
                   "lpet_u": lpet,  # as in the runner: the Stage-I LPET set is the paired-train LPET
                   "spet_u": torch.cat([to_slices(dataset.load(sid, ()).spet, scale) for sid in splits.unpaired])}
        test = [dataset.load(sid, (drf,)) for sid in splits.test]
        spet = [to_slices(s.spet, scale) for s in train_subjects + test] + [tensors["spet_u"]]
        spet_slices = {_key(x) for volume in spet for x in volume}
        return cls(TrainingData(tensors), test, scale, drf, spet_slices)

    def context(self, device: torch.device) -> RunContext:
        """What a run on this data tells ``stages(run)`` (as :meth:`petbench.run_data.RunData.context`)."""
        return RunContext(dataset=TinyDataset.name, drf=self.drf, device=device,
                          slice_shape=tuple(self.data.tensors["lpet"].shape[-2:]), slice_counts=self.data.count)


def _key(slice_: torch.Tensor) -> bytes:
    return slice_.detach().float().cpu().contiguous().numpy().tobytes()


class PredictGuard:
    """Wraps a method's ``predict`` during evaluation and records what it is handed and returns.

    Only the outermost call is inspected (a ``predict`` may call itself, e.g. for test-time
    augmentation). Every slice handed to it must be one of the held-out subject's normalised
    low-dose slices, none may be a standard-dose slice of any subject, and the input must be
    unchanged after the call.
    """

    def __init__(self, method: Method, allowed: set[bytes], forbidden: set[bytes]):
        self.method, self.allowed, self.forbidden = method, allowed, forbidden
        self.original = method.predict
        self.problems: list[str] = []
        self.output_problems: list[str] = []
        self.calls = 0
        self._depth = 0

    def __call__(self, lpet):
        if self._depth:
            return self.original(lpet)
        self._depth += 1
        try:
            self.calls += 1
            self._check_input(lpet)
            before = lpet.detach().clone() if torch.is_tensor(lpet) else None
            out = self.original(lpet)
            if before is not None and not torch.equal(before, lpet):
                self.problems.append("predict changed its input tensor in place")
            self._check_output(lpet, out)
            return out
        finally:
            self._depth -= 1

    def _check_input(self, lpet) -> None:
        if not torch.is_tensor(lpet) or lpet.ndim != 4 or lpet.shape[1] != 1:
            self.problems.append(f"predict was handed {type(lpet).__name__} {tuple(getattr(lpet, 'shape', ()))}, "
                                 f"not [B, 1, H, W] slices")
            return
        keys = [_key(slice_) for slice_ in lpet]
        if any(key in self.forbidden for key in keys):
            self.problems.append("predict was handed a standard-dose slice")
        elif any(key not in self.allowed for key in keys):
            self.problems.append("predict was handed a slice that is not one of the test subject's LPET slices")

    def _check_output(self, lpet, out) -> None:
        if not torch.is_tensor(out):
            self.output_problems.append(f"predict returned {type(out).__name__}, not a tensor")
            return
        if tuple(out.shape) != tuple(lpet.shape):
            self.output_problems.append(f"predict returned shape {tuple(out.shape)} for input {tuple(lpet.shape)}")
        if out.dtype != torch.float32:
            self.output_problems.append(f"predict returned {out.dtype} for float32 input (return float32)")
        if out.device != lpet.device:
            self.output_problems.append(f"predict returned a tensor on {out.device} for input on {lpet.device}")
        if out.requires_grad:
            self.output_problems.append("predict returned a tensor that requires grad")

    @contextmanager
    def installed(self):
        self.method.predict = self
        try:
            yield self
        finally:
            del self.method.predict  # back to the class's method




def method_options(cls: type, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options a check uses: the class's ``test_options`` overridden by ``options``."""
    return {**dict(getattr(cls, "test_options", None) or {}), **dict(options or {})}


def _instantiate(cls: type, options: dict, seed: int, device: torch.device) -> Method:
    seed_everything(seed)  # as the runner does before it builds the method
    method = cls(options, "quick")
    method.nets.to(device)
    return method


def _capped_stages(stages: list[Stage], max_epochs: int, max_steps: int) -> list[Stage]:
    for stage in stages:
        stage.epochs = min(stage.epochs, max_epochs)
        stage.steps_per_epoch = min(stage.steps_per_epoch or max_steps, max_steps)
    return stages


def _predict(method: Method, run: TinyRun, device: torch.device, batch_size: int = 32) -> list[np.ndarray]:
    return [predict_volume(method, s.lpet[run.drf], run.scale, device, batch_size=batch_size) for s in run.test]


def _state(method: Method) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in method.nets.state_dict().items()}


def _max_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(a, b))


def _close(a: list[np.ndarray], b: list[np.ndarray], rtol: float) -> bool:
    scale = max(float(np.max(np.abs(x))) for x in a) or 1.0
    return _max_difference(a, b) <= rtol * scale


def check_method(target: str | type, *, options: Mapping[str, Any] | None = None, host: PluginHost | None = None,
                 plugin: object | None = None, **settings: Any) -> Report:
    """Check a method; raises :class:`ConformanceError` if any check fails, else returns the report.

    ``target``: the registered name (or the class). ``options``: method options on top of its
    ``quick`` preset and ``test_options``. ``plugin``: a plugin object to load into an isolated
    host (otherwise ``host``, otherwise the installed plugins). ``settings``: see
    :func:`method_report` (``seed``, ``device``, ``max_epochs``, ``max_steps``, ``size``, ``depth``).
    """
    return _raise_on_failure(method_report(target, options=options, host=host, plugin=plugin, **settings))


def method_report(target: str | type, *, options: Mapping[str, Any] | None = None, host: PluginHost | None = None,
                  plugin: object | None = None, seed: int = 0, device: str = "cpu", max_epochs: int = 1,
                  max_steps: int = 2, size: int = 32, depth: int = 4) -> Report:
    """Run every method check and return the report (never raises for a failed check).

    ``size``/``depth``: the tiny volumes' in-plane size and slice count (slices are
    ``size`` x ``size``; raise ``size`` for a network that down-samples more than 32x).
    """
    started = time.perf_counter()
    entry, host = _resolve("method", target, host, plugin)
    _check_given_options(entry, "method", options)
    report = Report("method", entry.name, entry.plugin, entry.dist)
    checks = Checks(report)
    state: dict[str, Any] = {}
    torch_device = resolve_device(device)

    def registered():
        cls = entry.load()
        validate_target("method", cls, f"plugin {entry.plugin!r}")
        expect(cls.name == entry.name, f"registered as {entry.name!r} but its name is {cls.name!r}")
        expect(bool((cls.description or "").strip()), "no description (shown by `petbench list methods`)")
        expect(cls.predict is not Method.predict, "does not implement predict()")
        expect(isinstance(cls.defaults, dict), "defaults must be a dict of every option with its default")
        missing = {"paper", "quick"} - set(cls.presets)
        expect(not missing, f"presets lack {sorted(missing)} (the runner asks for 'paper' or 'quick')")
        for preset, values in list(cls.presets.items()) + [("test_options", getattr(cls, "test_options", {}) or {})]:
            unknown = sorted(set(values) - set(cls.defaults))
            expect(not unknown, f"{preset} sets {unknown}, which are not in defaults")
        state["cls"] = cls
        state["options"] = method_options(cls, options)
        return f"options (quick preset + test_options + given): {state['options'] or '{}'}"

    def instantiates():
        method = _instantiate(state["cls"], state["options"], seed, torch_device)
        expect(isinstance(method.nets, nn.ModuleDict), "self.nets must stay the nn.ModuleDict the base class made")
        unknown = [m for m in method.inference_modules() if m not in method.nets]
        expect(not unknown, f"inference_modules() names {unknown}, which are not in nets")
        count = method.parameter_count()
        expect(isinstance(count, int) and count >= 0, f"parameter_count() returned {count!r}")
        state["method"] = method
        return f"{count:,} parameters in {list(method.inference_modules())}"

    def declares_stages():
        method = state["method"]
        run = state["run"] = TinyRun.build(size, depth)  # stages(run) is told about it, as in a run
        stages = call_stages(method, run.context(torch_device))
        try:
            validate_stages(stages, method)  # what the runner checks before a run is recorded
        except UserError as exc:
            raise CheckFailed(str(exc)) from None
        stages = _capped_stages(stages, max_epochs, max_steps)
        own = {id(p) for p in method.nets.parameters()}
        for stage in stages:
            where = f"stage {stage.name!r}"
            for name, optimizer in stage.optimizers.items():
                params = [p for group in optimizer.param_groups for p in group["params"]]
                outside = sum(id(p) not in own for p in params)
                expect(not outside, f"{where}: optimizer {name!r} updates {outside} parameter(s) outside "
                                    f"self.nets, which are neither checkpointed nor counted")
                if stage.reuse_key is not None:
                    trained = {id(p) for m in stage.modules for p in method.nets[m].parameters()}
                    expect(all(id(p) in trained for p in params),
                           f"{where} has a reuse_key but optimizer {name!r} updates modules outside "
                           f"stage.modules {stage.modules}, which a reused stage would not restore")
        state["stages"] = stages
        return ", ".join(f"{s.name} {list(s.sources)}" for s in stages) or "no stages (nothing to train)"

    def trains():
        method, stages, run = state["method"], state["stages"], state["run"]
        before = _state(method)
        with tempfile.TemporaryDirectory() as tmp:
            reports = train(method, stages, run.data, seed=seed, device=torch_device,
                            checkpoint_dir=Path(tmp) / "checkpoints", progress=False)
        expect(len(reports) == len(stages), f"{len(reports)} stage reports for {len(stages)} stages")
        for stage, stage_report in zip(stages, reports):
            expect(bool(stage_report.final_losses), f"stage {stage.name!r}: step() returned no losses")
        if any(stage.optimizers for stage in stages):
            after = method.nets.state_dict()
            expect(any(not torch.equal(before[k], after[k]) for k in before),
                   "training changed no weight: does step() call ctx.backward_step(loss, optimizer)?")
        if not stages:
            return "no stages"
        return "; ".join(f"{r.name}: {r.steps} steps, " + ", ".join(f"{k}={v:.3g}" for k, v in r.final_losses.items())
                         for r in reports)

    def predict_is_handed_only_test_lpet():
        method, run = state["method"], state["run"]
        allowed = {_key(x) for s in run.test for x in to_slices(s.lpet[run.drf], run.scale)}
        guard = PredictGuard(method, allowed, run.spet_slices)
        with guard.installed():
            state["pred"] = _predict(method, run, torch_device)
        state["guard"] = guard
        expect(guard.calls > 0, "predict was never called")
        expect(not guard.problems, "; ".join(sorted(set(guard.problems))))
        return f"{guard.calls} call(s), every slice a test LPET slice, none changed"

    def output():
        guard, run = state["guard"], state["run"]
        expect(not guard.output_problems, "; ".join(sorted(set(guard.output_problems))))
        for pred, subject in zip(state["pred"], run.test):
            expect(pred.shape == subject.spet.shape, f"volume shape {pred.shape} != {subject.spet.shape}")
            expect(bool(np.all(np.isfinite(pred))), "predictions are not all finite")
            expect(float(pred.min()) >= 0.0, f"predictions go negative (min {float(pred.min()):.3g}); "
                                             f"PET activity is non-negative: clamp, e.g. out.clamp_min(0)")
        return f"[B, 1, H, W] float32 on {torch_device.type}, finite, >= 0"

    def batch_independent():
        single = _predict(state["method"], state["run"], torch_device, batch_size=1)
        expect(_close(state["pred"], single, 1e-4), "a slice's prediction depends on the other slices in its "
               f"batch (max difference {_max_difference(state['pred'], single):.3g}); is a layer left in "
               "training mode (BatchNorm, Dropout) during predict?")

    def deterministic():
        method = _instantiate(state["cls"], state["options"], seed, torch_device)
        stages = _capped_stages(call_stages(method, state["run"].context(torch_device)), max_epochs, max_steps)
        with tempfile.TemporaryDirectory() as tmp:
            train(method, stages, state["run"].data, seed=seed, device=torch_device,
                  checkpoint_dir=Path(tmp) / "checkpoints", progress=False)
        again = _predict(method, state["run"], torch_device)
        expect(_close(state["pred"], again, 1e-5), "two trainings with the same seed predict differently (max "
               f"difference {_max_difference(state['pred'], again):.3g}); draw randomness from torch, numpy or "
               "random (seeded by the host), not from a private generator seeded from the clock")

    def checkpoint_round_trip():
        buffer = io.BytesIO()
        torch.save(state["method"].nets.state_dict(), buffer)
        buffer.seek(0)
        fresh = _instantiate(state["cls"], state["options"], seed + 1, torch_device)
        fresh.nets.load_state_dict(torch.load(buffer, map_location=torch_device, weights_only=True))
        restored = _predict(fresh, state["run"], torch_device)
        expect(_close(state["pred"], restored, 1e-6), "a fresh instance loaded with nets' state dict predicts "
               f"differently (max difference {_max_difference(state['pred'], restored):.3g}); keep everything "
               "predict() uses in self.nets (modules, or buffers via register_buffer)")

    with one_thread():  # tiny tensors: torch's thread pool only waits on a busy machine
        checks.run("registered", registered, required=True)
        checks.run("instantiates", instantiates, required=True)
        checks.run("stages", declares_stages, required=True)
        checks.run("trains", trains, required=True)
        checks.run("predict sees only test LPET", predict_is_handed_only_test_lpet)
        have_pred = "pred" in state
        checks.run("output", output, needs=have_pred)
        checks.run("batch independent", batch_independent, needs=have_pred)
        checks.run("deterministic", deterministic, needs=have_pred)
        checks.run("checkpoint round trip", checkpoint_round_trip, needs=have_pred)
    report.seconds = time.perf_counter() - started
    return report


# -- datasets ---------------------------------------------------------------------------------
def check_dataset(target: str | type, *, options: Mapping[str, Any] | None = None, host: PluginHost | None = None,
                  plugin: object | None = None, max_subjects: int = 2) -> Report:
    """Check a dataset (``options`` on top of its ``test_options``); raises :class:`ConformanceError`
    if a check fails. Loads at most ``max_subjects`` subjects."""
    return _raise_on_failure(dataset_report(target, options=options, host=host, plugin=plugin,
                                            max_subjects=max_subjects))


def dataset_report(target: str | type, *, options: Mapping[str, Any] | None = None, host: PluginHost | None = None,
                   plugin: object | None = None, max_subjects: int = 2) -> Report:
    started = time.perf_counter()
    entry, host = _resolve("dataset", target, host, plugin)
    _check_given_options(entry, "dataset", options)
    report = Report("dataset", entry.name, entry.plugin, entry.dist)
    checks = Checks(report)
    state: dict[str, Any] = {}

    def registered():
        cls = entry.load()
        validate_target("dataset", cls, f"plugin {entry.plugin!r}")
        expect(cls.name == entry.name, f"registered as {entry.name!r} but its name is {cls.name!r}")
        expect(bool((cls.description or "").strip()), "no description (shown by `petbench list datasets`)")
        expect(cls.subject_ids is not Dataset.subject_ids and cls.load is not Dataset.load,
               "must implement subject_ids() and load()")
        drfs = tuple(cls.drfs)
        expect(bool(drfs) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in drfs),
               f"drfs must be a non-empty tuple of integers >= 1, not {cls.drfs!r}")
        expect(isinstance(cls.units, str) and bool(cls.units), "units must be a non-empty string")
        expect(isinstance(cls.normalization, Normalization), "normalization must be a petbench Normalization")
        unknown = sorted(set(getattr(cls, "test_options", None) or {}) - set(cls.defaults))
        expect(not unknown, f"test_options sets {unknown}, which are not in defaults")
        state["cls"] = cls
        state["options"] = {**dict(getattr(cls, "test_options", None) or {}), **dict(options or {})}
        return f"DRFs {list(drfs)}, units {cls.units!r}, options {state['options'] or '{}'}"

    def instantiates():
        state["dataset"] = state["cls"](**state["options"])
        fingerprint = state["dataset"].fingerprint()
        json.dumps(fingerprint, sort_keys=True)  # it goes into run ids and stage-reuse keys
        return None

    def subject_ids():
        dataset = state["dataset"]
        ids = dataset.subject_ids()
        expect(isinstance(ids, list) and len(ids) > 0, f"subject_ids() must return a non-empty list, not {ids!r}")
        expect(all(isinstance(i, str) and i for i in ids), "subject ids must be non-empty strings")
        expect(len(set(ids)) == len(ids), "subject ids must be unique")
        expect(dataset.subject_ids() == ids, "subject_ids() must return the same order every time")
        expect(state["cls"](**state["options"]).subject_ids() == ids, "a second instance lists other subjects")
        state["ids"] = ids[:max_subjects]
        return f"{len(ids)} subjects"

    def loads():
        dataset = state["dataset"]
        available = getattr(dataset, "available_drfs", None)
        loaded = {}
        for sid in state["ids"]:
            drfs = tuple(available(sid)) if available else tuple(dataset.drfs)
            expect(set(drfs) <= set(dataset.drfs), f"{sid}: available_drfs {drfs} not within drfs {dataset.drfs}")
            dataset.prepare([sid], drfs)
            subject = dataset.load(sid, drfs)
            expect(isinstance(subject, Subject), f"load() must return a petbench.Subject, not {type(subject).__name__}")
            expect(subject.id == sid, f"load({sid!r}) returned subject {subject.id!r}")
            _check_volume(f"{sid} spet", subject.spet)
            expect(set(subject.lpet) == set(drfs), f"{sid}: asked for DRFs {sorted(drfs)}, got {sorted(subject.lpet)}")
            for drf, volume in subject.lpet.items():
                _check_volume(f"{sid} lpet[{drf}]", volume)
                expect(volume.shape == subject.spet.shape, f"{sid}: lpet[{drf}] shape {volume.shape} != spet "
                                                           f"shape {subject.spet.shape}")
                expect(not np.array_equal(volume, subject.spet), f"{sid}: lpet[{drf}] is the standard dose itself")
            affine = np.asarray(subject.affine, dtype=np.float64)
            expect(affine.shape == (4, 4) and bool(np.all(np.isfinite(affine))), f"{sid}: affine must be a finite 4x4")
            expect(abs(np.linalg.det(affine[:3, :3])) > 0, f"{sid}: the affine is singular")
            expect(subject.units == dataset.units, f"{sid}: units {subject.units!r} != the dataset's {dataset.units!r}")
            spet_only = dataset.load(sid, ())
            expect(spet_only.spet is not None and np.array_equal(spet_only.spet, subject.spet),
                   f"{sid}: load(id, ()) must give the same standard dose")
            loaded[sid] = (drfs, subject)
        state["loaded"] = loaded
        shapes = {s.spet.shape for _, s in loaded.values()}
        return f"{len(loaded)} subject(s) of shape {', '.join(map(str, shapes))}"

    def deterministic():
        again = state["cls"](**state["options"])
        for sid, (drfs, subject) in state["loaded"].items():
            other = again.load(sid, drfs)
            expect(np.array_equal(other.spet, subject.spet) and
                   all(np.array_equal(other.lpet[d], subject.lpet[d]) for d in drfs),
                   f"{sid}: loading it again gives other values")

    def normalization():
        volumes = [s.spet for _, s in state["loaded"].values()]
        scale = state["dataset"].normalization.fit(volumes)
        expect(isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0,
               f"normalization.fit() must return a finite positive float, not {scale!r}")
        description = state["dataset"].normalization.describe()
        expect(isinstance(description, str) and bool(description), "normalization.describe() must return text")
        return f"scale {scale:.4g}: {description}"

    checks.run("registered", registered, required=True)
    checks.run("instantiates", instantiates, required=True)
    checks.run("subject ids", subject_ids, required=True)
    checks.run("loads subjects", loads, required=True)
    checks.run("deterministic", deterministic)
    checks.run("normalization", normalization)
    report.seconds = time.perf_counter() - started
    return report


def _check_volume(what: str, volume) -> None:
    expect(isinstance(volume, np.ndarray), f"{what} must be a numpy array, not {type(volume).__name__}")
    expect(volume.dtype == np.float32, f"{what} must be float32, not {volume.dtype}")
    expect(volume.ndim == 3 and min(volume.shape) > 0, f"{what} must be a [z, y, x] volume, not {volume.shape}")
    expect(bool(np.all(np.isfinite(volume))), f"{what} has non-finite values")
    expect(float(volume.min()) >= 0, f"{what} has negative values (min {float(volume.min()):.3g})")
    expect(float(volume.max()) > 0, f"{what} is all zeros")


# -- metrics ----------------------------------------------------------------------------------
def check_metric(target: str | Metric, *, host: PluginHost | None = None, plugin: object | None = None) -> Report:
    """Check a metric; raises :class:`ConformanceError` if a check fails."""
    return _raise_on_failure(metric_report(target, host=host, plugin=plugin))


def metric_report(target: str | Metric, *, host: PluginHost | None = None, plugin: object | None = None) -> Report:
    started = time.perf_counter()
    entry, host = _resolve("metric", target, host, plugin)
    report = Report("metric", entry.name, entry.plugin, entry.dist)
    checks = Checks(report)
    state: dict[str, Any] = {}

    subject = TinyDataset(size=16, depth=8).load("tiny000", ())
    ref = subject.spet * np.float32(100.0)  # physical-looking units
    noise = np.random.default_rng(0).normal(size=ref.shape).astype(np.float32) * float(ref.std())
    small = np.clip(ref + 0.1 * noise, 0, None).astype(np.float32)
    large = np.clip(ref + 0.5 * noise, 0, None).astype(np.float32)

    def registered():
        metric = entry.load()
        validate_target("metric", metric, f"plugin {entry.plugin!r}")
        expect(metric.name == entry.name, f"registered as {entry.name!r} but its name is {metric.name!r}")
        expect(callable(metric.fn), "fn must be callable")
        expect(isinstance(metric.higher_is_better, bool), "higher_is_better must be True or False")
        expect(bool(metric.description.strip()), "no description (shown by `petbench list metrics`)")
        state["metric"] = metric
        return f"{'higher' if metric.higher_is_better else 'lower'} is better, convention {metric.convention!r}"

    def finite_float():
        metric = state["metric"]
        inputs = (small.copy(), ref.copy())
        value = metric(*inputs)
        expect(isinstance(value, float) and math.isfinite(value), f"returned {value!r} for a noisy prediction")
        expect(np.array_equal(inputs[0], small) and np.array_equal(inputs[1], ref), "it changed its inputs")
        expect(metric(small, ref) == value, "two calls on the same volumes give different values")
        state["small"] = value
        return f"{value:.4g} on a noisy prediction"

    def direction():
        metric = state["metric"]
        best, worse = metric(ref.copy(), ref.copy()), metric(large, ref)
        expect(not math.isnan(best), "identical volumes give NaN")
        sign = 1 if metric.higher_is_better else -1
        expect(sign * best >= sign * state["small"] >= sign * worse,
               f"with {'higher' if metric.higher_is_better else 'lower'} is better, expected "
               f"identical ({best:.4g}) {'>=' if sign > 0 else '<='} small noise ({state['small']:.4g}) "
               f"{'>=' if sign > 0 else '<='} large noise ({worse:.4g})")
        return f"identical {best:.4g}, small noise {state['small']:.4g}, large noise {worse:.4g}"

    checks.run("registered", registered, required=True)
    checks.run("finite float", finite_float, required=True)
    checks.run("direction", direction)
    report.seconds = time.perf_counter() - started
    return report


# -- any kind ---------------------------------------------------------------------------------
REPORTS = {"method": method_report, "dataset": dataset_report, "metric": metric_report}


def find_kind(name: str, host: PluginHost) -> str:
    """The kind of a registered name; a name registered as several kinds needs ``kind``."""
    kinds = [kind for kind in KINDS if name in _registry(host, kind)]
    if not kinds:
        valid = sorted({n for kind in KINDS for n in _registry(host, kind).names()})
        from ..names import unknown_name_message

        from ..registry import failure_note

        raise UserError(unknown_name_message("method, dataset or metric", name, valid) + failure_note(host.failures))
    if len(kinds) > 1:
        raise UserError(f"{name!r} is registered as a {' and a '.join(kinds)}; say which with --kind")
    return kinds[0]


def conformance_report(name: str, kind: str | None = None, *, host: PluginHost | None = None,
                       plugin: object | None = None, **settings: Any) -> Report:
    """Check a method, dataset or metric by name and return the report (never raises for a failed
    check); ``kind`` is found from the registries when not given."""
    host = _host_for(host, plugin)
    kind = kind or find_kind(name, host)
    if kind not in KINDS:
        raise UserError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "metric":
        settings.pop("options", None)
    return REPORTS[kind](name, host=host, **settings)


def check(name: str, kind: str | None = None, **settings: Any) -> Report:
    """Check a method, dataset or metric by name; raises :class:`ConformanceError` on failure."""
    return _raise_on_failure(conformance_report(name, kind, **settings))


def conformance_tests(plugin: object, *, kinds: tuple[str, ...] = KINDS,
                      options: Mapping[str, Mapping[str, Any]] | None = None, **settings: Any):
    """A pytest test function checking everything ``plugin`` registers, one test per name.

    In a plugin's test module::

        from petbench.testing import conformance_tests
        import my_plugin.plugin

        test_conformance = conformance_tests(my_plugin.plugin)

    ``plugin`` is the plugin object (loaded into an isolated host) or the name of an installed
    plugin; ``options`` maps a registered name to extra options for it; ``settings`` go to every
    method check (``max_steps``, ``size``, ...).

    Options that only exist at test time (a dataset's files made in ``tmp_path``) are given as the
    name of a pytest fixture that returns them, or as a function called when the test runs::

        @pytest.fixture
        def my_data(tmp_path):
            write_a_few_subjects(tmp_path)
            return {"data_root": str(tmp_path)}

        test_conformance = conformance_tests(my_plugin.plugin, options={"my-dataset": "my_data"})
    """
    import pytest

    cases = [(kind, name) for kind in kinds for name in registered_names(kind, plugin)]
    host_plugin = None if isinstance(plugin, str) else plugin
    per_name = dict(options or {})

    def run_check(kind, name, request=None):
        extra = dict(settings) if kind == "method" else {}
        if kind != "metric":
            given = per_name.get(name)
            if isinstance(given, str):  # a fixture's name: made at test time (e.g. files in tmp_path)
                given = request.getfixturevalue(given)
            elif callable(given):
                given = given()
            extra["options"] = given
        check(name, kind, plugin=host_plugin, **extra)

    parametrize = pytest.mark.parametrize("kind, name", cases, ids=[f"{kind}-{name}" for kind, name in cases])
    if any(isinstance(value, str) for value in per_name.values()):  # pytest hands over `request` by name
        @parametrize
        def test_conformance(kind, name, request):
            run_check(kind, name, request)
    else:
        @parametrize
        def test_conformance(kind, name):
            run_check(kind, name)

    return test_conformance


def _raise_on_failure(report: Report) -> Report:
    if not report.ok:
        raise ConformanceError(report)
    return report
