"""Evaluation as its own step: a run's identity is what trained it (not the metrics), a metric added
later scores finished runs from their predictions (or final weights), and each run counts once."""
import textwrap
import types

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from petbench import Metric, hookimpl
from petbench.cli import create_app
from petbench.data.nifti import load_volume
from petbench.data.protocol import Protocol
from petbench.plugins import set_host
from petbench.results.identity import source_fingerprint
from petbench.results.record import RunRecord
from petbench.runner import RunConfig, execute
from petbench.testing.toys import TOY_PLUGIN, TinyMethod, isolated_host

PROTOCOL = Protocol(n_train=2, n_test=3, n_unpaired=0, drf=4)


def mean_abs_error(pred, ref):  # the throwaway metric, written out independently
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(ref, np.float64))))


def metric_plugin(fn=mean_abs_error, name="mae"):
    @hookimpl
    def register_metrics(register):
        register(Metric(name, fn, higher_is_better=False, convention="test", description="mean |pred - ref|"))
    return types.SimpleNamespace(__name__=f"metric-{name}", register_metrics=register_metrics)


def config(method="tiny-cnn", seed=0, metrics=None, save_predictions=True, **options):
    if method != "lpet":
        options = {"epochs": 1, **options}
    return RunConfig(method=method, dataset="tiny", method_options=options,
                     dataset_options={"n_subjects": 6}, protocol=PROTOCOL, seed=seed, preset="quick",
                     metrics=metrics, save_predictions=save_predictions)


def run(host, results, cfg):
    return execute(host, cfg, results, progress=False, log=lambda _: None)


def cli(host, *args):
    set_host(host)
    try:
        return CliRunner().invoke(create_app(host), [str(a) for a in args])
    finally:
        set_host(None)


def test_a_new_metric_plugin_keeps_runs_finished_and_score_adds_it(tmp_path):
    results = tmp_path / "results"
    before = isolated_host(TOY_PLUGIN)
    first = run(before, results, config())
    assert "mae" not in first.data["metrics"]

    after = isolated_host(TOY_PLUGIN, metric_plugin())
    again = run(after, results, config())  # the same run: not retrained, its missing metric scored
    assert again.run_id == first.run_id
    assert again.data["started_at"] == first.data["started_at"]
    record = RunRecord.load(first.path)
    assert record.data["metrics"]["mae"]["plugin"] == "metric-mae" and record.data["scored"][-1]["from"] == "predictions"
    rows = record.rows()
    for sid in record.data["splits"]["test"]:
        pred, _ = load_volume(record.path / "predictions" / f"{sid}.nii.gz")
        ref = before.datasets.get("tiny")(n_subjects=6).load(sid).spet
        value = rows[(rows.subject == sid) & (rows.metric == "mae")]["value"].item()
        assert value == pytest.approx(mean_abs_error(pred, ref), rel=1e-12)
    assert set(rows.metric) >= {"psnr", "ssim", "nmse", "mae"}


def test_score_command_adds_a_metric_and_compare_counts_each_run_once(tmp_path):
    results = tmp_path / "results"
    run(isolated_host(TOY_PLUGIN), results, config())
    run(isolated_host(TOY_PLUGIN), results, config(method="lpet"))
    host = isolated_host(TOY_PLUGIN, metric_plugin())
    done = cli(host, "score", "--results", results, "--metrics", "mae", "-q")
    assert done.exit_code == 0, done.output
    assert "scored 2 of 2 finished runs" in done.output
    again = cli(host, "score", "--results", results, "--metrics", "mae", "-q")
    assert "scored 0 of 2" in again.output  # nothing lacks it now
    board = cli(host, "compare", "--results", results, "--metrics", "psnr,mae", "--format", "csv")
    assert board.exit_code == 0, board.output
    table = pd.read_csv(__import__("io").StringIO(board.stdout))
    assert sorted(table["method"]) == ["lpet", "tiny-cnn"]
    assert "counts once" not in board.output and "different versions" not in board.output
    shown = cli(host, "compare", "--results", results, "--metrics", "psnr,mae")
    assert "note: metrics: psnr: challenge convention; mae: test convention (computed by metric-mae" in shown.output


def test_score_predicts_again_from_final_weights_when_predictions_were_not_saved(tmp_path):
    results = tmp_path / "results"
    saved = run(isolated_host(TOY_PLUGIN), tmp_path / "with", config(metrics=["psnr"]))
    bare = run(isolated_host(TOY_PLUGIN), results, config(metrics=["psnr"], save_predictions=False))
    assert not (bare.path / "predictions").exists()
    host = isolated_host(TOY_PLUGIN, metric_plugin())
    done = cli(host, "score", "--results", results, "--metrics", "mae", "-q")
    assert done.exit_code == 0 and "from its final weights" in done.output, done.output
    scored = RunRecord.load(bare.path)
    cli(host, "score", "--results", tmp_path / "with", "--metrics", "mae", "-q")
    from_predictions = RunRecord.load(saved.path)
    assert scored.data["scored"][-1]["from"] == "weights"
    # the same training (same identity, seed): the re-predicted scores equal those of the saved volumes
    a = scored.rows().query("metric == 'mae'").sort_values("subject")["value"].to_numpy()
    b = from_predictions.rows().query("metric == 'mae'").sort_values("subject")["value"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_metric_that_raises_leaves_the_others_intact(tmp_path):
    results = tmp_path / "results"
    first = run(isolated_host(TOY_PLUGIN), results, config())
    before = first.rows()

    def broken(pred, ref):
        raise ZeroDivisionError("boom")

    host = isolated_host(TOY_PLUGIN, metric_plugin(), metric_plugin(broken, "broken"))
    done = cli(host, "score", "--results", results, "-q")
    assert done.exit_code == 1
    assert "metric 'broken' from plugin 'metric-broken'" in done.output and "ZeroDivisionError: boom" in done.output
    record = RunRecord.load(first.path)
    assert "broken" not in record.data["metrics"] and "mae" in record.data["metrics"]
    after = record.rows()
    kept = after[after.metric != "mae"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before.reset_index(drop=True))


def test_metrics_are_not_part_of_the_run_id(tmp_path):
    a = run(isolated_host(TOY_PLUGIN), tmp_path, config(metrics=["psnr"]))
    b = run(isolated_host(TOY_PLUGIN, metric_plugin()), tmp_path, config(metrics=["psnr", "mae"]))
    assert a.run_id == b.run_id and "mae" in RunRecord.load(a.path).data["metrics"]


def test_a_new_plugin_version_makes_a_new_run_and_compare_counts_it_once(tmp_path):
    results = tmp_path / "results"
    v1 = isolated_host(TOY_PLUGIN)
    old = run(v1, results, config())
    v2 = isolated_host(TOY_PLUGIN)
    v2.methods.entries["tiny-cnn"].dist = "petbench-tiny==2.0"  # the same method from a newer release
    new = run(v2, results, config())
    assert new.run_id != old.run_id and new.data["method"]["dist"] == "petbench-tiny==2.0"
    board = cli(v2, "compare", "--results", results, "--format", "csv", "--metrics", "psnr")
    assert board.exit_code == 0, board.output
    table = pd.read_csv(__import__("io").StringIO(board.stdout))
    assert list(table["method"]) == ["tiny-cnn"] and table["runs"].tolist() == [1]
    assert f"note: run {new.run_id} (petbench-tiny==2.0" in board.output
    assert f"counts once for its setup and seed; left out: {old.run_id} (in-process" in board.output


def test_rows_that_mix_plugin_versions_say_so(tmp_path):
    results = tmp_path / "results"
    run(isolated_host(TOY_PLUGIN), results, config(seed=0))
    v2 = isolated_host(TOY_PLUGIN)
    v2.methods.entries["tiny-cnn"].dist = "petbench-tiny==2.0"
    run(v2, results, config(seed=1))
    board = cli(v2, "compare", "--results", results, "--metrics", "psnr")
    assert "come from different versions of its code" in board.output


def test_an_edited_source_file_of_a_working_tree_plugin_makes_a_new_run(tmp_path, monkeypatch):
    package = tmp_path / "src" / "mymethod_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    source = textwrap.dedent("""
        from petbench.testing.toys import TinyMethod

        class Mine(TinyMethod):
            name = "mine"
            SCALE = 1.0
    """)
    (package / "method.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    import importlib

    module = importlib.import_module("mymethod_pkg.method")

    @hookimpl
    def register_methods(register):
        register(module.Mine)

    plugin = types.SimpleNamespace(__name__="mine-plugin", register_methods=register_methods)
    results = tmp_path / "results"
    first = run(isolated_host(TOY_PLUGIN, plugin), results, config(method="mine"))
    same = run(isolated_host(TOY_PLUGIN, plugin), results, config(method="mine"))
    assert same.run_id == first.run_id
    (package / "method.py").write_text(source.replace("SCALE = 1.0", "SCALE = 2.0"))  # a bug fix
    edited = run(isolated_host(TOY_PLUGIN, plugin), results, config(method="mine"))
    assert edited.run_id != first.run_id
    assert edited.data["identity"]["method"]["source"] != first.data["identity"]["method"]["source"]


def test_a_released_install_is_identified_by_its_version_alone():
    assert source_fingerprint(TinyMethod, "") is not None  # in-process: its file
    assert source_fingerprint(TinyMethod, "no-such-dist-installed==1.0") is not None  # not installed: a tree
    assert source_fingerprint(TinyMethod, "pip==" + __import__("pip").__version__) is None  # a release


def test_a_metric_plugin_installed_later_leaves_a_grid_finished(tmp_path):
    spec = tmp_path / "mine.toml"
    spec.write_text('name = "mine"\nmethods = ["lpet", "tiny-cnn[epochs=1]"]\ndatasets = ["tiny[n_subjects=6]"]\n'
                    'drf = 4\npreset = "quick"\n[protocol]\nn_train = 2\nn_test = 3\nn_unpaired = 0\n')
    results = tmp_path / "results"
    first = cli(isolated_host(TOY_PLUGIN), "grid", spec, "--results", results)
    assert first.exit_code == 0 and "2 cells: 2 finished" in first.output, first.output
    host = isolated_host(TOY_PLUGIN, metric_plugin())
    status = cli(host, "grid", spec, "--results", results, "--status")
    assert "2 cells: 2 finished" in status.output, status.output
    before = {p.name: RunRecord.load(p).data["started_at"] for p in results.iterdir() if (p / "run.json").exists()}
    again = cli(host, "grid", spec, "--results", results)  # scores the new metric, trains nothing
    assert again.exit_code == 0 and "nothing to run" in again.output, again.output
    assert again.output.count("scoring mae") == 2
    for run_id, started in before.items():
        record = RunRecord.load(results / run_id)
        assert record.data["started_at"] == started and "mae" in record.data["metrics"]


def test_score_leaves_a_run_another_process_holds(tmp_path):
    from petbench.results.lock import RunLock

    results = tmp_path / "results"
    first = run(isolated_host(TOY_PLUGIN), results, config())
    host = isolated_host(TOY_PLUGIN, metric_plugin())
    with RunLock(results, first.run_id):
        busy = cli(host, "score", "--results", results, "--metrics", "mae", "-q")
    assert busy.exit_code == 0 and "skipped: run " in busy.output and "scored 0 of 1" in busy.output
    assert "mae" not in RunRecord.load(first.path).data["metrics"]
    assert "scored 1 of 1" in cli(host, "score", "--results", results, "--metrics", "mae", "-q").output
