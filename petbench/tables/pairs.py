"""The table of every pairwise comparison (``compare --all-pairs``): one row per pair of methods, per
metric the paired difference with its CI, the Holm-corrected Wilcoxon p and the rank-biserial r."""
from __future__ import annotations

from ..statistics import Analysis
from .cells import decimals_for, interval_text, missing, number_text, p_text
from .model import Cell, Column, Note, TableModel, TableRow


def pairs_model(analysis: Analysis, labels: dict, metrics: dict[str, dict], name: str = "pairs") -> TableModel:
    """``labels``: analysis method -> shown name; ``metrics``: metric -> stored info."""
    columns = [Column("label", "Pair (A − B)", "label")]
    for metric in metrics:
        columns += [Column(f"{metric}_diff", f"Δ{metric.upper()} [CI]", "difference", metric),
                    Column(f"{metric}_p", f"p ({metric.upper()})", "p", metric),
                    Column(f"{metric}_r", f"r ({metric.upper()})", "effect", metric)]
    model = TableModel(name=name, caption="Every pair of methods.", columns=columns, rows=[])
    table = analysis.comparisons
    pairs = list(dict.fromkeys(zip(table["method"], table["other"])))
    for method, other in pairs:
        row = TableRow(key=f"{method} - {other}", label=f"{labels.get(method, method)} − {labels.get(other, other)}",
                       data={"method": method, "other": other})
        for metric in metrics:
            c = analysis.comparison(method, metric, other)
            if c is None:
                continue
            digits = decimals_for(analysis.stat(method, metric).get("mean"))
            significant = not missing(c["p_holm"]) and c["p_holm"] < analysis.alpha
            row.cells[f"{metric}_diff"] = Cell(f"{number_text(c['difference'], digits)} "
                                               f"{interval_text(c['ci_low'], c['ci_high'], digits)}",
                                               {"difference": c["difference"], "ci": [c["ci_low"], c["ci_high"]]})
            row.cells[f"{metric}_p"] = Cell(p_text(c["p_holm"]) + ("*" if significant else ""),
                                            {"p": c["p"], "p_holm": c["p_holm"]})
            row.cells[f"{metric}_r"] = Cell("–" if missing(c["rank_biserial"]) else f"{c['rank_biserial']:+.2f}",
                                            c["rank_biserial"])
            row.values.update({f"{metric}_{k}": c[k] for k in ("difference", "ci_low", "ci_high", "p", "p_holm",
                                                               "rank_biserial", "n_subjects")})
        row.values = {"method": method, "other": other, **row.values}
        model.rows.append(row)
    model.notes.append(Note("statistics", f"Δ: mean(A) − mean(B) with its {int(analysis.level * 100)} % CI "
                                          f"({analysis.resample.description}); p: two-sided Wilcoxon signed-rank "
                                          f"test on per-subject values, Holm-corrected over the {len(table)} "
                                          f"comparisons; * p < {analysis.alpha:g}; r: matched-pairs rank-biserial "
                                          "correlation (+1: A higher on every subject)."))
    return model
