"""Issue 23: the bad input generated, not hand-picked (Hypothesis).

For the option parser, the run record, metrics.csv, history.jsonl, the grid TOML and the grid state:
whatever the content, petbench either accepts it as valid (and then it has the promised type) or names
it (a UserError, or a record named damaged); no other exception, nothing written outside the results
folder, and no leaderboard value changed silently."""
import json
import math
import pathlib
import shutil
import sys
import tempfile

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make the helpers importable
from grid_helpers import fake_record  # noqa: E402

from petbench.cli import create_app  # noqa: E402
from petbench.errors import UserError  # noqa: E402
from petbench.grids.run_grid import GridState  # noqa: E402
from petbench.plugins import set_host  # noqa: E402
from petbench.grids.spec import GridSpec, TOML_KEYS, grid_from_dict, load_toml_grid  # noqa: E402
from petbench.options import (Constraint, at_least, between, parse_assignments, parse_value,  # noqa: E402
                              resolve_options)
from petbench.results.lock import lock_path  # noqa: E402
from petbench.results.reading import Damaged  # noqa: E402
from petbench.results.record import DamagedRun, RunRecord, read_run_folder  # noqa: E402
from petbench.results.schema import (is_safe_name, metrics_problem, record_problem,  # noqa: E402
                                     validate_history, validate_record)
from petbench.testing.toys import TOY_PLUGIN, isolated_host  # noqa: E402

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLI = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True) \
    | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
words = st.sampled_from(["true", "false", "True", "yes", "no", "on", "none", "null", "nan", "-inf", "inf", "1",
                         "0", "-1", "2.5", "1e-3", "[1, 2]", "[0.9, 0.999]", "{'a': 1}", "(1,)", "[[1]]", "[", "",
                         "'x'", "1_000", "0x10", "2**10", "[1, 'a']", "{1, 2}", "4" * 400])
option_text = words | st.text(max_size=40)

DEFAULTS = {"flag": False, "epochs": 2, "lr": 1e-3, "betas": [0.9, 0.999], "name": "fixed", "table": {"a": 1},
            "steps": None, "widths": [8, 16]}
CONSTRAINTS = {"epochs": at_least(1), "lr": between(0, 1, open_low=True), "betas": Constraint(
    length=2, items=between(0, 1, open_high=True)), "steps": at_least(1, optional=True, kind=int),
    "widths": Constraint(items=at_least(1))}


# -- the option parser -------------------------------------------------------------------------------------
@FAST
@given(key=st.sampled_from(sorted(DEFAULTS)), text=option_text)
def test_an_option_from_text_is_its_type_in_range_or_one_user_error(key, text):
    try:
        options = resolve_options("method 'm'", DEFAULTS, {}, None, parse_assignments([f"{key}={text}"]),
                                  CONSTRAINTS)
    except UserError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    value, default = options[key], DEFAULTS[key]
    if isinstance(default, bool):
        assert isinstance(value, bool) and text.strip().lower() in {"true", "false"}
    elif isinstance(default, int):
        assert type(value) is int and value >= 1 and text.strip().lower() not in {"true", "false"}
    elif isinstance(default, float):
        assert type(value) is float and math.isfinite(value) and 0 < value <= 1
        assert text.strip().lower() not in {"true", "false"}
    elif isinstance(default, list):
        assert isinstance(value, list) and not isinstance(value, dict)
        assert all(type(v) is int or (type(v) is float and math.isfinite(v)) for v in value)
        if key == "betas":
            assert len(value) == 2 and all(0 <= v < 1 for v in value)
    elif isinstance(default, dict):
        assert isinstance(value, dict)
    elif isinstance(default, str):
        assert isinstance(value, str)
    else:  # steps: None or an integer >= 1
        assert value is None or (type(value) is int and value >= 1)


@FAST
@given(key=st.sampled_from(sorted(DEFAULTS)), value=json_values)
def test_an_option_from_toml_or_a_preset_is_its_type_or_one_user_error(key, value):
    """The same parser for values that arrive typed (a TOML table, a preset): never a bool for a number."""
    try:
        options = resolve_options("dataset 'd'", DEFAULTS, {}, None, {key: value}, CONSTRAINTS)
    except UserError:
        return
    got, default = options[key], DEFAULTS[key]
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        assert not isinstance(got, bool) and math.isfinite(got)
    if isinstance(default, bool):
        assert got is value
    if isinstance(default, list):
        assert not isinstance(value, dict)


@FAST
@given(text=st.text(max_size=60) | words)
def test_parse_value_never_raises_but_a_user_error(text):
    try:
        parse_value(text)
    except UserError:
        pass


# -- names that become paths ----------------------------------------------------------------------------------
@FAST
@given(run_id=st.text(max_size=50) | st.sampled_from(["..", "../x", "/etc/x", "a/../../b", ".locks", "x\x00y"]))
def test_a_lock_is_always_inside_the_results_folder(run_id):
    results = pathlib.Path("/srv/results")
    try:
        path = lock_path(results, run_id)
    except UserError:
        assert not is_safe_name(run_id)
        return
    assert path.parent == results / ".locks" and path.name == f"{run_id}.lock"
    assert (results / ".locks").resolve() in pathlib.Path(str(path)).resolve().parents or \
        pathlib.Path(str(path)).resolve().parent == (results / ".locks").resolve()


# -- the run record ---------------------------------------------------------------------------------------------
@FAST
@given(data=json_values)
def test_any_json_is_a_record_or_named_damaged(data):
    problem = record_problem(data)
    if problem is None:
        validate_record(data)  # agrees
    else:
        assert isinstance(problem, str) and problem and "\n" not in problem
        with pytest.raises(Damaged):
            validate_record(data)


def paths_of(value, prefix=()):
    """Every (path, value) inside a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_of(item, prefix + (index,))


def replaced(data, path, value):
    data = json.loads(json.dumps(data))
    if not path:
        return value
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return data


@pytest.fixture(scope="module")
def template():
    folder = pathlib.Path(tempfile.mkdtemp())
    record = fake_record(folder / "results", "lpet", 0, {"psnr": [30.0, 31.0, 32.0], "ssim": [0.5, 0.6, 0.7]})
    yield record
    shutil.rmtree(folder)


@FAST
@given(choice=st.data(), value=json_values)
def test_a_record_with_any_field_replaced_reads_as_a_record_or_a_named_damaged_one(template, choice, value):
    data = json.loads((template.path / "run.json").read_text())
    path = choice.draw(st.sampled_from(list(paths_of(data))))
    folder = pathlib.Path(tempfile.mkdtemp()) / template.path.name
    try:
        shutil.copytree(template.path, folder)
        (folder / "run.json").write_text(json.dumps(replaced(data, path, value)))
        found = read_run_folder(folder)
        assert found is None or isinstance(found, (RunRecord, DamagedRun))
        if isinstance(found, DamagedRun):
            assert found.file.parent == folder and "\n" not in found.reason
        if isinstance(found, RunRecord) and found.finished:  # usable: everything a table reads has its type
            assert isinstance(found.data["method"]["name"], str) and type(found.data["protocol"]["drf"]) is int
            assert isinstance(found.data["config"]["seed"], int) and found.run_id == folder.name
            found.rows()
    finally:
        shutil.rmtree(folder.parent)


@FAST
@given(content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_run_json_bytes_are_a_record_or_named_damaged(template, content):
    folder = pathlib.Path(tempfile.mkdtemp()) / template.path.name
    try:
        shutil.copytree(template.path, folder)
        (folder / "run.json").write_bytes(content)
        found = read_run_folder(folder)
        assert isinstance(found, (RunRecord, DamagedRun)) or found is None
    finally:
        shutil.rmtree(folder.parent)


# -- metrics.csv --------------------------------------------------------------------------------------------------
@FAST
@given(content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_metrics_bytes_are_named_or_fit_the_record(template, content):
    data = json.loads((template.path / "run.json").read_text())
    problem = metrics_problem(content, data)
    assert problem is None or (isinstance(problem, str) and "\n" not in problem)
    if problem is None:  # only the very file run.json describes fits a sealed record
        assert content == (template.path / "metrics.csv").read_bytes()


row_edits = st.lists(st.tuples(st.sampled_from(["drop", "add", "duplicate", "value"]), st.integers(0, 5),
                               st.sampled_from(["tiny000", "tiny001", "tiny002", "tiny999", "x"]),
                               st.floats(allow_nan=True, allow_infinity=True)), min_size=1, max_size=4)


@FAST
@given(edits=row_edits, sealed=st.booleans())
def test_a_changed_metrics_file_never_changes_a_leaderboard_silently(template, edits, sealed):
    """Drop, add or duplicate rows, change values: a sealed record is damaged by any change; an unsealed one
    (from before the seal) by any change of which subjects and metrics it has, or a row twice."""
    rows = template.rows()
    original = set(zip(rows["subject"], rows["metric"]))
    for kind, index, subject, value in edits:
        index = index % len(rows) if len(rows) else 0
        if kind == "drop" and len(rows):
            rows = rows.drop(rows.index[index])
        elif kind == "add":
            rows = pd.concat([rows, pd.DataFrame([{"subject": subject, "metric": "psnr", "value": value}])])
        elif kind == "duplicate" and len(rows):
            rows = pd.concat([rows, rows.iloc[[index]]])
        elif kind == "value" and len(rows):
            rows = rows.copy()
            rows.iloc[index, rows.columns.get_loc("value")] = value
    text = rows.to_csv(index=False).encode()
    data = json.loads((template.path / "run.json").read_text())
    if not sealed:
        data.pop("metrics_file")
    problem = metrics_problem(text, data)
    changed_pairs = set(zip(rows["subject"], rows["metric"])) != original or rows.duplicated(["subject", "metric"]).any()
    if text != (template.path / "metrics.csv").read_bytes() and sealed:
        assert problem is not None
    dropped_subject = {s for s, _ in original} - set(rows["subject"])
    outside = set(rows["subject"]) - {s for s, _ in original}
    if dropped_subject or outside or rows.duplicated(["subject", "metric"]).any():
        assert problem is not None, (problem, changed_pairs)
    if problem is None and not sealed:  # +inf only as a perfect PSNR/SSIM-like score (higher is better)
        assert all(not math.isinf(v) or v > 0 for v in rows["value"])


# -- history.jsonl ----------------------------------------------------------------------------------------------
@FAST
@given(lines=st.lists(json_values.map(lambda v: json.dumps(v)) | st.text(max_size=30), max_size=5))
def test_any_history_is_entries_or_named_damaged(lines):
    try:
        entries = validate_history("\n".join(lines))
    except Damaged as exc:
        assert str(exc).startswith("line ")
        return
    for entry in entries:
        assert isinstance(entry, dict) and isinstance(entry["stage"], str) and type(entry["epoch"]) is int


# -- the grid TOML and the grid state ----------------------------------------------------------------------------
toml_values = st.recursive(st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) |
                           st.text(max_size=12), lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@FAST
@given(table=st.dictionaries(st.sampled_from(sorted(TOML_KEYS) + ["seedz", "epochs"]), toml_values, max_size=5))
def test_any_grid_table_is_a_grid_or_one_user_error(table):
    table = {"methods": ["lpet"], "dataset": "tiny", **table}
    try:
        spec = grid_from_dict(table)
    except UserError as exc:
        assert "\n" not in str(exc).strip()
        return
    assert isinstance(spec, GridSpec) and isinstance(spec.save_predictions, bool)
    assert all(type(s) is int and 0 <= s < 2**32 for s in spec.seeds) and len(spec.seeds) <= 1000
    assert all(type(d) is int and d >= 1 for d in spec.drfs)
    assert spec.metrics is None or all(isinstance(m, str) for m in spec.metrics)


@FAST
@given(text=st.text(max_size=200))
def test_any_toml_text_is_a_grid_or_one_user_error(text):
    folder = pathlib.Path(tempfile.mkdtemp())
    try:
        (folder / "g.toml").write_text(text)
        load_toml_grid(folder / "g.toml")
    except UserError:
        pass
    finally:
        shutil.rmtree(folder)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=json_values.map(json.dumps) | st.text(max_size=80))
def test_any_grid_state_is_used_or_named_and_rebuilt(content, capsys):
    folder = pathlib.Path(tempfile.mkdtemp())
    try:
        (folder / ".grids").mkdir()
        (folder / ".grids" / "g.json").write_text(content)
        state = GridState(folder, "g")
        assert isinstance(state.data["cells"], dict)
        for key, entry in state.data["cells"].items():
            assert isinstance(entry, dict)
            assert entry.get("run_id") is None or is_safe_name(entry["run_id"])
        if state.damaged:
            assert "is damaged" in capsys.readouterr().err
    finally:
        shutil.rmtree(folder)


# -- through the CLI: exit 0 or 2, never a traceback, nothing outside, damaged records named -----------------------
@CLI
@given(choice=st.data(), value=json_values)
def test_compare_and_score_on_a_damaged_record_name_it_and_write_nothing_outside(template, choice, value):
    data = json.loads((template.path / "run.json").read_text())
    path = choice.draw(st.sampled_from(list(paths_of(data))))
    root = pathlib.Path(tempfile.mkdtemp())
    results = root / "results"
    try:
        fake_record(results, "lpet", 1, {"psnr": [20.0, 21.0, 22.0]})
        folder = results / template.path.name
        shutil.copytree(template.path, folder)
        (folder / "run.json").write_text(json.dumps(replaced(data, path, value)))
        before = set(root.rglob("*"))
        host = isolated_host(TOY_PLUGIN)
        app = create_app(host)
        found = read_run_folder(folder)
        for argv in (["compare", "--format", "csv"], ["score", "--metrics", "psnr", "-q"]):
            result = CliRunner().invoke(app, argv + ["--results", str(results)])
            assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output, result.output
            assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
            if result.exit_code == 2:
                assert sum(line.startswith("Error:") for line in result.output.splitlines()) == 1
            if isinstance(found, DamagedRun) and argv[0] == "compare":  # named, and its values in no row
                assert str(found.file) in result.output, result.output
                assert "31.0" not in result.output.split("warning:")[0], result.output
        new = set(root.rglob("*")) - before
        assert all(results in p.parents for p in new), new
    finally:
        set_host(None)  # create_app made it the CLI's host: later tests get the default one again
        shutil.rmtree(root)


# -- checkpoints and stage files: a damaged layout is named, moved aside, and the work redone ------------------
def tiny_training():
    """A tiny method and data (petbench.testing.toys.TinyMethod), the same for every call."""
    import torch

    from petbench.data.slices import TrainingData
    from petbench.testing.toys import TinyMethod

    g = torch.Generator().manual_seed(0)
    spet = torch.rand(24, 1, 8, 8, generator=g)
    lpet = spet + 0.2 * torch.randn(24, 1, 8, 8, generator=g)
    torch.manual_seed(0)
    return TinyMethod({"epochs": 2, "batch_size": 4}), TrainingData({"lpet": lpet, "spet": spet})


def train_tiny(method, stages, data, **kw):
    import torch

    from petbench.engine import train
    from petbench.engine.intervals import CheckpointEvery

    return train(method, stages, data, seed=1, device=torch.device("cpu"), progress=False, sync_every=1,
                 checkpoint_every=CheckpointEvery(steps=3), **kw)


class Stop(Exception):
    pass


class Saved:
    """What :func:`saved_training` keeps (a short repr: Hypothesis prints the test's arguments)."""

    def __init__(self, final, checkpoint, stage_name, stage_file):
        self.final, self.checkpoint, self.stage_name, self.stage_file = final, checkpoint, stage_name, stage_file

    def __repr__(self):
        return "Saved(...)"


@pytest.fixture(scope="module")
def saved_training(tmp_path_factory):
    """An uninterrupted run's final weights, a mid-epoch checkpoint (step 2 of epoch 2) of the same
    run, and the stage file another run stored for its (shared) stage."""
    import torch

    from petbench.engine.checkpoint import load_plain

    method, data = tiny_training()
    train_tiny(method, method.stages(), data)
    final = {k: v.clone() for k, v in method.nets.state_dict().items()}
    folder = tmp_path_factory.mktemp("ck")
    crashing, data = tiny_training()
    stages = crashing.stages()
    step = stages[0].step

    def crash_in_epoch_2(batch, ctx):
        if ctx.step_index == 9:
            raise Stop
        return step(batch, ctx)

    stages[0].step = crash_in_epoch_2
    with pytest.raises(Stop):
        train_tiny(crashing, stages, data, checkpoint_dir=folder)
    checkpoint = load_plain(folder / "last.pt")
    assert checkpoint["position"]["step"] > 0 and checkpoint["meter"] is not None  # a mid-epoch one
    shared, data = tiny_training()
    stages = shared.stages()
    stages[0].reuse_key = "shared"
    train_tiny(shared, stages, data, stage_cache_dir=folder / "stages", run_id="other")
    (stage_file,) = (folder / "stages").glob("*.pt")
    return Saved(final, checkpoint, stage_file.name, torch.load(stage_file, weights_only=True))


def damaged_layout(keys, nested):
    """Edits of a dict loaded from a checkpoint: drop a key, add one, or give a key (or a key of a
    nested dict) a value of any plain kind, a tensor included."""
    import torch

    values = json_values | st.just(torch.zeros(3)) | st.just((1, 2)) | st.just(float("inf"))
    top = st.sampled_from(sorted(keys))
    edit = (st.tuples(st.just("drop"), top) | st.tuples(st.just("add"), st.text(max_size=8), values)
            | st.tuples(st.just("set"), top, values) | st.tuples(st.just("set-nested"), st.sampled_from(nested), values))
    return st.lists(edit, min_size=1, max_size=3)


def apply_damage(state, edits):
    import copy

    state = copy.copy(state)
    for edit in edits:
        if edit[0] == "drop":
            state.pop(edit[1], None)
        elif edit[0] in ("add", "set"):
            state[edit[1]] = edit[2]
        else:
            (outer, inner), value = edit[1], edit[2]
            if isinstance(state.get(outer), dict):
                state[outer] = {**state[outer], inner: value}
    return state


CHECKPOINT_KEYS = ["format", "position", "meter", "stage_names", "nets", "stages", "scaler", "rng", "stage_seconds",
                   "reports", "history", "selection"]
CHECKPOINT_NESTED = [("position", "stage"), ("position", "epoch"), ("position", "step"), ("meter", "epoch"),
                     ("meter", "epoch_counts"), ("meter", "window_first"), ("rng", "numpy"), ("rng", "python")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(edits=damaged_layout(CHECKPOINT_KEYS, CHECKPOINT_NESTED))
def test_any_damaged_checkpoint_is_named_moved_aside_and_the_run_finishes(saved_training, edits):
    """Missing, extra or wrong-typed entries of last.pt: training never raises; either the checkpoint is
    still usable (an edit that keeps its layout), or it is named in one warning, moved aside as
    ``.unreadable``, and the run redone from the start ends with an uninterrupted run's weights."""
    import torch

    final, checkpoint = saved_training.final, saved_training.checkpoint
    with tempfile.TemporaryDirectory() as folder:
        last = pathlib.Path(folder) / "last.pt"
        torch.save(apply_damage(checkpoint, edits), last)
        method, data = tiny_training()
        warnings = []
        train_tiny(method, method.stages(), data, checkpoint_dir=pathlib.Path(folder), warn=warnings.append)
        assert len(warnings) <= 1, warnings
        if warnings:
            assert str(last) in warnings[0] and "\n" not in warnings[0], warnings
            assert (pathlib.Path(folder) / "last.pt.unreadable").exists()
            for key, value in final.items():
                assert torch.equal(method.nets.state_dict()[key], value), key


STAGE_FILE_KEYS = ["format", "key", "run_id", "modules", "report", "history"]
STAGE_FILE_NESTED = [("report", "name"), ("report", "epochs"), ("report", "steps"), ("report", "seconds"),
                     ("report", "final_losses"), ("modules", "net")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(edits=damaged_layout(STAGE_FILE_KEYS, STAGE_FILE_NESTED))
def test_any_damaged_stage_file_is_named_moved_aside_and_the_stage_trained(saved_training, edits):
    """The same for a stage file another run stored: reused when its layout still fits, or named in one
    warning, moved aside, and the stage trained again (to an uninterrupted run's weights)."""
    import torch

    final, name, stored = saved_training.final, saved_training.stage_name, saved_training.stage_file
    with tempfile.TemporaryDirectory() as folder:
        stage_file = pathlib.Path(folder) / name
        torch.save(apply_damage(stored, edits), stage_file)
        method, data = tiny_training()
        stages = method.stages()
        stages[0].reuse_key = "shared"
        warnings = []
        reports = train_tiny(method, stages, data, stage_cache_dir=pathlib.Path(folder), run_id="this",
                             warn=warnings.append)
        assert len(warnings) <= 1, warnings
        if warnings:
            assert str(stage_file) in warnings[0] and "\n" not in warnings[0], warnings
            assert stage_file.with_name(name + ".unreadable").exists() and reports[0].reused_from is None
            for key, value in final.items():
                assert torch.equal(method.nets.state_dict()[key], value), key
