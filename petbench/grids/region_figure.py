"""``petbench figure regions|lesions``: per-region SUVmean bias or per-lesion SUVmax recovery bias of
each method, as box plots over test subjects (and seeds).

Predicted volumes come from each run record's ``predictions/`` folder; the reference and its label
maps from the dataset, loaded through the plugin registry with the record's dataset name and
options (the figure needs a dataset with label maps, docs/metrics.md). Bias is signed, in percent:
regions (pred − ref) / ref · 100 of the SUVmean; lesions (max pred / max ref − 1) · 100 of each hot
lesion's SUVmax. The PNG carries a JSON description of what it shows (``Description``).
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..data.nifti import load_volume  # noqa: E402
from ..errors import UserError  # noqa: E402
from ..metrics.regions import lesion_rows, region_rows  # noqa: E402
from ..plugins import PluginHost  # noqa: E402
from ..results.record import RunRecord  # noqa: E402
from .figures import load_dataset, save_png  # noqa: E402

KINDS = {"regions": ("regions", "SUVmean bias [%]"), "lesions": ("lesions", "lesion SUVmax recovery bias [%]")}


def bias_rows(pred: np.ndarray, subject, kind: str) -> list[tuple[str, float]]:
    """(region or lesion name, signed bias in %) of one predicted volume."""
    ref = np.asarray(subject.spet, np.float64)
    pred = np.asarray(pred, np.float64)
    if kind == "regions":
        return [(r.name, (r.mean_pred - r.mean_ref) / r.mean_ref * 100)
                for r in region_rows(pred, ref, subject.labels["regions"]) if r.mean_ref != 0]
    rows = lesion_rows(pred, ref, subject.labels["lesions"], subject.labels.get("regions"))
    return [(f"{subject.id} {r.name}", (r.suvmax_recovery - 1) * 100) for r in rows
            if r.hot and np.isfinite(r.suvmax_recovery)]


def collect_bias(host: PluginHost, records: list[RunRecord], kind: str) -> pd.DataFrame:
    """One row per (method, run, subject, region or lesion) with its bias."""
    role = KINDS[kind][0]
    datasets: dict[str, object] = {}
    subjects: dict[tuple[str, str], object] = {}
    rows = []
    for record in records:
        predictions = sorted((record.path / "predictions").glob("*.nii.gz"))
        if not predictions:
            raise UserError(f"run {record.run_id} ({record.method}) saved no predictions (it ran with "
                            f"--no-predictions); run it again with --force to draw the figure")
        key = json.dumps([record.dataset, record.data["dataset"].get("options", {})], sort_keys=True)
        if key not in datasets:
            datasets[key] = load_dataset(host, record)
        for path in predictions:
            sid = path.name[:-len(".nii.gz")]
            if (key, sid) not in subjects:
                subjects[(key, sid)] = datasets[key].load(sid, ())
            subject = subjects[(key, sid)]
            if role not in subject.labels:
                raise UserError(f"dataset {record.dataset!r} has no {role!r} label map for {sid}: the {kind} figure "
                                f"needs one (docs/metrics.md says which datasets have them)")
            pred, _ = load_volume(path)
            if pred.shape != subject.spet.shape:
                raise UserError(f"run {record.run_id}: prediction of {sid} has shape {pred.shape}, the dataset's "
                                f"SPET {subject.spet.shape}")
            for name, bias in bias_rows(pred, subject, kind):
                rows.append({"method": record.method, "run_id": record.run_id, "subject": sid, "name": name,
                             "bias": float(bias)})
    return pd.DataFrame(rows, columns=["method", "run_id", "subject", "name", "bias"])


def region_figure(host: PluginHost, records: list[RunRecord], out: Path, *, kind: str = "regions",
                  dpi: int = 150) -> dict:
    """Box plots of the bias per region (``kind="regions"``) or over lesions (``"lesions"``), one box per
    method; returns what was drawn."""
    if kind not in KINDS:
        raise UserError(f"unknown bias figure {kind!r}: choose regions or lesions")
    if not records:
        raise UserError("no finished runs to plot")
    for axis, values in (("dataset", {r.dataset for r in records}),
                         ("DRF", {r.data["protocol"]["drf"] for r in records})):
        if len(values) > 1:
            raise UserError(f"runs of several {axis}s ({', '.join(map(str, sorted(values)))}): choose one with "
                            f"--{axis.lower()}")
    table = collect_bias(host, records, kind)
    if table.empty:
        raise UserError(f"no {'region' if kind == 'regions' else 'hot lesion'} to show in these runs' test subjects")
    methods = list(dict.fromkeys(sorted(table["method"])))
    # Lesions differ per subject: pool them into one box per method; regions get one group each.
    groups = list(dict.fromkeys(table["name"])) if kind == "regions" else ["hot lesions"]
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(groups) * max(1, len(methods)) ** 0.5 + 2), 3.6),
                           layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for m, method in enumerate(methods):
        mine = table[table["method"] == method]
        data = [mine[mine["name"] == g]["bias"].to_numpy() if kind == "regions" else mine["bias"].to_numpy()
                for g in groups]
        positions = [i + (m - (len(methods) - 1) / 2) * width for i in range(len(groups))]
        colour = colours[m % len(colours)]
        ax.boxplot([d if len(d) else [np.nan] for d in data], positions=positions, widths=width * 0.85,
                   patch_artist=True, boxprops={"facecolor": colour, "alpha": 0.5}, medianprops={"color": "black"},
                   flierprops={"markersize": 3})
        ax.plot([], [], "s", color=colour, alpha=0.5, label=method)
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(groups)), groups, rotation=30 if len(groups) > 4 else 0, ha="right" if len(groups) > 4
                  else "center", fontsize=8)
    ax.set_ylabel(KINDS[kind][1], fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    drf = records[0].data["protocol"]["drf"]
    ax.set_title(f"{records[0].dataset}, DRF {drf}: {kind} bias over {table['subject'].nunique()} test subjects",
                 fontsize=9)
    info = {"figure": f"{kind}-bias", "kind": kind, "dataset": records[0].dataset, "drf": drf, "methods": methods,
            "groups": groups, "runs": sorted(set(table["run_id"])), "values": int(len(table)),
            "median_bias": {m: float(table[table["method"] == m]["bias"].median()) for m in methods}}
    save_png(fig, out, info, dpi)
    return info
