"""S3PET through the host's runner and engine on the toy dataset: Stage I is trained once and reused."""
import pytest
from s3pet_tiny import TINY

import petbench_s3pet.plugin
from petbench.testing import isolated_host
from petbench.testing.toys import TOY_PLUGIN

runner = pytest.importorskip("petbench.runner")
from petbench.data.protocol import Protocol  # noqa: E402

OPTIONS = {**TINY, "stage1_steps_per_epoch": 2, "stage2_steps_per_epoch": 2}


def run(host, results, method, seed=0, **extra):
    config = runner.RunConfig(method=method, dataset="tiny", method_options={**OPTIONS, **extra},
                              dataset_options={"n_subjects": 6, "size": 32, "depth": 4},
                              protocol=Protocol(n_train=2, n_test=1, n_unpaired=2, drf=10), seed=seed,
                              preset="quick", save_predictions=False)
    return runner.execute(host, config, results, progress=False, log=lambda _msg: None)


def test_variants_share_one_stage1_per_data_seed_and_config(tmp_path):
    host = isolated_host(TOY_PLUGIN, petbench_s3pet.plugin)
    results = tmp_path / "results"
    full = run(host, results, "s3pet")
    assert full.data["status"] == "finished"
    assert full.data["method"]["components"] == {"DsMAE": True, "DKD": True, "DKL": True}
    stages = {s["name"]: s for s in full.data["timings"]["stages"]}
    assert not any(s["reused_from"] for s in stages.values())
    assert {"psnr", "nmse"} <= set(full.data["summary"])

    ablation = run(host, results, "s3pet-dsmae-dkd")
    reused = {s["name"]: s["reused_from"] for s in ablation.data["timings"]["stages"]}
    assert reused == {"stage1-lpet": full.run_id, "stage1-spet": full.run_id, "stage2": None}
    by_option = run(host, results, "s3pet", variant="dsmae", lambda2=2.0)
    assert {s["name"]: s["reused_from"] for s in by_option.data["timings"]["stages"]} == \
        {"stage1-lpet": full.run_id, "stage2": None}

    other_seed = run(host, results, "s3pet-dsmae-dkd", seed=1)
    assert not any(s["reused_from"] for s in other_seed.data["timings"]["stages"])
    other_config = run(host, results, "s3pet-dsmae-dkd", mask_ratio_lpet=0.5)
    assert {s["name"]: s["reused_from"] for s in other_config.data["timings"]["stages"]} == \
        {"stage1-lpet": None, "stage1-spet": full.run_id, "stage2": None}
