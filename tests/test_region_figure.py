"""`petbench figure regions|lesions`: the bias it draws is the bias of the saved predictions."""
import json
import types

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from petbench import UserError, hookimpl
from petbench.data.nifti import save_volume
from petbench.data.subject import LabelMap
from petbench.grids.region_figure import collect_bias, region_figure
from petbench.results.record import RunRecord
from petbench.testing.toys import TinyDataset, isolated_host


class LabelledTiny(TinyDataset):
    """The tiny dataset with two regions (x < 8, x ≥ 8) and one cubic lesion made hot in SPET."""

    name = "labelled-tiny"

    def load(self, subject_id, drfs=()):
        subject = super().load(subject_id, drfs)
        x = np.indices(subject.spet.shape)[2]
        lesions = np.zeros(subject.spet.shape, np.uint8)
        lesions[3:5, 4:6, 4:6] = 1
        subject.spet[lesions == 1] += 5.0
        subject.labels = {"regions": LabelMap(np.where(x < 8, 1, 2).astype(np.uint8), {1: "left", 2: "right"}),
                          "lesions": LabelMap(lesions, {1: "lesion 1"})}
        return subject


def make_record(results, method, scale_left, lesion_scale, subjects):
    run_id = f"{method}_labelled_tiny"
    record = RunRecord(results / run_id, {
        "run_id": run_id, "status": "finished", "config": {"method": method, "dataset": "labelled-tiny", "seed": 0},
        "method": {"name": method, "options": {}}, "dataset": {"name": "labelled-tiny", "options": {}},
        "protocol": {"drf": 4}, "summary": {}, "splits": {"train": [], "test": list(subjects), "unpaired": []},
        "metrics": {"psnr": {"higher_is_better": True, "convention": "challenge", "unit": "dB", "description": "psnr"}}})
    record.write_rows(pd.DataFrame([{"subject": s, "metric": "psnr", "value": 1.0} for s in subjects]))
    record.save()
    dataset = LabelledTiny()
    for sid in subjects:
        subject = dataset.load(sid, ())
        x = np.indices(subject.spet.shape)[2]
        pred = subject.spet * np.where(x < 8, scale_left, 1.0).astype(np.float32)
        lesion = subject.labels["lesions"].array == 1
        pred[lesion] = subject.spet[lesion] * lesion_scale
        save_volume(record.path / "predictions" / f"{sid}.nii.gz", pred.astype(np.float32), subject.affine)
    return record


def dataset_plugin(name, dataset):
    @hookimpl
    def register_datasets(register):
        register(dataset)

    return types.SimpleNamespace(__name__=name, register_datasets=register_datasets)


@pytest.fixture
def host():
    return isolated_host(dataset_plugin("labelled", LabelledTiny))


def test_region_and_lesion_bias_are_those_of_the_predictions(host, tmp_path):
    subjects = ["tiny000", "tiny001"]
    good = make_record(tmp_path, "good", 1.0, 1.0, subjects)
    biased = make_record(tmp_path, "biased", 1.1, 0.8, subjects)  # left region +10 %, the lesion flattened to 80 %
    table = collect_bias(host, [good, biased], "regions")
    by = table.groupby(["method", "name"])["bias"]
    assert by.min()[("good", "left")] == pytest.approx(0, abs=1e-4)
    # the lesion lies in the left region, so the whole left region is scaled by 1.1 except the lesion (0.8)
    dataset = LabelledTiny()
    for sid in subjects:
        s = dataset.load(sid, ())
        left = s.labels["regions"].array == 1
        pred = s.spet.astype(np.float64) * 1.1
        pred[s.labels["lesions"].array == 1] = s.spet[s.labels["lesions"].array == 1] * 0.8
        expected = (pred[left].mean() - s.spet[left].mean()) / s.spet[left].mean() * 100
        row = table[(table.method == "biased") & (table.subject == sid) & (table.name == "left")]
        assert row["bias"].item() == pytest.approx(expected, rel=1e-4)
    assert by.max()[("biased", "right")] == pytest.approx(0, abs=1e-4)

    lesions = collect_bias(host, [good, biased], "lesions")
    assert lesions[lesions.method == "biased"]["bias"].to_numpy() == pytest.approx([-20.0, -20.0], abs=1e-3)

    out = tmp_path / "regions.png"
    info = region_figure(host, [good, biased], out, kind="lesions")
    described = json.loads(Image.open(out).info["Description"])
    assert described == info and info["methods"] == ["biased", "good"]
    assert info["median_bias"]["biased"] == pytest.approx(-20.0, abs=1e-3)


def test_a_dataset_without_label_maps_is_a_user_error(tmp_path):
    host = isolated_host(dataset_plugin("tiny", TinyDataset))
    run_id = "plain"
    record = RunRecord(tmp_path / run_id, {"run_id": run_id, "status": "finished", "method": {"name": "m"},
                                           "dataset": {"name": "tiny", "options": {}}, "protocol": {"drf": 4}})
    subject = TinyDataset().load("tiny000", ())
    save_volume(record.path / "predictions" / "tiny000.nii.gz", subject.spet, subject.affine)
    with pytest.raises(UserError, match="no 'regions' label map"):
        region_figure(host, [record], tmp_path / "x.png", kind="regions")


def test_the_figure_command_draws_it(host, tmp_path):
    from typer.testing import CliRunner

    from petbench.cli import create_app
    from petbench.plugins import set_host

    results = tmp_path / "results"
    make_record(results, "good", 1.0, 1.0, ["tiny000"])
    make_record(results, "biased", 1.1, 0.8, ["tiny000"])
    set_host(host)
    try:
        out = tmp_path / "fig.png"
        result = CliRunner().invoke(create_app(), ["figure", "regions", "--out", str(out), "--results", str(results)])
    finally:
        set_host(None)
    assert result.exit_code == 0, result.output
    assert json.loads(Image.open(out).info["Description"])["groups"] == ["left", "right"]
