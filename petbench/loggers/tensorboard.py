"""TensorBoard logging of every run (``pip install "petbench[tensorboard]"``), a plugin built on the
``epoch_finished`` and ``run_finished`` hooks as any logger plugin would be.

When the ``tensorboard`` package is installed, each run writes event files to
``<run folder>/tensorboard/``: per epoch ``<stage>/loss/<name>`` (the epoch's mean) and, when the host
validated, ``<stage>/validation/<metric>``; at the end ``test/<metric>`` (the test mean). Watch a results
folder with ``tensorboard --logdir petbench-results``. ``PETBENCH_TENSORBOARD=0`` switches it off.
Without the package the hooks do nothing.
"""
from __future__ import annotations

import os

from ..hookspecs import hookimpl

FOLDER = "tensorboard"
_writers: dict[str, object] = {}  # run folder -> its open SummaryWriter


def enabled() -> bool:
    if os.environ.get("PETBENCH_TENSORBOARD", "1").strip().lower() in {"0", "false", "no", "off"}:
        return False
    try:
        import tensorboard  # noqa: F401  (torch's SummaryWriter needs it)
    except ImportError:
        return False
    return True


def writer_for(record):
    key = str(record.path)
    if key not in _writers:
        from torch.utils.tensorboard import SummaryWriter

        _writers[key] = SummaryWriter(log_dir=str(record.path / FOLDER))
    return _writers[key]


@hookimpl
def epoch_finished(record, stage, epoch, losses, validation):
    if not enabled():
        return
    writer = writer_for(record)
    for name, value in losses.items():
        writer.add_scalar(f"{stage}/loss/{name}", value, epoch)
    for name, value in (validation or {}).items():
        writer.add_scalar(f"{stage}/validation/{name}", value, epoch)
    writer.flush()


@hookimpl
def run_finished(record):
    if not enabled():
        return
    writer = writer_for(record)
    for name, stats in record.summary.items():
        writer.add_scalar(f"test/{name}", stats["mean"], 0)
    writer.close()
    _writers.pop(str(record.path), None)
