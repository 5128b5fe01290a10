"""What a method author gets from the engine and the run (issue 16): per-step schedules sized before the
first step, the run context, gradient clipping, history.jsonl, the epoch_finished hook, validation-based
model selection with --n-val."""
import json
import math
import types

import numpy as np
import pytest
import torch
from torch import nn

from petbench import Method, Stage, hookimpl
from petbench.data.protocol import Protocol
from petbench.engine import train
from petbench.errors import UserError
from petbench.method import TrainContext, validate_stages
from petbench.runner import RunConfig, execute
from petbench.testing.toys import TOY_PLUGIN, TinyMethod, isolated_host

from test_engine import CPU, make_method, tiny_data


# -- schedules ----------------------------------------------------------------------------------------------
class Scheduled(TinyMethod):
    """A cosine schedule per step, built by a factory from the number of steps the engine will run."""

    name = "scheduled"

    def stages(self, run=None):
        (stage,) = super().stages()
        optimizer = stage.optimizers["adam"]
        self.totals, self.lrs = [], []
        original = stage.step

        def factory(total):
            self.totals.append(total)
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))

        def step(batch, ctx):
            self.lrs.append(optimizer.param_groups[0]["lr"])
            return original(batch, ctx)

        stage.step, stage.schedulers, stage.schedulers_per = step, {"cosine": factory}, "step"
        return [stage]


def test_a_per_step_schedule_is_sized_from_the_real_number_of_steps():
    torch.manual_seed(0)
    method = Scheduled({"epochs": 3, "batch_size": 4, "lr": 1e-3, "steps_per_epoch": 100})  # the cap is not reached
    train(method, method.stages(), tiny_data(n=24), seed=0, device=CPU, progress=False)
    assert method.totals == [3 * 6]  # 24 slices / batch 4 = 6 steps an epoch, not the cap of 100
    expected = [1e-3 * 0.5 * (1 + math.cos(math.pi * s / 18)) for s in range(18)]
    assert method.lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_a_per_epoch_scheduler_steps_once_an_epoch():
    torch.manual_seed(0)
    method = TinyMethod({"epochs": 3, "batch_size": 4, "lr": 1e-3})
    (stage,) = method.stages()
    stage.schedulers = {"decay": torch.optim.lr_scheduler.StepLR(stage.optimizers["adam"], step_size=1, gamma=0.5)}
    seen = []
    original = stage.step
    stage.step = lambda batch, ctx: seen.append(stage.optimizers["adam"].param_groups[0]["lr"]) or original(batch, ctx)
    train(method, [stage], tiny_data(n=24), seed=0, device=CPU, progress=False)
    assert seen == [1e-3] * 6 + [5e-4] * 6 + [2.5e-4] * 6


def test_a_resumed_per_step_schedule_continues_on_the_same_curve(tmp_path):
    torch.manual_seed(0)
    reference = Scheduled({"epochs": 3, "batch_size": 4, "lr": 1e-3})
    train(reference, reference.stages(), tiny_data(), seed=0, device=CPU, progress=False)

    class Stop(Exception):
        pass

    torch.manual_seed(0)
    crashing = Scheduled({"epochs": 3, "batch_size": 4, "lr": 1e-3})
    stages = crashing.stages()
    inner = stages[0].step
    stages[0].step = lambda batch, ctx: (_ for _ in ()).throw(Stop()) if ctx.epoch == 2 else inner(batch, ctx)
    with pytest.raises(Stop):
        train(crashing, stages, tiny_data(), seed=0, device=CPU, checkpoint_dir=tmp_path, progress=False)
    torch.manual_seed(0)
    resumed = Scheduled({"epochs": 3, "batch_size": 4, "lr": 1e-3})
    train(resumed, resumed.stages(), tiny_data(), seed=0, device=CPU, checkpoint_dir=tmp_path, progress=False)
    assert resumed.lrs == reference.lrs[12:]
    for key, value in reference.nets.state_dict().items():
        assert torch.equal(resumed.nets.state_dict()[key], value)


@pytest.mark.parametrize("bad, says", [
    ({"schedulers": [object()]}, "schedulers is a list; give a dict"),
    ({"schedulers_per": "batch"}, "schedulers_per='batch' must be 'epoch' or 'step'"),
    ({"schedulers": {"s": 3}}, "has no state_dict()"),
])
def test_stage_fields_are_validated_with_clear_messages(bad, says):
    method = make_method()
    (stage,) = method.stages()
    for key, value in bad.items():
        setattr(stage, key, value)
    with pytest.raises(UserError, match=r"method 'tiny-cnn', stage 'supervised': .*" + r"".join(
            "\\" + c if c in "()[]{}.*+?" else c for c in says)):
        validate_stages([stage], method)


def test_a_factory_that_returns_no_scheduler_is_named():
    method = make_method()
    (stage,) = method.stages()
    stage.schedulers = {"bad": lambda total: None}
    with pytest.raises(UserError, match="scheduler factory 'bad' returned NoneType"):
        train(method, [stage], tiny_data(), seed=0, device=CPU, progress=False)


# -- the run context and the train context ---------------------------------------------------------------
def test_the_run_context_tells_stages_the_run_and_the_step_count():
    seen = {}

    class Curious(TinyMethod):
        name = "curious"

        def stages(self, run):
            seen.update(dataset=run.dataset, drf=run.drf, device=run.device, shape=run.slice_shape,
                        steps=run.steps_per_epoch(("paired",), self.options["batch_size"]), paired=run.slices("paired"))
            (stage,) = super().stages()
            inner = stage.step
            stage.step = lambda batch, ctx: seen.setdefault("ctx", (ctx.steps_per_epoch, ctx.epochs, ctx.run)) and \
                inner(batch, ctx)
            return [stage]

    host = isolated_host(TOY_PLUGIN, types.SimpleNamespace(__name__="curious", register_methods=hookimpl(
        specname="register_methods")(lambda register: register(Curious))))
    execute(host, RunConfig(method="curious", dataset="tiny", dataset_options={"size": 12, "depth": 5},
                            protocol=Protocol(n_train=3, n_test=1, n_unpaired=0, drf=4), preset="quick",
                            method_options={"batch_size": 4, "epochs": 1}, device="cpu"),
            results_dir=__import__("tempfile").mkdtemp(), progress=False, log=lambda _: None)
    assert seen["dataset"] == "tiny" and seen["drf"] == 4 and seen["device"] == CPU
    assert seen["shape"] == (12, 12) and seen["paired"] == 3 * 5
    assert seen["steps"] == 15 // 4 == seen["ctx"][0] and seen["ctx"][1] == 1
    assert seen["ctx"][2].dataset == "tiny"


def test_backward_step_clips_the_gradient_norm():
    torch.manual_seed(0)
    weights = nn.Parameter(torch.randn(5))
    before = weights.detach().clone()
    optimizer = torch.optim.SGD([weights], lr=1.0)
    ctx = TrainContext(CPU, None, torch.amp.GradScaler("cpu", enabled=False))
    target = torch.full((5,), 10.0)
    ctx.backward_step(((weights - target) ** 2).sum(), optimizer, clip_grad_norm=0.5)
    gradient = 2 * (before - target).numpy()  # d/dw sum (w - t)^2, written out
    clipped = gradient * min(1.0, 0.5 / (np.linalg.norm(gradient) + 1e-6))  # torch's clip_grad_norm_ formula
    np.testing.assert_allclose(weights.detach().numpy(), before.numpy() - clipped, rtol=1e-5, atol=1e-6)
    ctx.backward_step(((weights - target) ** 2).sum(), optimizer)  # no clipping by default: the full step
    assert np.linalg.norm((weights.detach() - before).numpy()) > 1.0


# -- history.jsonl, epoch_finished, validation -------------------------------------------------------------
class Oracle(Method):
    """Its prediction is lpet * gain, where the gain is set by the epoch (a schedule): epoch 2's is the best."""

    name = "gain-oracle"
    description = "Test-only: prediction quality set by the epoch."
    defaults = {"gains": [0.3, 0.9, 1.7, 0.5], "batch_size": 4}
    presets = {"paper": {}, "quick": {}}
    spet_seen: list = []  # every SPET batch any instance trained on

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        self.nets["gain"] = nn.Linear(1, 1, bias=False)

    def stages(self):
        gain = self.nets["gain"]
        optimizer = torch.optim.SGD(gain.parameters(), lr=0.0)

        def step(batch, ctx):
            with torch.no_grad():
                gain.weight.fill_(self.options["gains"][ctx.epoch])
            Oracle.spet_seen.append(batch["spet"].clone())
            loss = (batch["lpet"] * gain.weight[0, 0] - batch["spet"]).abs().mean()
            ctx.backward_step(loss, optimizer)
            return {"l1": loss, "gain": gain.weight[0, 0].detach()}

        return [Stage("fit", step, {"sgd": optimizer}, ("gain",), epochs=len(self.options["gains"]),
                      batch_size=self.options["batch_size"])]

    def predict(self, lpet):
        return lpet * self.nets["gain"].weight[0, 0]


class Logger:
    __name__ = "test-logger"

    def __init__(self):
        self.calls = []

    @hookimpl
    def epoch_finished(self, record, stage, epoch, losses, validation):
        self.calls.append((record.run_id, stage, epoch, dict(losses), validation))


class Broken:
    __name__ = "broken-logger"

    @hookimpl
    def epoch_finished(self, epoch):
        raise RuntimeError("tracker is down")


def oracle_host(*extra):
    plugin = types.SimpleNamespace(__name__="oracle-plugin", register_methods=hookimpl(
        specname="register_methods")(lambda register: register(Oracle)))
    return isolated_host(TOY_PLUGIN, plugin, *extra)


TINY = {"n_subjects": 12, "size": 12, "depth": 4}


def oracle_run(host, results, n_val=0, gains=(0.3, 0.9, 1.7, 0.5), logs=None, **protocol):
    config = RunConfig(method="gain-oracle", dataset="tiny", dataset_options=TINY, preset="quick", device="cpu",
                       method_options={"gains": list(gains)}, metrics=["psnr", "nmse"],
                       protocol=Protocol(n_train=3, n_test=2, n_unpaired=2, drf=4, n_val=n_val, **protocol))
    return execute(host, config, results, progress=False, log=(logs.append if logs is not None else lambda _: None))


def test_validation_selects_the_best_epoch_and_the_test_set_is_scored_with_its_weights(tmp_path):
    logger = Logger()
    host = oracle_host(logger, Broken())
    logs = []
    Oracle.spet_seen.clear()
    record = oracle_run(host, tmp_path / "r", n_val=2, logs=logs)
    seen_in_this_run = list(Oracle.spet_seen)
    validation = record.data["validation"]
    assert validation["metric"] == "psnr" and validation["every"] == 1
    # the curve, computed independently: PSNR of lpet * gain against the validation SPET, per subject
    dataset = host.datasets.get("tiny")(**TINY)
    psnr = host.metrics.get("psnr")
    subjects = [dataset.load(sid, (4,)) for sid in record.data["splits"]["validation"]]
    expected = [np.mean([psnr(s.lpet[4] * np.float32(g), s.spet) for s in subjects]) for g in (0.3, 0.9, 1.7, 0.5)]
    assert [p["epoch"] for p in validation["curve"]] == [1, 2, 3, 4]
    np.testing.assert_allclose([p["score"] for p in validation["curve"]], expected, rtol=1e-4)
    assert validation["best_epoch"] == int(np.argmax(expected)) + 1 == 2
    # the test metrics equal those of the same method stopped after epoch 2 (no validation)
    stopped = oracle_run(host, tmp_path / "s", gains=(0.3, 0.9))
    assert record.summary == stopped.summary
    # the splits: disjoint, and the others are those of the paper's protocol (n_val = 0)
    splits = record.data["splits"]
    groups = [set(splits[k]) for k in ("train", "test", "unpaired", "validation")]
    assert sum(map(len, groups)) == len(set().union(*groups)) and len(groups[3]) == 2
    plain = oracle_run(host, tmp_path / "p")
    assert {k: v for k, v in splits.items() if k != "validation"} == plain.data["splits"]
    assert "validation" not in plain.data["splits"] and "validation" not in plain.data
    # no method sees a validation SPET: every SPET slice it trained on is a paired-train slice
    train_slices = [s for sid in splits["train"] for s in dataset.load(sid, ()).spet]
    for seen in torch.cat(seen_in_this_run)[:, 0].numpy():
        assert any(np.allclose(seen / seen.max(), t / t.max(), rtol=1e-5, atol=1e-6) for t in train_slices)
    # history.jsonl: one line per epoch with mean losses and the validation score
    history = [json.loads(line) for line in (record.path / "history.jsonl").read_text().splitlines()]
    assert [(h["stage"], h["epoch"]) for h in history] == [("fit", e) for e in (1, 2, 3, 4)]
    assert [h["losses"]["gain"] for h in history] == pytest.approx([0.3, 0.9, 1.7, 0.5], rel=1e-6)
    assert [h["validation"]["psnr"] for h in history] == pytest.approx(expected, rel=1e-4)
    # epoch_finished: once per epoch, with the record, the stage, the losses and the score; the broken
    # logger is named and the run finished anyway
    assert [(c[1], c[2]) for c in logger.calls if c[0] == record.run_id] == [("fit", e) for e in (1, 2, 3, 4)]
    assert [c[3]["gain"] for c in logger.calls if c[0] == record.run_id] == pytest.approx([0.3, 0.9, 1.7, 0.5])
    assert [c[4]["psnr"] for c in logger.calls if c[0] == record.run_id] == pytest.approx(expected, rel=1e-4)
    assert record.status == "finished"
    assert any("'broken-logger'" in line and "epoch_finished" in line and "tracker is down" in line for line in logs)


def test_validation_every_k_epochs_and_the_run_id(tmp_path):
    host = oracle_host()
    plain = oracle_run(host, tmp_path, gains=(0.3, 0.9, 1.7, 0.5))
    # the paper's protocol keeps its run ids: n_val = 0 puts no validation setting in the identity
    assert "n_val" not in plain.data["identity"]["protocol"]
    record = oracle_run(host, tmp_path, n_val=2, val_every=3, gains=(0.3, 0.9, 1.7, 0.5))
    assert record.run_id != plain.run_id
    assert [p["epoch"] for p in record.data["validation"]["curve"]] == [3, 4]  # every 3rd and the last
    assert record.data["validation"]["best_epoch"] == 4  # 0.5 is closer to 1 than 1.7 is
    nmse = oracle_run(host, tmp_path, n_val=2, val_metric="nmse")
    assert nmse.data["validation"]["best_epoch"] == 2 and nmse.data["validation"]["metric"] == "nmse"


def test_validation_is_refused_when_there_are_not_enough_subjects(tmp_path):
    with pytest.raises(UserError, match="--n-val 9"):
        oracle_run(oracle_host(), tmp_path, n_val=9)
    with pytest.raises(UserError, match="unknown metric 'psnrr'"):
        oracle_run(oracle_host(), tmp_path, n_val=1, val_metric="psnrr")
    assert not any(tmp_path.iterdir())


# -- history figure, TensorBoard logger, info ------------------------------------------------------------
def test_the_curves_figure_is_a_png_with_a_panel_per_stage_and_validation(tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from petbench.cli import create_app

    host = oracle_host()
    validated = oracle_run(host, tmp_path, n_val=2)
    plain = oracle_run(host, tmp_path, gains=(0.5, 0.8))
    out = tmp_path / "curves.png"
    result = CliRunner().invoke(create_app(host), ["figure", "curves", "--run", validated.run_id, "--run",
                                                   plain.run_id, "--results", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    image = Image.open(out)
    assert image.format == "PNG"
    info = json.loads(image.info["Description"])
    assert [p["title"] for p in info["panels"]] == ["stage fit: mean loss", "validation"]
    series = {(s["run"], s["name"]): s for s in info["panels"][0]["series"]}
    assert series[(plain.run_id, "gain")]["values"] == pytest.approx([0.5, 0.8])
    assert series[(validated.run_id, "gain")]["epochs"] == [1, 2, 3, 4]
    (val,) = info["panels"][1]["series"]
    assert val["run"] == validated.run_id and val["values"] == [p["score"] for p in
                                                                validated.data["validation"]["curve"]]
    bad = CliRunner().invoke(create_app(host), ["figure", "curves", "--run", "nope", "--results", str(tmp_path),
                                                "--out", str(tmp_path / "x.png")])
    assert bad.exit_code == 2 and "--run nope: no such run" in bad.output and not (tmp_path / "x.png").exists()


def test_the_tensorboard_logger_writes_the_epoch_losses_and_test_metrics(tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    record = oracle_run(oracle_host(), tmp_path, n_val=2)
    folder = record.path / "tensorboard"
    assert any(p.name.startswith("events.out.tfevents") for p in folder.iterdir())
    events = EventAccumulator(str(folder))
    events.Reload()
    gains = [(e.step, e.value) for e in events.Scalars("fit/loss/gain")]
    assert gains == [(1, pytest.approx(0.3)), (2, pytest.approx(0.9)), (3, pytest.approx(1.7)), (4, pytest.approx(0.5))]
    scores = [e.value for e in events.Scalars("fit/validation/psnr")]
    assert scores == pytest.approx([p["score"] for p in record.data["validation"]["curve"]], rel=1e-6)
    assert events.Scalars("test/psnr")[0].value == pytest.approx(record.summary["psnr"]["mean"], rel=1e-6)


def test_info_prints_a_methods_description_plugin_options_and_presets():
    from typer.testing import CliRunner

    from petbench.cli import create_app

    host = isolated_host(TOY_PLUGIN)
    app = create_app(host)
    result = CliRunner().invoke(app, ["info", "tiny-cnn", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["kind"] == "method" and found["plugin"] == "petbench-toys" and found["dist"] == "in-process"
    assert found["description"] == TinyMethod.description
    assert found["options"] == TinyMethod.defaults and found["presets"] == TinyMethod.presets
    text = " ".join(CliRunner().invoke(app, ["info", "tiny-cnn"]).output.split())
    assert "tiny-cnn (method) from plugin 'petbench-toys' (in-process)" in text
    assert "│ epochs │ 2 │ 4 │ · │" in text  # the default, the paper preset's value, none in quick
    metric = json.loads(CliRunner().invoke(app, ["info", "psnr", "--json"]).output)
    assert metric["kind"] == "metric" and metric["higher_is_better"] is True and metric["unit"] == "dB"
    dataset = json.loads(CliRunner().invoke(app, ["info", "tiny", "--json"]).output)
    assert dataset["kind"] == "dataset" and dataset["options"]["n_subjects"] == 12 and dataset["drfs"] == [2, 4, 10]
    unknown = CliRunner().invoke(app, ["info", "tiny-cnnn"])
    assert unknown.exit_code == 2 and "Did you mean 'tiny-cnn'?" in unknown.output
