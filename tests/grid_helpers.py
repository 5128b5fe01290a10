"""Test helpers for grids, paper tables and figures (importable by submitit's job processes too:
the tests put this folder on sys.path and PYTHONPATH).

- throwaway methods named like the paper's (tiny CNNs; the S3PET variants share a pre-training stage
  through a ``reuse_key`` and declare ``components``), a failing method, one that is "preempted" once,
  one that is interrupted (Ctrl-C) once;
- :func:`helper_host`: an isolated host with the toy dataset/method and these methods (picklable by
  reference, so a submitit job can rebuild it);
- :func:`fake_record`: a finished run record with given per-subject values (and optional predictions).
"""
from __future__ import annotations

import json
import os
import signal
import types
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from petbench import hookimpl
from petbench.data.nifti import save_volume
from petbench.plugins import set_host
from petbench.default_plugins.lpet import LowDoseInput
from petbench.results.record import RunRecord
from petbench.runner import method_extras
from petbench.testing.toys import TOY_PLUGIN, TinyDataset, TinyMethod, isolated_host

METRIC_INFO = {"psnr": {"higher_is_better": True, "unit": "dB", "convention": "", "description": ""},
               "ssim": {"higher_is_better": True, "unit": "", "convention": "", "description": ""},
               "nmse": {"higher_is_better": False, "unit": "", "convention": "", "description": ""}}


class PaperLike(TinyMethod):
    """A tiny CNN under a paper method's name; with ``pretrain`` a first stage shared by reuse_key."""

    defaults = {**TinyMethod.defaults, "epochs": 1}
    pretrain = False
    components = None

    def stages(self):
        (supervised,) = super().stages()
        if not self.pretrain:
            return [supervised]
        net = self.nets["net"]
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step(batch, ctx):
            loss = (self.forward(batch["lpet"]) - batch["lpet"]).abs().mean()
            ctx.backward_step(loss, optimizer)
            return {"recon": loss}

        pre = type(supervised)("pretrain", step, {"adam": optimizer}, modules=("net",), epochs=1, batch_size=8,
                               reuse_key={"stage": "pretrain", "width": self.options["width"]})
        return [pre, supervised]


#: how the stand-ins declare their rows, as the shipped methods do (petbench.Method's class attributes)
ROLES = {
    "cyclegan": {"display_name": "Cycle-GAN", "table_places": {1: 20}, "efficiency_place": 40},
    "autocontext": {"display_name": "Auto-Context", "table_places": {1: 30}, "efficiency_place": 20},
    "argan": {"display_name": "AR-GAN", "table_places": {1: 40}},
    "cvtgan": {"display_name": "CVT-GAN", "table_places": {1: 50}},
    "semipet": {"display_name": "SemiPET", "table_places": {1: 60}, "efficiency_place": 30},
    "s3pet-baseline": {"display_name": "S3PET baseline", "table_places": {2: (10, "Baseline")}},
    "s3pet-dsmae": {"display_name": "S3PET +DsMAE", "table_places": {2: (20, "+DsMAE")}},
    "s3pet-dsmae-dkd": {"display_name": "S3PET +DsMAE+DKD", "table_places": {2: (30, "+DsMAE+DKD")}},
    "s3pet": {"display_name": "S3PET", "table_places": {1: (70, "S3PET (ours)"), 2: (40, "S3PET")},
              "table_reference": True, "figure_labels": {2: "Proposed"}, "efficiency_place": 50},
}


def paper_like(name: str, *, width: int = 8, pretrain: bool = False, components: dict | None = None):
    return type(name.replace("-", "_"), (PaperLike,), {
        "name": name, "description": f"test stand-in for {name}", "pretrain": pretrain, "components": components,
        "defaults": {**PaperLike.defaults, "width": width}, "__module__": __name__, **ROLES.get(name, {})})


TABLE1_FAKES = [paper_like(n, width=w) for n, w in
                [("cyclegan", 4), ("autocontext", 4), ("argan", 6), ("cvtgan", 6), ("semipet", 8)]]
TABLE2_FAKES = [
    paper_like("s3pet-baseline", components={"DsMAE": False, "DKD": False, "DKL": False}),
    paper_like("s3pet-dsmae", pretrain=True, components={"DsMAE": True, "DKD": False, "DKL": False}),
    paper_like("s3pet-dsmae-dkd", pretrain=True, components={"DsMAE": True, "DKD": True, "DKL": False}),
    paper_like("s3pet", pretrain=True, components={"DsMAE": True, "DKD": True, "DKL": True}),
]


class Failing(TinyMethod):
    name = "failing"
    description = "raises in its training step (a plugin bug)"

    def stages(self):
        (stage,) = super().stages()

        def step(batch, ctx):
            raise RuntimeError("boom in the training step")

        stage.step = step
        return [stage]


class BrokenInit(TinyMethod):
    name = "broken-init"
    description = "raises when it is constructed (a plugin bug)"

    def __init__(self, options=None, preset=None):
        raise ValueError("broken constructor")


class StopsOnce(TinyMethod):
    """Stops itself once, at the start of its second epoch (a checkpoint exists by then):
    ``mode="sigusr2"`` signals its own process as SLURM does on preemption (only inside a submitit job);
    ``mode="ctrl-c"`` raises KeyboardInterrupt. ``marker`` is a file: present = already stopped once."""

    name = "stops-once"
    description = "interrupted once after its first epoch (for tests)"
    defaults = {**TinyMethod.defaults, "epochs": 3, "marker": "", "mode": "ctrl-c"}

    def stages(self):
        (stage,) = super().stages()
        inner = stage.step
        marker = Path(self.options["marker"])

        def step(batch, ctx):
            if ctx.epoch >= 1 and not marker.exists():
                marker.write_text("stopped once")
                if self.options["mode"] == "sigusr2":
                    os.kill(os.getpid(), signal.SIGUSR2)
                else:
                    raise KeyboardInterrupt
            return inner(batch, ctx)

        stage.step = step
        return [stage]


@hookimpl(specname="register_methods")
def _register(register):
    for method in TABLE1_FAKES + TABLE2_FAKES + [Failing, BrokenInit, StopsOnce]:
        register(method)


HELPER_PLUGIN = types.SimpleNamespace(__name__="grid-helpers", register_methods=_register)
STAND_INS = {cls.name: cls for cls in TABLE1_FAKES + TABLE2_FAKES + [LowDoseInput]}


def helper_host():
    return isolated_host(TOY_PLUGIN, HELPER_PLUGIN)


# -- fabricated records ---------------------------------------------------------------------------------------
def fake_record(results: Path, method: str, seed: int, values: dict[str, list[float]], *, drf: int = 4,
                subjects: list[str] | None = None, parameters: int | None = 1000, components: dict | None = None,
                options: dict | None = None, n_test: int | None = None, predictions: bool = False,
                noise: float = 0.1, protocol: dict | None = None, extras: dict | None = None) -> RunRecord:
    """A finished record of ``method`` at ``seed`` on the ``tiny`` dataset with these per-subject values;
    with ``predictions``, NIfTI predictions = the subject's SPET plus Gaussian noise of std ``noise``;
    ``protocol`` overrides protocol entries (e.g. ``{"n_train": 2, "n_train_pool": 10}``).
    The method section holds what the runner stores for the stand-in (or ``lpet``) of that name
    (:func:`petbench.runner.method_extras`); ``extras`` replaces it (``{}``: a record from before
    methods declared their names and places)."""
    if extras is None:
        cls = STAND_INS.get(method)
        extras = method_extras(cls) if cls is not None else {}
    n = len(next(iter(values.values())))
    subjects = subjects or [f"tiny{i:03d}" for i in range(n)]
    options = options or {}
    key = (method, seed, drf, str(options)) + ((json.dumps(protocol, sort_keys=True),) if protocol else ())
    run_id = f"{method}_tiny_drf{drf}_seed{seed}_{abs(hash(key)) % 10**10:010d}"
    protocol = {"n_train": 4, "n_test": n_test or n, "n_unpaired": 0, "split_seed": 0, "drf": drf, **(protocol or {})}
    record = RunRecord(Path(results) / run_id, {
        "run_id": run_id, "status": "finished", "started_at": "2024-01-01T00:00:00+00:00",
        "finished_at": f"2024-01-01T00:00:{seed:02d}+00:00",
        "config": {"method": method, "dataset": "tiny", "seed": seed, "protocol": protocol, "preset": "quick"},
        "method": {"name": method, "options": options, "parameters": parameters,
                   **extras, **({"components": components} if components else {})},
        "dataset": {"name": "tiny", "options": {}, "units": "a.u."},
        "protocol": protocol, "splits": {"train": [], "test": subjects, "unpaired": []},
        "metrics": {m: METRIC_INFO[m] for m in values}, "summary": {}, "timings": {}, "error": None,
    })
    rows = [{"subject": s, "metric": m, "value": float(v)} for m, vs in values.items() for s, v in zip(subjects, vs)]
    record.write_rows(pd.DataFrame(rows))
    record.save()
    if predictions:
        dataset = TinyDataset()
        rng = np.random.default_rng(abs(hash((method, seed))) % 2**32)
        for sid in subjects:
            subject = dataset.load(sid, ())
            save_volume(record.path / "predictions" / f"{sid}.nii.gz",
                        subject.spet + rng.normal(0, noise, subject.spet.shape).astype(np.float32), subject.affine)
    return record


def installed(host):
    """A fixture body that makes ``host`` the CLI's host for one test: ``yield from installed(host)``."""
    set_host(host)
    try:
        yield host
    finally:
        set_host(None)
