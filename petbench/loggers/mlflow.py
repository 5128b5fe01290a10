"""MLflow tracking of every run (``pip install "petbench[mlflow]"``), a plugin on the ``epoch_finished`` and
``run_finished`` hooks beside the TensorBoard logger.

When the ``mlflow`` package is installed, each petbench run is one MLflow run in the experiment
``petbench`` of a tracking store: by default a local store in ``mlruns/`` of the results folder, the
SQLite file ``mlruns/mlflow.db`` (MLflow 3 keeps its plain-folder store in maintenance mode and refuses it
by default; view it with ``mlflow ui --backend-store-uri sqlite:///<results>/mlruns/mlflow.db``);
``--mlflow-uri URI`` on ``petbench run`` / ``grid`` (or ``PETBENCH_MLFLOW_URI``) points at a server
instead. It logs

- parameters: the method's and the dataset's resolved options (``method.<key>``, ``dataset.<key>``), the
  protocol (``protocol.<key>``), the seed and the run's identity (``identity.*``);
- metrics: per epoch ``<stage>/loss/<name>`` and, when the host validated, ``<stage>/validation/<metric>``
  (step = epoch); at the end the test mean of each metric, ``test/<metric>``;
- tags: ``petbench.method``, ``petbench.dataset``, ``petbench.run_id`` and the run name (the run id).

A resumed run logs into the MLflow run of its earlier try (found by its ``petbench.run_id`` tag).
``PETBENCH_MLFLOW=0`` switches it off. Without the package the hooks do nothing.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..hookspecs import hookimpl

EXPERIMENT = "petbench"
FOLDER = "mlruns"
URI_VARIABLE = "PETBENCH_MLFLOW_URI"
VALUE_LIMIT = 500  # characters of a parameter value (MLflow stores at most a few thousand)
_open: dict[str, tuple[object, str]] = {}  # run folder -> (client, MLflow run id)


def enabled() -> bool:
    if os.environ.get("PETBENCH_MLFLOW", "1").strip().lower() in {"0", "false", "no", "off"}:
        return False
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


DATABASE = "mlflow.db"


def tracking_uri(results_dir: Path) -> str:
    """``PETBENCH_MLFLOW_URI`` when set, else the SQLite store ``<results>/mlruns/mlflow.db``."""
    given = os.environ.get(URI_VARIABLE, "").strip()
    if given:
        return given
    folder = Path(results_dir).resolve() / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / DATABASE}"


def artifact_location(results_dir: Path) -> str | None:
    """Where a new experiment keeps artifacts: beside the local store (a server decides for itself)."""
    if os.environ.get(URI_VARIABLE, "").strip():
        return None
    return (Path(results_dir).resolve() / FOLDER / "artifacts").as_uri()


def flat(prefix: str, value, out: dict[str, str]) -> dict[str, str]:
    """Nested options as ``prefix.key`` parameters, each value as JSON text cut to :data:`VALUE_LIMIT`."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            flat(f"{prefix}.{key}", item, out)
    else:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        out[prefix] = text[:VALUE_LIMIT]
    return out


def parameters(record) -> dict[str, str]:
    data = record.data
    params: dict[str, str] = {}
    flat("method", data.get("method", {}).get("options") or {}, params)
    flat("dataset", data.get("dataset", {}).get("options") or {}, params)
    flat("protocol", data.get("protocol") or {}, params)
    params["seed"] = str(data.get("config", {}).get("seed"))
    identity = data.get("identity") or {}
    params["identity.version"] = str(identity.get("version"))
    params["identity.method.dist"] = str((identity.get("method") or {}).get("dist") or "in-process")
    params["identity.method.source"] = str((identity.get("method") or {}).get("source"))
    params["identity.dataset.fingerprint"] = json.dumps((identity.get("dataset") or {}).get("fingerprint"),
                                                       sort_keys=True, default=str)[:VALUE_LIMIT]
    return {key: value for key, value in params.items() if key.split(".")[-1] != ""}


def mlflow_run(record) -> tuple[object, str]:
    """The MLflow client and run of ``record`` (made, with its parameters and tags, on first use)."""
    key = str(record.path)
    if key in _open:
        return _open[key]
    import logging

    from mlflow.entities import Param, RunTag
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not its database set-up notes on every run

    client = MlflowClient(tracking_uri=tracking_uri(record.path.parent))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else \
        client.create_experiment(EXPERIMENT, artifact_location=artifact_location(record.path.parent))
    found = client.search_runs([experiment_id], filter_string=f"tags.`petbench.run_id` = '{record.run_id}'",
                               max_results=1)
    if found:
        run_id = found[0].info.run_id
    else:
        tags = {"petbench.method": record.method, "petbench.dataset": record.dataset,
                "petbench.run_id": record.run_id, "mlflow.runName": record.run_id}
        run_id = client.create_run(experiment_id, tags=tags).info.run_id
        params = [Param(k, v) for k, v in parameters(record).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            client.log_batch(run_id, params=params[start:start + 100], tags=[RunTag("petbench.status", "running")])
    _open[key] = (client, run_id)
    return client, run_id


@hookimpl
def epoch_finished(record, stage, epoch, losses, validation):
    if not enabled():
        return
    from mlflow.entities import Metric

    client, run_id = mlflow_run(record)
    stamp = int(time.time() * 1000)
    values = [Metric(f"{stage}/loss/{name}", float(value), stamp, int(epoch)) for name, value in losses.items()]
    values += [Metric(f"{stage}/validation/{name}", float(value), stamp, int(epoch))
               for name, value in (validation or {}).items()]
    client.log_batch(run_id, metrics=values)


@hookimpl
def run_finished(record):
    if not enabled():
        return
    from mlflow.entities import Metric, RunTag

    client, run_id = mlflow_run(record)
    stamp = int(time.time() * 1000)
    values = [Metric(f"test/{name}", float(stats["mean"]), stamp, 0) for name, stats in record.summary.items()]
    client.log_batch(run_id, metrics=values, tags=[RunTag("petbench.status", record.status)])
    client.set_terminated(run_id, "FINISHED" if record.status == "finished" else "FAILED")
    _open.pop(str(record.path), None)
