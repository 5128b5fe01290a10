"""--workers-per-gpu: several cells at once on one device (here the CPU), shared stages still in order;
on SLURM (submitit's local executor) one job runs several chains at once."""
import functools
import os
import pathlib
import signal
import sys
from datetime import datetime

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make the helpers importable
from grid_helpers import installed  # noqa: E402
from parallel_helpers import parallel_host  # noqa: E402

from petbench.cli import create_app  # noqa: E402
from petbench.cli import grid_cmd  # noqa: E402
from petbench.errors import UserError  # noqa: E402
from petbench.grids.executors import (LocalExecutor, ParallelJob, SlurmOptions, SubmititExecutor,  # noqa: E402
                                      bundle, resolve_workers)
from petbench.grids.run_grid import plan_grid, run_grid  # noqa: E402
from petbench.grids.spec import GridSpec, Variant  # noqa: E402
from petbench.results import find_records  # noqa: E402

GRID = """
name = "{name}"
methods = ["meets[barrier={barrier}]", "shared-first[barrier={barrier}]", "shared-second"]
dataset = "tiny"
drf = 4
seeds = [0]
preset = "quick"
[protocol]
n_train = 4
n_test = 2
n_unpaired = 0
"""


@pytest.fixture
def host():
    yield from installed(parallel_host())


def check_concurrent_and_in_order(results, barrier):
    arrivals = list(barrier.iterdir())
    assert len(arrivals) == 2, arrivals
    pids = {path.name.split("-")[-2] for path in arrivals}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two worker processes, at the same time
    records = {r.method: r for r in find_records(results)}
    assert set(records) == {"meets", "shared-first", "shared-second"}
    assert all(r.finished for r in records.values())
    first, second = records["shared-first"], records["shared-second"]
    stages = {s["name"]: s for s in second.data["timings"]["stages"]}
    assert stages["pretrain"]["reused_from"] == first.run_id  # the shared stage trained once, first
    assert datetime.fromisoformat(first.data["finished_at"]) <= datetime.fromisoformat(second.data["started_at"])


def test_two_cells_at_once_on_one_cpu_with_the_shared_stage_in_order(host, tmp_path, monkeypatch):
    results, barrier = tmp_path / "results", tmp_path / "barrier"
    grid = tmp_path / "par.toml"
    grid.write_text(GRID.format(name="par", barrier=barrier))
    made = []

    def executor(**kwargs):  # the CLI's executor, whose workers rebuild this test's plugin host
        made.append(LocalExecutor(**kwargs, host_factory=parallel_host))
        return made[-1]

    monkeypatch.setattr(grid_cmd, "LocalExecutor", executor)
    result = CliRunner().invoke(create_app(host), ["grid", str(grid), "--workers-per-gpu", "2", "--device", "cpu",
                                                   "-q", "--results", str(results)])
    assert result.exit_code == 0, result.output
    assert made[0].workers == 2
    assert "2 jobs on 2 workers (CPU)" in result.output
    check_concurrent_and_in_order(results, barrier)


def test_workers_per_gpu_resolution(monkeypatch):
    from petbench.grids import executors

    monkeypatch.setattr(executors, "visible_gpus", lambda: 0)
    assert resolve_workers("auto", 3) == 3 and resolve_workers("auto") == 1 and resolve_workers("4") == 4
    monkeypatch.setattr(executors, "visible_gpus", lambda: 2)
    assert resolve_workers("auto", 3) == 6
    with pytest.raises(UserError, match="--workers 2 or --workers-per-gpu 3, not both"):
        resolve_workers("2", 3)
    with pytest.raises(UserError, match="--workers-per-gpu must be a whole number of at least 1, not 0"):
        resolve_workers("auto", 0)


def test_workers_per_gpu_zero_is_a_user_error(host, tmp_path):
    grid = tmp_path / "par.toml"
    grid.write_text(GRID.format(name="par", barrier=tmp_path / "barrier"))
    result = CliRunner().invoke(create_app(host), ["grid", str(grid), "--workers-per-gpu", "0", "-q",
                                                   "--results", str(tmp_path / "results")])
    assert result.exit_code == 2
    assert "Error: --workers-per-gpu must be a whole number of at least 1, not 0" in result.output
    assert not (tmp_path / "results").exists() or not find_records(tmp_path / "results")


def test_bundle_groups_consecutive_chains():
    jobs, groups = ["a", "b", "c"], [["a1", "a2"], ["b1"], ["c1"]]

    class Job:
        def __init__(self, name):
            self.keys, self.tasks = [name], []

    chain_jobs = [Job(n) for n in jobs]
    bundled, merged = bundle(chain_jobs, groups, 2, 2)
    assert isinstance(bundled[0], ParallelJob) and bundled[0].jobs == chain_jobs[:2] and bundled[0].workers == 2
    assert bundled[1] is chain_jobs[2]  # a bundle of one stays a plain chain
    assert merged == [["a1", "a2", "b1"], ["c1"]]
    assert bundle(chain_jobs, groups, 1, 1) == (chain_jobs, groups)


def test_a_slurm_job_runs_two_chains_at_once(host, tmp_path, monkeypatch):
    """submitit's local executor: with --workers-per-gpu 2 the grid's two chains go in one job, which
    runs them at once on its device; the shared stage still trains first."""
    tests_dir = str(pathlib.Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")])))
    results, barrier = tmp_path / "results", tmp_path / "barrier"
    spec = GridSpec(name="sub", methods=[Variant("meets", {"barrier": str(barrier)}),
                                         Variant("shared-first", {"barrier": str(barrier)}), Variant("shared-second")],
                    datasets=[Variant("tiny")], drfs=[4], seeds=[0], n_train=4, n_test=2, n_unpaired=0,
                    preset="quick", device="cpu")
    plan = plan_grid(host, spec, results, preset="quick")
    executor = SubmititExecutor(folder=tmp_path / "jobs", options=SlurmOptions(time_min=10, gpus_per_job=0),
                                cluster="local", host_factory=functools.partial(parallel_host), poll_s=0.2,
                                name="submitit-local", per_gpu=2)
    submitted, real_submit = [], executor.submit

    def submit(jobs):
        submitted.extend(real_submit(jobs))
        return submitted

    monkeypatch.setattr(executor, "submit", submit)
    lines = []
    try:
        outcome = run_grid(host, plan, executor, log=lines.append)
    finally:
        for job in submitted:  # never leave a job process behind
            if job.state == "RUNNING":
                os.kill(int(job.job_id), signal.SIGKILL)
    assert len(submitted) == 1, lines
    assert not outcome.failed and plan.counts() == {"finished": 3}, lines
    assert {o["job_id"] for o in outcome.ran} == {submitted[0].job_id}
    check_concurrent_and_in_order(results, barrier)
