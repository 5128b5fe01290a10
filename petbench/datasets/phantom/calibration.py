"""The figures of docs/datasets.md: LPET-vs-SPET metrics per DRF in both conventions, and a picture.

    python -m petbench.datasets.phantom.calibration [--subjects 20] [--counts 1.4e5] [--size 128]
        [--drfs 4,10,20,50,100] [--figure PATH]

Subjects are the protocol's test subjects (split seed 0, 20 test) of the default brain phantom;
they are simulated here, not read from the cache.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from ...data.protocol import Protocol, split_subjects
from .generate import PhantomConfig, subject_id, subject_index
from .simulate import CALIBRATED_COUNTS, Physics, simulate_subject

DRFS = (4, 10, 20, 50, 100)
PAPER_LPET_ROW = {"psnr_paper": 21.3, "ssim_paper": 0.932, "nmse_paper": 0.080}  # S3PET Table I, LPET


def calibration_metrics() -> list:
    """The built-in global metrics of both conventions (region metrics need label maps: left out)."""
    from ...default_plugins.metrics import NMSE, NRMSE, PSNR, SSIM
    from ...default_plugins.paper_metrics import (NMSE_PAPER, NMSE_PAPER_REFNORM, PSNR_PAPER, PSNR_PAPER_REFMASK,
                                                  SSIM_PAPER)

    return [PSNR_PAPER, PSNR_PAPER_REFMASK, SSIM_PAPER, NMSE_PAPER, NMSE_PAPER_REFNORM, PSNR, SSIM, NRMSE, NMSE]


def test_indices(n: int, n_subjects: int = 170) -> list[int]:
    """The first ``n`` test subjects of the paper's protocol (split seed 0)."""
    ids = [subject_id(i) for i in range(n_subjects)]
    test = split_subjects("phantom", ids, Protocol()).test
    return [subject_index(s) for s in test[:n]]


def measure(config: PhantomConfig, indices, drfs=DRFS, verbose: bool = True) -> dict[int, dict[str, list[float]]]:
    """Per DRF and metric, the values of LPET (as the prediction) against SPET, one per subject."""
    from ...metric import score_volume

    metrics = calibration_metrics()
    values = {drf: {m.name: [] for m in metrics} for drf in drfs}
    for index in indices:
        start = time.perf_counter()
        subject = simulate_subject(index, config.seed, config.anatomy, config.size, drfs, config.physics)
        for drf in drfs:
            for name, value in score_volume(metrics, subject.lpet[drf], subject.spet).items():
                values[drf][name].append(value)
        if verbose:
            row = values[10 if 10 in drfs else drfs[0]]
            print(f"{subject_id(index)} {time.perf_counter() - start:5.1f}s  "
                  + "  ".join(f"{name} {row[name][-1]:.3f}" for name in row), flush=True)
    return values


def markdown_table(values: dict[int, dict[str, list[float]]]) -> str:
    names = list(next(iter(values.values())))
    lines = ["| DRF | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for drf, row in values.items():
        cells = [f"{np.mean(row[n]):.3f} ± {np.std(row[n]):.3f}" if "psnr" not in n
                 else f"{np.mean(row[n]):.2f} ± {np.std(row[n]):.2f}" for n in names]
        lines.append(f"| {drf} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(config: PhantomConfig, index: int, path: str, drfs=(4, 10, 20, 50, 100)) -> None:
    """An axial slice (through the putamen for the brain) and a sagittal slice: SPET, then LPET per DRF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subject = simulate_subject(index, config.seed, config.anatomy, config.size, drfs, config.physics)
    volumes = [("SPET", subject.spet)] + [(f"LPET DRF {d}", subject.lpet[d]) for d in drfs]
    truth = subject.anatomy
    axial = config.size // 2
    if "putamen" in truth.regions:
        axial = int(np.argmax((truth.labels == truth.regions.index("putamen")).sum(dim=(1, 2)).cpu().numpy()))
    dz, dy, _ = truth.spacing_mm
    vmax = float(np.percentile(subject.spet, 99.9))
    fig, axes = plt.subplots(2, len(volumes), figsize=(2.2 * len(volumes), 4.6))
    for column, (title, volume) in enumerate(volumes):
        # Anterior up; the patient's right on the image's left (radiological view).
        axes[0, column].imshow(volume[axial, ::-1, ::-1], cmap="gray_r", vmin=0, vmax=vmax)
        axes[1, column].imshow(volume[::-1, :, volume.shape[2] // 2 + 4], cmap="gray_r", vmin=0, vmax=vmax,
                               aspect=dz / dy)
        axes[0, column].set_title(title, fontsize=9)
        for row in range(2):
            axes[row, column].axis("off")
    fig.suptitle(f"phantom {config.anatomy}, subject {subject_id(index)}: axial and sagittal slices (SUV 0-{vmax:.0f})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--counts", type=float, default=CALIBRATED_COUNTS["brain"])
    parser.add_argument("--anatomy", default="brain")
    parser.add_argument("--figure", default="")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--drfs", default=",".join(map(str, DRFS)))
    args = parser.parse_args()
    config = PhantomConfig(anatomy=args.anatomy, size=args.size, physics=Physics(counts=args.counts))
    indices = test_indices(args.subjects)
    if args.figure:
        figure(config, indices[0], args.figure)
    values = measure(config, indices, tuple(int(d) for d in args.drfs.split(",")))
    print(f"\n{args.anatomy}, counts {args.counts:g}, {len(indices)} subjects: {', '.join(map(str, indices))}")
    print(markdown_table(values))


if __name__ == "__main__":
    main()
