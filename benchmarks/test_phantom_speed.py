"""Speed of the phantom generator: one 128³ brain subject, standard dose + one low dose (DRF 10).

Target: ≤ 1.5 s per subject on a 2-core CPU (docs/datasets.md). Run with
``python -m pytest benchmarks/test_phantom_speed.py`` (pytest-benchmark); not part of the tests.
``-k workers`` measures what a run's ``prepare`` achieves: subjects per second through
``generate_subjects`` in this process and in its pool of one worker per core (``BENCH_SUBJECTS``,
``BENCH_ROUNDS``: 8 subjects, 2 rounds).
"""
import os

import pytest

from petbench.datasets.phantom import simulate_subject
from petbench.datasets.phantom.projector import get_projector

BUDGET_S = 1.5


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    get_projector(128)  # built once per process (~0.2 s), not per subject
    simulate_subject(1000, drfs=(10,))


def test_spet_plus_one_drf(benchmark):
    indices = iter(range(10_000))
    benchmark.pedantic(lambda: simulate_subject(next(indices), drfs=(10,)), rounds=5, iterations=1)
    benchmark.extra_info["budget_s"] = BUDGET_S
    # The fastest round: other work on a shared machine only ever slows a round down.
    assert benchmark.stats.stats.min <= BUDGET_S


def test_spet_plus_five_drfs(benchmark):
    indices = iter(range(10_000))
    benchmark.pedantic(lambda: simulate_subject(next(indices), drfs=(4, 10, 20, 50, 100)), rounds=3, iterations=1)


#: subjects per throughput round (enough to amortise a pool's start-up, few enough to run in a minute) and rounds
THROUGHPUT_SUBJECTS = int(os.environ.get("BENCH_SUBJECTS", "8"))
THROUGHPUT_ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


@pytest.mark.parametrize("workers", [1, None])
def test_subjects_per_second_with_and_without_workers(benchmark, tmp_path, workers):
    """``generate_subjects`` as a run calls it, into a fresh store: in this process (``workers=1``) and in
    the default pool (one process per core). ``extra_info`` holds the wall and CPU seconds per subject
    (CPU: this process and its finished workers, from ``getrusage``)."""
    import resource

    from petbench.datasets.phantom import PhantomConfig, SubjectStore, generate_subjects
    from petbench.datasets.phantom.generate import simulation_workers

    config = PhantomConfig()
    rounds = iter(range(100))

    def cpu_s():
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        return sum(u.ru_utime + u.ru_stime for u in usage)

    def generate():
        store = SubjectStore(tmp_path / f"round{next(rounds)}")
        generate_subjects(config, store, range(2000, 2000 + THROUGHPUT_SUBJECTS), (10,), progress=False,
                          workers=workers)

    cpu = cpu_s()
    benchmark.pedantic(generate, rounds=THROUGHPUT_ROUNDS, iterations=1)
    used = simulation_workers(THROUGHPUT_SUBJECTS, 128) if workers is None else workers
    benchmark.extra_info.update(workers=used, subjects=THROUGHPUT_SUBJECTS,
                                wall_s_per_subject=round(benchmark.stats.stats.min / THROUGHPUT_SUBJECTS, 3),
                                cpu_s_per_subject=round((cpu_s() - cpu) / (THROUGHPUT_ROUNDS * THROUGHPUT_SUBJECTS), 3))
    print(f"\n{used} worker(s): {benchmark.stats.stats.min / THROUGHPUT_SUBJECTS:.2f} s wall per subject "
          f"(fastest of {THROUGHPUT_ROUNDS} rounds of {THROUGHPUT_SUBJECTS}), {benchmark.extra_info['cpu_s_per_subject']:.2f} s CPU")
