"""Issue 23, every input is untrusted: the classes a hostile user found, each as a regression test.

A user's mistake is one ``Error:`` line, exit code 2, no traceback and no record; a damaged file is named
as damaged and never averaged around; nothing petbench writes lands outside the results folder,
whatever a record says. The generated inputs are in test_untrusted_properties.py."""
import errno
import csv
import json
import math
import os
import pathlib
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make the helpers importable
from grid_helpers import fake_record  # noqa: E402

from petbench.cli import create_app  # noqa: E402
from petbench.data.nifti import save_volume  # noqa: E402
from petbench.errors import UserError  # noqa: E402
from petbench.method import RunContext  # noqa: E402
from petbench.options import Constraint, at_least, between, check_against_run, resolve_options  # noqa: E402
from petbench.results.record import DamagedRun, RunRecord, read_run_folder  # noqa: E402
from petbench.results.schema import seal  # noqa: E402
from petbench.testing.toys import TOY_PLUGIN, TinyDataset, TinyMethod  # noqa: E402

RUN = ["run", "--method", "tiny-cnn", "--dataset", "tiny", "--n-train", "4", "--n-test", "3", "--n-unpaired", "0",
       "--drf", "4", "--preset", "quick", "-q", "-D", "size=8", "-D", "depth=4", "-o", "epochs=1"]
LPET = ["run", "--method", "lpet", "--dataset", "tiny", "--n-train", "0", "--n-test", "3", "--n-unpaired", "0",
        "--drf", "4", "-q", "-D", "size=8", "-D", "depth=4"]
PHANTOM = ["run", "--method", "lpet", "--dataset", "phantom", "--n-train", "0", "--n-test", "2", "--n-unpaired", "0",
           "-D", "size=32", "-D", "n_subjects=2", "-q"]


def toml(text):
    def setup(tmp):
        path = tmp / "g.toml"
        path.write_text('methods = ["lpet"]\npreset = "quick"\n' + text)
        return ["grid", str(path)]
    return setup


# (id, argv, or setup(tmp) -> argv)
CASES = [
    ("int-option-from-true", RUN + ["-o", "width=true"]),
    ("int-option-from-a-fraction", RUN + ["-o", "width=2.5"]),
    ("float-option-from-yes", RUN + ["-o", "lr=yes"]),
    ("float-option-from-true", RUN + ["-o", "lr=true"]),
    ("int-option-a-dict", RUN + ["-o", "width={'a': 1}"]),
    ("int-option-a-list", RUN + ["-o", "width=[8, 16]"]),
    ("float-option-nan", RUN + ["-o", "lr=nan"]),
    ("float-option-inf", RUN + ["-o", "lr=-inf"]),
    ("option-huge", RUN + ["-o", "width=" + "[" * 100_000 + "]" * 100_000]),
    ("option-name-huge", RUN + ["-o", "w" * 100_000 + "=1"]),
    ("epochs-beyond-any-schedule", RUN + ["-o", "epochs=999999999999999999999"]),
    ("option-nested-deep", RUN + ["-o", "width=" + "[" * 30 + "]" * 30]),
    ("seed-negative", RUN + ["--seed", "-1"]),
    ("seed-too-large", RUN + ["--seed", "18446744073709551616"]),
    ("split-seed-too-large", RUN + ["--split-seed", str(2**32)]),
    ("drf-0", RUN + ["--drf", "0"]),
    ("predict-batch-size-huge", RUN + ["--predict-batch-size", str(10**12)]),
    ("n-val-for-a-method-that-trains-nothing", LPET + ["--n-val", "1"]),
    ("results-empty", RUN + ["--results", ""]),
    ("results-name-too-long", lambda tmp: RUN + ["--results", str(tmp / ("x" * 300))]),
    ("dataset-size-huge", [a if a != "size=32" else "size=100000" for a in PHANTOM]),
    ("dataset-size-a-bool", [a if a != "size=32" else "size=true" for a in PHANTOM]),
    ("dataset-post-filter-negative", PHANTOM + ["-D", "post_filter_mm=-4"]),
    ("dataset-post-filter-nan", PHANTOM + ["-D", "post_filter_mm=nan"]),
    ("dataset-seed-negative", PHANTOM + ["-D", "seed=-1"]),
    ("grid-options-a-string", toml('[[datasets]]\nname = "tiny"\noptions = "abc"\n')),
    ("grid-metrics-a-number", toml('dataset = "tiny"\nmetrics = 5\n')),
    ("grid-drf-a-float", toml('dataset = "tiny"\ndrf = 10.5\n')),
    ("grid-drfs-floats", toml('dataset = "tiny"\ndrfs = [10.5]\n')),
    ("grid-predictions-a-word", toml('dataset = "tiny"\npredictions = "no"\n')),
    ("grid-unknown-key-suggested", toml('dataset = "tiny"\nseedz = [0]\n')),
    ("grid-seeds-unbounded", toml('dataset = "tiny"\nseeds = "0-100000"\n')),
    ("grid-seed-negative", toml('dataset = "tiny"\nseeds = [-1]\n')),
    ("grid-cli-seeds-unbounded", lambda tmp: toml('dataset = "tiny"\n')(tmp) + ["--seeds", "0-100000", "--status"]),
    ("grid-option-value-a-word-for-a-bool-int", toml('datasets = ["tiny[size=yes]"]\n')),
]


def write(path, text):
    path.write_text(text)
    return path


def invoke(host, argv, results, env=None):
    if "--results" not in argv and argv[0] in {"run", "compare", "figure", "grid", "score"}:
        argv = argv + ["--results", str(results)]
    return CliRunner().invoke(create_app(host), argv, env=env)


def assert_one_error(result):
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    return errors[0]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_bad_value_is_one_error_line_and_no_record(case, host, tmp_path, monkeypatch):
    name, argv = case
    monkeypatch.setenv("PETBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # `--results ''` would write here
    argv = argv(tmp_path) if callable(argv) else argv
    before = set(tmp_path.rglob("*"))
    result = invoke(host, argv, tmp_path / "results")
    assert_one_error(result)
    assert not list(tmp_path.rglob("run.json")), f"{name} left a record"
    if name.startswith("grid"):
        assert not (tmp_path / "results" / ".grids").exists() or not list((tmp_path / "results" / ".grids").iterdir())
    assert not [p for p in set(tmp_path.rglob("*")) - before if p.suffix == ".json"]


def test_strict_booleans_numbers_and_shapes():
    defaults = {"flag": False, "epochs": 2, "lr": 1e-3, "betas": [0.9, 0.999], "name": "x", "table": {"a": 1}}
    check = lambda **given: resolve_options("method 'm'", defaults, {}, None, given)  # noqa: E731
    assert check(flag=True, epochs=3.0, lr=1, betas=[0.5, 0.9])["lr"] == 1.0
    assert check(epochs=3.0)["epochs"] == 3 and isinstance(check(epochs=3.0)["epochs"], int)
    for bad in ({"flag": 1}, {"flag": "yes"}, {"epochs": True}, {"epochs": 2.5}, {"lr": True}, {"lr": "1e-3"},
                {"betas": {"a": 1}}, {"betas": [True, 0.5]}, {"lr": math.nan}, {"lr": math.inf}, {"table": [1]},
                {"name": ["x"]}, {"epochs": None}):
        with pytest.raises(UserError):
            check(**bad)


def test_a_plugin_declares_its_constraints_and_the_host_checks_them():
    """A third-party method gets the same protection: ranges, lengths and checks against the run."""
    class Mine(TinyMethod):
        name = "mine"
        option_constraints = {"lr": between(0, 1, open=True), "width": at_least(1),
                              "epochs": Constraint(run_check=lambda v, o, run: None if v <= run.slice_shape[0]
                                                   else f"exceeds {run.slice_shape[0]}")}

    with pytest.raises(UserError, match="option lr must be in"):
        Mine({"lr": 0.0})
    with pytest.raises(UserError, match="option width must be"):
        Mine({"width": 0})
    method = Mine({"epochs": 64})
    run = RunContext(dataset="tiny", drf=4, device=torch.device("cpu"), slice_shape=(32, 32))
    with pytest.raises(UserError, match="epochs=64 exceeds 32"):
        check_against_run("method 'mine'", method.options, Mine.option_constraints, run)
    check_against_run("method 'mine'", Mine({"epochs": 32}).options, Mine.option_constraints, run)


# -- a record's content never becomes a path ----------------------------------------------------------
@pytest.mark.parametrize("planted", ["../../x", "/tmp/x", "../outside", "x/../../y"])
def test_a_planted_run_id_is_damaged_and_nothing_is_written_outside(planted, host, tmp_path):
    results = tmp_path / "lab" / "results"
    record = fake_record(results, "lpet", 0, {"psnr": [30.0, 31.0]})
    data = json.loads((record.path / "run.json").read_text())
    data["run_id"] = planted
    (record.path / "run.json").write_text(json.dumps(data))
    found = read_run_folder(record.path)
    assert isinstance(found, DamagedRun) and "run_id" in found.reason, found
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    for argv in (["score", "--metrics", "psnr"], ["compare"]):
        result = invoke(host, argv, results)
        assert "Traceback" not in result.output, result.output
        assert f"{record.path / 'run.json'}" in result.output, result.output
    after = set(tmp_path.rglob("*"))
    outside = [p for p in after - set(before) if results not in p.parents]
    assert not outside, outside
    assert not (tmp_path / "x.lock").exists() and not pathlib.Path("/tmp/x.lock").exists()


def test_the_run_id_is_the_folder_name(tmp_path):
    record = fake_record(tmp_path / "results", "lpet", 0, {"psnr": [30.0, 31.0]})
    assert record.run_id == record.path.name
    copy = tmp_path / "results" / "lpet_copy"
    copy.mkdir()
    for name in ("run.json", "metrics.csv"):
        (copy / name).write_bytes((record.path / name).read_bytes())
    found = read_run_folder(copy)
    assert isinstance(found, DamagedRun) and "folder's name" in found.reason


# -- a leaderboard never changes silently ---------------------------------------------------------------
def edit_rows(record, change, reseal):
    rows = pd.read_csv(record.path / "metrics.csv", dtype={"subject": str})
    text = change(rows).to_csv(index=False)
    (record.path / "metrics.csv").write_text(text)
    data = json.loads((record.path / "run.json").read_text())
    if reseal:  # the strongest forgery: the seal made to fit, so only the split can tell
        data["metrics_file"] = seal(text.encode())
    else:
        data.pop("metrics_file", None)  # a record from before the seal
    (record.path / "run.json").write_text(json.dumps(data))


CHANGES = {
    "subject-removed": lambda rows: rows[rows["subject"] != "tiny001"],
    "subject-outside-the-split": lambda rows: pd.concat(
        [rows, pd.DataFrame([{"subject": "tiny999", "metric": "psnr", "value": 99.0}])]),
    "row-duplicated": lambda rows: pd.concat([rows, rows.iloc[:1]]),
    "value-infinite": lambda rows: rows.assign(value=[-math.inf] + list(rows["value"][1:])),
}


@pytest.mark.parametrize("reseal", [True, False], ids=["resealed", "unsealed"])
@pytest.mark.parametrize("change", list(CHANGES))
def test_compare_names_a_changed_metrics_file_and_never_averages_around_it(change, reseal, host, tmp_path):
    results = tmp_path / "results"
    fake_record(results, "lpet", 0, {"psnr": [30.0, 31.0, 32.0]})
    bad = fake_record(results, "lpet", 1, {"psnr": [20.0, 21.0, 22.0]})
    edit_rows(bad, CHANGES[change], reseal)
    result = invoke(host, ["compare", "--format", "csv"], results)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(bad.path / "metrics.csv") in warnings[0], result.output
    board = [line for line in result.output.splitlines() if not line.startswith("warning:")]
    rows = list(csv.DictReader(board))
    assert len(rows) == 1, result.output  # seed 0 alone, never 26
    assert rows[0]["psnr_mean"] == "31.0" and rows[0]["psnr_n_seeds"] == "1", result.output


def test_a_metrics_file_changed_after_the_run_is_caught_by_its_seal(tmp_path):
    record = fake_record(tmp_path / "results", "lpet", 0, {"psnr": [30.0, 31.0]})
    text = (record.path / "metrics.csv").read_text().replace("31.0", "35.0")
    (record.path / "metrics.csv").write_text(text)
    found = read_run_folder(record.path)
    assert isinstance(found, DamagedRun) and "differs" in found.reason


def test_score_rebuilds_a_damaged_metrics_file_from_the_predictions(host, tmp_path):
    results = tmp_path / "results"
    record = fake_record(results, "lpet", 0, {"psnr": [1.0, 2.0, 3.0]}, predictions=True)
    first = invoke(host, ["score", "--metrics", "psnr", "--run", record.run_id], results)
    edit_rows(record, CHANGES["subject-removed"], reseal=False)
    assert isinstance(read_run_folder(record.path), DamagedRun)
    result = invoke(host, ["score", "--metrics", "psnr", "-q"], results)
    assert result.exit_code == 0, (first.output, result.output)
    assert "rebuilt" in result.output, result.output
    rebuilt = read_run_folder(record.path)
    assert isinstance(rebuilt, RunRecord), rebuilt
    rows = rebuilt.rows()
    assert sorted(rows["subject"]) == sorted(record.data["splits"]["test"])
    dataset = TinyDataset()
    for sid, value in zip(rows["subject"], rows["value"]):  # PSNR of the saved prediction, computed here
        ref = dataset.load(sid, ()).spet.astype(np.float64)
        from petbench.data.nifti import load_volume
        pred = np.asarray(load_volume(record.path / "predictions" / f"{sid}.nii.gz")[0], dtype=np.float64)
        assert np.isfinite(value) and value > 10  # the stand-in's 1.0/2.0/3.0 were replaced by real scores
        assert pred.shape == ref.shape


def test_an_all_nan_prediction_is_never_scored(host, tmp_path):
    results = tmp_path / "results"
    record = fake_record(results, "lpet", 0, {"psnr": [30.0, 31.0]}, predictions=True)
    sid = record.data["splits"]["test"][0]
    path = record.path / "predictions" / f"{sid}.nii.gz"
    save_volume(path, np.full((8, 8, 4), np.nan, np.float32), np.eye(4))
    result = invoke(host, ["score", "--metrics", "ssim"], results)
    error = assert_one_error(result)
    assert str(path) in error and "non-finite" in error
    assert "ssim" not in pd.read_csv(record.path / "metrics.csv")["metric"].tolist()


def test_a_method_that_predicts_nan_fails_its_run(host, tmp_path, monkeypatch):
    monkeypatch.setattr(TinyMethod, "predict", lambda self, lpet: torch.full_like(lpet, float("nan")))
    result = invoke(host, RUN, tmp_path / "r")
    assert result.exit_code == 1 and "non-finite" in result.output, result.output
    (run_file,) = (tmp_path / "r").glob("*/run.json")
    data = json.loads(run_file.read_text())
    assert data["status"] == "failed" and "non-finite" in data["error"]


# -- hangs and the wrong kind of file ------------------------------------------------------------------
def test_a_fifo_or_a_link_to_dev_zero_never_hangs_compare(host, tmp_path):
    results = tmp_path / "results"
    fake_record(results, "lpet", 0, {"psnr": [30.0, 31.0]})
    fifo = fake_record(results, "lpet", 1, {"psnr": [30.0, 31.0]})
    (fifo.path / "run.json").unlink()
    os.mkfifo(fifo.path / "run.json")
    zero = fake_record(results, "lpet", 2, {"psnr": [30.0, 31.0]})
    (zero.path / "metrics.csv").unlink()
    (zero.path / "metrics.csv").symlink_to("/dev/zero")
    deep = fake_record(results, "lpet", 3, {"psnr": [30.0, 31.0]})
    (deep.path / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    result = invoke(host, ["compare", "--format", "csv"], results)
    assert result.exit_code == 0, result.output
    warned = "\n".join(line for line in result.output.splitlines() if line.startswith("warning:"))
    for bad in (fifo.path / "run.json", zero.path / "metrics.csv", deep.path / "run.json"):
        assert str(bad) in warned, result.output


def test_a_link_leaving_the_run_folder_is_not_followed(tmp_path):
    outside = fake_record(tmp_path / "elsewhere", "lpet", 0, {"psnr": [30.0, 31.0]})
    record = fake_record(tmp_path / "results", "lpet", 1, {"psnr": [30.0, 31.0]})
    (record.path / "metrics.csv").unlink()
    (record.path / "metrics.csv").symlink_to(outside.path / "metrics.csv")
    found = read_run_folder(record.path)
    assert isinstance(found, DamagedRun) and "outside" in found.reason


@pytest.mark.parametrize("where", [".locks-a-file", ".locks-a-link", "lock-a-link", "run-folder-a-file",
                                   "run-json-a-folder"])
def test_the_wrong_kind_of_file_is_one_error_line(where, host, tmp_path):
    results = tmp_path / "results"
    first = invoke(host, LPET, results)
    assert first.exit_code == 0, first.output
    (run_dir,) = [p for p in results.iterdir() if not p.name.startswith(".")]
    if where == ".locks-a-file":
        import shutil
        shutil.rmtree(results / ".locks")
        (results / ".locks").write_text("x")
    elif where == ".locks-a-link":
        import shutil
        shutil.rmtree(results / ".locks")
        (tmp_path / "elsewhere").mkdir()
        (results / ".locks").symlink_to(tmp_path / "elsewhere")
    elif where == "lock-a-link":
        (lock,) = (results / ".locks").iterdir()
        lock.unlink()
        (tmp_path / "victim").write_text("keep me")
        lock.symlink_to(tmp_path / "victim")
    elif where == "run-folder-a-file":
        import shutil
        shutil.rmtree(run_dir)
        run_dir.write_text("x")
    else:
        (run_dir / "run.json").unlink()
        (run_dir / "run.json").mkdir()
    error = assert_one_error(invoke(host, LPET + ["--force"], results))
    assert str(results) in error
    assert not (tmp_path / "elsewhere").exists() or not list((tmp_path / "elsewhere").iterdir())
    assert not (tmp_path / "victim").exists() or (tmp_path / "victim").read_text() == "keep me"


def test_a_damaged_grid_state_is_named_and_rebuilt(host, tmp_path):
    results = tmp_path / "results"
    grid = write(tmp_path / "g.toml", 'methods = ["lpet"]\ndataset = "tiny"\ndrf = 4\npreset = "quick"\n'
                 '[protocol]\nn_train = 0\nn_test = 2\nn_unpaired = 0\n')
    assert invoke(host, ["grid", str(grid), "-q"], results).exit_code == 0
    (state,) = (results / ".grids").glob("*.json")
    for damage in ('{"cells": [1, 2]}', "[1,2]", "{" * 10_000, '{"cells": {"k": {"run_id": "../../x"}}}'):
        state.write_text(damage)
        result = invoke(host, ["grid", str(grid), "-q"], results)
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        assert f"grid state {state} is damaged" in result.output, result.output
        assert json.loads(state.read_text())["cells"], "rebuilt from the records"


def test_a_history_line_that_is_not_an_entry_is_one_error_line(host, tmp_path):
    results = tmp_path / "results"
    assert invoke(host, RUN, results).exit_code == 0
    (run_dir,) = [p for p in results.iterdir() if not p.name.startswith(".")]
    (run_dir / "history.jsonl").write_text("[1,2]\n")
    error = assert_one_error(invoke(host, ["figure", "curves", "--run", run_dir.name, "--out",
                                           str(tmp_path / "c.png")], results))
    assert "history.jsonl" in error and "line 1" in error


def test_a_checkpoint_without_its_rng_entry_falls_back(host, tmp_path):
    results = tmp_path / "results"
    args = RUN[:-1] + ["epochs=2"]
    assert invoke(host, args, results).exit_code == 0
    (run_dir,) = [p for p in results.iterdir() if not p.name.startswith(".")]
    last = run_dir / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    state["position"]["epoch"] = max(1, int(state["position"]["epoch"]))
    del state["rng"]
    torch.save(state, last)
    (run_dir / "checkpoints" / "previous.pt").unlink(missing_ok=True)
    data = json.loads((run_dir / "run.json").read_text())
    data["status"] = "interrupted"
    (run_dir / "run.json").write_text(json.dumps(data))
    again = invoke(host, args, results)
    assert again.exit_code == 0, again.output
    assert "last.pt" in again.output and (run_dir / "checkpoints" / "last.pt.unreadable").exists()


def test_a_full_disk_mid_run_leaves_it_resumable_and_it_finishes_identically(host, tmp_path, monkeypatch):
    """ENOSPC at the second checkpoint write: one Error line, the record is not "running" or "failed",
    and the re-run (space freed) gives the metrics of an uninterrupted run."""
    from contextlib import contextmanager

    import petbench.engine.trainer as trainer

    args = RUN[:-1] + ["epochs=3"]
    clean = tmp_path / "clean"
    assert invoke(host, args, clean).exit_code == 0
    results = tmp_path / "results"
    real, calls = trainer.atomic_path, {"n": 0}

    @contextmanager
    def full_disk(path, suffix=""):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        with real(path, suffix) as tmp:
            yield tmp

    monkeypatch.setattr(trainer, "atomic_path", full_disk)
    error = assert_one_error(invoke(host, args, results))
    assert "no space left" in error and "last.pt" in error, error
    (run_dir,) = [p for p in results.iterdir() if not p.name.startswith(".")]
    found = read_run_folder(run_dir)
    assert isinstance(found, RunRecord) and found.status == "interrupted", found
    monkeypatch.setattr(trainer, "atomic_path", real)
    again = invoke(host, args, results)
    assert again.exit_code == 0, again.output
    (clean_dir,) = [p for p in clean.iterdir() if not p.name.startswith(".")]
    assert (run_dir / "metrics.csv").read_text() == (clean_dir / "metrics.csv").read_text()


def test_a_copied_phantom_volume_fails_its_checksum_and_is_regenerated(tmp_path, monkeypatch):
    from petbench.default_plugins.phantom import Phantom

    monkeypatch.setenv("PETBENCH_CACHE", str(tmp_path / "cache"))
    dataset = Phantom(size=32, n_subjects=2)
    first, second = dataset.subject_ids()
    dataset.prepare([first, second], ())
    own = dataset.load(second, ()).spet.copy()
    target = dataset.store.path(second)
    target.write_bytes(dataset.store.path(first).read_bytes())  # another subject's SPET, planted
    again = Phantom(size=32, n_subjects=2).load(second, ()).spet
    assert np.array_equal(again, own)
    assert not np.array_equal(again, dataset.load(first, ()).spet)


class SliceBound(TinyMethod):
    """A third-party method whose option must fit the slice: the host checks it before any record."""

    name = "slice-bound"
    option_constraints = {"width": Constraint(low=1, run_check=lambda width, _options, run: None if width <= run.slice_shape[0]
                                              else f"is wider than the {run.slice_shape[0]}-pixel slices")}


def test_the_host_checks_a_plugins_run_constraint_before_any_record(tmp_path):
    from petbench import hookimpl
    from petbench.testing.toys import isolated_host
    import types

    @hookimpl(specname="register_methods")
    def register(register):
        register(SliceBound)

    from petbench.plugins import set_host

    host = isolated_host(TOY_PLUGIN, types.SimpleNamespace(__name__="third-party", register_methods=register))
    argv = [a if a != "tiny-cnn" else "slice-bound" for a in RUN]
    try:
        error = assert_one_error(invoke(host, argv + ["-o", "width=64"], tmp_path / "results"))
        assert "width=64 is wider than the 8-pixel slices" in error
        assert not list(tmp_path.rglob("run.json"))
        assert invoke(host, argv + ["-o", "width=8"], tmp_path / "results").exit_code == 0
    finally:
        set_host(None)  # create_app made it the CLI's host: later tests get the default one again


def test_a_rerun_rebuilds_a_damaged_metrics_file_and_says_so(host, tmp_path):
    results = tmp_path / "results"
    assert invoke(host, RUN, results).exit_code == 0
    (run_dir,) = [p for p in results.iterdir() if not p.name.startswith(".")]
    original = (run_dir / "metrics.csv").read_text()
    record = RunRecord(run_dir, json.loads((run_dir / "run.json").read_text()))
    edit_rows(record, lambda rows: rows[rows["subject"] != rows["subject"].iloc[0]], reseal=False)
    again = invoke(host, RUN, results)
    assert again.exit_code == 0, again.output
    assert f"damaged run record {run_dir / 'metrics.csv'}" in again.output and "rebuilt" in again.output
    assert (run_dir / "metrics.csv").read_text() == original
    assert isinstance(read_run_folder(run_dir), RunRecord)


def test_a_conversion_cache_entry_that_does_not_fit_its_key_is_rebuilt(tmp_path):
    """User data's cache: a copied volume fails its SHA-256, a sidecar of the wrong shape its schema;
    each entry is discarded (and so converted again from the user's files)."""
    from petbench.datasets.scanned.cache import ConversionCache

    cache = ConversionCache("folder", root=tmp_path)
    one, two = {"source": "a", "crop": "none"}, {"source": "b", "crop": "none"}
    volume = np.arange(64, dtype=np.float32).reshape(4, 4, 4)
    cache.put_volume(one, volume, np.eye(4), {})
    cache.put_volume(two, volume * 2, np.eye(4), {})
    assert np.array_equal(cache.get_volume(two)[0], volume * 2)
    cache.path("volumes", two, ".nii.gz").write_bytes(cache.path("volumes", one, ".nii.gz").read_bytes())
    assert cache.get_volume(two) is None  # another entry's volume, planted: its checksum differs
    sidecar = cache.path("volumes", one, ".json")
    data = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**data, "shape": "4x4x4"}))
    assert cache.get_volume(one) is None and not sidecar.exists()


def test_a_damaged_conversion_cache_entry_is_one_warning_line_naming_its_file(tmp_path, caplog):
    """A mismatch is the cache's own damage (a changed source file is a new key): one warning line naming the
    cache file, and the entry is deleted, so the next read converts the user's files again."""
    import logging

    from petbench.datasets.scanned.cache import ConversionCache

    cache = ConversionCache("udpet", root=tmp_path)
    key = {"source": "a", "crop": "none"}
    cache.put_volume(key, np.ones((4, 4, 4), dtype=np.float32), np.eye(4), {})
    volume, sidecar = cache.path("volumes", key, ".nii.gz"), cache.path("volumes", key, ".json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "key": {"source": "b", "crop": "none"}}))
    with caplog.at_level(logging.WARNING, logger="petbench"):
        assert cache.get_volume(key) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert str(sidecar) in line and "\n" not in line and "converted again" in line, line
    assert not sidecar.exists() and not volume.exists()


def test_a_running_record_that_no_process_holds_reads_as_interrupted(tmp_path):
    from petbench.results.lock import RunLock

    record = fake_record(tmp_path / "results", "lpet", 0, {"psnr": [30.0, 31.0]})
    record.data["status"] = "running"
    record.save()
    assert read_run_folder(record.path).status == "interrupted"  # its writer is gone (killed, or a full disk)
    with RunLock(tmp_path / "results", record.run_id):
        import subprocess
        code = ("import sys; from petbench.results.record import read_run_folder; "
                f"print(read_run_folder({str(record.path)!r}).status)")
        seen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert seen.strip() == "running"  # held by a live process: it is running
