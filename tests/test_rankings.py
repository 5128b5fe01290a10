"""Rankings through the CLI: a two-seed grid of synthetic records with known effects (CIs, the three
levels, ranks and rank stability against a numpy recomputation), Demšar's example through
``petbench figure cd`` and ``compare --stats friedman``, the rank figures, one table model behind every
format, and the user's mistakes."""
import csv
import io
import json
import pathlib
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make the helpers importable
from grid_helpers import fake_record, helper_host  # noqa: E402
from test_statistics import DEMSAR_AUC, DEMSAR_METHODS, VOTING  # noqa: E402

from petbench.cli import create_app  # noqa: E402
from petbench.results import find_records  # noqa: E402
from petbench.results.leaderboard import build_leaderboard, leaderboard_model  # noqa: E402
from petbench.statistics import analyse, draw_resample, replicate_means  # noqa: E402
from petbench.tables.cells import StatsOptions  # noqa: E402
from petbench.tables.render import render  # noqa: E402

METHODS = ["lpet", "cyclegan", "semipet", "s3pet"]
TRUE_MEAN = {"lpet": 25.0, "cyclegan": 27.0, "semipet": 28.0, "s3pet": 28.3}  # kept here, not in the project
SUBJECTS = [f"tiny{i:03d}" for i in range(8)]


def grid_values():
    """(method, seed) -> per-subject PSNR: true mean + subject difficulty + seed luck + noise."""
    rng = np.random.default_rng(24)
    difficulty = rng.normal(0, 1.0, len(SUBJECTS))
    return {(m, s): TRUE_MEAN[m] + difficulty + rng.normal(0, 0.2) + rng.normal(0, 0.3, len(SUBJECTS))
            for m in METHODS for s in (0, 1)}


@pytest.fixture
def grid(tmp_path):
    results = tmp_path / "results"
    for (method, seed), psnr in grid_values().items():
        fake_record(results, method, seed, {"psnr": list(psnr), "nmse": list(1 / psnr)}, subjects=SUBJECTS)
    return results


@pytest.fixture
def cli(grid):
    app = create_app(helper_host())
    return lambda *args, results=grid: CliRunner().invoke(app, [*args, "--results", str(results)])


def numpy_cube():
    values = grid_values()
    return np.array([[values[(m, s)] for s in (0, 1)] for m in METHODS])  # methods x seeds x subjects


def test_leaderboard_csv_carries_the_three_levels_cis_and_ranks(cli):
    result = cli("compare", "--format", "csv", "--metrics", "psnr", "--stats", "all", "--reference", "s3pet")
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(result.output))}
    cube = numpy_cube()
    resample = draw_resample([0, 1], SUBJECTS, 2000, 0)
    replicates = replicate_means(cube, resample)
    ranks = np.argsort(np.argsort(-replicates, axis=0), axis=0) + 1  # per replicate, 1 = highest PSNR
    for i, method in enumerate(METHODS):
        row = rows[method]
        per_seed = cube[i].mean(axis=1)
        assert float(row["psnr_mean"]) == pytest.approx(per_seed.mean())
        assert float(row["psnr_seed_std"]) == pytest.approx(np.std(per_seed, ddof=1))
        assert float(row["psnr_subject_std"]) == pytest.approx(np.std(cube[i], axis=1, ddof=1).mean())
        low, high = np.percentile(replicates[i], [2.5, 97.5])
        assert [float(row["psnr_ci_low"]), float(row["psnr_ci_high"])] == pytest.approx([low, high])
        assert float(row["psnr_rank_one"]) == pytest.approx((ranks[i] == 1).mean())
        if method != "s3pet":
            d = replicates[i] - replicates[METHODS.index("s3pet")]
            assert [float(row["psnr_diff_ci_low"]), float(row["psnr_diff_ci_high"])] == pytest.approx(
                list(np.percentile(d, [2.5, 97.5])))
            assert float(row["psnr_difference"]) == pytest.approx(per_seed.mean() - cube[3].mean(axis=1).mean())
    # the ranking of the true means is recovered: s3pet first, the input last
    assert [int(float(rows[m]["psnr_rank"])) for m in METHODS] == [4, 3, 2, 1]
    # every CI of a mean covers the true mean it was drawn around here
    assert all(float(rows[m]["psnr_ci_low"]) - 0.5 < TRUE_MEAN[m] < float(rows[m]["psnr_ci_high"]) + 0.5
               for m in METHODS)


def test_terminal_markdown_latex_json_are_one_table_model(cli, grid):
    options = StatsOptions(shown=frozenset({"ci", "rank", "holm"}), reference="s3pet")
    model = leaderboard_model(build_leaderboard(find_records(grid), ["psnr"], options))
    markdown = cli("compare", "--format", "markdown", "--metrics", "psnr", "--stats", "ci,rank,holm",
                   "--reference", "s3pet").stdout
    data = json.loads(cli("compare", "--format", "json", "--metrics", "psnr", "--stats", "ci,rank,holm",
                          "--reference", "s3pet").output)
    assert markdown.strip() == render(model, "markdown", notes=False).strip()
    for row in data["rows"]:
        line = next(x for x in markdown.splitlines() if x.startswith(f"| {row['label']} "))
        for key in ("psnr", "psnr_ci", "psnr_p", "rank", "rank_one"):
            assert row["cells"][key]["text"] in line
    assert [c["key"] for c in data["columns"]] == [c.key for c in model.columns]
    assert "Rank 1 in" in markdown and "PSNR 95 % CI" in markdown
    assert data["statistics"]["tiny/4"]["bootstrap"] == {"resamples": 2000, "seed": 0, "level": 0.95,
                                                         "scheme": data["statistics"]["tiny/4"]["bootstrap"]["scheme"]}
    assert "Holm" in data["statistics"]["tiny/4"]["method"]
    latex = cli("compare", "--format", "latex", "--metrics", "psnr", "--stats", "ci,rank").output
    assert latex.count(r"\begin{tabular}") == 1 and r"\textbf{" in latex


def test_paper_table_default_look_and_stats_columns(tmp_path):
    results = tmp_path / "results"
    for (method, seed), psnr in grid_values().items():
        fake_record(results, method, seed, {"psnr": list(psnr)}, subjects=SUBJECTS)
    app = create_app(helper_host())
    run = lambda *a: CliRunner().invoke(app, [*a, "--results", str(results)])  # noqa: E731
    plain = run("compare", "--table", "1", "--format", "markdown")
    header = [h.strip() for h in plain.output.splitlines()[2].strip("|").split("|")]
    assert header == ["Methods", "PSNR [dB] ↑", "Params [M]", "p (PSNR)"]  # the paper's look
    assert "Holm-corrected over the 3 comparisons" in plain.output
    extra = run("compare", "--table", "1", "--format", "markdown", "--stats", "ci,diff,holm,rank")
    header = [h.strip() for h in extra.output.splitlines()[2].strip("|").split("|")]
    assert header == ["Methods", "PSNR [dB] ↑", "Params [M]", "PSNR 95 % CI", "ΔPSNR vs S3PET (ours) [CI]",
                      "p (PSNR)", "r (PSNR)", "Rank", "Rank 1 in"]
    data = json.loads(run("compare", "--table", "1", "--format", "json").output)
    per_subject = numpy_cube().mean(axis=1)  # each subject's mean over seeds
    from scipy.stats import wilcoxon
    from statsmodels.stats.multitest import multipletests
    raw = [wilcoxon(per_subject[i], per_subject[3]).pvalue for i in range(3)]
    holm = multipletests(raw, method="holm")[1]
    for i, row in enumerate(data["rows"][:3]):
        assert row["metrics"]["psnr"]["p"] == pytest.approx(raw[i])
        assert row["metrics"]["psnr"]["p_holm"] == pytest.approx(holm[i])
        d = per_subject[i] - per_subject[3]
        ranks = pd.Series(np.abs(d)).rank().to_numpy()
        assert row["metrics"]["psnr"]["rank_biserial"] == pytest.approx(
            (ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def demsar_records(results: pathlib.Path) -> None:
    """Demšar's Table 6 as one-seed records: data sets as test subjects, AUC as the metric (the voting
    tie broken as the paper's ranks break it)."""
    data = [list(row) for row in DEMSAR_AUC]
    data[VOTING][2] = 0.9751
    subjects = [f"set{i:02d}" for i in range(len(data))]
    for j, method in enumerate(DEMSAR_METHODS):
        name = method.lower().replace(".", "").replace("+", "-")
        record = fake_record(results, name, 0, {"psnr": [row[j] for row in data]}, subjects=subjects,
                             extras={"display_name": method})
        rows = record.rows().assign(metric="auc")
        record.write_rows(rows)
        record.data["metrics"] = {"auc": {"higher_is_better": True, "unit": "", "convention": "", "description": ""}}
        record.save()


def test_demsars_example_through_the_cli(tmp_path):
    results = tmp_path / "demsar"
    demsar_records(results)
    app = create_app(helper_host())
    run = lambda *a: CliRunner().invoke(app, [*a, "--results", str(results)])  # noqa: E731
    out = tmp_path / "cd.png"
    result = run("figure", "cd", "--metrics", "auc", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "χ²_F = 9.28" in result.output and "Nemenyi CD = 1.25" in result.output and "F_F = 3.69" in result.output
    info = json.loads(Image.open(out).info["Description"])
    friedman = info["friedman"]["auc"]
    assert round(friedman["chi2"], 2) == 9.28 and round(friedman["critical_difference"], 2) == 1.25
    assert [round(friedman["mean_ranks"][m], 3) for m in DEMSAR_METHODS] == [3.143, 2.0, 2.893, 1.964]
    assert friedman["cliques"] == [["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]]  # the methods' display names
    data = json.loads(run("compare", "--metrics", "auc", "--stats", "friedman", "--format", "json").output)
    stats = data["statistics"]["tiny/4"]
    assert round(stats["friedman"]["auc"]["chi2"], 2) == 9.28
    assert round(stats["friedman"]["auc"]["iman_davenport"], 2) == 3.69
    assert any("one seed" in w for w in stats["warnings"])
    loose = run("figure", "cd", "--metrics", "auc", "--alpha", "0.1", "--out", str(tmp_path / "cd10.png"))
    assert "Nemenyi CD = 1.12" in loose.output


def test_rank_figure_shows_the_bootstrap_rank_shares(cli, grid, tmp_path):
    out = tmp_path / "ranks.png"
    result = cli("figure", "ranks", "--metrics", "psnr,nmse", "--out", str(out))
    assert result.exit_code == 0, result.output
    image = Image.open(out)
    assert image.size[0] > 400 and image.size[1] > 300
    info = json.loads(image.info["Description"])
    assert info["panels"] == ["psnr", "nmse", "consensus"] and info["resamples"] == 2000
    analysis = analyse(pd.concat([find_frame(grid)]), {"psnr": True, "nmse": False})
    from petbench.grids.places import display_name
    names = {r.method: display_name(r) for r in find_records(grid)}  # e.g. s3pet -> S3PET
    for method in METHODS:
        shown = info["ranks"]["psnr"][names[method]]
        assert shown["rank_one"] == pytest.approx(analysis.rank_one(method, "psnr"))
        assert info["ranks"]["consensus"][names[method]]["rank"] == analysis.rank(method)
    assert f"{names['s3pet']} {100 * analysis.rank_one('s3pet'):.0f} %" in result.output


def find_frame(results):
    from petbench.results.tidy import tidy_frame
    return tidy_frame(find_records(results), metrics=["psnr", "nmse"])


@pytest.mark.parametrize("args, fragment", [
    (["compare", "--stats", "pvalues"], "--stats 'pvalues' is not a statistic"),
    (["compare", "--reference", "nosuch", "--stats", "diff"], "--reference 'nosuch' has no run"),
    (["compare", "--bootstrap", "10"], "--bootstrap 10 is too few"),
    (["figure", "cd", "--out", "{tmp}/cd.png", "--alpha", "2"], "--alpha 2.0 must lie between 0 and 1"),
    (["figure", "ranks", "--out", "{tmp}/r.png", "--metrics", "ssim"], "'ssim' is in no recorded run"),
])
def test_mistakes_are_one_error_line(cli, tmp_path, args, fragment):
    result = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2 and result.output.startswith("Error:") and fragment in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not list(tmp_path.glob("*.png"))


def test_cd_figure_needs_three_methods(tmp_path):
    results = tmp_path / "two"
    for method in ("lpet", "s3pet"):
        fake_record(results, method, 0, {"psnr": [20.0, 21.0, 22.0]})
    result = CliRunner().invoke(create_app(helper_host()), ["figure", "cd", "--out", str(tmp_path / "cd.png"),
                                                            "--results", str(results)])
    assert result.exit_code == 2 and "3 or more methods" in result.output and not (tmp_path / "cd.png").exists()


def test_one_seed_and_few_subjects_are_told(tmp_path):
    results = tmp_path / "small"
    for rank, method in enumerate(("lpet", "cyclegan", "s3pet")):
        fake_record(results, method, 0, {"psnr": [20.0 + rank, 21.0 + rank, 22.5 + rank]})
    result = CliRunner().invoke(create_app(helper_host()), ["compare", "--table", "1", "--results", str(results),
                                                            "--format", "markdown"])
    assert "rests on one seed" in result.output and "fewer than 5 test subjects" in result.output
    assert "none can fall below 0.05" in result.output


@settings(max_examples=25, deadline=None)
@given(seeds=st.integers(1, 3), subjects=st.integers(2, 7), shift=st.floats(-5, 5), seed=st.integers(0, 2**31 - 1),
       data=st.data())
def test_generated_tables_keep_pairing_and_rank_shares(seeds, subjects, shift, seed, data):
    """For any table: a method equal to another plus a constant has a degenerate difference CI at that
    constant; rank shares sum to 1 per method; every CI holds its point estimate's neighbourhood."""
    values = data.draw(st.lists(st.floats(0, 40), min_size=seeds * subjects, max_size=seeds * subjects))
    base = np.array(values).reshape(1, seeds, subjects)
    rows = [{"method": m, "seed": s, "subject": f"c{j}", "metric": "psnr", "value": float(v + offset)}
            for m, offset in (("a", 0.0), ("b", shift)) for s in range(seeds) for j, v in enumerate(base[0, s])]
    analysis = analyse(pd.DataFrame(rows), {"psnr": True}, reference="a", resamples=200, seed=seed, tests=False)
    row = analysis.comparison("b", "psnr")
    assert row["ci_low"] == pytest.approx(shift, abs=1e-6) and row["ci_high"] == pytest.approx(shift, abs=1e-6)
    shares = analysis.rank_distribution.groupby(["method", "metric"])["share"].sum()
    assert shares.to_numpy() == pytest.approx(1.0)
    for _, stat in analysis.summary.iterrows():
        assert stat["ci_low"] - 1e-9 <= stat["ci_high"]
        assert base.min() + min(0, shift) - 1e-6 <= stat["ci_low"] and stat["ci_high"] <= base.max() + max(0, shift) + 1e-6


def test_all_pairs_table(cli):
    result = cli("compare", "--all-pairs", "--metrics", "psnr", "--format", "json")
    assert result.exit_code == 0, result.output
    board, pairs = json.loads(result.output)["tables"]
    assert board["name"] == "leaderboard" and len(pairs["rows"]) == 6  # 4 methods: 6 pairs, Holm over 6
    cube = numpy_cube()
    replicates = replicate_means(cube, draw_resample([0, 1], SUBJECTS, 2000, 0))
    for row in pairs["rows"]:
        i, j = (sorted(METHODS).index(row["values"][k]) for k in ("method", "other"))
        order = [METHODS.index(m) for m in sorted(METHODS)]
        d = replicates[order[i]] - replicates[order[j]]
        assert [row["values"]["psnr_ci_low"], row["values"]["psnr_ci_high"]] == pytest.approx(
            list(np.percentile(d, [2.5, 97.5])))
    markdown = cli("compare", "--all-pairs", "--metrics", "psnr", "--format", "markdown").output
    assert "| Pair (A − B)" in markdown and "Holm-corrected over the 6 comparisons" in markdown
