"""The classical post-filters: their one parameter is fitted on the paired training subjects alone, by the
documented search, recorded, and reproduced here from the training volumes."""
from __future__ import annotations

import types

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import petbench
from petbench import hookimpl
from petbench.data.protocol import Protocol
from petbench.runner import RunConfig, execute
from petbench.testing.toys import TOY_PLUGIN, TinyDataset, isolated_host
from petbench_baselines import plugin
from petbench_baselines.classical import GaussianFilter, NonLocalMeans, bm3d_available
from petbench_baselines.classical.search import fit_parameter

PROTOCOL = Protocol(n_train=3, n_test=2, n_unpaired=0, drf=4)


class PoisonedTiny(TinyDataset):
    """The tiny dataset, with one subject's volumes replaced by something else entirely."""

    name = "tiny-poisoned"
    defaults = {**TinyDataset.defaults, "poison": ""}

    def load(self, subject_id, drfs=()):
        subject = super().load(subject_id, drfs)
        if subject_id == self.options["poison"]:
            rng = np.random.default_rng(99)
            subject.spet = rng.uniform(0, 5, subject.spet.shape).astype(np.float32)
            subject.lpet = {drf: rng.uniform(0, 5, v.shape).astype(np.float32) for drf, v in subject.lpet.items()}
        return subject


@hookimpl
def register_datasets(register):
    register(PoisonedTiny)


POISON_PLUGIN = types.SimpleNamespace(__name__="poison", register_datasets=register_datasets)


def run(tmp_path, method="gaussian", poison="", **options):
    host = isolated_host(TOY_PLUGIN, POISON_PLUGIN, plugin)
    config = RunConfig(method=method, dataset="tiny-poisoned", dataset_options={"poison": poison},
                       method_options=options, protocol=PROTOCOL, preset="quick")
    return execute(host, config, tmp_path, progress=False, log=lambda _: None)


def test_the_search_is_the_coarse_grid_then_the_fine_one_between_the_best_neighbours():
    calls = []

    def objective(v):
        calls.append(v)
        return (np.log(v) - np.log(1.3)) ** 2

    value, score, tried = fit_parameter(objective, 0.25, 4.0, 5, 5)
    coarse = [0.25, 0.5, 1.0, 2.0, 4.0]
    fine = list(np.geomspace(0.5, 2.0, 5))  # the best coarse value is 1.0: its neighbours 0.5 and 2.0
    assert calls == pytest.approx(coarse + fine)
    best = min(coarse + fine, key=lambda v: abs(np.log(v) - np.log(1.3)))
    assert value == pytest.approx(best) and score == pytest.approx(objective(best))
    assert len(tried) == 10


def recomputed_sigma(record) -> float:
    """The fit written out again from the training subjects' volumes: every training slice (the record's
    fit used them all), normalised by the run's scale, each slice filtered on its own, the MSE over all."""
    dataset = PoisonedTiny(**record.data["dataset"]["options"])
    scale = record.data["dataset"]["scale"]
    lpet, spet = [], []
    for sid in record.data["splits"]["train"]:
        subject = dataset.load(sid, (PROTOCOL.drf,))
        lpet += list(subject.lpet[PROTOCOL.drf].astype(np.float64) / np.float32(scale))
        spet += list(subject.spet.astype(np.float64) / np.float32(scale))

    def mse(sigma):
        errors = [((gaussian_filter(l, sigma, mode="nearest") - s) ** 2).mean() for l, s in zip(lpet, spet)]
        return float(np.mean(errors))

    coarse = list(np.geomspace(0.25, 4.0, 13))
    scores = [mse(v) for v in coarse]
    best = int(np.argmin(scores))
    fine = list(np.geomspace(coarse[max(best - 1, 0)], coarse[min(best + 1, 12)], 9))
    candidates = coarse + fine
    return candidates[int(np.argmin(scores + [mse(v) for v in fine]))]


def test_gaussian_fit_is_recorded_and_recomputed_from_the_training_subjects(tmp_path):
    record = run(tmp_path / "a", fit_slices=10_000)
    fitted = record.data["method"]["fitted"]
    assert fitted["unit"] == "px"
    train_slices = PROTOCOL.n_train * TinyDataset.defaults["depth"]
    assert fitted["search"]["slices"] == train_slices
    assert fitted["sigma"] == pytest.approx(recomputed_sigma(record), rel=1e-9)
    assert 0.25 <= fitted["sigma"] <= 4.0
    assert record.data["method"]["parameters"] == 0
    assert record.data["method"]["provenance"] == "library"


def test_changing_a_test_subject_does_not_change_the_fit(tmp_path):
    clean = run(tmp_path / "clean", fit_slices=10_000)
    test_subject = clean.data["splits"]["test"][0]
    poisoned = run(tmp_path / "poisoned", poison=test_subject, fit_slices=10_000)
    assert poisoned.data["splits"] == clean.data["splits"]
    assert poisoned.data["method"]["fitted"] == clean.data["method"]["fitted"]
    # the change reached the run: the poisoned test subject scores differently
    def psnr_of(record):
        rows = record.rows()
        return float(rows[(rows["subject"] == test_subject) & (rows["metric"] == "psnr")]["value"].iloc[0])

    scores = {"clean": psnr_of(clean), "poisoned": psnr_of(poisoned)}
    assert scores["clean"] != pytest.approx(scores["poisoned"])
    # and a changed training subject does change it
    trained_on = clean.data["splits"]["train"][0]
    moved = run(tmp_path / "moved", poison=trained_on, fit_slices=10_000)
    assert moved.data["method"]["fitted"]["sigma"] != pytest.approx(clean.data["method"]["fitted"]["sigma"])


def test_a_given_value_is_not_fitted(tmp_path):
    record = run(tmp_path, sigma=1.5)
    assert record.data["method"]["fitted"] == {"sigma": 1.5, "unit": "px", "given": True}
    assert record.data["method"]["stages"] == []


def test_nlm_fits_h_and_beats_its_input_on_the_fit_slices():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    clean = np.exp(-((yy - 16) ** 2 + (xx - 14) ** 2) / 60.0)[None].repeat(6, 0)
    noisy = clean + rng.normal(0, 0.1, clean.shape)
    import torch

    method = NonLocalMeans({"fit_slices": 6, "search_points": 5, "refine_points": 3})
    (stage,) = method.stages()
    batch = {"lpet": torch.tensor(noisy[:, None], dtype=torch.float32),
             "spet": torch.tensor(clean[:, None], dtype=torch.float32)}
    losses = stage.step(batch, None)
    assert losses["h"] == method.value and 0.005 <= method.value <= 1.0
    assert losses["fit_mse"] < float(((noisy - clean) ** 2).mean())
    out = method.predict(batch["lpet"])
    assert out.shape == batch["lpet"].shape and float(out.min()) >= 0


@pytest.mark.parametrize("options, words", [
    ({"sigma": -1.0}, "option sigma must be a number > 0"),
    ({"search_low": 2.0, "search_high": 1.0}, "option search_high must be above search_low"),
    ({"fit_slices": 0}, "option fit_slices must be an integer >= 1"),
])
def test_bad_options_are_user_errors(options, words):
    with pytest.raises(petbench.UserError, match=words):
        GaussianFilter(options)


def test_the_filters_are_in_table1_when_asked_in_their_group_and_always_in_the_label_efficiency_grid():
    from petbench.grids.spec import BUILTIN_GRIDS, builtin_methods

    host = isolated_host(plugin)
    efficiency = builtin_methods(host, BUILTIN_GRIDS["label-efficiency"])
    asked = builtin_methods(host, BUILTIN_GRIDS["table1"], optional=True)
    expected = ["gaussian", "nlm"] + (["bm3d"] if bm3d_available() else [])
    assert [m for m in efficiency if m in expected] == expected
    assert asked[:len(expected) + 2] == ["lpet", *expected, "cyclegan"]  # after LPET, before the networks
    by_default = builtin_methods(host, BUILTIN_GRIDS["table1"])
    assert by_default[:2] == ["lpet", "cyclegan"] and not set(expected) & set(by_default)


def test_grid_table1_runs_the_filters_only_with_optional_or_named(tmp_path):
    from typer.testing import CliRunner

    from petbench.cli import create_app

    def cells(*extra):
        result = CliRunner(env={"COLUMNS": "200"}).invoke(create_app(), ["grid", "table1", "--dataset", "phantom", "-D", "size=32", "--status",
                                          "--results", str(tmp_path), *extra])
        assert result.exit_code == 0, result.output
        return result.output

    assert "nlm" not in cells() and "gaussian" not in cells()
    assert "nlm" in cells("--with-optional") and "gaussian" in cells("--with-optional")
    assert "gaussian" in cells("--methods", "lpet,gaussian")
