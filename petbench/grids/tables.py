"""Tables I and II in the paper's form, read from run records.

- the methods with a place in the table (``table_places``, stored in each run record; see
  :mod:`petbench.grids.places`), in the order of their places, with their labels; in Table I also the
  methods that declare no place, after the others;
- PSNR [dB] ↑, SSIM ↑, NMSE ↓ as mean ± std over test subjects: the mean over seeds of each seed's mean
  over the test subjects, ± the std over test subjects within a seed (averaged over seeds); with several
  seeds the std of the per-seed means is shown in parentheses (petbench.statistics.summarize);
- the best mean of each metric in bold (by the metric's direction);
- Table I: the parameter count; Table II: the component check marks (Baseline, DsMAE, DKD, DKL, from the
  ``components`` each method declares, stored in its run records);
- for every method, a two-sided paired Wilcoxon signed-rank test against the reference row (the method
  that declares ``table_reference``) per metric (``scipy.stats.wilcoxon``) on per-subject values (each
  subject's mean over seeds), Holm-corrected over every comparison of the table;
- with ``--stats``: bootstrap CIs, paired differences with CIs, effect sizes, ranks and their stability,
  Friedman tests (petbench.statistics; the columns from petbench.tables.cells).

All runs of one table must share a dataset (and its options), a DRF and a protocol.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import UserError
from ..results.leaderboard import conventions_line
from ..results.protocols import differences_line
from ..results.record import RunRecord
from ..results.table_notes import apply_to as apply_table_notes
from ..results.tidy import tidy_frame
from ..statistics import CONSENSUS, Analysis, analyse
from ..tables.cells import (StatsOptions, best_methods, decimals_for, fill_metric_cells, fill_statistics_cells,
                            layout_note, metric_numbers, metric_title, number_text, p_text, statistics_columns,
                            statistics_notes)
from ..tables.model import Cell, Column, Note, TableModel, TableRow
from ..tables.render import LATEX_ESCAPES, render
from .places import in_table, position, reference_method, table_label

__all__ = ["build_paper_table", "paper_table_model", "render_paper_table", "decimals_for", "metric_title",
           "number_text", "p_text"]

DEFAULT_METRICS = ("psnr", "ssim", "nmse")
ROMAN = {1: "I", 2: "II"}


@dataclass
class Row:
    key: str  # method name, or name + options when one method ran with several option sets
    method: str
    label: str
    parameters: int | None
    runs: int
    seeds: list[int]
    components: dict[str, bool] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> metric_numbers(...) + best


@dataclass
class PaperTable:
    number: int
    dataset: str
    dataset_options: dict
    drf: int
    protocol: dict
    seeds: list[int]
    metrics: dict[str, dict]  # name -> stored info (direction, unit)
    rows: list[Row]
    row_records: dict[str, list[RunRecord]]  # row key -> the runs it pools (for the notes of what they ran)
    reference: str | None  # key of the reference row (the method declaring table_reference), when present
    components: list[str] = field(default_factory=list)
    reference_method: str | None = None
    analysis: Analysis | None = None
    options: StatsOptions = field(default_factory=StatsOptions)

    @property
    def reference_label(self) -> str | None:
        return next((row.label for row in self.rows if row.key == self.reference), None)

    @property
    def caption(self) -> str:
        reference = self.reference_label
        what = "Comparison with other methods" if self.number == 1 else \
            f"Ablation of {reference}'s components" if reference else "Ablation"
        return (f"Table {ROMAN[self.number]}. {what} on {self.dataset} (DRF {self.drf}, "
                f"{self.protocol.get('n_test', '?')} test subjects, seed{'s' if len(self.seeds) > 1 else ''} "
                f"{', '.join(map(str, self.seeds))}).")

    @property
    def note(self) -> str:
        """The notes under the table, as one paragraph."""
        return " ".join(paper_table_model(self).note_lines())


# -- building -----------------------------------------------------------------------------------------
def group_key(record: RunRecord) -> tuple:
    protocol = {k: v for k, v in record.data["protocol"].items() if k != "drf"}
    return (record.dataset, json.dumps(record.data["dataset"].get("options", {}), sort_keys=True, default=str),
            record.data["protocol"]["drf"], json.dumps(protocol, sort_keys=True))


def describe_group(key: tuple) -> str:
    dataset, options, drf, protocol = key
    options = json.loads(options)
    protocol = json.loads(protocol)
    shown = ",".join(f"{k}={v}" for k, v in options.items() if k != "data_root")
    return (f"{dataset}{f'[{shown}]' if shown else ''} DRF {drf} "
            f"(n_train={protocol.get('n_train')}, n_test={protocol.get('n_test')}, "
            f"n_unpaired={protocol.get('n_unpaired')}, split_seed={protocol.get('split_seed')}"
            + "".join(f", {k}={v}" for k, v in protocol.items() if k not in ("n_train", "n_test", "n_unpaired",
                                                                           "split_seed")) + ")")


def table_records(records: list[RunRecord], number: int) -> list[RunRecord]:
    """The finished records that belong in Table ``number``, all from one dataset, DRF and protocol."""
    if number not in (1, 2):
        raise UserError(f"--table must be 1 or 2, not {number}")
    chosen = [r for r in records if in_table(r, number)]
    if not chosen:
        raise UserError(f"no finished runs of a method with a place in Table {ROMAN[number]} (table_places); "
                        f"run `petbench grid table{number} --dataset phantom` first")
    groups: dict[tuple, list[RunRecord]] = {}
    for record in chosen:
        groups.setdefault(group_key(record), []).append(record)
    if len(groups) > 1:
        listing = "; ".join(describe_group(k) for k in groups)
        fix = differences_line([json.loads(k[3]) for k in groups]) or "choose with --dataset/--drf"
        raise UserError(f"Table {ROMAN[number]} needs runs of one dataset, DRF and protocol; found {len(groups)}: "
                        f"{listing}; {fix}")
    return chosen


def variant_labels(records: list[RunRecord], number: int, label_of: Callable[[RunRecord], str] | None = None
                   ) -> dict[str, tuple[str, str]]:
    """run id -> (row key, label). A method run with several option sets gets one row per set.
    ``label_of``: a record's printed name (default: its label in Table ``number``)."""
    label_of = label_of or (lambda record: table_label(record, number))
    by_method: dict[str, dict[str, dict]] = {}
    for record in records:
        options = json.dumps(record.data["method"].get("options", {}), sort_keys=True, default=str)
        by_method.setdefault(record.method, {})[options] = record.data["method"].get("options", {})
    result = {}
    for record in records:
        base = label_of(record)
        variants = by_method[record.method]
        options_text = json.dumps(record.data["method"].get("options", {}), sort_keys=True, default=str)
        if len(variants) == 1:
            result[record.run_id] = (record.method, base)
            continue
        mine = record.data["method"].get("options", {})
        differing = sorted(k for k in set().union(*variants.values())
                           if len({json.dumps(v.get(k), default=str) for v in variants.values()}) > 1)
        shown = ",".join(f"{k}={mine.get(k)}" for k in differing)
        result[record.run_id] = (f"{record.method} {options_text}", f"{base} [{shown}]")
    return result


def latest_per_seed(records: list[RunRecord], number: int) -> list[RunRecord]:
    """One record per (method variant, seed): the latest finished, should a results folder hold the same
    run under two identities (e.g. recorded with different metric lists)."""
    labels = variant_labels(records, number)
    latest: dict[tuple, RunRecord] = {}
    for record in records:
        key = (labels[record.run_id][0], record.data["config"]["seed"])
        current = latest.get(key)
        if current is None or (record.data.get("finished_at") or "") > (current.data.get("finished_at") or ""):
            latest[key] = record
    return [r for r in records if latest[(labels[r.run_id][0], r.data["config"]["seed"])] is r]


def build_paper_table(records: list[RunRecord], number: int, metrics: list[str] | None = None,
                      options: StatsOptions | None = None) -> PaperTable:
    options = options or StatsOptions()
    chosen_reference = options.reference or reference_method(records, number)
    records = latest_per_seed(table_records(records, number), number)
    labels = variant_labels(records, number)
    metric_info: dict[str, dict] = {}
    for record in records:
        for name, info in record.data.get("metrics", {}).items():
            metric_info.setdefault(name, info)
    if metrics:
        missing = [m for m in metrics if m not in metric_info]
        if missing:
            raise UserError(f"metric {missing[0]!r} is in no run of this table; recorded: {', '.join(metric_info)}")
        wanted = list(metrics)
    else:
        wanted = [m for m in DEFAULT_METRICS if m in metric_info] or list(metric_info)

    keys: dict[str, dict] = {}
    for record in records:
        key, label = labels[record.run_id]
        entry = keys.setdefault(key, {"method": record.method, "label": label, "records": []})
        entry["records"].append(record)
    ordered = sorted(keys, key=lambda k: (position(keys[k]["records"][0], number), keys[k]["method"],
                                          keys[k]["label"]))
    reference = next((k for k in ordered if keys[k]["method"] == chosen_reference), None)
    frame = tidy_frame(records, key=lambda r: labels[r.run_id][0], metrics=wanted)
    order = {k: i for i, k in enumerate(ordered)}
    frame = frame.sort_values("method", key=lambda column: column.map(order), kind="stable")
    analysis = analyse(frame, {m: metric_info[m]["higher_is_better"] for m in wanted}, reference=reference,
                       all_pairs=options.all_pairs, resamples=options.resamples, seed=options.seed,
                       level=options.level, alpha=options.alpha, tests="friedman" in options.shown)
    best = best_methods(analysis, {m: metric_info[m] for m in wanted})

    components = component_columns([keys[k]["records"][0] for k in ordered]) if number == 2 else []
    rows = []
    for key in ordered:
        entry = keys[key]
        recs = entry["records"]
        params = [r.data["method"].get("parameters") for r in recs]
        seeds = sorted({r.data["config"]["seed"] for r in recs})
        row = Row(key=key, method=entry["method"], label=entry["label"], parameters=params[0] if params else None,
                  runs=len(recs), seeds=seeds,
                  components=components_of(recs[0], components) if number == 2 else {})
        for metric in wanted:
            row.stats[metric] = {**metric_numbers(analysis, key, metric), "best": key in best[metric]}
        rows.append(row)
    first = records[0]
    return PaperTable(number=number, dataset=first.dataset, dataset_options=first.data["dataset"].get("options", {}),
                      drf=first.data["protocol"]["drf"], protocol=first.data["protocol"],
                      seeds=sorted({r.data["config"]["seed"] for r in records}),
                      metrics={m: metric_info[m] for m in wanted}, rows=rows,
                      row_records={k: keys[k]["records"] for k in ordered}, reference=reference,
                      components=components, reference_method=chosen_reference if reference else None,
                      analysis=analysis, options=options)


def component_columns(records: list[RunRecord]) -> list[str]:
    """The check-mark columns: Baseline, then every component the records declare, in their rows' order."""
    seen: list[str] = []
    for record in records:
        for name in (record.data["method"].get("components") or {}):
            if name not in seen:
                seen.append(name)
    return ["Baseline"] + seen


def components_of(record: RunRecord, columns: list[str]) -> dict[str, bool]:
    declared = record.data["method"].get("components") or {}
    return {name: True if name == "Baseline" else bool(declared.get(name, False)) for name in columns}


# -- the table model and its renderings -------------------------------------------------------------------
def params_text(parameters: int | None) -> str:
    if not parameters:
        return "–"
    millions = parameters / 1e6
    return f"{millions:.2f}" if millions >= 0.01 else f"{millions:.3g}"


def latex_escape(text: str) -> str:
    """Special characters escaped, the backslash included."""
    return "".join(LATEX_ESCAPES.get(c, c) for c in text)


def paper_table_model(table: PaperTable) -> TableModel:
    """Table I or II as a table model: the paper's columns (label, Table II's check marks, the metrics,
    Table I's parameters, Holm-corrected p against the reference), then the ``--stats`` columns."""
    analysis, shown = table.analysis, table.options.shown
    columns = [Column("label", "Methods" if table.number == 1 else "Variant", "label")]
    if table.number == 2:
        columns += [Column(f"component:{c}", c, "check") for c in table.components]
    columns += [Column(m, metric_title(m, info), "metric", m) for m, info in table.metrics.items()]
    if table.number == 1:
        columns.append(Column("params", "Params [M]", "number"))
    columns += statistics_columns(shown, table.metrics, level=table.options.level,
                                  has_reference=table.reference is not None,
                                  reference_label=table.reference_label, p_default=True)
    labels = {row.key: row.label for row in table.rows}
    best = {m: {r.key for r in table.rows if r.stats[m]["best"]} for m in table.metrics}
    model = TableModel(name=f"table{table.number}", caption=table.caption, columns=columns, rows=[],
                       data={"table": table.number, "dataset": table.dataset, "dataset_options": table.dataset_options,
                             "drf": table.drf, "protocol": table.protocol, "seeds": table.seeds,
                             "metrics": table.metrics, "reference": table.reference_method,
                             "components": table.components})
    for paper_row in table.rows:
        row = TableRow(key=paper_row.key, label=paper_row.label,
                       data={"method": paper_row.method, "label": paper_row.label, "parameters": paper_row.parameters,
                             "runs": paper_row.runs, "seeds": paper_row.seeds, "components": paper_row.components,
                             "metrics": paper_row.stats},
                       values=flat_row(table, paper_row))
        for name in table.components:
            row.cells[f"component:{name}"] = Cell("✓" if paper_row.components.get(name) else "",
                                                  bool(paper_row.components.get(name)))
        fill_metric_cells(row, analysis, paper_row.key, table.metrics, best)
        fill_statistics_cells(row, analysis, paper_row.key, table.metrics)
        if paper_row.key == table.reference:
            for metric in table.metrics:
                row.cells[f"{metric}_p"] = Cell("–")
        row.cells["params"] = Cell(params_text(paper_row.parameters), paper_row.parameters)
        model.rows.append(row)
    model.notes.append(Note("layout", layout_note(len(table.seeds)) + "."))
    apply_table_notes(model, [(row.key, row.label, table.row_records.get(row.key, [])) for row in table.rows])
    if table.reference is None:
        model.add_note("statistics", "No run of a reference method (table_reference): no significance tests.")
    statistics_notes(model, analysis, shown, labels, p_default=True, reference_label=table.reference_label)
    model.add_note("conventions", "Metrics: " + conventions_line(table.metrics) + ".")
    model.data["note"] = " ".join(model.note_lines())
    model.data["statistics"] = analysis.as_dict()
    return model


def flat_row(table: PaperTable, row: Row) -> dict:
    entry: dict[str, Any] = {"method": row.method, "label": row.label, "dataset": table.dataset, "drf": table.drf,
                             "seeds": " ".join(map(str, row.seeds)), "runs": row.runs, "parameters": row.parameters}
    for name in table.components:
        entry[name] = row.components.get(name, False)
    for metric, s in row.stats.items():
        for stat, value in s.items():
            entry[f"{metric}_{stat}"] = value
    entry["consensus_rank"] = table.analysis.rank(row.key, CONSENSUS)
    entry["consensus_rank_one"] = table.analysis.rank_one(row.key, CONSENSUS)
    return entry


def render_paper_table(table: PaperTable, fmt: str):
    """A string, or a rich Table for ``table``."""
    return render(paper_table_model(table), fmt)
