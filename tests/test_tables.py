"""Tables I and II in the paper's form from (fabricated) run records: order, names, pooled mean ± std,
seed spread, bold best, parameters, check marks, Wilcoxon p-values, and every output format."""
import csv
import io
import json
import pathlib
import re
import sys

import numpy as np
import pytest
from scipy.stats import wilcoxon
from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make grid_helpers importable
from grid_helpers import fake_record, helper_host  # noqa: E402

from petbench.cli import create_app  # noqa: E402
from petbench.errors import UserError  # noqa: E402
from petbench.grids.tables import build_paper_table, render_paper_table  # noqa: E402
from petbench.results import find_records  # noqa: E402

TABLE1 = ["lpet", "cyclegan", "autocontext", "argan", "cvtgan", "semipet", "s3pet"]
TABLE2 = ["s3pet-baseline", "s3pet-dsmae", "s3pet-dsmae-dkd", "s3pet"]
COMPONENTS = {"s3pet-baseline": {"DsMAE": False, "DKD": False, "DKL": False},
              "s3pet-dsmae": {"DsMAE": True, "DKD": False, "DKL": False},
              "s3pet-dsmae-dkd": {"DsMAE": True, "DKD": True, "DKL": False},
              "s3pet": {"DsMAE": True, "DKD": True, "DKL": True}}


def values_for(rank: int, seed: int, n: int = 5) -> dict:
    """Better with ``rank`` (s3pet best), a little different per seed and subject."""
    rng = np.random.default_rng([rank, seed])
    base = 20 + rank + 0.1 * seed
    psnr = base + rng.normal(0, 0.5, n)
    return {"psnr": list(psnr), "ssim": list(0.8 + 0.02 * rank + rng.normal(0, 0.005, n)),
            "nmse": list(0.1 / (1 + rank) + rng.normal(0, 0.001, n))}


@pytest.fixture
def paper_results(tmp_path):
    results = tmp_path / "results"
    # written in a scrambled order: the table must restore the paper's
    for seed in (0, 1):
        for rank, method in sorted(enumerate(TABLE1), key=lambda x: -x[0] * 7 % 5):
            fake_record(results, method, seed, values_for(rank, seed), parameters=None if method == "lpet" else
                        (rank + 1) * 1_250_000)
        for rank, method in enumerate(TABLE2[:3]):
            fake_record(results, method, seed, values_for(rank + 3, seed), components=COMPONENTS[method])
    return results


@pytest.fixture
def cli(paper_results):
    app = create_app(helper_host())
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [*args, "--results", str(paper_results)])


def test_table1_order_stats_bold_and_wilcoxon(paper_results):
    table = build_paper_table(find_records(paper_results), 1)
    assert [r.method for r in table.rows] == TABLE1
    assert [r.label for r in table.rows] == ["LPET", "Cycle-GAN", "Auto-Context", "AR-GAN", "CVT-GAN", "SemiPET",
                                             "S3PET (ours)"]
    assert list(table.metrics) == ["psnr", "ssim", "nmse"] and table.seeds == [0, 1]
    cyclegan, s3pet = table.rows[1], table.rows[-1]
    seeds = np.array([values_for(1, s)["psnr"] for s in (0, 1)])  # seeds x subjects
    per_seed = seeds.mean(axis=1)
    assert cyclegan.stats["psnr"]["mean"] == pytest.approx(per_seed.mean())
    assert cyclegan.stats["psnr"]["seed_std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert cyclegan.stats["psnr"]["subject_std"] == pytest.approx(np.std(seeds, axis=1, ddof=1).mean())
    assert cyclegan.stats["psnr"]["n_seeds"] == 2 and cyclegan.stats["psnr"]["n_subjects"] == 5
    assert [r.stats["psnr"]["best"] for r in table.rows] == [False] * 6 + [True]
    assert [r.stats["nmse"]["best"] for r in table.rows] == [False] * 6 + [True]  # lower is better
    # Wilcoxon on per-subject values (each subject's mean over seeds), Holm over the 6 x 3 comparisons
    reference = np.array([values_for(6, s)["psnr"] for s in (0, 1)]).mean(axis=0)
    expected = wilcoxon(seeds.mean(axis=0), reference).pvalue
    assert cyclegan.stats["psnr"]["p"] == pytest.approx(expected)
    raw = [r.stats[m]["p"] for m in table.metrics for r in table.rows if r.method != "s3pet"]
    assert len(raw) == 18 and cyclegan.stats["psnr"]["p_holm"] == pytest.approx(min(1.0, max(
        min(1.0, (18 - i) * p) for i, p in enumerate(sorted(raw)) if p <= expected)))
    assert s3pet.stats["psnr"]["p"] is None and s3pet.stats["psnr"]["difference"] is None
    assert table.rows[0].parameters is None and cyclegan.parameters == 2_500_000


def test_table2_check_marks_and_rows(paper_results):
    table = build_paper_table(find_records(paper_results), 2)
    assert [r.label for r in table.rows] == ["Baseline", "+DsMAE", "+DsMAE+DKD", "S3PET"]
    assert table.components == ["Baseline", "DsMAE", "DKD", "DKL"]
    marks = [[r.components[c] for c in table.components] for r in table.rows]
    assert marks == [[True, False, False, False], [True, True, False, False], [True, True, True, False],
                     [True, True, True, True]]  # s3pet's from its stand-in's class (what the runner stores)
    markdown = render_paper_table(table, "markdown")
    assert "| Variant" in markdown and "✓" in markdown


def table_lines(text):
    return [line for line in text.splitlines() if line.startswith("|")]


@pytest.mark.parametrize("number", [1, 2])
def test_every_format_is_well_formed(cli, number):
    markdown = cli("compare", "--table", str(number), "--format", "markdown")
    assert markdown.exit_code == 0, markdown.output
    lines = table_lines(markdown.output)
    assert len(lines) == 2 + (7 if number == 1 else 4)
    pipes = [[i for i, c in enumerate(line) if c == "|"] for line in lines]
    assert all(p == pipes[0] for p in pipes), "markdown columns do not line up with the header"
    assert re.fullmatch(r"\|[-|: ]+\|", lines[1])
    assert sum("**" in line for line in lines) >= 1
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    assert "PSNR [dB] ↑" in header and "NMSE ↓" in header and "p (PSNR)" in header
    assert ("Params [M]" in header) == (number == 1)
    assert ("DKL" in header) == (number == 2)

    latex = cli("compare", "--table", str(number), "--format", "latex").output
    for env in set(re.findall(r"\\begin\{(\w+)\}", latex)):
        assert latex.count(rf"\begin{{{env}}}") == latex.count(rf"\end{{{env}}}") == 1
    assert latex.count("{") == latex.count("}")
    body = [line for line in latex.splitlines() if line.endswith(r"\\")]
    assert len({line.count(" & ") for line in body}) == 1 and r"\textbf{" in latex
    assert (r"\checkmark" in latex) == (number == 2)
    assert "_" not in latex.replace(r"\_", "").split(r"\begin{tabular}")[1]

    rows = list(csv.DictReader(io.StringIO(cli("compare", "--table", str(number), "--format", "csv").output)))
    assert len(rows) == (7 if number == 1 else 4) and float(rows[-1]["psnr_mean"]) > float(rows[0]["psnr_mean"])
    data = json.loads(cli("compare", "--table", str(number), "--format", "json").output)
    assert data["table"] == number and data["reference"] == "s3pet" and len(data["rows"]) == len(rows)
    assert data["rows"][-1]["metrics"]["psnr"]["p"] is None and 0 <= data["rows"][0]["metrics"]["psnr"]["p"] <= 1

    terminal = cli("compare", "--table", str(number))
    assert terminal.exit_code == 0 and "S3PET" in terminal.output


def test_mixed_drfs_and_missing_tables_are_clear_errors(paper_results, cli, tmp_path):
    fake_record(paper_results, "cyclegan", 0, values_for(1, 0), drf=10)
    result = cli("compare", "--table", "1")
    assert result.exit_code == 2 and "one dataset, DRF and protocol" in result.output
    assert cli("compare", "--table", "1", "--drf", "4").exit_code == 0
    empty = tmp_path / "other"
    fake_record(empty, "lpet", 0, values_for(0, 0))
    with pytest.raises(UserError, match="Table II"):
        build_paper_table(find_records(empty), 2)
    assert cli("compare", "--table", "3").exit_code == 2


def test_several_option_sets_get_their_own_rows(tmp_path):
    for epochs in (1, 3):
        fake_record(tmp_path, "cyclegan", 0, values_for(epochs, 0), options={"epochs": epochs, "width": 4})
    fake_record(tmp_path, "s3pet", 0, values_for(6, 0))
    table = build_paper_table(find_records(tmp_path), 1)
    assert [r.label for r in table.rows] == ["Cycle-GAN [epochs=1]", "Cycle-GAN [epochs=3]", "S3PET (ours)"]
