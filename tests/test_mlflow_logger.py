"""The MLflow logger (petbench[mlflow]): a run's options, protocol and identity as parameters, its epoch
losses, validation scores and test means as metrics, its method/dataset/run id as tags, read back with
MLflow's own client."""
import json

import pytest

from test_training_features import oracle_host, oracle_run

mlflow = pytest.importorskip("mlflow", reason="the optional mlflow extra is not installed")


@pytest.fixture
def mlflow_on(monkeypatch):
    monkeypatch.setenv("PETBENCH_MLFLOW", "1")
    monkeypatch.delenv("PETBENCH_MLFLOW_URI", raising=False)


def read_back(uri: str, run_id: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("petbench")
    (run,) = client.search_runs([experiment.experiment_id], filter_string=f"tags.`petbench.run_id` = '{run_id}'")
    return client, run


def test_mlflow_reads_back_a_runs_parameters_metrics_and_tags(tmp_path, mlflow_on):
    record = oracle_run(oracle_host(), tmp_path, n_val=2)
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client, run = read_back(uri, record.run_id)
    params, tags = run.data.params, run.data.tags
    assert json.loads(params["method.gains"]) == [0.3, 0.9, 1.7, 0.5]
    assert params["protocol.n_train"] == "3" and params["protocol.n_val"] == "2" and params["protocol.drf"] == "4"
    assert params["dataset.size"] == "12" and params["seed"] == "0"
    assert params["identity.method.source"] == str(record.data["identity"]["method"]["source"])
    assert tags["petbench.method"] == "gain-oracle" and tags["petbench.dataset"] == "tiny"
    assert tags["petbench.run_id"] == record.run_id and tags["mlflow.runName"] == record.run_id
    assert run.info.status == "FINISHED"
    losses = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "fit/loss/gain")]
    assert sorted(losses) == [(1, pytest.approx(0.3)), (2, pytest.approx(0.9)), (3, pytest.approx(1.7)),
                              (4, pytest.approx(0.5))]
    scores = sorted(client.get_metric_history(run.info.run_id, "fit/validation/psnr"), key=lambda m: m.step)
    assert [m.value for m in scores] == pytest.approx([p["score"] for p in record.data["validation"]["curve"]],
                                                      rel=1e-6)
    for name in ("psnr", "nmse"):
        assert run.data.metrics[f"test/{name}"] == pytest.approx(record.summary[name]["mean"], rel=1e-9)


def test_mlflow_uri_points_the_logger_elsewhere_and_zero_switches_it_off(tmp_path, mlflow_on, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'server.db'}"
    monkeypatch.setenv("PETBENCH_MLFLOW_URI", uri)
    record = oracle_run(oracle_host(), tmp_path / "a")
    _, run = read_back(uri, record.run_id)
    assert run.data.metrics["test/psnr"] == pytest.approx(record.summary["psnr"]["mean"], rel=1e-9)
    assert not (tmp_path / "a" / "mlruns").exists()
    monkeypatch.setenv("PETBENCH_MLFLOW", "0")
    monkeypatch.delenv("PETBENCH_MLFLOW_URI")
    oracle_run(oracle_host(), tmp_path / "b")
    assert not (tmp_path / "b" / "mlruns").exists()


def test_run_command_takes_mlflow_uri(tmp_path, mlflow_on):
    from typer.testing import CliRunner

    from petbench.cli import create_app

    uri = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(create_app(oracle_host()), [
        "run", "--method", "lpet", "--dataset", "tiny", "-D", "size=12", "-D", "depth=4", "--n-train", "2",
        "--n-test", "2", "--n-unpaired", "0", "--drf", "4", "--metrics", "psnr", "-q", "--results",
        str(tmp_path / "r"), "--mlflow-uri", uri])
    assert result.exit_code == 0, result.output
    run_id = next((tmp_path / "r").glob("lpet_*")).name
    _, run = read_back(uri, run_id)
    assert run.data.tags["petbench.method"] == "lpet" and "test/psnr" in run.data.metrics
