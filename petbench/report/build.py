"""Build the page from run records: each section from the same objects as the CLI's commands, in the
order a reader follows (leaderboard, Tables I/II, distributions, images, curves, provenance)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import Progress

from ..atomic import atomic_write_text
from ..errors import UserError
from ..results.leaderboard import build_leaderboard, leaderboard_model, tidy_rows
from ..results.record import RunRecord
from ..tables.cells import StatsOptions, parse_stats
from . import figures
from .distributions import strip_plots
from .page import page_html, table_html, viewer_html
from .provenance import builder_line, provenance_table
from .sections import Section, esc
from .tables import html_table
from .volumes import DEFAULT_IMAGE_SIZE, viewer_data

#: the statistics the page shows unless told (--stats): CIs, Holm-corrected p-values, ranks and their stability
REPORT_STATS = "ci,holm,rank"

#: the stated size budget: Table I's grid (7 methods and the input, 20 test subjects) at the defaults
SIZE_BUDGET_BYTES = 25 * 1024 * 1024


@dataclass
class Report:
    html: str
    sections: list[Section]
    image_subjects: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return len(self.html.encode("utf-8"))

    @property
    def gaps(self) -> list[str]:
        return [f"{g.what}: {g.why}" for s in self.sections for g in s.gaps]


def error_lut() -> list[list[int]]:
    from matplotlib import colormaps

    colours = colormaps["magma"](range(256))
    return [[int(round(255 * c)) for c in colour[:3]] for colour in colours]


def image_columns(records: list[RunRecord], order: list[tuple]) -> tuple[list[tuple[str, RunRecord]], tuple | None,
                                                                        RunRecord | None]:
    """One record per method of the leaderboard's first (dataset, DRF): its smallest seed with
    predictions (else its smallest seed: the viewer says it has none)."""
    from ..grids.spec import INPUT_METHOD

    if not order:
        return [], None, None
    group = order[0][:2]
    reference = next((r for r in records if (r.dataset, r.data["protocol"]["drf"]) == group), None)
    columns = []
    for dataset, drf, method in order:
        if (dataset, drf) != group or method == INPUT_METHOD:  # the input is the LPET column
            continue
        mine = sorted((r for r in records if (r.dataset, r.data["protocol"]["drf"], r.method) == (dataset, drf, method)),
                      key=lambda r: (not any((r.path / "predictions").glob("*.nii.gz")), r.data["config"]["seed"]))
        if mine:
            columns.append((method, mine[0]))
    return columns, group, reference


def build_report(records: list[RunRecord], host, *, problems: list[str] | None = None, metrics: list[str] | None = None,
                 options=None,
                 image_subjects: str | None = None, image_size: int = DEFAULT_IMAGE_SIZE, title: str = "petbench report",
                 command: str = "petbench report", progress: bool = True) -> Report:
    if not records:
        raise UserError("no finished runs to report")
    if image_size < 4:
        raise UserError(f"--image-size {image_size}: give at least 4 voxels")
    options = options or StatsOptions(shown=parse_stats(REPORT_STATS))
    sections: list[Section] = []
    steps = 8
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("report: leaderboard", total=steps)

        def step(name: str) -> None:
            bar.update(task, advance=1, description=f"report: {name}")

        board = build_leaderboard(records, metrics, leaderboard_options(options, records))
        if metrics:
            missing = [m for m in metrics if m not in board.metrics]
            if missing:
                raise UserError(f"metric {missing[0]!r} is in no recorded run; recorded: "
                                f"{', '.join(board.metrics) or 'none'}")
        leaderboard = Section("leaderboard", "Leaderboard")
        leaderboard.add(table_html(html_table(leaderboard_model(board), "Leaderboard", records)))
        for problem in problems or []:
            leaderboard.gap("damaged record left out", problem)
        sections.append(leaderboard)
        step("Tables I and II")

        sections.append(paper_tables(records, metrics, options))
        step("distributions")

        order = [tuple(k) for k in board.table[["dataset", "drf", "method"]].itertuples(index=False)]
        distributions = Section("distributions", "Per-subject distributions")
        tidy = tidy_rows(records)
        for svg in strip_plots(tidy[tidy["metric"].isin(list(board.metrics))], board.metrics, order):
            distributions.add(svg)
        sections.append(distributions)
        step("images")

        images = Section("images", "Images")
        columns, group, reference = image_columns(records, order)
        data = viewer_data(host, columns, image_subjects, image_size,
                           tick=lambda: bar.update(task, description="report: images"), reference=reference)
        if group is not None and len({o[:2] for o in order}) > 1:
            images.gap("images of other datasets and DRFs", f"the viewer shows {group[0]} at DRF {group[1]}; build a "
                       "page per setting with --dataset/--drf to see the others")
        if data.subjects:
            images.add(f'<p class="note">{esc(group[0])}, DRF {esc(group[1])}: '
                       f'{len(data.subjects)} of {len(data.available)} predicted test subjects in this page '
                       f'({esc(", ".join(s["id"] for s in data.subjects))}); choose others with --image-subjects.</p>')
            images.add(viewer_html({"subjects": data.subjects, "error_lut": error_lut()}))
        elif data.available:
            images.gap("images", f"no subject chosen (--image-subjects {image_subjects})")
        images.gaps += data.gaps
        sections.append(images)
        step("training curves")

        curves = Section("curves", "Curves and figures")
        figures.curves(curves, records)
        step("efficiency curves")
        figures.efficiency(curves, records)
        step("bias figures")
        figures.bias(curves, host, records)
        step("rankings")
        figures.rankings(curves, records, options, metrics)
        sections.append(curves)
        step("provenance")

        provenance = Section("provenance", "Provenance")
        provenance.add(f'<p class="note">{builder_line(command)} Each row: one run record; every number on this page '
                       'comes from these records.</p>')
        provenance.add(provenance_table(records))
        sections.append(provenance)
        step("writing")
    header = (f"{len(records)} finished run(s) of {len({r.method for r in records})} method(s) on "
              f"{esc(', '.join(sorted({r.dataset for r in records})))}.")
    return Report(page_html(title, header, sections), sections, [s["id"] for s in data.subjects])


def leaderboard_options(options: StatsOptions, records: list[RunRecord]) -> StatsOptions:
    """As ``petbench compare`` does: p-values and differences are against the method that declares
    ``table_reference`` unless a reference is given."""
    from ..grids.places import reference_method

    if options.reference is None and options.shown & {"diff", "holm"}:
        return StatsOptions(**{**options.__dict__, "reference": reference_method(records, 1)})
    return options


def paper_tables(records: list[RunRecord], metrics: list[str] | None, options) -> Section:
    from ..grids.places import in_table
    from ..grids.tables import build_paper_table, paper_table_model

    section = Section("paper-tables", "Tables I and II")
    for number, roman in ((1, "I"), (2, "II")):
        if not any(in_table(r, number) for r in records):
            section.gap(f"Table {roman}", f"no run of a method with a place in Table {roman}; run "
                        f"`petbench grid table{number}` to make it")
            continue
        try:
            table = build_paper_table(records, number, metrics, options)
        except UserError as exc:
            section.gap(f"Table {roman}", str(exc))
            continue
        section.add(f"<h3>Table {roman}</h3>")
        methods = {row.key: row.method for row in table.rows}
        section.add(table_html(html_table(paper_table_model(table), f"Table {roman}", records,
                                          lambda row: methods[row.key])))
    return section


def write_report(report: Report, out: Path) -> None:
    atomic_write_text(Path(out), report.html)
