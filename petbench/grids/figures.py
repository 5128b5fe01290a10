"""Figures 3 and 4 of the paper (SPET, LPET and each method's output; a zoomed inset row; an error-map
row against SPET; one colour scale per row). Metrics against DRF or the training sizes are in
:mod:`petbench.grids.efficiency`.

Predicted volumes come from each run record's ``predictions/`` folder; SPET and LPET from the dataset,
loaded through the plugin registry with the record's dataset name and options. Matplotlib's Agg backend
is used (no display needed). The PNG carries a JSON description of its panels (``Description``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ..atomic import atomic_path  # noqa: E402
from ..data.nifti import load_volume  # noqa: E402
from ..errors import UserError  # noqa: E402
from ..plugins import PluginHost  # noqa: E402
from ..results.record import RunRecord  # noqa: E402
from .places import figure_label, position  # noqa: E402
from .spec import INPUT_METHOD  # noqa: E402
from .tables import latest_per_seed, table_records, variant_labels  # noqa: E402

ROW_NAMES = ("image", "zoom", "error")
FIGURE_NUMBER = {1: 3, 2: 4}


@dataclass
class Column:
    title: str
    volume: np.ndarray  # [z, y, x], physical units
    run_id: str | None = None


def choose_records(records: list[RunRecord], number: int, seed: int | None) -> tuple[list[tuple[str, RunRecord]], int]:
    """One record per row of Table ``number`` (the input excluded: its column comes from the dataset), at
    ``seed`` (default: the smallest seed every method has, else each method's smallest). A column is
    titled with the method's ``figure_labels`` entry for the table, else its table label."""
    records = latest_per_seed(table_records(records, number), number)
    labels = variant_labels(records, number, lambda record: figure_label(record, number))
    rows: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.method == INPUT_METHOD:
            continue
        rows.setdefault(labels[record.run_id][0], []).append(record)
    if not rows:
        raise UserError(f"no method runs for Figure {FIGURE_NUMBER[number]} (only {INPUT_METHOD}); "
                        "run the grid first")
    seed_sets = [{r.data["config"]["seed"] for r in recs} for recs in rows.values()]
    common = set.intersection(*seed_sets)
    if seed is not None:
        missing = [k for k, s in zip(rows, seed_sets) if seed not in s]
        if missing:
            raise UserError(f"--seed {seed}: no run of {missing[0]} with that seed")
    chosen_seed = seed if seed is not None else (min(common) if common else None)
    picked = []
    for key in sorted(rows, key=lambda k: (position(rows[k][0], number), rows[k][0].method, k)):
        recs = sorted(rows[key], key=lambda r: r.data["config"]["seed"])
        record = next((r for r in recs if r.data["config"]["seed"] == chosen_seed), recs[0])
        picked.append((labels[record.run_id][1], record))
    return picked, chosen_seed if chosen_seed is not None else picked[0][1].data["config"]["seed"]


def load_dataset(host: PluginHost, record: RunRecord):
    name = record.dataset
    if name not in host.datasets:
        raise UserError(f"dataset {name!r} of run {record.run_id} is not installed here: the figure needs its "
                        f"SPET and LPET volumes (see `petbench list datasets`)")
    return host.datasets.get(name)(**record.data["dataset"].get("options", {}))


def zoom_window(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size``-square window with the most structure (gradient energy)."""
    from scipy.ndimage import uniform_filter

    gy, gx = np.gradient(image.astype(np.float64))
    energy = uniform_filter(np.hypot(gy, gx), size=size, mode="constant")
    h, w = image.shape
    half = size // 2
    valid = energy[half:h - size + half + 1, half:w - size + half + 1]
    if valid.size == 0:
        return 0, 0
    y, x = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return int(y), int(x)


def comparison_figure(host: PluginHost, records: list[RunRecord], number: int, out: Path, *,
                      subject: str | None = None, slice_index: int | None = None, seed: int | None = None,
                      zoom: tuple[int, int, int] | None = None, dpi: int = 150) -> dict:
    """Draw Figure 3 (``number=1``) or 4 (``number=2``) to ``out`` (PNG); returns what was drawn."""
    picked, seed = choose_records(records, number, seed)
    reference = picked[-1][1]
    drf = reference.data["protocol"]["drf"]
    available = [set(p.name[:-len(".nii.gz")] for p in (r.path / "predictions").glob("*.nii.gz")) for _, r in picked]
    for (label, record), have in zip(picked, available):
        if not have:
            raise UserError(f"run {record.run_id} ({label}) saved no predictions (it ran with --no-predictions); "
                            f"run it again with --force to draw the figure")
    common = set.intersection(*available)
    if subject is None:
        if not common:
            raise UserError("no test subject has a prediction in every run; give --subject")
        subject = sorted(common)[0]
    elif subject not in common:
        raise UserError(f"--subject {subject}: not predicted by every run; valid: {', '.join(sorted(common)) or 'none'}")

    dataset = load_dataset(host, reference)
    data = dataset.load(subject, (drf,))
    columns = [Column("SPET", data.spet), Column("LPET", data.lpet[drf])]
    for label, record in picked:
        volume, _ = load_volume(record.path / "predictions" / f"{subject}.nii.gz")
        if volume.shape != data.spet.shape:
            raise UserError(f"run {record.run_id}: prediction of {subject} has shape {volume.shape}, "
                            f"the dataset's SPET {data.spet.shape}")
        columns.append(Column(label, volume, record.run_id))

    depth = data.spet.shape[0]
    if slice_index is None:
        slice_index = int(np.argmax(data.spet.reshape(depth, -1).sum(axis=1)))
    if not 0 <= slice_index < depth:
        raise UserError(f"--slice {slice_index}: valid slices are 0 .. {depth - 1}")
    slices = [np.asarray(c.volume[slice_index], dtype=np.float64) for c in columns]
    spet = slices[0]
    h, w = spet.shape
    if zoom is None:
        size = max(4, min(h, w) // 3)
        y0, x0 = zoom_window(spet, size)
    else:
        y0, x0, size = zoom
        if not (0 <= y0 and 0 <= x0 and size >= 2 and y0 + size <= h and x0 + size <= w):
            raise UserError(f"--zoom {y0},{x0},{size} does not fit a {h}×{w} slice")
    crops = [s[y0:y0 + size, x0:x0 + size] for s in slices]
    errors = [np.abs(s - spet) for s in slices]

    image_max = float(np.percentile(spet, 99.9)) or float(spet.max()) or 1.0
    zoom_max = float(np.percentile(crops[0], 99.5)) or image_max
    error_max = max(float(np.percentile(e, 99.5)) for e in errors[1:]) or 1.0

    n = len(columns)
    fig, axes = plt.subplots(3, n, figsize=(1.75 * n + 1.2, 5.6), squeeze=False, layout="constrained")
    images = []
    for col, (column, image, crop, error) in enumerate(zip(columns, slices, crops, errors)):
        axes[0, col].set_title(column.title, fontsize=9)
        row_images = [
            axes[0, col].imshow(image, cmap="gray_r", vmin=0, vmax=image_max, interpolation="nearest"),
            axes[1, col].imshow(crop, cmap="gray_r", vmin=0, vmax=zoom_max, interpolation="nearest"),
        ]
        axes[0, col].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), size, size, fill=False, edgecolor="tab:red", lw=0.8))
        if col == 0:
            axes[2, col].text(0.5, 0.5, "reference", ha="center", va="center", fontsize=8,
                              transform=axes[2, col].transAxes)
            row_images.append(None)
        else:
            row_images.append(axes[2, col].imshow(error, cmap="magma", vmin=0, vmax=error_max,
                                                  interpolation="nearest"))
        images.append(row_images)
        for row in range(3):
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
    units = getattr(dataset, "units", "") or ""
    for row, label in enumerate(("SPET scale", "zoom scale", "|error| vs SPET")):
        mappable = images[1][row] if row == 2 else images[0][row]
        bar = fig.colorbar(mappable, ax=list(axes[row, :]), fraction=0.02, pad=0.01)
        bar.set_label(f"{label}" + (f" [{units}]" if units and row != 1 else ""), fontsize=7)
        bar.ax.tick_params(labelsize=6)
    axes[0, 0].set_ylabel("slice", fontsize=8)
    axes[1, 0].set_ylabel("zoom", fontsize=8)
    axes[2, 0].set_ylabel("error", fontsize=8)
    fig.suptitle(f"Figure {FIGURE_NUMBER[number]}: {reference.dataset}, subject {subject}, slice {slice_index}, "
                 f"DRF {drf}, seed {seed}", fontsize=9)
    info = {"figure": FIGURE_NUMBER[number], "table": number, "columns": [c.title for c in columns],
            "rows": list(ROW_NAMES), "runs": [c.run_id for c in columns], "subject": subject,
            "slice": slice_index, "seed": seed, "drf": drf, "dataset": reference.dataset,
            "zoom": [y0, x0, size], "panels": 3 * n}
    save_png(fig, out, info, dpi)
    return info


def save_png(fig, out: Path, info: dict, dpi: int) -> None:
    out = Path(out)
    if out.suffix.lower() != ".png":
        plt.close(fig)
        raise UserError(f"--out {out}: the figure is written as PNG; give a .png file name")
    try:
        with atomic_path(out, ".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", metadata={"Title": f"petbench figure {info['figure']}",
                                                              "Software": "petbench",
                                                              "Description": json.dumps(info)})
    finally:
        plt.close(fig)


__all__ = ["comparison_figure", "save_png", "zoom_window"]
