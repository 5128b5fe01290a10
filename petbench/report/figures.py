"""The page's figures, drawn by the functions behind ``petbench figure`` (training curves, the
label-efficiency / unpaired / dose curves, region and lesion bias) and embedded as PNG. A figure that
cannot be drawn from these records becomes a gap with the reason the CLI would give."""
from __future__ import annotations

import base64
import tempfile
from pathlib import Path

from ..errors import UserError
from ..results.record import RunRecord
from .sections import Gap, Section, esc

DPI = 90


def png_html(path: Path, alt: str, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure class="png"><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{esc(caption)}</figcaption></figure>')


def draw(section: Section, what: str, make, caption) -> bool:
    """``make(out)`` draws a PNG to ``out`` and returns its description; a :class:`UserError` (or any
    failure of a damaged file) becomes a gap of ``section``."""
    with tempfile.TemporaryDirectory(prefix="petbench-report-") as folder:
        out = Path(folder) / "figure.png"
        try:
            info = make(out)
        except UserError as exc:
            section.gap(what, str(exc))
            return False
        except Exception as exc:  # damaged content: the page is still written
            section.gap(what, f"could not be drawn ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
            return False
        section.add(png_html(out, what, caption(info) if callable(caption) else caption))
        return True


def curves(section: Section, records: list[RunRecord]) -> None:
    """Training curves (history.jsonl, with validation scores), one picture per method."""
    from ..engine.trainer import HISTORY_NAME
    from ..grids.curves_figure import curves_figure

    by_method: dict[str, list[RunRecord]] = {}
    for record in records:
        by_method.setdefault(record.method, []).append(record)
    for method, runs in by_method.items():
        with_history = [r for r in runs if (r.path / HISTORY_NAME).is_file()]
        if not with_history:
            trained = any(r.data.get("method", {}).get("stages") for r in runs)
            section.gap(f"training curves of {method}",
                        f"no {HISTORY_NAME} in its run(s) ({'removed, or recorded before petbench kept them' if trained else 'it trains nothing'})")
            continue
        draw(section, f"training curves of {method}",
             lambda out, runs=with_history: curves_figure([r.path for r in runs], out, dpi=DPI),
             lambda info, method=method: f"{method}: {', '.join(p['title'] for p in info['panels'])} "
                                         f"(runs {', '.join(info['runs'])})")


def efficiency(section: Section, records: list[RunRecord]) -> None:
    """Metrics against n_train / n_unpaired / DRF, for each axis along which the runs vary."""
    from ..grids.efficiency import AXES, AXIS_TITLES, efficiency_figure

    drawn = False
    for axis in AXES:
        values = {r.data["protocol"].get(axis) for r in records}
        if len(values) < 2:
            continue
        drawn |= draw(section, f"metrics against {axis}",
                      lambda out, axis=axis: efficiency_figure(records, out, axis=axis, dpi=DPI),
                      lambda info, axis=axis: f"{', '.join(info['metrics'])} against {AXIS_TITLES[axis]}, "
                                              f"{len(info['methods'])} methods")
    if not drawn and not any(len({r.data['protocol'].get(a) for r in records}) > 1 for a in AXES):
        section.gap("label-efficiency and dose curves", "every run has the same n_train, n_unpaired and DRF; run "
                    "`petbench grid label-efficiency` (or runs at several DRFs) to draw them")


def bias(section: Section, host, records: list[RunRecord]) -> None:
    """Region SUVmean bias and lesion SUVmax recovery bias (needs a dataset with label maps)."""
    from ..grids.region_figure import region_figure

    groups: dict[tuple, list[RunRecord]] = {}
    for record in records:
        if not any((record.path / "predictions").glob("*.nii.gz")):
            section.gap(f"region and lesion bias of {record.run_id}", "the run saved no predictions")
            continue
        groups.setdefault((record.dataset, record.data["protocol"]["drf"]), []).append(record)
    for (dataset, drf), group in groups.items():
        for kind in ("regions", "lesions"):
            draw(section, f"{kind} bias ({dataset}, DRF {drf})",
                 lambda out, kind=kind, group=group: region_figure(host, group, out, kind=kind, dpi=DPI),
                 lambda info, kind=kind: f"{kind} bias of {', '.join(info['methods'])} ({info['values']} values)")


def rankings(section: Section, records: list[RunRecord], options, metrics: list[str] | None) -> None:
    """Demšar's critical-difference diagram and the bootstrap rank distribution (``petbench figure cd|ranks``),
    of Table I's rows when the runs make Table I, else of every method."""
    from ..grids.places import in_table
    from ..grids.rank_figures import cd_figure, rank_figure

    table = 1 if any(in_table(r, 1) for r in records) else None
    scope = "Table I's rows" if table else "every method"
    draw(section, "critical-difference diagram",
         lambda out: cd_figure(records, out, table=table, metrics=metrics, options=options, dpi=DPI),
         lambda info: f"critical-difference diagram of {scope} (Friedman + Nemenyi): " + " ".join(info["sentences"]))
    draw(section, "rank distribution",
         lambda out: rank_figure(records, out, table=table, metrics=metrics, options=options, dpi=DPI),
         f"bootstrap rank distribution of {scope}: blob area = share of resamples giving that rank")
