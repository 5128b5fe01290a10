"""Does each paper architecture learn? Train it briefly on the phantom and compare with its input.

For each method, the ``paper`` preset (its widths, depths, norms and losses) is trained with
only the schedule shortened (epochs, steps per epoch, and where CPU time demands it the batch
size; never the learning rate, the losses or the architecture) on a small phantom protocol, and its test
PSNR is compared with that of the ``lpet`` row (the low-dose input) on the same subjects. A
method passes when it beats the input.

    python benchmarks/learning_check.py --method cyclegan
    python benchmarks/learning_check.py --method s3pet --steps 300 --seed 0 --seed 1
    python benchmarks/learning_check.py --method all          # every method, one after another
    python benchmarks/learning_check.py --method cyclegan --preset reference   # upstream Cycle-GAN, same budget

It runs through petbench's Python API (``runner.execute``) with a temporary results folder
(``--results`` keeps the records), on the CPU with one thread unless told otherwise. The
figures in the plugin READMEs were measured with the defaults below.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch

from petbench.data.protocol import Protocol
from petbench.options import parse_assignments
from petbench.plugins import get_host
from petbench.runner import RunConfig, execute

def epochs_for(steps: int, slices: int, batch_size: int, min_epochs: int = 1) -> dict:
    """``epochs`` x ``steps_per_epoch`` of about ``steps`` steps: an engine epoch is at most one
    pass over the stage's first source (``slices // batch_size`` steps)."""
    per_epoch = max(1, slices // batch_size)
    epochs = max(min_epochs, math.ceil(steps / per_epoch))
    return {"epochs": epochs, "steps_per_epoch": max(1, min(per_epoch, steps // epochs))}


def baseline_schedule(steps: int, batch_size: int, data: dict, decay: bool = False) -> dict:
    """About ``steps`` steps of ``batch_size`` over the paired slices. ``decay``: Cycle-GAN's shape
    (constant, then linear decay over the second half of the epochs). The group's x0.98 per-epoch
    decay starts after epoch 50 and is left as it is."""
    options = {"batch_size": batch_size, **epochs_for(steps, data["paired"], batch_size, 4 if decay else 1)}
    if decay:
        options["decay_start"] = options["epochs"] // 2
    return options


def s3pet_schedule(steps: int, batch_size: int, data: dict, stage2_factor: int = 1) -> dict:
    """About ``steps`` steps per DsMAE and ``stage2_factor`` times as many epochs of Stage II (the
    paper's constant learning rate); Stage II over the pairs, each DsMAE over its own unpaired slices
    (the LPET DsMAE's are the paired-train LPET)."""
    options = {"stage1_batch_size": batch_size, "stage2_batch_size": batch_size}
    for prefix, slices in (("stage1", min(data["paired"], data["unpaired"])), ("stage2", data["paired"])):
        options.update({f"{prefix}_{key}": value for key, value in epochs_for(steps, slices, batch_size).items()})
    options["stage2_epochs"] *= stage2_factor
    return options


#: method -> (default steps, batch size used here, schedule builder). The batch sizes are the
#: papers' where CPU time allows (Cycle-GAN 1, CVT-GAN 16) and smaller otherwise. The default steps
#: are the budgets at which the plugin READMEs measured the method past its input (the full S3PET:
#: 2,000 per DsMAE, then twice that in Stage II, where its four losses are balanced).
CHECKS = {
    "cyclegan": (2048, 1, lambda steps, bs, data: baseline_schedule(steps, bs, data, decay=True)),
    "autocontext": (300, 4, baseline_schedule),
    "argan": (1000, 4, baseline_schedule),
    "cvtgan": (300, 16, baseline_schedule),
    "semipet": (300, 4, baseline_schedule),
    "s3pet-baseline": (2000, 8, s3pet_schedule),
    "s3pet-dsmae": (2000, 8, s3pet_schedule),
    "s3pet-dsmae-dkd": (2000, 8, s3pet_schedule),
    "s3pet": (2000, 8, lambda steps, bs, data: s3pet_schedule(steps, bs, data, stage2_factor=2)),
}


def steps_run(record) -> dict:
    return {stage["name"]: stage.get("steps") for stage in record.data.get("timings", {}).get("stages", [])}


def psnr_of(record) -> float:
    value = record.data["summary"]["psnr"]
    return float(value["mean"] if isinstance(value, dict) else value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", action="append", required=True,
                        help=f"a method ({', '.join(CHECKS)}) or 'all'; repeatable")
    parser.add_argument("--steps", type=int, help="about this many training steps (for S3PET: per DsMAE, and "
                                                  "per Stage II except the full model's, twice that); default per method")
    parser.add_argument("--batch-size", type=int, help="override the batch size used here")
    parser.add_argument("--seed", type=int, action="append", help="training seed(s); default 0")
    parser.add_argument("--size", type=int, default=64, help="phantom voxels per side (default 64)")
    parser.add_argument("--n-train", type=int, default=4)
    parser.add_argument("--n-test", type=int, default=2)
    parser.add_argument("--n-unpaired", type=int, default=4)
    parser.add_argument("-o", "--option", action="append", default=[], help="extra method option key=value")
    parser.add_argument("--preset", default="paper", help="the preset trained (default: paper)")
    parser.add_argument("--no-schedule", action="store_true",
                        help="keep the preset's schedule (only -o options change it)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--results", type=Path, help="keep the run records here (default: a temporary folder)")
    args = parser.parse_args(argv)
    methods = list(CHECKS) if "all" in args.method else args.method
    unknown = [m for m in methods if m not in CHECKS]
    if unknown:
        parser.error(f"no learning check for {', '.join(unknown)}; valid: {', '.join(CHECKS)} or all")
    torch.set_num_threads(args.threads)
    extra = parse_assignments(args.option)
    host = get_host()
    protocol = Protocol(n_train=args.n_train, n_test=args.n_test, n_unpaired=args.n_unpaired)
    dataset_options = {"size": args.size}
    with tempfile.TemporaryDirectory(prefix="petbench-learning-") as temp:
        results = args.results or Path(temp)

        def run(method: str, options: dict, seed: int, preset: str):
            config = RunConfig(method=method, dataset="phantom", method_options=options,
                               dataset_options=dataset_options, protocol=protocol, seed=seed, preset=preset,
                               device=args.device, precision="fp32", save_predictions=False)
            return execute(host, config, results, progress=False, log=lambda _msg: None)

        lpet = psnr_of(run("lpet", {}, 0, "paper"))
        print(f"lpet (input): PSNR {lpet:.2f} dB  (phantom size {args.size}, {args.n_train} paired, "
              f"{args.n_test} test, {args.n_unpaired} unpaired subjects)", flush=True)
        failed = []
        for method in methods:
            default_steps, batch_size, schedule = CHECKS[method]
            steps = args.steps or default_steps
            data = {"paired": args.n_train * args.size, "unpaired": args.n_unpaired * args.size}  # axial slices
            options = {} if args.no_schedule else schedule(steps, args.batch_size or batch_size, data)
            options = {**options, **extra}
            for seed in args.seed or [0]:
                record = run(method, options, seed, args.preset)
                psnr = psnr_of(record)
                verdict = "beats the input" if psnr > lpet else "DOES NOT beat the input"
                print(f"{method} ({args.preset}) seed {seed}: options {options}, steps {steps_run(record)}: "
                      f"PSNR {psnr:.2f} dB "
                      f"({psnr - lpet:+.2f} dB vs lpet) -> {verdict}", flush=True)
                if psnr <= lpet:
                    failed.append((method, seed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
