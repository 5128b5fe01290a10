"""Generating phantom subjects faster must not change them: the volumes of today's generator, bit for bit,
whatever the thread count and whether they were simulated in this process or in a pool of workers.

The reference digests were computed with the generator as it was before subjects were simulated in
worker processes (commit 273f01f, ``torch.set_num_threads(1)``): sha256 of the float32 SPET and DRF-10
LPET of brain subjects 0-3 at 32³, seed 0, default physics. With 2 threads that generator gave other
floats for subject 0 (by up to 4.8e-6 SUV), which is why a subject is now always simulated with one.
"""
import hashlib

import numpy as np
import pytest
import torch

from petbench import UserError
from petbench.datasets.phantom import PhantomConfig, SubjectStore, generate_subjects, simulate_subject
from petbench.datasets.phantom import generate as generate_module
from petbench.datasets.phantom.cache import quantize
from petbench.datasets.phantom.generate import WORKERS_VARIABLE, simulation_workers, subject_id

SIZE = 32
REFERENCE = {  # subject -> (SPET, LPET DRF 10) sha256[:32] of the float32 volume, from the earlier generator
    0: ("7ab63cc166582883117a86063218f7c9", "f7fc6b8faf131f825297596166062030"),
    1: ("12e3f68b3f444fc2b9e8fdb710c9bd41", "080d04218bed5d2820863c17704e41c8"),
    2: ("08fbf10eaef68dff35e1b717b1515721", "3c9761bb3c41940087b0a9834a1a17bd"),
    3: ("d950f8918eb05db22bef84876c923ad1", "790ff0b6a53014db442926b0a6d1c797"),
}


def digest(volume: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(volume, dtype=np.float32).tobytes()).hexdigest()[:32]


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("index", [0, 3])
def test_simulation_matches_the_earlier_generator_with_any_thread_count(index, two_threads):
    subject = simulate_subject(index, 0, "brain", SIZE, drfs=(10,))
    assert (digest(subject.spet), digest(subject.lpet[10])) == REFERENCE[index]
    assert torch.get_num_threads() == 2  # the caller's setting is given back


def test_worker_pool_writes_the_same_volumes_as_this_process(tmp_path):
    config = PhantomConfig(size=SIZE)
    pooled, local = SubjectStore(tmp_path / "pool"), SubjectStore(tmp_path / "local")
    indices = sorted(REFERENCE)
    assert generate_subjects(config, pooled, indices, (10,), progress=False, workers=2) == len(indices)
    assert generate_subjects(config, local, indices[:2], (10,), progress=False, workers=1) == 2
    for index in indices:
        sid = subject_id(index)
        for kind, reference in zip((None, 10), REFERENCE[index]):
            stored = pooled.read(sid, kind, config.shape, config.affine)
            assert stored is not None, f"{sid} {kind} was not written by the pool"
            if index in indices[:2]:
                assert np.array_equal(stored, local.read(sid, kind, config.shape, config.affine))
        for name in ("tissue", "lesions"):
            assert pooled.read_labels(sid, name, config.shape, config.affine) is not None
    # what was stored is the quantised reference volume (bit for bit): re-simulate in this process
    fresh = simulate_subject(indices[-1], 0, "brain", SIZE, drfs=(10,))
    assert digest(fresh.spet) == REFERENCE[indices[-1]][0]
    levels, slope = quantize(fresh.spet)
    assert np.array_equal(pooled.read(subject_id(indices[-1]), None, config.shape, config.affine),
                          levels.astype(np.float32) * slope)
    assert generate_subjects(config, pooled, indices, (10,), progress=False, workers=2) == 0  # nothing left


def test_worker_errors_reach_the_caller(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache should be")
    with pytest.raises(UserError, match="cannot write"):
        generate_subjects(PhantomConfig(size=16), SubjectStore(blocker / "store"), [0, 1], (), progress=False,
                          workers=2)


def test_how_many_workers(monkeypatch):
    monkeypatch.delenv(WORKERS_VARIABLE, raising=False)
    monkeypatch.setattr(generate_module, "usable_cores", lambda: 2)
    assert simulation_workers(170, 128) == 2  # the default protocol: both cores
    assert simulation_workers(1, 128) == 1  # one subject: no pool
    assert simulation_workers(8, 32) == 1  # tiny volumes: a pool's start-up would cost more
    assert simulation_workers(170, 128, device="cuda") == 1
    monkeypatch.setenv(WORKERS_VARIABLE, "3")
    assert simulation_workers(8, 32) == 3
    assert simulation_workers(2, 32) == 2  # never more workers than subjects
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(WORKERS_VARIABLE, bad)
        with pytest.raises(UserError, match=WORKERS_VARIABLE):
            simulation_workers(170, 128)


def test_label_maps_are_read_only_when_looked_at(monkeypatch, tmp_path):
    from petbench.default_plugins import phantom as phantom_plugin
    from petbench.default_plugins.phantom import Phantom
    from petbench.metric import MetricContext

    monkeypatch.setenv("PETBENCH_CACHE", str(tmp_path / "cache"))
    dataset = Phantom(size=16, n_subjects=2)
    dataset.load("phantom-0001", (10,))  # simulated and stored, labels included
    reads = []
    real = phantom_plugin.subject_labels
    monkeypatch.setattr(phantom_plugin, "subject_labels", lambda *a: reads.append(a[2]) or real(*a))
    subject = dataset.load("phantom-0001", (10,))
    assert reads == []  # a training load needs only the volumes
    context = MetricContext.from_subject(subject)  # what evaluation does
    assert reads == [1] and set(context.labels) == {"regions", "lesions", "background"}
    assert context.labels["regions"].array.shape == subject.spet.shape
    assert subject.labels["regions"] is context.labels["regions"] and reads == [1]  # read once


def test_a_script_without_a_main_guard_can_use_the_pool(tmp_path):
    """Workers must not import the caller's script again (a spawned worker would: it would run the
    script's top level once more and fail to start)."""
    import subprocess
    import sys

    script = tmp_path / "make_phantoms.py"
    script.write_text(
        "from petbench.datasets.phantom import PhantomConfig, SubjectStore, generate_subjects\n"
        f"store = SubjectStore({str(tmp_path / 'store')!r})\n"
        "print('top level ran')\n"
        "print(generate_subjects(PhantomConfig(size=16), store, [0, 1, 2], (10,), progress=False, workers=2))\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["top", "level", "ran", "3"]
