"""Bad inputs through the CLI: each is one `Error:` line, exit code 2, no traceback and no record left.

The table below is the campaign of issue 12 (item "bad inputs"); cases that wait on other work are
marked xfail(strict=False) with the reason. Then the malformed-record matrix of `compare`/`figure`/`grid`
(a warning line naming the file, or with --strict an error), and the small reliability helpers."""
import json
import os
import pathlib
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make grid_helpers importable
from grid_helpers import fake_record  # noqa: E402

from petbench.atomic import atomic_write_text, remove_stale_temporaries  # noqa: E402
from petbench.cli import create_app  # noqa: E402
from petbench.data.volume_checks import degenerate  # noqa: E402
from petbench.errors import UserError  # noqa: E402
from petbench.method import Stage, validate_stages  # noqa: E402
from petbench.results.schema import seal  # noqa: E402
from petbench.options import Constraint, coerce, parse_assignments, resolve_options  # noqa: E402
from petbench.paths import safe_name, writable_dir  # noqa: E402
from petbench.results.formats import latex_escape  # noqa: E402
from petbench.results.record import find_records  # noqa: E402
from petbench.testing.toys import TinyMethod  # noqa: E402

RUN = ["run", "--method", "tiny-cnn", "--dataset", "tiny", "--n-train", "4", "--n-test", "3", "--n-unpaired", "0",
       "--drf", "4", "--preset", "quick", "-q", "-D", "size=8", "-D", "depth=4", "-o", "epochs=1"]
PHANTOM = ["run", "--method", "lpet", "--dataset", "phantom", "--n-train", "0", "--n-test", "2", "--n-unpaired", "0",
           "-D", "size=32", "-D", "n_subjects=2", "-q"]


def with_option(args, flag, value):
    """``args`` with ``flag``'s value replaced (or added)."""
    args = list(args)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    return args


def grid_toml(text):
    def setup(tmp):
        path = tmp / "bad.toml"
        path.write_text(text)
        return {"GRID": str(path)}
    return setup


def file_at(name):
    def setup(tmp):
        (tmp / name).write_text("not a folder")
        return {}
    return setup


def truncated_record(tmp):
    record = fake_record(tmp / "results", "lpet", 0, {"psnr": [30.0, 31.0]})
    (record.path / "run.json").write_text((record.path / "run.json").read_text()[:50])
    return {}


def one_record(tmp):
    fake_record(tmp / "results", "lpet", 0, {"psnr": [30.0, 31.0]})
    return {}


# (id, argv with {RESULTS}/{TMP}/{GRID} placeholders, setup(tmp) -> extra placeholders, env, xfail reason)
CASES = [
    ("unknown-method", with_option(RUN, "--method", "no-such-method"), None, {}, None),
    ("unknown-dataset", with_option(RUN, "--dataset", "no-such-dataset"), None, {}, None),
    ("unknown-preset", with_option(RUN, "--preset", "fast"), None, {}, None),
    ("drf-not-offered", with_option(RUN, "--drf", "3"), None, {}, None),
    ("unknown-method-option", RUN + ["-o", "bogus=1"], None, {}, None),
    ("method-option-not-int", RUN + ["-o", "width=wide"], None, {}, None),
    ("option-without-equals", RUN + ["-o", "epochs"], None, {}, None),
    ("stage-epochs-0", RUN + ["-o", "epochs=0"], None, {}, None),
    ("stage-batch-size-0", RUN + ["-o", "batch_size=0"], None, {}, None),
    ("stage-steps-per-epoch-negative", RUN + ["-o", "steps_per_epoch=-2"], None, {}, None),
    ("unknown-dataset-option", RUN + ["-D", "bogus=1"], None, {}, None),
    ("dataset-option-not-int", RUN + ["-D", "n_subjects=many"], None, {}, None),
    ("n-test-0", with_option(RUN, "--n-test", "0"), None, {}, None),
    ("n-train-negative", with_option(RUN, "--n-train", "-1"), None, {}, None),
    ("n-train-too-many", with_option(RUN, "--n-train", "50"), None, {}, None),
    ("n-unpaired-too-many", with_option(RUN, "--n-unpaired", "50"), None, {}, None),
    ("n-train-0-for-a-trained-method", with_option(RUN, "--n-train", "0"), None, {}, None),
    ("unknown-metric", RUN + ["--metrics", "psnr,bogus"], None, {}, None),
    ("unknown-device", RUN + ["--device", "tpu"], None, {}, None),
    ("unknown-precision", RUN + ["--precision", "fp8"], None, {}, None),
    ("checkpoint-every-bogus", RUN + ["--checkpoint-every", "often"], None, {}, None),
    ("checkpoint-every-zero-steps", RUN + ["--checkpoint-every", "0"], None, {}, None),
    ("results-is-a-file", with_option(RUN, "--results", "{TMP}/afile"), file_at("afile"), {}, None),
    ("results-under-a-file", with_option(RUN, "--results", "{TMP}/afile/sub"), file_at("afile"), {}, None),
    ("results-in-proc", with_option(RUN, "--results", "/proc/petbench-results"), None, {}, None),
    ("cache-is-a-file", PHANTOM, file_at("cachefile"), {"PETBENCH_CACHE": "{TMP}/cachefile"}, None),
    ("cache-in-proc", PHANTOM, None, {"PETBENCH_CACHE": "/proc/petbench-cache"}, None),
    ("compare-unknown-format", ["compare", "--format", "docx"], one_record, {}, None),
    ("compare-no-records", ["compare"], None, {}, None),
    ("compare-results-is-a-file", ["compare", "--results", "{TMP}/afile"], file_at("afile"), {}, None),
    ("compare-unknown-metric", ["compare", "--metrics", "bogus"], one_record, {}, None),
    ("compare-strict-truncated-record", ["compare", "--strict"], truncated_record, {}, None),
    ("compare-only-record-truncated", ["compare"], truncated_record, {}, None),
    ("figure-out-in-proc", ["figure", "dose", "--out", "/proc/petbench/fig.png"], one_record, {}, None),
    ("figure-out-is-a-folder", ["figure", "dose", "--out", "{TMP}"], one_record, {}, None),
    ("figure-out-not-png", ["figure", "dose", "--out", "{TMP}/fig.txt"], one_record, {}, None),
    ("figure-table-3", ["figure", "--table", "3", "--out", "{TMP}/fig.png"], one_record, {}, None),
    ("figure-bad-zoom", ["figure", "--table", "1", "--zoom", "1,2", "--out", "{TMP}/fig.png"], one_record, {}, None),
    ("grid-unknown", ["grid", "table9"], None, {}, None),
    ("grid-n-train-not-int", ["grid", "{GRID}"], grid_toml('methods = ["lpet"]\ndataset = "tiny"\n'
                                                          '[protocol]\nn_train = "two"\n'), {}, None),
    ("grid-invalid-toml", ["grid", "{GRID}"], grid_toml("methods = [\n"), {}, None),
    ("grid-unknown-key", ["grid", "{GRID}"], grid_toml('methods = ["lpet"]\ndataset = "tiny"\nepochs = 3\n'), {}, None),
    ("grid-unknown-executor", ["grid", "table1", "--dataset", "tiny", "--executor", "k8s"], None, {}, None),
    ("grid-results-is-a-file", ["grid", "{GRID}", "--results", "{TMP}/afile"],
     lambda tmp: {**file_at("afile")(tmp), **grid_toml('methods = ["lpet"]\ndataset = "tiny"\n')(tmp)}, {}, None),
    ("grid-stage-epochs-0", ["grid", "{GRID}"], grid_toml('methods = ["tiny-cnn[epochs=0]"]\ndataset = "tiny"\n'
                                                         'drf = 4\n[protocol]\nn_train = 4\nn_test = 3\n'
                                                         'n_unpaired = 0\n'), {}, None),
]


def run_json_files(root: pathlib.Path) -> set[pathlib.Path]:
    return set(root.rglob("run.json")) if root.exists() else set()


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0], marks=[pytest.mark.xfail(strict=False, reason=c[4])]
                                               if c[4] else []) for c in CASES])
def test_bad_input_is_one_error_line(case, host, tmp_path, monkeypatch):
    name, argv, setup, env, _ = case
    results = tmp_path / "results"
    values = {"TMP": str(tmp_path), "RESULTS": str(results)}
    if setup is not None:
        values.update(setup(tmp_path))
    monkeypatch.setenv("PETBENCH_CACHE", str(tmp_path / "cache"))
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(**values))
    argv = [a.format(**values) for a in argv]
    if "--results" not in argv and argv[0] in {"run", "compare", "figure", "grid"}:
        argv += ["--results", str(results)]
    before = run_json_files(tmp_path)
    result = CliRunner().invoke(create_app(host), argv)
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    assert run_json_files(tmp_path) == before, f"{name} left a record: {run_json_files(tmp_path) - before}"


# -- malformed records: said, skipped, and with --strict an error ----------------------------------------
def damage(kind: str, record) -> None:
    run_file, metrics_file = record.path / "run.json", record.path / "metrics.csv"
    data = json.loads(run_file.read_text())
    if kind == "truncated-run-json":
        run_file.write_text(run_file.read_text()[:len(run_file.read_text()) // 2])
    elif kind == "empty-run-json":
        run_file.write_text("")
    elif kind == "run-json-a-list":
        run_file.write_text("[1, 2]")
    elif kind == "random-bytes-run-json":
        run_file.write_bytes(np.random.default_rng(1).bytes(300))
    elif kind == "no-method":
        del data["method"]
    elif kind == "method-a-string":
        data["method"] = "lpet"
    elif kind == "protocol-a-string":
        data["protocol"] = "drf10"
    elif kind == "drf-a-string":
        data["protocol"]["drf"] = "4"
    elif kind == "seed-missing":
        del data["config"]["seed"]
    elif kind == "metrics-info-a-list":
        data["metrics"] = ["psnr"]
    elif kind == "direction-missing":
        del data["metrics"]["psnr"]["higher_is_better"]
    elif kind == "options-a-list":
        data["method"]["options"] = [1, 2]
    elif kind == "status-unknown":
        data["status"] = 7
    elif kind == "random-bytes-metrics":
        metrics_file.write_bytes(np.random.default_rng(2).bytes(300))
    elif kind == "empty-metrics":
        metrics_file.write_text("")
    elif kind == "metrics-missing":
        metrics_file.unlink()
    elif kind == "metrics-no-value-column":
        metrics_file.write_text("subject,metric\ntiny000,psnr\n")
    elif kind == "metrics-text-value":
        metrics_file.write_text("subject,metric,value\ntiny000,psnr,high\ntiny001,psnr,30\n")
    elif kind == "metrics-undescribed":
        metrics_file.write_text("subject,metric,value\ntiny000,ssim,0.5\ntiny001,psnr,30\n")
    else:
        raise AssertionError(kind)
    if kind in {"no-method", "method-a-string", "protocol-a-string", "drf-a-string", "seed-missing",
                "metrics-info-a-list", "direction-missing", "options-a-list", "status-unknown"}:
        run_file.write_text(json.dumps(data))


DAMAGES = ["truncated-run-json", "empty-run-json", "run-json-a-list", "random-bytes-run-json", "no-method",
           "method-a-string", "protocol-a-string", "drf-a-string", "seed-missing", "metrics-info-a-list",
           "direction-missing", "options-a-list", "status-unknown", "random-bytes-metrics", "empty-metrics",
           "metrics-missing", "metrics-no-value-column", "metrics-text-value",
           "metrics-undescribed"]


@pytest.mark.parametrize("kind", DAMAGES)
def test_compare_names_a_malformed_record_and_goes_on(kind, host, tmp_path):
    results = tmp_path / "results"
    fake_record(results, "lpet", 0, {"psnr": [30.0, 31.0]})
    bad = fake_record(results, "cyclegan", 0, {"psnr": [32.0, 33.0]})
    damage(kind, bad)
    app, runner = create_app(host), CliRunner()
    result = runner.invoke(app, ["compare", "--results", str(results), "--format", "csv"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(bad.path) in warnings[0], result.output
    assert "lpet" in result.output and "cyclegan" not in result.output.replace(warnings[0], "")
    strict = runner.invoke(app, ["compare", "--results", str(results), "--strict"])
    assert strict.exit_code == 2, strict.output
    errors = [line for line in strict.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and str(bad.path) in errors[0] and "Traceback" not in strict.output


def test_figure_dose_names_a_malformed_record(host, tmp_path):
    results = tmp_path / "results"
    for drf in (4, 10):
        fake_record(results, "lpet", 0, {"psnr": [30.0, 31.0]}, drf=drf)
    bad = fake_record(results, "cyclegan", 0, {"psnr": [32.0, 33.0]})
    damage("protocol-a-string", bad)
    out = tmp_path / "dose.png"
    result = CliRunner().invoke(create_app(host), ["figure", "dose", "--out", str(out), "--results", str(results)])
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("warning:") and str(bad.path) in line for line in result.output.splitlines()) == 1
    assert out.is_file()


def test_grid_names_a_malformed_cell_record_and_runs_it_again(host, tmp_path):
    results = tmp_path / "results"
    grid = tmp_path / "g.toml"
    grid.write_text('methods = ["lpet"]\ndataset = "tiny"\ndrf = 4\npreset = "quick"\n'
                    '[protocol]\nn_train = 0\nn_test = 2\nn_unpaired = 0\n')
    app, runner = create_app(host), CliRunner()
    first = runner.invoke(app, ["grid", str(grid), "--results", str(results), "-q"])
    assert first.exit_code == 0, first.output
    (record,) = find_records(results)
    damage("metrics-text-value", record)
    strict = runner.invoke(app, ["grid", str(grid), "--results", str(results), "-q", "--strict"])
    assert strict.exit_code == 2 and str(record.path) in strict.output, strict.output
    again = runner.invoke(app, ["grid", str(grid), "--results", str(results), "-q"])
    assert again.exit_code == 0, again.output
    assert sum(line.startswith("warning:") and str(record.path) in line for line in again.output.splitlines()) == 1
    assert [r.run_id for r in find_records(results)] == [record.run_id]  # run again, usable again


# -- the helpers --------------------------------------------------------------------------------------
def test_crop_none_stays_a_word_and_numbers_still_parse():
    parsed = parse_assignments(["crop=none", "size=32", "lr=2e-4", "betas=[0.5,0.999]", "counts=none"])
    options = resolve_options("dataset 'x'", {"crop": "fixed", "size": 128, "lr": 1e-3, "betas": [0.9, 0.99],
                                              "counts": None}, {}, None, parsed)
    assert options == {"crop": "none", "size": 32, "lr": 2e-4, "betas": [0.5, 0.999], "counts": None}
    assert coerce("x", "k", None, [1], Constraint(optional=True)) is None  # declared optional: None is "not set"
    with pytest.raises(UserError, match="must be set"):  # otherwise None is no list (only a string takes the word)
        coerce("x", "k", None, [1])


def test_latex_escapes_every_special_character():
    name = "\\immediate\\write18{rm -rf ~}_50%&#$^<>|"
    escaped = latex_escape(name)
    assert "\\immediate" not in escaped and "\\write18" not in escaped
    assert escaped == (r"\textbackslash{}immediate\textbackslash{}write18\{rm -rf \textasciitilde{}\}\_50\%\&\#"
                       r"\$\^{}\textless{}\textgreater{}\textbar{}")


def test_compare_latex_escapes_method_names(host, tmp_path):
    results = tmp_path / "results"
    fake_record(results, "evil\\input{passwd}", 0, {"psnr": [30.0, 31.0]})
    result = CliRunner().invoke(create_app(host), ["compare", "--results", str(results), "--format", "latex"])
    assert result.exit_code == 0, result.output
    # the LaTeX is stdout; the notes (stderr) are plain text for the terminal
    assert "\\input{" not in result.stdout and r"evil\textbackslash{}input\{passwd\}" in result.stdout
    assert r"\textbf{" in result.stdout  # our own markup is kept


def test_grid_names_are_one_path_component():
    assert safe_name("../../x") == "x" and safe_name("..") == "grid" and "/" not in safe_name("a/b\\c")


def test_atomic_writes_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    import socket
    import subprocess

    from petbench.atomic import HOST

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".tmp-{dead.pid}@{HOST}-abc.pt"
    live = tmp_path / f".tmp-{os.getppid()}@{HOST}-def.pt"
    other_host = tmp_path / f".tmp-{dead.pid}@not-{socket.gethostname()}x-ghi.pt"
    unrelated = tmp_path / ".tmp-oldstyle"
    for path in (stale, live, other_host, unrelated):
        path.write_text("partial")
    assert remove_stale_temporaries(tmp_path, again=True) == [stale]
    assert not stale.exists() and live.exists() and other_host.exists() and unrelated.exists()
    atomic_write_text(tmp_path / "b.txt", "y")  # a writer leaves nothing of its own
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")) == \
        sorted(p.name for p in (live, other_host, unrelated))


def test_writable_dir_leaves_nothing_behind(tmp_path):
    target = tmp_path / "a" / "b"
    assert writable_dir(target, "--results") == target and not (tmp_path / "a").exists()
    (tmp_path / "f").write_text("")
    with pytest.raises(UserError, match="--results .*is not a folder"):
        writable_dir(tmp_path / "f" / "x", "--results")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(UserError, match="cannot write there"):
            writable_dir(locked, "--results")


@pytest.mark.parametrize("volume, reason", [
    (np.zeros((4, 4, 4), np.float32), "all zero"),
    (np.full((4, 4, 4), 2.5, np.float32), "constant"),
    (np.where(np.eye(4, dtype=bool)[None], np.nan, 1.0).astype(np.float32), "NaN or infinite"),
    (np.array([[[0.0, np.inf]]], np.float32), "NaN or infinite"),
])
def test_degenerate_volumes_are_named(volume, reason):
    assert reason in degenerate(volume)
    assert degenerate(np.arange(8, dtype=np.float32).reshape(2, 2, 2)) is None


def stages_with(**changes):
    method = TinyMethod()
    (stage,) = method.stages()
    for key, value in changes.items():
        setattr(stage, key, value)
    return [stage], method


@pytest.mark.parametrize("changes, fragment", [
    ({"epochs": 0}, "epochs=0 must be at least 1"),
    ({"epochs": 1.5}, "epochs=1.5 is not an integer"),
    ({"batch_size": 0}, "batch_size=0 must be at least 1"),
    ({"steps_per_epoch": 0}, "steps_per_epoch=0 must be at least 1"),
    ({"schedulers": ["sched"]}, "schedulers is a list; give a dict"),
    ({"optimizers": {"adam": "sgd"}}, "optimizer 'adam' is a str, not a torch.optim.Optimizer"),
    ({"sources": ("paired", "video")}, "unknown source 'video'"),
    ({"modules": ("net", "decoder")}, "module 'decoder' is not in the method's nets"),
    ({"step": None}, "step is NoneType, not a function"),
])
def test_validate_stages_names_the_stage_and_field(changes, fragment):
    stages, method = stages_with(**changes)
    with pytest.raises(UserError) as caught:
        validate_stages(stages, method)
    assert "method 'tiny-cnn', stage 'supervised'" in str(caught.value) and fragment in str(caught.value)


def test_validate_stages_accepts_the_toy_and_a_scheduler_dict():
    stages, method = stages_with()
    stages[0].schedulers = {"cosine": torch.optim.lr_scheduler.CosineAnnealingLR(stages[0].optimizers["adam"], 4)}
    validate_stages(stages, method)
    with pytest.raises(UserError, match="two stages are named"):
        validate_stages(stages + stages, method)
    with pytest.raises(UserError, match="not a petbench.Stage"):
        validate_stages([Stage], method)


def test_a_metric_that_applies_to_no_subject_is_shown_as_a_dash(host, tmp_path):
    results = tmp_path / "results"
    record = fake_record(results, "lpet", 0, {"psnr": [30.0, 31.0], "nmse": [0.1, 0.2]})
    text = "subject,metric,value\ntiny000,psnr,30\ntiny001,psnr,31\ntiny000,nmse,nan\ntiny001,nmse,\n"
    (record.path / "metrics.csv").write_text(text)
    record.data["metrics_file"] = seal(text.encode())  # written by petbench, not changed afterwards
    record.save()
    app, runner = create_app(host), CliRunner()
    for fmt in ("table", "markdown", "latex", "csv", "json"):
        result = runner.invoke(app, ["compare", "--results", str(results), "--format", fmt, "--metrics", "psnr,nmse"])
        assert result.exit_code == 0 and "Traceback" not in result.output, (fmt, result.output)
        assert "30.5" in result.output, (fmt, result.output)
    markdown = runner.invoke(app, ["compare", "--results", str(results), "--format", "markdown",
                                   "--metrics", "psnr,nmse"]).output
    assert "| –" in markdown or "–  |" in markdown or " – " in markdown, markdown
