"""``petbench figure curves``: training curves from the runs' ``history.jsonl`` files.

One panel per training stage (the epoch means of each loss, one line per run and loss; a log axis when
every value is positive) and, when any run was validated, one panel of the validation scores. Several
runs (a list, or the cells of a grid) share one picture. The PNG carries a JSON description of its
panels (``Description``), as the other figures do.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..engine.trainer import HISTORY_NAME  # noqa: E402
from ..errors import UserError  # noqa: E402
from .figures import save_png  # noqa: E402
from ..results.reading import MAX_BYTES, Damaged, read_text  # noqa: E402
from ..results.schema import validate_history  # noqa: E402

LINESTYLES = ("-", "--", ":", "-.")


def read_history(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / HISTORY_NAME
    if not path.is_file():
        raise UserError(f"{run_dir} has no {HISTORY_NAME}: the run trained nothing, or was recorded before "
                        f"petbench kept training curves")
    try:
        return validate_history(read_text(path, within=Path(run_dir), limit=MAX_BYTES["jsonl"]))
    except (Damaged, OSError) as exc:
        raise UserError(f"{path} is damaged ({exc}); it is rewritten when the run is run again "
                        f"(or leave this run out)") from None


def grid_runs(results: Path, grid: str) -> list[Path]:
    """The finished runs of grid ``grid`` (a built-in name, a grid's name or its TOML file) under
    ``results`` that kept training curves, in the grid's cell order (runs that trained nothing, such
    as the low-dose input, have none)."""
    from .run_grid import finished_run_ids  # lazy: the grid machinery is heavy to import

    runs = [Path(results) / run_id for run_id in finished_run_ids(results, grid)]
    with_curves = [run for run in runs if (run / HISTORY_NAME).is_file()]
    if not with_curves:
        raise UserError(f"--grid {grid}: none of its {len(runs)} finished run(s) in {results} kept training curves "
                        f"({HISTORY_NAME}); see `petbench grid {grid} --status --results {results}`")
    return with_curves


def curves_figure(run_dirs: list[Path], out: Path, dpi: int = 150) -> dict:
    """Draw the curves of ``run_dirs`` into ``out`` (PNG); returns the description written into it."""
    if not run_dirs:
        raise UserError("give at least one run: --run ID (repeatable) or --grid NAME")
    histories = {Path(d).name: read_history(d) for d in run_dirs}
    stages = list(dict.fromkeys(entry["stage"] for history in histories.values() for entry in history))
    validated = any("validation" in entry for history in histories.values() for entry in history)
    titles = [f"stage {stage}: mean loss" for stage in stages] + (["validation"] if validated else [])
    if not titles:
        raise UserError("the runs' histories are empty: nothing to plot")
    fig, axes = plt.subplots(1, len(titles), figsize=(4.5 * len(titles), 3.6), squeeze=False)
    panels = []
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, title in enumerate(titles):
        ax, series = axes[0][index], []
        for run_number, (run_id, history) in enumerate(histories.items()):
            colour = colours[run_number % len(colours)]
            if title == "validation":
                points = [(e["epoch"], name, value) for e in history for name, value in e.get("validation", {}).items()]
                names = list(dict.fromkeys(name for _, name, _ in points))
            else:
                stage = stages[index]
                entries = [e for e in history if e["stage"] == stage]
                names = list(dict.fromkeys(name for e in entries for name in e["losses"]))
                points = [(e["epoch"], name, e["losses"][name]) for e in entries for name in e["losses"]]
            for number, name in enumerate(names):
                xs = [x for x, n, _ in points if n == name]
                ys = [y for _, n, y in points if n == name]
                label = f"{name} ({run_id})" if len(histories) > 1 else name
                ax.plot(xs, ys, LINESTYLES[number % len(LINESTYLES)], color=colour, marker="." if len(xs) < 30 else None,
                        label=label)
                series.append({"run": run_id, "name": name, "epochs": xs, "values": ys})
        values = [v for s in series for v in s["values"]]
        if title != "validation" and values and all(v > 0 for v in values):
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if series:
            ax.legend(fontsize=7)
        panels.append({"title": title, "series": series})
    fig.tight_layout()
    info = {"figure": "curves", "runs": list(histories), "panels": panels}
    save_png(fig, out, info, dpi)
    return info
