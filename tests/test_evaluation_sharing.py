"""Evaluation computes the work its metrics share once per subject, and still scores every metric of every
subject in order (issue 28: a run spent most of its evaluation redoing the per-pair work of each metric)."""
import numpy as np

from petbench.data.nifti import load_volume
from petbench.data.protocol import Protocol
from petbench.default_plugins.phantom import Phantom
from petbench.metrics import group
from petbench.results import find_records
from petbench.runner import RunConfig, execute
from petbench.testing.toys import isolated_host

PAPER = ["psnr_paper", "psnr_paper_refmask", "nmse_paper", "nmse_paper_refnorm", "ssim_paper"]


def test_paper_metrics_normalise_each_volume_once_per_subject(tmp_path, monkeypatch):
    calls = []
    real = group.patch_normalize
    monkeypatch.setattr(group, "patch_normalize", lambda volume, *a, **k: calls.append(volume.shape) or real(volume, *a, **k))
    monkeypatch.setenv("PETBENCH_CACHE", str(tmp_path / "cache"))
    protocol = Protocol(n_train=1, n_test=3, n_unpaired=0, drf=10)
    config = RunConfig(method="lpet", dataset="phantom", dataset_options={"size": 32, "n_subjects": 4},
                       protocol=protocol, preset="quick", metrics=[*PAPER, "psnr"])
    execute(isolated_host(), config, tmp_path / "results", progress=False, log=lambda _: None)
    assert len(calls) == 2 * protocol.n_test  # the prediction and the reference, once each per subject
    (record,) = find_records(tmp_path / "results")
    rows = record.rows()
    assert rows.groupby("subject").size().tolist() == [len(PAPER) + 1] * protocol.n_test
    # each value is what the metric gives on its own, with nothing shared
    sid = rows["subject"].iloc[0]
    pred, _ = load_volume(record.path / "predictions" / f"{sid}.nii.gz")
    ref = Phantom(size=32, n_subjects=4).load(sid, (10,)).spet
    for name in PAPER:
        alone = getattr(group, name)(pred.astype(np.float64), ref.astype(np.float64))
        recorded = rows[(rows["subject"] == sid) & (rows["metric"] == name)]["value"].item()
        assert recorded == alone, name
