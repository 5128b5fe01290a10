"""`stages(run)` is handed a run context outside a run too: when a grid is planned (built from the cell:
its dataset, DRF and training data, read on first use) and in `petbench check` (the check's tiny data)."""
import json
import types

import torch

from petbench import Stage, hookimpl
from petbench.grids.run_grid import plan_grid
from petbench.grids.spec import GridSpec, Variant
from petbench.testing import method_report
from petbench.testing.toys import TOY_PLUGIN, TinyMethod, isolated_host


class NeedsRun(TinyMethod):
    """Sizes its schedule from the run and puts the steps per epoch in its stage's reuse key."""

    name = "needs-run"
    description = "a method whose stages() uses the run context"
    defaults = {**TinyMethod.defaults, "epochs": 1, "batch_size": 4}
    seen: list = []

    def stages(self, run):
        steps = run.steps_per_epoch(("paired",), self.options["batch_size"])
        NeedsRun.seen.append({"dataset": run.dataset, "drf": run.drf, "shape": run.slice_shape, "steps": steps})
        (stage,) = super().stages()
        optimizer = stage.optimizers["adam"]
        total = steps * self.options["epochs"]
        return [Stage("supervised", stage.step, {"adam": optimizer}, modules=("net",), epochs=self.options["epochs"],
                      batch_size=self.options["batch_size"], reuse_key={"steps": steps},
                      schedulers={"cos": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)},
                      schedulers_per="step")]


@hookimpl(specname="register_methods")
def _register(register):
    register(NeedsRun)


PLUGIN = types.SimpleNamespace(__name__="needs-run-plugin", register_methods=_register)


def test_grid_planning_hands_stages_the_cells_run_context(tmp_path):
    host = isolated_host(TOY_PLUGIN, PLUGIN)
    NeedsRun.seen.clear()
    spec = GridSpec(name="ctx", methods=[Variant("needs-run")], datasets=[Variant("tiny", {"size": 16, "depth": 8})],
                    drfs=[4], seeds=[0, 1], n_train=[2, 4], n_test=2, n_unpaired=[0], preset="quick")
    plan = plan_grid(host, spec, tmp_path / "results", preset="quick")
    # one context per data setting (n_train 2 and 4), shared by the seeds: 8 slices per subject, batches of 4
    assert NeedsRun.seen == [{"dataset": "tiny", "drf": 4, "shape": (16, 16), "steps": n * 8 // 4} for n in (2, 4)]
    for planned in plan.cells:  # the stage-cache key of each cell holds its stage's reuse_key
        (share,) = planned.share
        assert share.startswith("supervised:" + json.dumps({"steps": planned.cell.n_train * 2}) + ":")
    assert not any(p.plan_error for p in plan.cells)


def test_check_hands_stages_a_run_context_of_its_tiny_data():
    host = isolated_host(TOY_PLUGIN, PLUGIN)
    NeedsRun.seen.clear()
    report = method_report("needs-run", host=host, size=32, depth=4)
    assert report.ok and [r.status for r in report.results] == ["passed"] * 9, report.text()
    # TinyRun: 2 paired-train subjects of 4 slices, 32 x 32, DRF 4; once for the checks, once for determinism
    assert NeedsRun.seen == [{"dataset": "tiny", "drf": 4, "shape": (32, 32), "steps": 2}] * 2
