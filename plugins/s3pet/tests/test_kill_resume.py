"""A tiny S3PET run (and its ablation variant reusing its Stage I) killed right after each of its
checkpoint writes resumes, on re-run, to the weights and per-subject metrics of an uninterrupted run."""
import sys
from pathlib import Path

import pytest
from s3pet_tiny import TINY

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))  # the host's kill-matrix helpers
kill_matrix = pytest.importorskip("kill_matrix")

TINY_RUN = {"dataset": "tiny", "dataset_options": {"n_subjects": 6, "size": 32, "depth": 3},
            "protocol": {"n_train": 2, "n_test": 1, "n_unpaired": 2, "drf": 10}, "seed": 0, "preset": "quick",
            "method_options": {**TINY, "stage1_epochs": 1, "stage1_steps_per_epoch": 1, "stage2_epochs": 2,
                               "stage2_steps_per_epoch": 2}}
RUNS = [{**TINY_RUN, "method": "s3pet"}, {**TINY_RUN, "method": "s3pet-dsmae-dkd"}]
PLUGINS = ("petbench_s3pet.plugin",)


def test_tiny_s3pet_killed_after_each_checkpoint_write_resumes_bit_for_bit(tmp_path):
    with kill_matrix.Zygote() as zygote:
        code, writes, err = zygote.run(tmp_path / "reference", RUNS, mode="after", plugins=PLUGINS)
        assert code == 0, err
        reference = kill_matrix.outcome(tmp_path / "reference")
        assert writes >= 8  # Stage I (two stages, stored), Stage II, and the variant's
        for at in range(1, writes + 1):
            results = tmp_path / f"kill-{at}"
            code, _, err = zygote.run(results, RUNS, mode="after", at=at, plugins=PLUGINS)
            assert code == kill_matrix.SIGKILLED, err
            code, _, err = zygote.run(results, RUNS, plugins=PLUGINS)
            assert code == 0, f"re-run after write {at}: {err}"
            kill_matrix.assert_identical(reference, kill_matrix.outcome(results))
