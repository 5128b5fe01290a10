"""Kill a run at a chosen checkpoint write (SIGKILL, in a subprocess), then finish it and compare.

Used by test_reliability.py and, with more kill points, by benchmarks/kill_campaign.py. The child
process runs a list of run configs one after the other in one results folder (so a later config can
reuse a stage stored by an earlier one) and kills itself:

- ``after``: right after its N-th atomic write of a ``.pt`` file (checkpoint or shared stage) is renamed;
- ``during``: after its N-th ``torch.save`` to a temporary file, before the rename;
- ``evaluate``: after its N-th saved prediction (evaluation is under way);
- ``timer``: N milliseconds after it starts, wherever it is.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from petbench import Method, Stage, hookimpl
from petbench.engine.checkpoint import load_plain

HERE = Path(__file__).resolve().parent


class ThreeStageMethod(Method):
    """Three stages on different sources: a shared (reusable) pre-training of the encoder on LPET, a
    supervised stage with a step-decayed lr, and a fine-tuning stage sharing no optimiser."""

    name = "three-stage"
    description = "Three-stage toy: reusable encoder pre-training, supervised, fine-tuning (for tests)."
    defaults = {"epochs": [2, 1, 2], "batch_size": 4, "lr": 3e-3, "variant": "a"}
    presets = {"paper": {}, "quick": {}}

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        self.nets["encoder"] = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU())
        self.nets["decoder"] = nn.Conv2d(6, 1, 3, padding=1)

    def forward(self, x):
        return x + self.nets["decoder"](self.nets["encoder"](x))

    def stages(self):
        o, enc, dec = self.options, self.nets["encoder"], self.nets["decoder"]
        pre = torch.optim.Adam(enc.parameters(), lr=o["lr"])
        sup = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=o["lr"])
        fine = torch.optim.SGD(dec.parameters(), lr=o["lr"], momentum=0.9)
        decay = torch.optim.lr_scheduler.StepLR(sup, step_size=1, gamma=0.5)

        def pretrain(batch, ctx):  # denoise LPET with dropout: uses the RNG inside the step
            noisy = batch["lpet_u"] * torch.rand_like(batch["lpet_u"]).gt(0.2)
            loss = (self.forward(noisy) - batch["lpet_u"]).pow(2).mean()
            ctx.backward_step(loss, pre)
            return {"rec": loss}

        def supervised(batch, ctx):
            loss = (self.forward(batch["lpet"]) - batch["spet"]).abs().mean()
            ctx.backward_step(loss, sup)
            return {"l1": loss}

        def finetune(batch, ctx):
            loss = (self.forward(batch["lpet"]) - batch["spet"]).pow(2).mean()
            ctx.backward_step(loss, fine)
            return {"l2": loss}

        epochs, size = o["epochs"], o["batch_size"]
        return [Stage("pretrain", pretrain, {"adam": pre}, modules=("encoder",), sources=("unpaired_lpet",),
                      epochs=epochs[0], batch_size=size, reuse_key={"pretrain": o["lr"], "epochs": epochs[0]}),
                Stage("supervised", supervised, {"adam": sup}, modules=("encoder", "decoder"), epochs=epochs[1],
                      batch_size=size, schedulers={"decay": decay}),
                Stage(f"finetune-{o['variant']}", finetune, {"sgd": fine}, modules=("decoder",), epochs=epochs[2],
                      batch_size=size)]

    def predict(self, lpet):
        return self.forward(lpet).clamp_min(0)


class SlowLoggedMethod(ThreeStageMethod):
    """The three-stage toy, slowed down, noting each training stage it starts in $PETBENCH_TRAIN_LOG
    (to count how often a cell is trained when several processes share a results folder)."""

    name = "slow-logged"

    def stages(self):
        stages = super().stages()
        for stage in stages:
            stage.step = self.logged(stage.name, stage.step)
        return stages

    def logged(self, stage_name, step):
        def wrapped(batch, ctx):
            if ctx.step_index == 0:
                with open(os.environ["PETBENCH_TRAIN_LOG"], "a") as log:
                    log.write(f"{self.options['variant']} {stage_name} {os.getpid()}\n")
            time.sleep(float(os.environ.get("PETBENCH_STEP_SLEEP", "0.02")))
            return step(batch, ctx)
        return wrapped


@hookimpl
def register_methods(register):
    register(ThreeStageMethod)
    register(SlowLoggedMethod)


# A zygote: one fresh interpreter imports torch and petbench once, runs no torch op, and forks a child per
# job (fork is safe before any thread pool exists); each child patches in its kill and runs the configs.
ZYGOTE = textwrap.dedent("""
    import json, os, signal, sys
    sys.path.insert(0, {here!r})
    import torch
    import petbench.atomic, petbench.runner
    import kill_matrix

    def child(job):
        torch.set_num_threads(1)
        mode, at, count = job["mode"], job["at"], [0]
        def hit():
            count[0] += 1
            if at and count[0] == at and mode != "timer":
                os.kill(os.getpid(), signal.SIGKILL)
        if mode == "after":
            real_replace = os.replace
            def replace(src, dst):
                real_replace(src, dst)
                if os.path.basename(str(src)).startswith(".tmp-") and str(dst).endswith(".pt"):
                    hit()
            petbench.atomic.os.replace = replace
        elif mode == "during":
            real_save = torch.save
            def save(obj, f, *a, **k):
                real_save(obj, f, *a, **k)
                if os.path.basename(str(f)).startswith(".tmp-"):
                    hit()
            torch.save = save
        elif mode == "timer":  # at a random moment: ``at`` is in milliseconds
            import threading
            threading.Timer(at / 1000, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
        elif mode == "evaluate":
            real_volume = petbench.runner.save_volume
            def save_volume(*a, **k):
                real_volume(*a, **k)
                hit()
            petbench.runner.save_volume = save_volume
        if job.get("argv"):  # a CLI command (e.g. a grid) on the same host
            from petbench.cli import create_app
            try:
                create_app(kill_matrix.build_host(job["plugins"]))(args=job["argv"])
            except SystemExit as exit:
                if exit.code:
                    raise
        else:
            kill_matrix.run_all(job["results"], job["configs"], job["plugins"])
        return count[0]

    for line in sys.stdin:
        job = json.loads(line)
        os.makedirs(job["results"], exist_ok=True)
        err_path = os.path.join(os.path.dirname(job["results"]), os.path.basename(job["results"]) + ".stderr")
        pid = os.fork()
        if pid == 0:
            fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 2)
            os.dup2(fd, 1)  # what a command prints must not reach the zygote's answers
            sys.stdout = os.fdopen(1, "w", buffering=1)
            try:
                writes = child(job)
                with open(err_path + ".writes", "w") as f:
                    f.write(str(writes))
                code = 0
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 1
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({{"code": os.waitstatus_to_exitcode(status), "stderr": err_path}}), flush=True)
""")


class Zygote:
    """``with Zygote() as z: z.run(results, configs, mode, at)`` -> (returncode, writes, stderr)."""

    def __enter__(self) -> "Zygote":
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.process = subprocess.Popen([sys.executable, "-c", ZYGOTE.format(here=str(HERE))], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        return self

    def run(self, results: Path, configs: list[dict], mode: str = "", at: int = 0, plugins: tuple[str, ...] = (),
            argv: list[str] | None = None):
        """Run ``configs`` one after the other (or the CLI command ``argv``) in a forked child."""
        job = {"results": str(results), "configs": configs, "mode": mode, "at": at, "plugins": list(plugins),
               "argv": [str(a) for a in argv] if argv else None}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the kill-matrix zygote died")
        answer = json.loads(line)
        err = Path(answer["stderr"]).read_text()
        writes_file = Path(answer["stderr"] + ".writes")
        writes = int(writes_file.read_text()) if answer["code"] == 0 and writes_file.exists() else None
        return answer["code"], writes, err

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def build_host(plugins: list[str]):
    import importlib

    from petbench.testing.toys import TOY_PLUGIN, isolated_host

    extra = [importlib.import_module(name) for name in plugins]
    return isolated_host(TOY_PLUGIN, sys.modules[__name__], *extra)


def run_all(results: str, configs: list[dict], plugins: list[str]):
    from petbench.data.protocol import Protocol
    from petbench.runner import RunConfig, execute

    host = build_host(plugins)
    records = []
    for config in configs:
        config = dict(config)
        config["protocol"] = Protocol(**config["protocol"])
        records.append(execute(host, RunConfig(**config), results, progress=False, log=lambda _: None,
                               warn=lambda text: print(text, file=sys.stderr)))
    return records


def outcome(results: Path) -> dict:
    """Per run: the final weights and the per-subject metrics, to compare bit for bit."""
    found = {}
    for run_dir in sorted(p for p in Path(results).iterdir() if (p / "run.json").exists()):
        record = json.loads((run_dir / "run.json").read_text())
        assert record["status"] == "finished", (run_dir.name, record.get("error"))
        last = run_dir / "checkpoints" / "last.pt"
        nets = load_plain(last)["nets"] if last.exists() else {}  # a method that does not train has none
        rows = pd.read_csv(run_dir / "metrics.csv").sort_values(["subject", "metric"]).reset_index(drop=True)
        history_file = run_dir / "history.jsonl"
        history = [json.loads(line) for line in history_file.read_text().splitlines()] if history_file.exists() else []
        for entry in history:
            entry.pop("seconds")  # wall time: the only part of an entry a resume may change
        found[run_dir.name] = {"nets": nets, "rows": rows, "history": history}
    return found


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for run_id in a:
        assert a[run_id]["nets"].keys() == b[run_id]["nets"].keys()
        for key, value in a[run_id]["nets"].items():
            assert torch.equal(value, b[run_id]["nets"][key]), f"{run_id}: {key} differs"
        pd.testing.assert_frame_equal(a[run_id]["rows"], b[run_id]["rows"], check_exact=True)
        assert a[run_id]["history"] == b[run_id]["history"], f"{run_id}: history.jsonl differs"


SIGKILLED = -signal.SIGKILL
