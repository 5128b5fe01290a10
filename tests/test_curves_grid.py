"""`petbench figure curves --grid NAME`: the training curves of every finished run of a grid that kept them."""
import json
import pathlib
import sys

from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make grid_helpers importable
from grid_helpers import helper_host  # noqa: E402

from petbench.cli import create_app  # noqa: E402
from petbench.results import find_records  # noqa: E402

GRID = """
name = "curves-toy"
methods = ["lpet", "tiny-cnn[epochs=1,2]"]
dataset = "tiny"
drf = 4
preset = "quick"
[protocol]
n_train = 4
n_test = 2
n_unpaired = 0
"""


def test_figure_curves_of_a_grid(tmp_path):
    from PIL import Image

    results, grid = tmp_path / "results", tmp_path / "curves.toml"
    grid.write_text(GRID)
    app, runner = create_app(helper_host()), CliRunner()
    ran = runner.invoke(app, ["grid", str(grid), "-q", "--results", str(results)])
    assert ran.exit_code == 0, ran.output
    trained = {r.run_id: r.data["method"]["options"]["epochs"] for r in find_records(results) if r.method == "tiny-cnn"}
    assert len(trained) == 2

    out = tmp_path / "curves.png"
    for name in (str(grid), "curves-toy"):  # the TOML file, or the grid's name
        drawn = runner.invoke(app, ["figure", "curves", "--grid", name, "--results", str(results), "--out", str(out)])
        assert drawn.exit_code == 0, drawn.output
        info = json.loads(Image.open(out).info["Description"])
        assert sorted(info["runs"]) == sorted(trained)  # lpet trained nothing: no curves, left out
        assert [p["title"] for p in info["panels"]] == ["stage supervised: mean loss"]
        epochs = {s["run"]: s["epochs"] for s in info["panels"][0]["series"]}
        assert epochs == {run: list(range(1, n + 1)) for run, n in trained.items()}

    missing = runner.invoke(app, ["figure", "curves", "--grid", "table9", "--results", str(results),
                                  "--out", str(tmp_path / "x.png")])
    assert missing.exit_code == 2 and missing.output.startswith("Error: --grid table9: no grid") \
        and not (tmp_path / "x.png").exists()
    both = runner.invoke(app, ["figure", "curves", "--grid", "curves-toy", "--run", next(iter(trained)),
                               "--results", str(results), "--out", str(tmp_path / "y.png")])
    assert both.exit_code == 2 and "not both" in both.output
