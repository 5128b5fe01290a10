"""A run end to end on tiny data: re-stacking, normalisation, records, resume, failure status."""
import json
import types

import nibabel as nib
import numpy as np
import pytest
import torch

from petbench import Method, Normalization, hookimpl
from petbench.data.protocol import Protocol, split_subjects
from petbench.errors import TrainingDiverged, UserError
from petbench.results import find_records
from petbench.runner import RunConfig, execute
from petbench.testing.toys import TOY_PLUGIN, TinyDataset, TinyMethod, isolated_host

PROTOCOL = Protocol(n_train=4, n_test=3, n_unpaired=2, drf=4)


def plugin_with(*, methods=(), datasets=(), name="extra"):
    @hookimpl
    def register_methods(register):
        for m in methods:
            register(m)

    @hookimpl
    def register_datasets(register):
        for d in datasets:
            register(d)

    return types.SimpleNamespace(__name__=name, register_methods=register_methods, register_datasets=register_datasets)


def run(host, results, method="tiny-cnn", dataset="tiny", **kw):
    kw.setdefault("protocol", PROTOCOL)
    kw.setdefault("preset", "quick")
    return execute(host, RunConfig(method=method, dataset=dataset, **kw), results, progress=False, log=lambda _: None)


class Oracle(Method):
    """Test-only: looks the reference up from the dataset (it cheats on purpose) to check that
    the host's slicing, batching, re-stacking and de-normalisation are exact."""

    name = "oracle"
    dataset = None

    def predict(self, lpet):
        out = []
        for x in lpet.numpy()[:, 0]:
            for sid in self.dataset.subject_ids():
                subject = self.dataset.load(sid, (4,))
                for low, ref in zip(subject.lpet[4], subject.spet):
                    scale = low.sum() / x.sum()
                    if np.allclose(x * scale, low, rtol=1e-5, atol=1e-6):
                        out.append(ref / scale)
                        break
                else:
                    continue
                break
            else:
                raise AssertionError("slice not found")
        return torch.from_numpy(np.stack(out)[:, None])


def test_oracle_gets_nmse_zero_through_restacking(results):
    class DeepTiny(TinyDataset):
        name = "deep-tiny"
        defaults = {**TinyDataset.defaults, "n_subjects": 9, "depth": 40, "size": 8}  # 40 slices: two batches

    Oracle.dataset = DeepTiny()
    host = isolated_host(plugin_with(methods=[Oracle], datasets=[DeepTiny]))
    record = run(host, results, method="oracle", dataset="deep-tiny")
    assert record.summary["nmse"]["mean"] == pytest.approx(0, abs=1e-10)
    assert record.summary["ssim"]["mean"] == pytest.approx(1, abs=1e-6)


def test_lpet_row_equals_metrics_of_the_input(results):
    host = isolated_host(TOY_PLUGIN)
    record = run(host, results, method="lpet")
    dataset = TinyDataset()
    rows = record.rows()
    from petbench.default_plugins.metrics import nmse

    for sid in record.data["splits"]["test"]:
        subject = dataset.load(sid, (4,))
        value = rows[(rows.subject == sid) & (rows.metric == "nmse")].value.item()
        assert value == pytest.approx(nmse(subject.lpet[4], subject.spet), rel=1e-5)


def test_training_beats_the_low_dose_input(results):
    host = isolated_host(TOY_PLUGIN)
    lpet = run(host, results, method="lpet")
    cnn = run(host, results, method="tiny-cnn", method_options={"epochs": 15})
    assert cnn.summary["nmse"]["mean"] < lpet.summary["nmse"]["mean"]


class SpyNormalization(Normalization):
    def fit(self, train_volumes):
        test_ids = split_subjects("spy", SpyDataset().subject_ids(), PROTOCOL).test
        seen = {int(round(v[0, 0, 0])) for v in train_volumes}
        leaked = seen & {int(s.removeprefix("tiny")) + 1000 for s in test_ids}
        if leaked:
            raise AssertionError(f"normalisation read test SPET volumes {sorted(leaked)}")
        return float(np.percentile(np.concatenate([v.ravel()[1:] for v in train_volumes]), 99))

    def describe(self):
        return "spy"


class SpyDataset(TinyDataset):
    """Every SPET volume carries its subject number in voxel [0,0,0]."""

    name = "spy"
    normalization = SpyNormalization()

    def load(self, subject_id, drfs=()):
        subject = super().load(subject_id, drfs)
        subject.spet[0, 0, 0] = int(subject_id.removeprefix("tiny")) + 1000
        return subject


def test_normalisation_never_reads_a_test_spet(results):
    host = isolated_host(TOY_PLUGIN, plugin_with(datasets=[SpyDataset]))
    record = run(host, results, dataset="spy")
    assert record.finished

    class LeakyRunner(SpyDataset):  # the spy fails loudly if the host ever hands it test volumes
        name = "leaky"

    leaky = LeakyRunner()
    with pytest.raises(AssertionError, match="read test SPET"):
        SpyNormalization().fit([leaky.load(s).spet for s in split_subjects("x", leaky.subject_ids(), PROTOCOL).test])


def test_record_contents_and_predictions(results):
    host = isolated_host(TOY_PLUGIN)
    record = run(host, results)
    data = json.loads((record.path / "run.json").read_text())
    assert data["status"] == "finished"
    assert data["method"]["parameters"] == sum(p.numel() for p in TinyMethod().nets.parameters())
    assert data["method"]["training_sources"] == ["paired"]
    assert data["environment"]["torch"] == torch.__version__
    assert {"psnr", "ssim", "nmse"} <= set(data["summary"]) == set(data["metrics"])
    assert len(record.rows()) == 3 * len(data["metrics"])
    sid = data["splits"]["test"][0]
    image = nib.load(record.path / "predictions" / f"{sid}.nii.gz")
    assert image.shape == (16, 16, 8)  # NIfTI order x, y, z
    np.testing.assert_allclose(image.affine, TinyDataset().load(sid).affine)
    assert data["timings"]["stages"][0]["name"] == "supervised"


def test_same_run_again_is_not_retrained_unless_forced(results):
    host = isolated_host(TOY_PLUGIN)
    first = run(host, results)
    again = run(host, results)
    assert again.path == first.path and again.data["started_at"] == first.data["started_at"]
    forced = execute(host, RunConfig(method="tiny-cnn", dataset="tiny", protocol=PROTOCOL, preset="quick"),
                     results, force=True, progress=False, log=lambda _: None)
    assert forced.finished and forced.path == first.path


def test_failed_run_is_recorded_and_never_read_as_finished(results):
    class Diverging(TinyMethod):
        name = "diverging"

        def stages(self):
            (stage,) = super().stages()
            stage.step = lambda batch, ctx: {"l1": float("inf")}
            return [stage]

    host = isolated_host(TOY_PLUGIN, plugin_with(methods=[Diverging]))
    with pytest.raises(TrainingDiverged):
        run(host, results, method="diverging")
    (record,) = find_records(results, finished_only=False)
    assert record.status == "failed" and "loss l1 = inf" in record.data["error"]
    assert find_records(results) == []


def test_user_mistakes_write_nothing(results):
    host = isolated_host(TOY_PLUGIN)
    with pytest.raises(UserError, match="unknown method 'nope'"):
        run(host, results, method="nope")
    with pytest.raises(UserError, match="no DRF 7"):
        run(host, results, protocol=Protocol(n_train=2, n_test=2, n_unpaired=0, drf=7))
    with pytest.raises(UserError, match="option of method 'tiny-cnn'"):
        run(host, results, method_options={"epochz": 3})
    with pytest.raises(UserError, match="needs 30"):
        run(host, results, protocol=Protocol(n_train=20, n_test=10, n_unpaired=0, drf=4))
    assert not results.exists() or not any(results.iterdir())
