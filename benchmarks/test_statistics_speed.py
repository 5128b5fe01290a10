"""Speed of the statistics step, and the bootstrap's coverage against the number of seeds.

- ``analyse`` on a Table I-sized frame (7 methods x 3 seeds x 20 test subjects x 3 metrics, B = 2000,
  with the Friedman tests): the work behind ``petbench compare --table 1 --stats all``. Target: <= 10 s
  on a 2-core CPU (the first call includes importing scikit-posthocs).
- the coverage of the 95 % CI of a paired difference (tests/test_statistics.py's synthetic experiments)
  for 2, 3, 5 and 10 seeds, recorded in ``extra_info`` (docs/statistics.md quotes them).

Run with ``python -m pytest benchmarks/test_statistics_speed.py`` (pytest-benchmark); not part of the tests.
"""
import pathlib
import sys

import numpy as np
import pandas as pd
import pytest

from petbench.statistics import analyse

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "tests"))
from test_statistics import coverage  # noqa: E402

BUDGET_S = 10.0


@pytest.fixture(scope="module")
def table_frame():
    rng = np.random.default_rng(0)
    rows = [{"method": f"m{i}", "seed": s, "subject": f"case{j:02d}", "metric": metric,
             "value": rng.normal(20 + i, 1)} for i in range(7) for s in range(3) for j in range(20)
            for metric in ("psnr", "ssim", "nmse")]
    return pd.DataFrame(rows)


def test_analyse_a_table_one(benchmark, table_frame):
    directions = {"psnr": True, "ssim": True, "nmse": False}
    benchmark.pedantic(analyse, args=(table_frame, directions), kwargs={"reference": "m6"}, rounds=1, iterations=1)
    benchmark.extra_info["budget_s"] = BUDGET_S
    assert benchmark.stats.stats.min <= BUDGET_S


@pytest.mark.parametrize("seeds", [2, 3, 5, 10])
def test_coverage_against_the_number_of_seeds(benchmark, seeds):
    covered = benchmark.pedantic(coverage, kwargs={"seeds": seeds}, rounds=1, iterations=1)
    benchmark.extra_info["covered_of_200"] = int(covered)
    assert 0 < covered <= 200
