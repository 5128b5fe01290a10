"""Grids: TOML parsing and option expansion, a grid through the CLI, skip/resume/failure/retry/force,
Table II's shared stage, and submitit's local executor (a job preempted once resumes from its checkpoint)."""
import functools
import json
import os
import pathlib
import signal
import sys
import time

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make grid_helpers importable
from grid_helpers import helper_host, installed  # noqa: E402

from petbench.cli import create_app  # noqa: E402
from petbench.errors import UserError  # noqa: E402
from petbench.grids.executors import CellJob, SlurmOptions, SubmititExecutor, parse_time_min  # noqa: E402
from petbench.grids.run_grid import chains, plan_grid, run_grid, select  # noqa: E402
from petbench.grids.spec import GridSpec, Variant, grid_from_dict, parse_entry, resolve_grid  # noqa: E402
from petbench.results import find_records  # noqa: E402

TINY = ["--n-train", "4", "--n-test", "3", "--n-unpaired", "0", "--drf", "4", "--preset", "quick", "-q"]


@pytest.fixture
def host():
    yield from installed(helper_host())


@pytest.fixture
def cli(host, results):
    app = create_app(host)
    runner = CliRunner()

    def invoke(*args):
        args = list(args)
        if args and args[0] in {"grid", "compare", "figure"}:
            args += ["--results", str(results)]
        return runner.invoke(app, args)

    return invoke


def write_grid(tmp_path, text, name="toy.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


TOY_GRID = """
name = "toy"
methods = ["lpet", "tiny-cnn[epochs=1,2]"]
dataset = "tiny"
drf = 4
seeds = [0]
preset = "quick"
[protocol]
n_train = 4
n_test = 3
n_unpaired = 0
"""


# -- specification ----------------------------------------------------------------------------------------------
def test_option_grids_expand():
    assert [v.options for v in parse_entry("m[epochs=2,4;lr=1e-3]", "method")] == \
        [{"epochs": 2, "lr": 0.001}, {"epochs": 4, "lr": 0.001}]
    assert [v.options for v in parse_entry("m[a=1,2,b=x,y]", "method")] == \
        [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    assert [v.options for v in parse_entry("m[sizes=[1,2],[3,4]]", "method")] == [{"sizes": [1, 2]}, {"sizes": [3, 4]}]
    assert parse_entry("m", "method") == [Variant("m")]
    table = {"name": "m", "options": {"width": 4}, "grid": {"epochs": [1, 3]}}
    assert [v.label for v in parse_entry(table, "method")] == ["m[width=4,epochs=1]", "m[width=4,epochs=3]"]
    for bad in ("m[epochs]", "m[epochs=1;2]", "m[a=[1,2]", "m[a=1,a=2]"):
        with pytest.raises(UserError):
            parse_entry(bad, "method")

    spec = grid_from_dict({"methods": ["lpet", "tiny-cnn[epochs=1,2]"], "datasets": ["tiny[size=16,8]"],
                           "drfs": [4, 10], "seeds": "0-2", "protocol": {"n_test": 3}})
    cells = spec.cells()
    assert len(cells) == 3 * 2 * 2 * 3 and spec.n_test == 3
    assert [c.method.label for c in cells[:3]] == ["lpet", "tiny-cnn[epochs=1]", "tiny-cnn[epochs=2]"]
    assert len({c.key for c in cells}) == len(cells)
    with pytest.raises(UserError, match="unknown key 'seedz'"):
        grid_from_dict({"methods": ["lpet"], "dataset": "tiny", "seedz": [1]})
    with pytest.raises(UserError, match="needs a dataset"):
        resolve_grid("table1")
    with pytest.raises(UserError, match="unknown grid"):
        resolve_grid("table3")
    assert [m.name for m in resolve_grid("table2", [Variant("tiny")]).methods] == \
        ["s3pet-baseline", "s3pet-dsmae", "s3pet-dsmae-dkd", "s3pet"]
    assert parse_time_min("1:30:00") == 90 and parse_time_min("2-00:00:00") == 2880 and parse_time_min(45) == 45


# -- through the CLI ------------------------------------------------------------------------------------------
def test_grid_runs_then_skips_finished_cells(cli, results, tmp_path):
    grid = write_grid(tmp_path, TOY_GRID)
    first = cli("grid", grid, "-q")
    assert first.exit_code == 0, first.output
    assert first.output.count("finished:") == 3 and "3 cells: 3 finished" in first.output
    records = find_records(results)
    assert sorted(r.method for r in records) == ["lpet", "tiny-cnn", "tiny-cnn"]
    assert {r.data["method"]["options"]["epochs"] for r in records if r.method == "tiny-cnn"} == {1, 2}

    again = cli("grid", grid, "-q")
    assert again.exit_code == 0 and "nothing to run" in again.output and "finished:" not in again.output
    status = cli("grid", grid, "--status")
    assert status.exit_code == 0 and "3 finished" in status.output
    state = json.loads((results / ".grids" / "toy.json").read_text())
    assert {c["status"] for c in state["cells"].values()} == {"finished"}

    # a one-line error before anything runs
    bad = cli("grid", write_grid(tmp_path, TOY_GRID.replace('"lpet"', '"nope"'), "bad.toml"))
    assert bad.exit_code == 2 and bad.output.startswith("Error: unknown method 'nope'")
    assert cli("grid", "table1").exit_code == 2


def test_interrupted_grid_resumes_and_skips_finished(cli, results, tmp_path):
    marker = tmp_path / "stopped"
    grid = write_grid(tmp_path, TOY_GRID.replace('"tiny-cnn[epochs=1,2]"', f'"stops-once[marker=\'{marker}\']", '
                                                 '"tiny-cnn[epochs=1]"'))
    first = cli("grid", grid, "-q")
    assert first.exit_code == 130 and marker.exists() and "interrupted" in first.output  # Ctrl-C stops the grid
    statuses = {r.method: r.status for r in find_records(results, finished_only=False)}
    assert statuses == {"lpet": "finished", "stops-once": "interrupted"}
    lpet_started = find_records(results)[0].data["started_at"]

    second = cli("grid", grid, "-q")
    assert second.exit_code == 0, second.output
    assert "(resuming)" in second.output and "resumed from its checkpoint" in second.output
    assert "lpet on tiny" not in second.output  # the finished cell is skipped
    records = {r.method: r for r in find_records(results)}
    assert set(records) == {"lpet", "stops-once", "tiny-cnn"}
    assert records["lpet"].data["started_at"] == lpet_started


def test_failing_cell_is_recorded_while_the_others_finish(cli, results, tmp_path):
    grid = write_grid(tmp_path, TOY_GRID.replace('"tiny-cnn[epochs=1,2]"', '"failing", "broken-init", "tiny-cnn"'))
    first = cli("grid", grid, "-q")
    assert first.exit_code == 1
    assert "boom in the training step" in first.output and "broken constructor" in first.output
    assert "2 finished" in first.output and "2 failed" in first.output
    (failed,) = [r for r in find_records(results, finished_only=False) if r.status == "failed"]
    assert failed.method == "failing" and "boom" in failed.data["error"]
    state = json.loads((results / ".grids" / "toy.json").read_text())
    assert [c["status"] for k, c in state["cells"].items() if k.startswith("failing")] == ["failed"]

    again = cli("grid", grid, "-q")  # failed cells are not retried unless asked
    assert again.exit_code == 1 and "nothing to run" in again.output and "boom" in again.output
    retry = cli("grid", grid, "-q", "--retry-failed")
    assert retry.exit_code == 1 and retry.output.count("failed: failing") == 1 and "tiny-cnn on" not in retry.output
    assert retry.output.count("failed: broken-init") == 1
    cnn = next(r for r in find_records(results) if r.method == "tiny-cnn")
    forced = cli("grid", grid, "-q", "--force", "--methods", "tiny-cnn")
    assert forced.exit_code == 1 and forced.output.count("finished: tiny-cnn") == 1
    assert next(r for r in find_records(results) if r.method == "tiny-cnn").data["started_at"] >= \
        cnn.data["started_at"]


def test_table2_variants_share_stage_one_per_seed(host, results, tmp_path):
    spec = resolve_grid("table2", [Variant("tiny")], seeds=[0, 1], drfs=[4], n_train=4, n_test=2, n_unpaired=0,
                        preset="quick")
    plan = plan_grid(host, spec, results, preset="quick")
    groups = chains(select(plan))
    assert sorted(len(g) for g in groups) == [1, 1, 3, 3]  # per seed: the baseline alone, three sharing Stage I
    assert all({p.cell.seed for p in g} == {g[0].cell.seed} for g in groups)

    from petbench.grids.executors import LocalExecutor

    lines = []
    outcome = run_grid(host, plan, LocalExecutor(progress=False), log=lines.append)
    assert not outcome.failed and plan.counts() == {"finished": 8}
    reused = [r for r in find_records(results) if any(s.get("reused_from") for s in r.data["timings"]["stages"])]
    assert sorted((r.method, r.data["config"]["seed"]) for r in reused) == \
        sorted((m, s) for m in ("s3pet-dsmae-dkd", "s3pet") for s in (0, 1))
    assert len(list((results / ".stages").glob("*.pt"))) == 2


# -- submitit ---------------------------------------------------------------------------------------------------
def test_cell_job_checkpoint_requeues_itself(results):
    job = CellJob([], results, force=True)
    delayed = job.checkpoint()
    assert delayed.function is job and job.attempt == 2


@pytest.mark.timeout(240)
def test_submitit_local_executor_runs_a_preempted_cell_to_the_end(host, results, tmp_path, monkeypatch):
    """The cell's method signals its own job (SIGUSR2, as SLURM does before preemption) after its first
    epoch: submitit calls CellJob.checkpoint, requeues, and the run resumes from its checkpoint."""
    tests_dir = str(pathlib.Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")])))
    marker = tmp_path / "preempted"
    spec = GridSpec(name="sub", methods=[Variant("stops-once", {"marker": str(marker), "mode": "sigusr2"})],
                    datasets=[Variant("tiny")], drfs=[4], seeds=[0], n_train=4, n_test=2, n_unpaired=0, preset="quick")
    plan = plan_grid(host, spec, results, preset="quick")
    executor = SubmititExecutor(folder=tmp_path / "jobs", options=SlurmOptions(time_min=10), cluster="local",
                                host_factory=functools.partial(helper_host), poll_s=0.2, name="submitit-local")
    lines = []
    submitted = []
    real_submit = executor.submit

    def submit(jobs):
        submitted.extend(real_submit(jobs))
        return submitted

    monkeypatch.setattr(executor, "submit", submit)
    try:
        outcome = run_grid(host, plan, executor, log=lines.append)
    finally:
        for job in submitted:  # never leave a job process behind
            if job.state == "RUNNING":
                os.kill(int(job.job_id), signal.SIGKILL)
    assert len(submitted) == 1 and marker.exists()
    assert not outcome.failed and plan.counts() == {"finished": 1}, lines
    (ran,) = outcome.ran
    assert ran["status"] == "finished" and ran["attempt"] == 2 and ran["resumed"]  # requeued once, resumed
    record = next(r for r in find_records(results) if r.method == "stops-once")
    assert record.data["timings"]["stages"][0]["epochs"] == 3
    state = json.loads((results / ".grids" / "sub.json").read_text())
    assert {c.get("job_id") for c in state["cells"].values()} == {str(j.job_id) for j in submitted}
    deadline = time.time() + 30
    while any(j.state == "RUNNING" for j in submitted) and time.time() < deadline:
        time.sleep(0.2)


def test_local_worker_processes_run_cells_in_parallel(host, results):
    """``--workers N`` (one per GPU on a GPU machine): each job in its own process with its own plugin host."""
    from petbench.grids.executors import LocalExecutor

    spec = GridSpec(name="pool", methods=[Variant("lpet"), Variant("tiny-cnn", {"epochs": 1})],
                    datasets=[Variant("tiny")], drfs=[4], seeds=[0], n_train=4, n_test=2, n_unpaired=0, preset="quick")
    plan = plan_grid(host, spec, results, preset="quick")
    outcome = run_grid(host, plan, LocalExecutor(workers=2, host_factory=helper_host), log=lambda _: None)
    assert not outcome.failed and plan.counts() == {"finished": 2} and len(outcome.ran) == 2


def test_cells_of_active_slurm_jobs_are_queued_not_resubmitted(host, results, monkeypatch):
    from petbench.grids import run_grid as module
    from petbench.grids.run_grid import GridState

    spec = GridSpec(name="q", methods=[Variant("lpet")], datasets=[Variant("tiny")], drfs=[4], seeds=[0, 1],
                    n_train=4, n_test=2, n_unpaired=0, preset="quick")
    plan = plan_grid(host, spec, results, preset="quick")
    state = GridState(results, "q")
    state.update(plan.cells[0].cell.key, run_id=plan.cells[0].task.run_id, status="queued", executor="slurm",
                 job_id="123_0", folder=str(results / "jobs"))
    state.save(spec)
    monkeypatch.setattr(module, "slurm_job_active", lambda folder, job_id: job_id == "123_0")
    plan = plan_grid(host, spec, results, preset="quick")
    assert [p.status for p in plan.cells] == ["queued", "pending"] and "123_0" in plan.cells[0].note
    assert [p.cell.seed for p in select(plan)] == [1]


def test_slurm_options_map_to_submitit_parameters():
    options = SlurmOptions(partition="gpu", gpus_per_job=2, cpus_per_job=8, mem_gb=64, time_min=parse_time_min("2:00:00"),
                           array_parallelism=4, setup=["module load cuda"], extra={"account": "proj", "qos": "high"})
    assert options.parameters() == {
        "timeout_min": 120, "gpus_per_node": 2, "name": "petbench", "tasks_per_node": 1, "nodes": 1,
        "cpus_per_task": 8, "mem_gb": 64.0, "slurm_partition": "gpu", "slurm_array_parallelism": 4,
        "slurm_setup": ["module load cuda"], "slurm_account": "proj", "slurm_qos": "high"}
