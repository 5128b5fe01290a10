"""petbench.testing's conformance checks: good plugins pass, each kind of broken one is caught
with the check that names the problem, and `petbench check` reports the same."""
import types

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from petbench import Dataset, Metric, hookimpl
from petbench.cli import create_app
from petbench.errors import PluginError, UserError
from petbench.testing import (ConformanceError, TinyDataset, TinyMethod, check_dataset, check_method, check_metric,
                              conformance_tests, dataset_report, method_report, metric_report, registered_names)
from petbench.testing import conformance
from petbench.testing.toys import TOY_PLUGIN, isolated_host

SMALL = {"width": 4, "batch_size": 4}


def plugin(*, methods=(), datasets=(), metrics=(), name="thirdparty"):
    @hookimpl
    def register_methods(register):
        for m in methods:
            register(m)

    @hookimpl
    def register_datasets(register):
        for d in datasets:
            register(d)

    @hookimpl
    def register_metrics(register):
        for m in metrics:
            register(m)

    return types.SimpleNamespace(__name__=name, register_methods=register_methods,
                                 register_datasets=register_datasets, register_metrics=register_metrics)


def statuses(report):
    return {r.name: r.status for r in report.results}


def failed(report):
    return {r.name: r.detail for r in report.results if r.status == "failed"}


# -- what passes -------------------------------------------------------------------------------
def test_toy_method_passes_every_check():
    report = check_method("tiny-cnn", options=SMALL, plugin=TOY_PLUGIN)
    assert report.ok and report.plugin == "petbench-toys"
    assert set(statuses(report)) == {"registered", "instantiates", "stages", "trains", "predict sees only test LPET",
                                     "output", "batch independent", "deterministic", "checkpoint round trip"}
    assert set(statuses(report).values()) == {"passed"}


def test_builtins_pass():
    host = isolated_host(TOY_PLUGIN)
    check_method("lpet", host=host)
    check_dataset("tiny", host=host)
    for name in ("psnr", "ssim", "nmse"):
        check_metric(name, host=host)


def test_test_options_are_used_and_overridden():
    class Small(TinyMethod):
        name = "small-cnn"
        test_options = {"width": 3, "batch_size": 4}

    report = method_report(Small, options={"batch_size": 2})
    assert report.ok
    assert "{'width': 3, 'batch_size': 2}" in report.results[0].detail


def test_conformance_tests_makes_one_parametrised_test_per_name():
    test = conformance_tests(plugin(methods=[TinyMethod], datasets=[TinyDataset]), options={"tiny-cnn": SMALL})
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    assert mark.args[1] == [("method", "tiny-cnn"), ("dataset", "tiny")]
    test("dataset", "tiny")


def test_registered_names_refuses_a_plugin_that_failed_to_register():
    @hookimpl
    def register_methods(register):
        raise RuntimeError("broken")

    with pytest.raises(PluginError, match="broken"):
        registered_names("method", types.SimpleNamespace(__name__="bad", register_methods=register_methods))
    assert registered_names("method", plugin(methods=[TinyMethod])) == ["tiny-cnn"]


# -- broken methods ----------------------------------------------------------------------------
class Negative(TinyMethod):
    name = "negative"

    def predict(self, lpet):
        return self.forward(lpet) - 10.0


class Float64(TinyMethod):
    name = "float64"

    def predict(self, lpet):
        return super().predict(lpet).double()


class InPlace(TinyMethod):
    name = "in-place"

    def predict(self, lpet):
        return super().predict(lpet.mul_(1.0).add_(0.0).clamp_(max=1e9).sub_(lpet.min() * 0 + 1e-3))


class OutsideNets(TinyMethod):
    """Predict uses a tensor that is not in nets: it is lost by a checkpoint."""

    name = "outside-nets"

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        self.offset = torch.rand(1)

    def predict(self, lpet):
        return super().predict(lpet) + self.offset.abs()


class Unseeded(TinyMethod):
    name = "unseeded"
    counter = 0

    def predict(self, lpet):
        Unseeded.counter += 1
        return super().predict(lpet) * (1 + 0.01 * Unseeded.counter)


class TrainModeBatchNorm(TinyMethod):
    name = "batchnorm"

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        self.nets["norm"] = nn.BatchNorm2d(1)

    def predict(self, lpet):
        self.nets["norm"].train()
        return self.nets["norm"](super().predict(lpet)).clamp_min(0)


class NoBackward(TinyMethod):
    name = "no-backward"

    def stages(self):
        (stage,) = super().stages()
        stage.step = lambda batch, ctx: {"l1": (self.forward(batch["lpet"]) - batch["spet"]).abs().mean()}
        return [stage]


class PrivateParameters(TinyMethod):
    name = "private-parameters"

    def stages(self):
        (stage,) = super().stages()
        self.extra = nn.Parameter(torch.zeros(1))
        stage.optimizers["extra"] = torch.optim.SGD([self.extra], lr=0.1)
        return [stage]


class NoQuickPreset(TinyMethod):
    name = "no-quick"
    presets = {"paper": {}}


class Crashes(TinyMethod):
    name = "crashes"

    def stages(self):
        (stage,) = super().stages()

        def step(batch, ctx):
            raise ValueError("shapes do not match")

        stage.step = step
        return [stage]


@pytest.mark.parametrize("cls, check, fragment", [
    (Negative, "output", "go negative"),
    (Float64, "output", "torch.float64"),
    (InPlace, "predict sees only test LPET", "changed its input"),
    (OutsideNets, "checkpoint round trip", "predicts differently"),
    (Unseeded, "deterministic", "predict differently"),
    (TrainModeBatchNorm, "batch independent", "training mode"),
    (NoBackward, "trains", "changed no weight"),
    (PrivateParameters, "stages", "outside self.nets"),
    (NoQuickPreset, "registered", "'quick'"),
    (Crashes, "trains", "ValueError: shapes do not match"),
], ids=lambda v: v.name if isinstance(v, type) else None)
def test_broken_method_is_caught_by_the_right_check(cls, check, fragment):
    with pytest.raises(ConformanceError) as info:
        check_method(cls.name, options=SMALL, plugin=plugin(methods=[cls]), size=16)
    report = info.value.report
    assert check in failed(report), report.text()
    assert fragment in failed(report)[check]
    assert report.name == cls.name and report.plugin == "thirdparty"
    assert cls.name in str(info.value) and "FAIL" in str(info.value)


def test_a_required_check_that_fails_skips_the_rest():
    report = method_report(Crashes, options=SMALL, size=16)
    assert statuses(report)["trains"] == "failed"
    assert statuses(report)["output"] == statuses(report)["checkpoint round trip"] == "skipped"


def test_predict_handed_a_standard_dose_slice_fails(monkeypatch):
    """Simulate a host whose evaluation leaks the test SPET into predict: the guard catches it."""
    runs = []
    build = conformance.TinyRun.build
    monkeypatch.setattr(conformance.TinyRun, "build", lambda *a, **k: runs.append(build(*a, **k)) or runs[-1])
    real = conformance.predict_volume

    def leaky(method, lpet, scale, device, batch_size=32):
        return real(method, runs[-1].test[0].spet, scale, device, batch_size=batch_size)

    monkeypatch.setattr(conformance, "predict_volume", leaky)
    report = method_report(TinyMethod, options=SMALL, size=16)
    assert "standard-dose slice" in failed(report)["predict sees only test LPET"]


def test_predict_guard_accepts_only_test_lpet_slices():
    method = TinyMethod(SMALL)
    lpet, spet = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    guard = conformance.PredictGuard(method, {conformance._key(x) for x in lpet},
                                     {conformance._key(x) for x in spet})
    with guard.installed():
        method.predict(lpet)
        method.predict(spet[:1])
        method.predict(lpet * 2)
    assert "predict" not in vars(method)  # restored
    assert guard.problems == ["predict was handed a standard-dose slice",
                              "predict was handed a slice that is not one of the test subject's LPET slices"]


# -- broken datasets and metrics -----------------------------------------------------------------
class Float64Dataset(TinyDataset):
    name = "float64-data"

    def load(self, subject_id, drfs=()):
        subject = super().load(subject_id, drfs)
        subject.spet = subject.spet.astype(np.float64)
        return subject


class DuplicateIds(TinyDataset):
    name = "duplicate-ids"

    def subject_ids(self):
        return ["tiny000", "tiny000"]


class MissingDrf(TinyDataset):
    name = "missing-drf"

    def load(self, subject_id, drfs=()):
        return super().load(subject_id, drfs[:1])


class LowDoseIsStandard(TinyDataset):
    name = "lpet-is-spet"

    def load(self, subject_id, drfs=()):
        subject = super().load(subject_id, drfs)
        subject.lpet = {d: subject.spet.copy() for d in drfs}
        return subject


class Random(TinyDataset):
    name = "random"

    def load(self, subject_id, drfs=()):
        subject = super().load(subject_id, drfs)
        subject.spet = subject.spet + np.random.rand(*subject.spet.shape).astype(np.float32)
        return subject


@pytest.mark.parametrize("cls, check, fragment", [
    (Float64Dataset, "loads subjects", "must be float32"),
    (DuplicateIds, "subject ids", "unique"),
    (MissingDrf, "loads subjects", "asked for DRFs"),
    (LowDoseIsStandard, "loads subjects", "is the standard dose itself"),
    (Random, "loads subjects", "same standard dose"),
], ids=lambda v: v.name if isinstance(v, type) else None)
def test_broken_dataset_is_caught(cls, check, fragment):
    report = dataset_report(cls.name, plugin=plugin(datasets=[cls]))
    assert fragment in failed(report).get(check, ""), report.text()


@pytest.mark.parametrize("fn, higher, fragment", [
    (lambda pred, ref: float("nan"), True, "returned nan"),
    (lambda pred, ref: float(np.mean(np.abs(pred - ref))), True, "higher is better"),  # direction declared wrong
])
def test_broken_metric_is_caught(fn, higher, fragment):
    metric = Metric("bad-metric", fn, higher_is_better=higher, description="broken on purpose")
    report = metric_report("bad-metric", plugin=plugin(metrics=[metric]))
    assert fragment in " ".join(failed(report).values()), report.text()


# -- petbench check ------------------------------------------------------------------------------
@pytest.fixture
def check_cli(host):
    host.add(plugin(methods=[Negative], metrics=[Metric("tiny", lambda p, r: 0.0, True, "clashes with a dataset")]),
             name="thirdparty", dist="petbench-thirdparty==2.0")
    app = create_app(host)
    return lambda *args: CliRunner().invoke(app, ["check", *args])


def test_check_command_passes_and_fails(check_cli):
    ok = check_cli("tiny-cnn", "-o", "width=4", "--steps", "1")
    assert ok.exit_code == 0, ok.output
    assert "checkpoint round trip" in ok.output and "all 9 checks passed" in ok.output
    bad = check_cli("negative", "-o", "width=4")
    assert bad.exit_code == 1
    assert "FAILED" in bad.output and "go negative" in bad.output and "1 of 9 checks failed" in bad.output
    assert "petbench-thirdparty==2.0" in bad.output
    assert check_cli("psnr").exit_code == 0


def test_check_command_mistakes_are_one_line_exit_2(check_cli):
    for args, fragment in [(["nope"], "unknown method, dataset or metric 'nope'"),
                           (["tiny"], "say which with --kind"),
                           (["tiny-cnn", "-o", "widht=4"], "Did you mean 'width'")]:
        result = check_cli(*args)
        assert result.exit_code == 2 and fragment in result.output and "Traceback" not in result.output
    assert check_cli("tiny", "--kind", "dataset").exit_code == 0


def test_unknown_name_from_python_is_a_user_error():
    with pytest.raises(UserError, match="unknown method 'nope'"):
        check_method("nope", plugin=TOY_PLUGIN)
