"""Label efficiency: the protocol's nested splits (and today's splits kept), grid axes over n_train and
n_unpaired, stage reuse keyed by the training sizes, `figure efficiency` and `compare --by`."""
import csv
import io
import json
import pathlib
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make grid_helpers importable
from grid_helpers import fake_record, helper_host, installed  # noqa: E402

from petbench.cli import create_app  # noqa: E402
from petbench.data.protocol import Protocol, split_subjects  # noqa: E402
from petbench.errors import UserError  # noqa: E402
from petbench.grids.efficiency import build_curves, draw_curves  # noqa: E402
from petbench.grids.executors import LocalExecutor  # noqa: E402
from petbench.grids.run_grid import chains, plan_grid, run_grid, select  # noqa: E402
from petbench.grids.spec import GridSpec, Variant, grid_from_dict, resolve_grid  # noqa: E402
from petbench.results import find_records  # noqa: E402

IDS = [f"s{i:03d}" for i in range(200)]


def split_before_pools(ids, n_train, n_test, n_unpaired, seed, has_drf):
    """The split of petbench before the paired-train pool existed, written out again: one shuffle;
    test then train among the subjects with the DRF; unpaired = the first others."""
    ids = sorted(set(ids))
    shuffled = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    with_drf = [s for s in shuffled if has_drf(s)]
    test, train = with_drf[:n_test], with_drf[n_test:n_test + n_train]
    rest = [s for s in shuffled if s not in set(test) | set(train)]
    return train, test, rest[:n_unpaired]


# -- the protocol -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [(30, 20, 120), (4, 3, 0), (0, 5, 7), (12, 6, 40)])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_protocols_without_a_pool_draw_the_same_subjects_as_before(sizes, seed):
    n_train, n_test, n_unpaired = sizes
    for has_drf in (lambda s: True, lambda s: int(s[1:]) % 3 != 0):
        expected = split_before_pools(IDS, n_train, n_test, n_unpaired, seed, has_drf)
        for pool in (None, n_train):  # no pool, or a pool of exactly n_train: the same split and identity
            protocol = Protocol(n_train=n_train, n_test=n_test, n_unpaired=n_unpaired, split_seed=seed,
                                n_train_pool=pool)
            splits = split_subjects("d", IDS, protocol, has_drf)
            assert (splits.train, splits.test, splits.unpaired) == expected
            assert "n_train_pool" not in protocol.as_dict()
    assert Protocol(n_train=5, n_train_pool=30).as_dict()["n_train_pool"] == 30


@pytest.mark.parametrize("seed", [0, 3])
def test_smaller_training_sets_nest_and_the_test_and_unpaired_sets_do_not_move(seed):
    has_drf = lambda s: int(s[1:]) % 4 != 1  # noqa: E731 (a quarter of the subjects lack the low dose)
    full = split_subjects("d", IDS, Protocol(n_train=30, split_seed=seed, n_unpaired=100), has_drf)
    for n_train in (0, 2, 5, 10, 30):
        splits = split_subjects("d", IDS, Protocol(n_train=n_train, split_seed=seed, n_unpaired=100, n_train_pool=30),
                                has_drf)
        assert splits.test == full.test
        assert splits.train == full.train[:n_train]
        assert splits.unpaired == full.unpaired
        assert not (set(splits.train) | set(splits.test)) & set(splits.unpaired)
    for n_unpaired in (0, 10, 60):
        splits = split_subjects("d", IDS, Protocol(n_train=10, split_seed=seed, n_unpaired=n_unpaired,
                                                   n_train_pool=30), has_drf)
        assert splits.unpaired == full.unpaired[:n_unpaired]
        assert splits.test == full.test and splits.train == full.train[:10]
    # without the pool the unpaired set would take the subjects a larger n_train trains on
    loose = split_subjects("d", IDS, Protocol(n_train=2, split_seed=seed, n_unpaired=100), has_drf)
    assert set(loose.unpaired) & set(full.train)


def test_a_pool_smaller_than_n_train_or_than_the_data_is_refused():
    with pytest.raises(UserError, match="pool .*smaller than --n-train"):
        split_subjects("d", IDS, Protocol(n_train=10, n_train_pool=5))
    with pytest.raises(UserError, match="a pool of 30 paired train"):
        split_subjects("d", IDS[:60], Protocol(n_train=5, n_test=20, n_unpaired=20, n_train_pool=30))


# -- grid axes ----------------------------------------------------------------------------------------------
def test_grid_expands_over_n_train_and_n_unpaired():
    spec = grid_from_dict({"methods": ["lpet", "tiny-cnn"], "dataset": "tiny", "drfs": [4, 10], "seeds": [0, 1],
                           "n_train": [2, 5, 10], "protocol": {"n_test": 3, "n_unpaired": [0, 4]}})
    cells = spec.cells()
    assert len(cells) == 2 * 2 * 2 * 3 * 2
    assert len({c.key for c in cells}) == len(cells)
    assert cells[0].key == "lpet | tiny | drf4 | n_unpaired0 | n_train2 | seed0"
    assert [(c.n_unpaired, c.n_train, c.seed, c.method.name) for c in cells[:6]] == [
        (0, 2, 0, "lpet"), (0, 2, 0, "tiny-cnn"), (0, 2, 1, "lpet"), (0, 2, 1, "tiny-cnn"),
        (0, 5, 0, "lpet"), (0, 5, 0, "tiny-cnn")]
    protocols = {(c.n_train, c.n_unpaired): spec.run_config(c).protocol for c in cells}
    assert protocols[(2, 4)] == Protocol(n_train=2, n_test=3, n_unpaired=4, drf=protocols[(2, 4)].drf,
                                         n_train_pool=10)
    assert {p.pool for p in protocols.values()} == {10}  # every cell: the largest n_train as its pool

    single = grid_from_dict({"methods": ["lpet"], "dataset": "tiny", "drf": 4, "protocol": {"n_train": 4}})
    assert [c.key for c in single.cells()] == ["lpet | tiny | drf4 | seed0"]  # the keys of earlier grids
    assert single.n_train == [4] and single.run_config(single.cells()[0]).protocol.as_dict()["n_train"] == 4

    with pytest.raises(UserError, match="not both"):
        grid_from_dict({"methods": ["lpet"], "dataset": "tiny", "n_train": [2], "protocol": {"n_train": 3}})
    with pytest.raises(UserError, match="n_train must be 0 or more"):
        grid_from_dict({"methods": ["lpet"], "dataset": "tiny", "n_train": [2, -1]})
    with pytest.raises(UserError, match="same run twice"):
        grid_from_dict({"methods": ["lpet"], "dataset": "tiny", "n_train": [2, 2]}).cells()
    with pytest.raises(UserError, match="integer"):
        grid_from_dict({"methods": ["lpet"], "dataset": "tiny", "protocol": {"n_test": "x"}})

    builtin = resolve_grid("label-efficiency", [Variant("tiny")])
    import importlib.util

    classical = ["gaussian", "nlm"] + (["bm3d"] if importlib.util.find_spec("bm3d") else [])  # the post-filters
    assert [m.name for m in builtin.methods] == ["lpet", *classical, "autocontext", "semipet", "cyclegan", "s3pet"]
    assert builtin.n_train == [2, 5, 10, 30] and builtin.drfs == [10] and builtin.n_unpaired == [120]
    assert resolve_grid("label-efficiency", [Variant("tiny")], n_train=[3, 6], drfs=[4]).n_train == [3, 6]
    assert resolve_grid("table1", [Variant("tiny")]).n_train == [30]


@pytest.fixture
def host():
    yield from installed(helper_host())


def test_grid_cells_share_the_test_subjects_and_nest_their_training_sets(host, results, tmp_path):
    grid = tmp_path / "sizes.toml"
    grid.write_text('methods = ["lpet", "tiny-cnn[epochs=1]"]\ndataset = "tiny"\ndrf = 4\npreset = "quick"\n'
                    'n_train = [2, 5]\n[protocol]\nn_test = 2\nn_unpaired = 3\n')
    app = create_app(host)
    status = CliRunner().invoke(app, ["grid", str(grid), "--n-train", "1,2,5", "--status", "--results", str(results)])
    assert status.exit_code == 0, status.output
    assert "n_train" in status.output and "6 pending" in status.output
    ran = CliRunner().invoke(app, ["grid", str(grid), "-q", "--results", str(results)])
    assert ran.exit_code == 0, ran.output
    assert "next: petbench compare --by n_train" in ran.output
    records = find_records(results)
    assert len(records) == 4
    splits = {(r.method, r.data["protocol"]["n_train"]): r.data["splits"] for r in records}
    assert len({json.dumps(s["test"]) for s in splits.values()}) == 1
    assert len({json.dumps(s["unpaired"]) for s in splits.values()}) == 1 and len(splits["lpet", 2]["unpaired"]) == 3
    small, large = splits["tiny-cnn", 2]["train"], splits["tiny-cnn", 5]["train"]
    assert len(small) == 2 and len(large) == 5 and large[:2] == small
    assert {r.data["protocol"].get("n_train_pool") for r in records} == {None, 5}  # stored only where it differs


def test_label_efficiency_cells_at_30_pairs_are_table1_runs(host, results):
    """The pool is recorded only where it differs from n_train: the n_train = 30 cells have Table I's
    run ids (they run once for both grids), the others their own."""
    def run_ids(name, **settings):
        spec = resolve_grid(name, [Variant("tiny")], drfs=[4], preset="quick", **settings)
        return {(p.cell.method.name, p.cell.n_train): p.task.run_id for p in plan_grid(host, spec, results,
                                                                                       preset="quick").cells}

    efficiency, table1 = run_ids("label-efficiency"), run_ids("table1")
    methods = ["lpet", "autocontext", "semipet", "cyclegan", "s3pet"]
    assert {efficiency[m, 30] for m in methods} == {table1[m, 30] for m in methods}
    assert not {efficiency[m, n] for m in methods for n in (2, 5, 10)} & set(table1.values())
    spec = resolve_grid("label-efficiency", [Variant("tiny")], drfs=[4])
    protocols = {c.n_train: spec.run_config(c).protocol.as_dict() for c in spec.cells()}
    assert protocols[30] == Protocol(drf=4).as_dict()  # what `petbench run` records by default
    assert protocols[10] == {**Protocol(drf=4, n_train=10).as_dict(), "n_train_pool": 30}


def test_stage_one_is_reused_only_at_the_same_training_sizes(host, results):
    """A shared stage (reuse_key) trained on 2 pairs is not reused for 4, and vice versa; at the same size
    the second variant reuses the first's."""
    spec = GridSpec(name="reuse", methods=[Variant("s3pet-dsmae"), Variant("s3pet-dsmae-dkd")],
                    datasets=[Variant("tiny")], drfs=[4], seeds=[0], n_train=[2, 4], n_test=2, n_unpaired=[0],
                    preset="quick")
    plan = plan_grid(host, spec, results, preset="quick")
    groups = chains(select(plan))
    assert [[(p.cell.method.name, p.cell.n_train) for p in g] for g in groups] == [
        [("s3pet-dsmae", 2), ("s3pet-dsmae-dkd", 2)], [("s3pet-dsmae", 4), ("s3pet-dsmae-dkd", 4)]]
    outcome = run_grid(host, plan, LocalExecutor(progress=False), log=lambda _: None)
    assert not outcome.failed and plan.counts() == {"finished": 4}
    by_id = {r.run_id: r for r in find_records(results)}
    for record in by_id.values():
        (pretrain, _) = record.data["timings"]["stages"]
        source = pretrain.get("reused_from")
        if record.method == "s3pet-dsmae":
            assert not source
        else:
            assert source and by_id[source].method == "s3pet-dsmae"
            assert by_id[source].data["protocol"]["n_train"] == record.data["protocol"]["n_train"]
    assert len(list((results / ".stages").glob("*.pt"))) == 2


# -- figure efficiency and compare --by -----------------------------------------------------------------------
SUBJECTS = ["tiny001", "tiny002", "tiny003"]
SIZES = [2, 5, 10]


def psnr_of(method, n_train, seed):
    """Per-subject PSNR: the input does not change with n_train; the methods improve with it."""
    base = {"lpet": 20.0, "autocontext": 21.0, "s3pet": 22.5}[method]
    gain = 0.0 if method == "lpet" else {"autocontext": 1.0, "s3pet": 0.4}[method] * np.log(n_train)
    return [base + gain + 0.1 * seed + 0.05 * i for i in range(len(SUBJECTS))]


@pytest.fixture
def size_results(tmp_path):
    """Two seeds of two methods at n_train 2, 5 and 10; the input (lpet) only at 10: it is the same
    at every size, so its one run is the reference line of the whole curve."""
    results = tmp_path / "results"
    for seed in (0, 1):
        for n_train in SIZES:
            for method in ("lpet", "autocontext", "s3pet") if n_train == 10 else ("autocontext", "s3pet"):
                psnr = psnr_of(method, n_train, seed)
                fake_record(results, method, seed, {"psnr": psnr, "nmse": [1 / v for v in psnr]}, subjects=SUBJECTS,
                            drf=10, protocol={"n_train": n_train, "n_train_pool": 10, "n_unpaired": 6})
    return results


@pytest.fixture
def cli(size_results):
    app = create_app(helper_host())
    return lambda *args: CliRunner().invoke(app, [*args, "--results", str(size_results)])


def expected(method, n_train):
    """The mean of the per-seed means, the std over subjects within a seed (averaged over seeds) and the std
    of the per-seed means (numpy, ddof 1)."""
    per_seed = np.array([psnr_of(method, n_train, seed) for seed in (0, 1)])
    return per_seed.mean(axis=1).mean(), per_seed.std(axis=1, ddof=1).mean(), per_seed.mean(axis=1).std(ddof=1)


def expected_ci(method, n_train, resamples=2000, seed=0):
    """The 95 % CI of the documented draw (petbench.statistics.bootstrap), recomputed with numpy."""
    values = np.array([psnr_of(method, n_train, s) for s in (0, 1)])  # seeds x subjects
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, values.shape[0], size=(resamples, values.shape[0]))
    subjects = rng.integers(0, values.shape[1], size=(resamples, values.shape[1]))
    replicates = values[seeds[:, :, None], subjects[:, None, :]].mean(axis=(1, 2))
    return np.percentile(replicates, [2.5, 97.5])


def test_curves_have_the_pooled_means_and_the_seed_spread(size_results):
    curves = build_curves(find_records(size_results), "n_train", ["psnr"])
    assert curves.values == SIZES and curves.seeds == [0, 1]
    assert [line.label for line in curves.lines] == ["LPET", "Auto-Context", "S3PET (ours)"]
    assert curves.reference.label == "LPET" and [line.method for line in curves.methods] == ["autocontext", "s3pet"]
    for line in curves.methods:
        for n_train in SIZES:
            point = line.points["psnr"][n_train]
            mean, std, seed_std = expected(line.method, n_train)
            assert point["mean"] == pytest.approx(mean) and point["subject_std"] == pytest.approx(std)
            assert point["seed_std"] == pytest.approx(seed_std) and point["n_seeds"] == 2 and point["n_subjects"] == 3
            assert [point["ci_low"], point["ci_high"]] == pytest.approx(list(expected_ci(line.method, n_train)))
    lpet_mean = expected("lpet", 2)[0]
    assert {n: p["mean"] for n, p in curves.reference.points["psnr"].items()} == pytest.approx(
        {n: lpet_mean for n in SIZES})

    fig, axes = draw_curves(curves)
    (ax,) = axes
    drawn = [line for line in ax.get_lines() if line.get_label() in ("Auto-Context", "S3PET (ours)")]
    assert [line.get_label() for line in drawn] == ["Auto-Context", "S3PET (ours)"]  # one line per method
    assert len(ax.collections) == 2  # and one CI band each
    for line, band, method in zip(drawn, ax.collections, ("autocontext", "s3pet")):
        xs, ys = line.get_data()
        assert list(xs) == SIZES and list(ys) == pytest.approx([expected(method, n)[0] for n in SIZES])
        edge = band.get_paths()[0].vertices
        for n_train in SIZES:
            at = edge[np.isclose(edge[:, 0], n_train), 1]
            assert [at.min(), at.max()] == pytest.approx(list(expected_ci(method, n_train)))
    (reference,) = [line for line in ax.get_lines() if line.get_label() == "LPET (input)"]
    assert list(reference.get_ydata()) == pytest.approx([lpet_mean, lpet_mean])  # a horizontal line
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "5", "10"]


def png_info(path):
    image = Image.open(path)
    assert image.format == "PNG" and image.size[0] > 300
    return json.loads(image.info["Description"])


def test_figure_efficiency_writes_one_line_per_method(cli, size_results, tmp_path):
    out = tmp_path / "efficiency.png"
    result = cli("figure", "efficiency", "--metric", "psnr", "--out", str(out))
    assert result.exit_code == 0, result.output
    info = png_info(out)
    assert info["x"] == "n_train" and info["values"] == SIZES and info["metrics"] == ["psnr"]
    assert info["methods"] == ["Auto-Context", "S3PET (ours)"] and info["reference"] == "LPET"
    assert info["points"]["S3PET (ours)"]["psnr"]["5"] == pytest.approx(expected("s3pet", 5)[0])

    for args, fragment in [(["--x", "drf"], "differ in more than drf"), (["--x", "seed"], "not an axis"),
                           (["--metric", "ssim"], "'ssim' is in no recorded run")]:
        bad = cli("figure", "efficiency", "--out", str(tmp_path / "bad.png"), *args)
        assert bad.exit_code == 2 and bad.output.startswith("Error:") and fragment in bad.output, bad.output
        assert not (tmp_path / "bad.png").exists()
    fake_record(size_results, "s3pet", 0, {"psnr": [1.0, 2.0]}, drf=10, n_test=2,
                protocol={"n_train": 30, "n_unpaired": 6})
    mixed = cli("figure", "efficiency", "--out", str(tmp_path / "bad.png"))
    assert mixed.exit_code == 2 and "differ in more than n_train" in mixed.output


def test_compare_by_n_train_is_a_table_with_one_column_per_size(cli):
    result = cli("compare", "--by", "n_train", "--metrics", "psnr", "--format", "markdown")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["Method", "n_train 2", "n_train 5", "n_train 10"]
    body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [row[0] for row in body] == ["LPET (input)", "Auto-Context", "S3PET (ours)"]
    for row, method in zip(body, ("lpet", "autocontext", "s3pet")):
        for cell, n_train in zip(row[1:], SIZES):
            mean = expected(method, n_train)[0]
            low, high = expected_ci(method, n_train)
            text = f"{mean:.3f} [{low:.3f}, {high:.3f}]"
            best = max(expected(m, n_train)[0] for m in ("lpet", "autocontext", "s3pet"))
            assert cell == (f"**{text}**" if mean == pytest.approx(best) else text)
    assert "PSNR [dB] ↑ against n_train" in result.output

    rows = list(csv.DictReader(io.StringIO(cli("compare", "--by", "n_train", "--format", "csv").output)))
    assert len(rows) == 3 * 2 * 3 and {r["metric"] for r in rows} == {"psnr", "nmse"}  # default: recorded metrics
    data = json.loads(cli("compare", "--by", "n_train", "--format", "json").output)
    assert data["values"] == SIZES and data["axis"] == "n_train"
    for args in (["--by", "epochs"], ["--by", "n_train", "--table", "1"]):
        bad = cli("compare", *args)
        assert bad.exit_code == 2 and bad.output.startswith("Error:"), bad.output
    assert cli("compare", "--by", "n_train").exit_code == 0  # the terminal table renders
    assert "\\textbf{" in cli("compare", "--by", "n_train", "--format", "latex").output
