"""Crash safety: a run killed at any checkpoint write finishes, on re-run, with the weights and
per-subject metrics of an uninterrupted run (bit for bit on CPU); checkpoint and shared-stage files
are plain data, and damaged ones are survived; one writer per run."""
import json
import os

import pytest
import torch

from kill_matrix import SIGKILLED, Zygote, assert_identical, outcome

TOY = {"dataset": "tiny", "dataset_options": {"n_subjects": 8, "size": 12, "depth": 3},
       "protocol": {"n_train": 3, "n_test": 2, "n_unpaired": 0, "drf": 4}, "seed": 3, "preset": "quick"}
# variant b reuses variant a's stored pre-training stage: a kill while it is stored or reused is covered
VARIANTS = [{**TOY, "method": "three-stage", "method_options": {"variant": "a"}},
            {**TOY, "method": "three-stage", "method_options": {"variant": "b"}}]


@pytest.fixture(scope="module")
def zygote():
    with Zygote() as z:
        yield z


@pytest.fixture(scope="module")
def reference(tmp_path_factory, zygote):
    results = tmp_path_factory.mktemp("uninterrupted") / "results"
    code, writes, err = zygote.run(results, VARIANTS, mode="after", at=0)
    assert code == 0, err
    return outcome(results), writes, results


def test_the_reference_reuses_the_shared_stage(reference):
    runs, writes, results = reference
    b = next(json.loads((results / run_id / "run.json").read_text()) for run_id in runs if "three-stage" in run_id
             and json.loads((results / run_id / "run.json").read_text())["method"]["options"]["variant"] == "b")
    assert [s["reused_from"] is not None for s in b["timings"]["stages"]] == [True, False, False]
    # a: 1 mid-stage + stored stage + 3 boundaries + 1 mid-stage = 6 writes; b: reuse boundary + 2 + 1 = 4
    assert writes == 10


@pytest.mark.parametrize("mode", ["after", "during"])
def test_a_kill_at_every_checkpoint_write_resumes_bit_for_bit(reference, zygote, tmp_path, mode):
    runs, writes, _ = reference
    for at in range(1, writes + 1):
        results = tmp_path / f"{mode}-{at}"
        code, _, err = zygote.run(results, VARIANTS, mode=mode, at=at)
        assert code == SIGKILLED, f"kill {mode} write {at} did not happen: {err}"
        code, _, err = zygote.run(results, VARIANTS)
        assert code == 0, f"re-run after kill {mode} write {at} failed: {err}"
        assert "unusable" not in err, err  # an atomic write never leaves a damaged file
        assert_identical(runs, outcome(results))


#: checkpoints on an interval (--checkpoint-every): every 3 steps (some epoch ends skipped, some mid-epoch) and
#: every window (0 s: mid-epoch and at every epoch end), with windows of one step (--sync-every 1), so that
#: the toy's 2-step epochs have a mid-epoch point
#: (value, kill at every k-th write): the 0 s variant writes about twice as often, every third write is killed
INTERVALS = {"steps": ("3", 1), "time": ("0s", 3)}


@pytest.fixture(scope="module", params=sorted(INTERVALS))
def interval_reference(request, tmp_path_factory, zygote):
    value, stride = INTERVALS[request.param]
    variants = [{**v, "sync_every": 1, "checkpoint_every": value} for v in VARIANTS]
    results = tmp_path_factory.mktemp(f"uninterrupted-{request.param}") / "results"
    code, writes, err = zygote.run(results, variants, mode="after", at=0)
    assert code == 0, err
    return variants, outcome(results), writes, stride


def test_interval_checkpoints_train_the_same_weights(reference, interval_reference):
    """Checkpointing mid-epoch changes when state is written, never what is trained."""
    runs, _, _ = reference
    _, interval_runs, _, _ = interval_reference  # where they are written: test_engine's test_checkpoint_every_*
    assert runs.keys() == interval_runs.keys()
    for run_id, run in runs.items():
        for key, value in run["nets"].items():
            assert torch.equal(value, interval_runs[run_id]["nets"][key]), f"{run_id}: {key} differs"


def test_a_kill_at_every_interval_checkpoint_write_resumes_bit_for_bit(interval_reference, zygote, tmp_path):
    variants, runs, writes, stride = interval_reference
    for at in range(1, writes + 1, stride):
        results = tmp_path / f"after-{at}"
        code, _, err = zygote.run(results, variants, mode="after", at=at)
        assert code == SIGKILLED, f"kill after write {at} did not happen: {err}"
        code, _, err = zygote.run(results, variants)
        assert code == 0, f"re-run after kill at write {at} failed: {err}"
        assert "unusable" not in err, err
        assert_identical(runs, outcome(results))


def test_a_kill_during_evaluation_resumes_bit_for_bit(reference, zygote, tmp_path):
    runs, _, _ = reference
    results = tmp_path / "results"
    code, _, _ = zygote.run(results, VARIANTS, mode="evaluate", at=1)
    assert code == SIGKILLED
    code, _, err = zygote.run(results, VARIANTS)
    assert code == 0, err
    assert_identical(runs, outcome(results))


# -- files a results folder may hold: plain data only, damage survived ---------------------------------------
from petbench.data.protocol import Protocol  # noqa: E402
from petbench.engine.checkpoint import load_plain  # noqa: E402
from petbench.results.lock import RunBusy, RunLock  # noqa: E402
from petbench.runner import RunConfig, execute  # noqa: E402
from petbench.testing.toys import TOY_PLUGIN, isolated_host  # noqa: E402
import kill_matrix  # noqa: E402


class Payload:
    """Unpickling this calls os.system: what a planted file would do with weights_only=False."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def three_stage_config(variant="a"):
    return RunConfig(method="three-stage", dataset="tiny", method_options={"variant": variant},
                     dataset_options=TOY["dataset_options"], protocol=Protocol(**TOY["protocol"]), seed=3,
                     preset="quick")


def run(results, variant="a", warnings=None, **kw):
    host = isolated_host(TOY_PLUGIN, kill_matrix)
    return execute(host, three_stage_config(variant), results, progress=False, log=lambda _: None,
                   warn=(warnings.append if warnings is not None else (lambda _: None)), **kw)


def final_nets(record):
    return load_plain(record.path / "checkpoints" / "last.pt")["nets"]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """Variant a, then b reusing a's stored stage, uninterrupted."""
    results = tmp_path_factory.mktemp("clean")
    return run(results, "a"), run(results, "b"), results


def plant(path, payload_bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload_bytes)


@pytest.mark.parametrize("where", ["checkpoint", "previous", "stage"])
def test_a_planted_pickle_never_runs_and_is_named(clean_run, tmp_path, where):
    a, b, clean = clean_run
    marker = tmp_path / "pwned"
    buffer = __import__("io").BytesIO()
    torch.save({"format": 2, "nets": Payload(str(marker))}, buffer)
    results = tmp_path / "results"
    stage_file = next((clean / ".stages").glob("*.pt"))
    target = {"checkpoint": results / b.run_id / "checkpoints" / "last.pt",
              "previous": results / b.run_id / "checkpoints" / "previous.pt",
              "stage": results / ".stages" / stage_file.name}[where]
    plant(target, buffer.getvalue())
    warnings = []
    record = run(results, "b", warnings)
    assert not marker.exists()
    assert record.finished
    assert any(str(target) in w and "run code" in w for w in warnings), warnings
    assert target.with_name(target.name + ".unreadable").exists()
    for key, value in final_nets(b).items():  # the work was redone, to the same result
        assert torch.equal(value, final_nets(record)[key])


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 truncated", os.urandom(2048)])
@pytest.mark.parametrize("where", ["checkpoint", "stage"])
def test_a_damaged_checkpoint_or_stage_file_is_survived(clean_run, tmp_path, where, damage):
    a, b, clean = clean_run
    results = tmp_path / "results"
    if where == "checkpoint":
        target = results / b.run_id / "checkpoints" / "last.pt"
    else:
        target = results / ".stages" / next((clean / ".stages").glob("*.pt")).name
    plant(target, damage)
    warnings = []
    record = run(results, "b", warnings)
    assert record.finished and any(str(target) in w and "damaged" in w for w in warnings), warnings
    assert len(warnings) == 1
    for key, value in final_nets(b).items():
        assert torch.equal(value, final_nets(record)[key])


def test_a_truncated_last_checkpoint_falls_back_to_the_previous_one(clean_run, tmp_path):
    """Kill variant a after its 4th write, then cut last.pt in half: the re-run continues from
    previous.pt (one write earlier) and still ends bit for bit like the clean run."""
    a, _, _ = clean_run
    results = tmp_path / "results"
    with Zygote() as zygote:
        code, _, _ = zygote.run(results, VARIANTS[:1], mode="after", at=4)
    assert code == SIGKILLED
    last = results / a.run_id / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    warnings = []
    record = run(results, "a", warnings)
    assert any("last.pt" in w and "earlier checkpoint" in w for w in warnings), warnings
    for key, value in final_nets(a).items():
        assert torch.equal(value, final_nets(record)[key])


def test_force_retrains_when_the_stage_file_is_unreadable(clean_run, tmp_path):
    _, b, clean = clean_run
    results = tmp_path / "results"
    plant(results / ".stages" / next((clean / ".stages").glob("*.pt")).name, os.urandom(100))
    record = run(results, "b", [], force=True)
    assert record.finished and not any(s["reused_from"] for s in record.data["timings"]["stages"])


# -- one writer per run ----------------------------------------------------------------------------------------
def test_a_second_writer_of_a_live_run_is_refused_naming_the_holder(tmp_path):
    config = three_stage_config()
    host = isolated_host(TOY_PLUGIN, kill_matrix)
    record = execute(host, config, tmp_path / "probe", progress=False, log=lambda _: None)
    with RunLock(tmp_path / "results", record.run_id):  # another process holds it
        with pytest.raises(RunBusy, match=rf"run {record.run_id} is in progress in process {os.getpid()} on host"):
            execute(host, config, tmp_path / "results", progress=False, log=lambda _: None)
    assert not (tmp_path / "results" / record.run_id).exists()  # nothing written by the refused one
    assert execute(host, config, tmp_path / "results", progress=False, log=lambda _: None).finished


def test_the_lock_dies_with_its_process(tmp_path):
    import subprocess
    import sys
    code = ("import sys, os, signal; sys.path.insert(0, %r)\n"
            "from petbench.results.lock import RunLock\n"
            "RunLock(%r, 'x').acquire(); os.kill(os.getpid(), signal.SIGKILL)") % (str(kill_matrix.HERE), str(tmp_path))
    assert subprocess.run([sys.executable, "-c", code]).returncode == SIGKILLED
    with RunLock(tmp_path, "x"):  # free again
        pass


CONCURRENT = """
import sys; sys.path.insert(0, {here!r})
import kill_matrix, petbench.cli.run_cmd as run_cmd
from petbench.testing.toys import TOY_PLUGIN, isolated_host
from petbench.cli import create_app
host = isolated_host(TOY_PLUGIN, kill_matrix)
app = create_app(host)
sys.argv = ["petbench"] + {args!r}
app()
"""


def spawn(tmp_path, args, log, step_sleep=0.02):
    import subprocess
    import sys
    env = {**os.environ, "PETBENCH_TRAIN_LOG": str(log), "OMP_NUM_THREADS": "1", "PETBENCH_STEP_SLEEP": str(step_sleep)}
    code = CONCURRENT.format(here=str(kill_matrix.HERE), args=[str(a) for a in args])
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def slow_run_args(results, variant="a", *extra):
    return ["run", "--method", "slow-logged", "--dataset", "tiny", "-D", "n_subjects=8", "-D", "size=12", "-D",
            "depth=3", "--n-train", "3", "--n-test", "2", "--n-unpaired", "0", "--drf", "4", "--seed", "3",
            "--preset", "quick", "-o", f"variant={variant}", "-q", "--results", results, *extra]


def wait_for_log(log, timeout=300):
    import time
    end = time.time() + timeout
    while time.time() < end and not (log.exists() and log.read_text()):
        time.sleep(0.05)
    assert log.exists() and log.read_text(), "the first process never started training"


def test_two_identical_runs_at_once_train_once(tmp_path):
    log, results = tmp_path / "trained.log", tmp_path / "results"
    first = spawn(tmp_path, slow_run_args(results), log, step_sleep=2.0)  # ~20 s of training
    wait_for_log(log)  # the first one is training
    second = spawn(tmp_path, slow_run_args(results), log)
    out2, err2 = second.communicate(timeout=300)
    assert second.returncode == 2, (out2[-300:], log.read_text(), first.poll())
    assert err2.count("Error:") == 1 and "is in progress in process" in err2 and "Traceback" not in err2
    waiter = spawn(tmp_path, slow_run_args(results, "a", "--wait"), log)
    out1, err1 = first.communicate(timeout=300)
    out3, err3 = waiter.communicate(timeout=300)
    assert first.returncode == 0 and waiter.returncode == 0, (err1, err3)
    assert "already finished" in out3
    assert sorted(log.read_text().split("\n")[:-1]) == sorted(
        f"a {stage} {first.pid}" for stage in ("pretrain", "supervised", "finetune-a"))


GRID_TOML = """
name = "busy"
methods = ["slow-logged[variant=a,b,c]"]
datasets = ["tiny[n_subjects=8;size=12;depth=3]"]
drfs = [4]
seeds = [3]
preset = "quick"

[protocol]
n_train = 3
n_test = 2
n_unpaired = 0
"""


def test_two_grids_on_one_folder_never_train_a_cell_twice(tmp_path):
    log, results = tmp_path / "trained.log", tmp_path / "results"
    spec = tmp_path / "busy.toml"
    spec.write_text(GRID_TOML)
    args = ["grid", str(spec), "--results", str(results)]
    grids = [spawn(tmp_path, args, log, step_sleep=1.0)]  # ~10 s a cell: the second grid arrives mid-grid
    wait_for_log(log)
    grids.append(spawn(tmp_path, args, log, step_sleep=1.0))
    outputs = [g.communicate(timeout=600) for g in grids]
    assert all(g.returncode == 0 for g in grids), outputs
    lines = log.read_text().split("\n")[:-1]
    starts = [tuple(line.split()[:2]) for line in lines]
    assert len(starts) == len(set(starts)), lines  # every (variant, stage) trained once across both grids
    assert {v for v, _ in starts} == {"a", "b", "c"}
    assert len({line.split()[2] for line in lines}) == 2, lines  # both grids trained some of the cells
    assert all("3 cells: 3 finished" in out + err for out, err in outputs), outputs
