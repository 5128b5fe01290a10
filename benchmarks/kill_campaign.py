"""The crash campaign of docs/reliability.md: SIGKILL a three-stage run (two variants sharing a stored
stage) at random moments, re-run it, and compare with an uninterrupted run bit for bit; then interrupt a
grid several times and count finished cells lost.

    python benchmarks/kill_campaign.py --kills 20 --grid-kills 5 --seed 0
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kill_matrix import SIGKILLED, Zygote, assert_identical, outcome  # noqa: E402

TOY = {"dataset": "tiny", "dataset_options": {"n_subjects": 8, "size": 12, "depth": 3},
       "protocol": {"n_train": 3, "n_test": 2, "n_unpaired": 0, "drf": 4}, "seed": 3, "preset": "quick"}
RUN = [{**TOY, "method": "three-stage", "method_options": {"variant": v, "epochs": [3, 2, 3]}} for v in "ab"]
GRID_TOML = """
name = "campaign"
methods = ["lpet", "three-stage[variant=a,b]", "tiny-cnn[epochs=3]"]
datasets = ["tiny[n_subjects=8;size=12;depth=3]"]
drfs = [4]
seeds = [0, 1]
preset = "quick"

[protocol]
n_train = 3
n_test = 2
n_unpaired = 0
"""


def finished(results: Path) -> set[str]:
    done = set()
    for run_file in results.glob("*/run.json"):
        try:
            if json.loads(run_file.read_text())["status"] == "finished":
                done.add(run_file.parent.name)
        except (OSError, ValueError):
            pass
    return done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--grid-kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="petbench-kills-"))
    with Zygote() as zygote:
        code, _, err = zygote.run(work / "reference", RUN)
        assert code == 0, err
        started = time.perf_counter()  # timed on a second run: the first one warms the caches
        zygote.run(work / "reference-2", RUN)
        duration_ms = int((time.perf_counter() - started) * 1000)
        reference = outcome(work / "reference")
        identical = killed = tries = 0
        while killed < args.kills and tries < 5 * args.kills:  # a kill drawn after the run's end is redrawn
            tries += 1
            results = work / f"kill-{tries}"
            at = rng.randrange(1, duration_ms)
            code, _, err = zygote.run(results, RUN, mode="timer", at=at)
            if code != SIGKILLED:
                shutil.rmtree(results, ignore_errors=True)
                continue
            killed += 1
            code, _, err = zygote.run(results, RUN)
            try:
                assert code == 0, err
                assert_identical(reference, outcome(results))
                identical += 1
            except AssertionError as exc:
                print(f"kill at {at} ms: NOT identical: {str(exc)[:300]}")
        print(f"three-stage run, two variants sharing a stored stage ({duration_ms} ms uninterrupted): "
              f"{killed} random kills, {identical} re-runs identical bit for bit")

        spec = work / "campaign.toml"
        spec.write_text(GRID_TOML)

        def grid(results: Path, **kill):
            return zygote.run(results, [], argv=["grid", spec, "--results", results], **kill)

        started = time.perf_counter()
        code, _, err = grid(work / "grid-reference")
        assert code == 0, err
        grid_ms = int((time.perf_counter() - started) * 1000)
        grid_reference = outcome(work / "grid-reference")
        results, lost, landed = work / "grid", 0, 0
        while landed < args.grid_kills:
            before = finished(results) if results.exists() else set()
            code, _, _ = grid(results, mode="timer", at=rng.randrange(1, grid_ms))
            lost += len(before - finished(results))
            if code != SIGKILLED:  # it finished first: start the grid again from nothing
                shutil.rmtree(results, ignore_errors=True)
                continue
            landed += 1
        code, _, err = grid(results)
        assert code == 0, err
        try:
            assert_identical(grid_reference, outcome(results))
            same = "identical bit for bit to an uninterrupted grid"
        except AssertionError as exc:
            same = f"NOT identical: {str(exc)[:300]}"
        print(f"`petbench grid` of {len(grid_reference)} cells ({grid_ms} ms uninterrupted): {landed} random kills "
              f"in a row, {lost} finished cells lost; after a final re-run: {same}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
