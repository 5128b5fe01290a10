"""Kernel-issuing ops per step of each shipped method's paper preset (pytest-benchmark; counts, not times).

    pytest benchmarks/test_launch_counts.py -s --benchmark-columns=rounds

The count of one steady-state step (``launch_counts.py``: ATen ops after autograd, without views and
allocations; on a GPU about one launch each), stored in ``extra_info`` with the op kinds that issue
most. Slices of 32² where the architecture allows; AR-GAN and SemiPET need 128² (7-level U-Nets) and
run at batch 4 to fit a CPU (a pool adds 4 ops per further sample). The count does not depend on the
slice size. Cycle-GAN is counted with each ``step_batching``; the merged step must issue at most 60 %
of the unbatched step's ops (``test_cyclegan_batched.py`` asserts the same on narrow networks).
"""
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("pytest_benchmark")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import launch_counts  # noqa: E402

CASES = [("cyclegan", {"step_batching": "none"}, 32), ("cyclegan", {"step_batching": "merge"}, 32),
         ("cyclegan", {"step_batching": "stack"}, 32), ("autocontext", {}, 32), ("cvtgan", {}, 32),
         ("s3pet", {}, 32), ("argan", {"batch_size": 4}, 128), ("semipet", {"batch_size": 4}, 128)]
FOUND: dict = {}


@pytest.mark.parametrize("name,options,size", CASES, ids=[f"{n}-{'-'.join(map(str, o.values())) or 'paper'}"
                                                          for n, o, _ in CASES])
def test_kernel_ops_per_step(benchmark, name, options, size):
    torch.set_num_threads(1)
    rows = benchmark.pedantic(lambda: launch_counts.measure(name, options, size), rounds=1, iterations=1)
    for row in rows:
        print(f"\n{name} {options} {row['stage']}: {row['kernel_ops']} kernel-issuing ops per step "
              f"(batch {row['batch']}, {size}²); most: {row['top_ops']}", end="")
        FOUND[(name, row["options"].get("step_batching"), row["stage"])] = row["kernel_ops"]
    benchmark.extra_info.update(size=size, rows=rows)
    if name == "cyclegan" and options["step_batching"] != "none" and ("cyclegan", "none", "train") in FOUND:
        assert FOUND[("cyclegan", options["step_batching"], "train")] <= 0.6 * FOUND[("cyclegan", "none", "train")]
