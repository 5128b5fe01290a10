"""Figures 3/4 and the dose figure: PNG files with the expected panels, from (fabricated) run records
whose predictions are NIfTI volumes next to the tiny dataset's SPET/LPET."""
import json
import pathlib
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make grid_helpers importable
from grid_helpers import fake_record, helper_host  # noqa: E402

from petbench.cli import create_app  # noqa: E402
from petbench.grids.figures import zoom_window  # noqa: E402

SUBJECTS = ["tiny003", "tiny007"]


def values(rank):
    return {"psnr": [20.0 + rank, 21.0 + rank], "ssim": [0.8, 0.81], "nmse": [0.1, 0.09]}


@pytest.fixture
def cli(tmp_path):
    app = create_app(helper_host())
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [*args, "--results", str(tmp_path / "results")])


def png_info(path):
    image = Image.open(path)
    assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
    return json.loads(image.info["Description"])


def test_figure_3_and_4_have_the_expected_panels(cli, tmp_path):
    results = tmp_path / "results"
    methods = ["lpet", "cyclegan", "autocontext", "argan", "cvtgan", "semipet", "s3pet"]
    for rank, method in enumerate(methods):
        fake_record(results, method, 0, values(rank), subjects=SUBJECTS, predictions=True, noise=0.3 / (rank + 1))
    for rank, method in enumerate(["s3pet-baseline", "s3pet-dsmae", "s3pet-dsmae-dkd"]):
        fake_record(results, method, 0, values(rank), subjects=SUBJECTS, predictions=True)

    out = tmp_path / "fig3.png"
    result = cli("figure", "--table", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    info = png_info(out)
    assert info["columns"] == ["SPET", "LPET", "Cycle-GAN", "Auto-Context", "AR-GAN", "CVT-GAN", "SemiPET",
                               "S3PET (ours)"]
    assert info["rows"] == ["image", "zoom", "error"] and info["panels"] == 3 * 8
    assert info["subject"] == "tiny003" and 0 <= info["slice"] < 8 and info["figure"] == 3

    out4 = tmp_path / "fig4.png"
    result = cli("figure", "--table", "2", "--out", str(out4), "--subject", "tiny007", "--slice", "3",
                 "--zoom", "2,2,6")
    assert result.exit_code == 0, result.output
    info = png_info(out4)
    assert info["columns"] == ["SPET", "LPET", "Baseline", "+DsMAE", "+DsMAE+DKD", "Proposed"]
    assert (info["subject"], info["slice"], info["zoom"]) == ("tiny007", 3, [2, 2, 6])

    for args, fragment in [(["--subject", "tiny999"], "not predicted"), (["--slice", "99"], "valid slices"),
                           (["--zoom", "1,2"], "Y,X,SIZE"), ([], None)]:
        bad = cli("figure", "--table", "1", "--out", str(tmp_path / ("x.png" if args else "x.jpg")), *args)
        assert bad.exit_code == 2 and bad.output.startswith("Error:")
        assert fragment is None or fragment in bad.output


def test_dose_figure_needs_several_drfs(cli, tmp_path):
    results = tmp_path / "results"
    for rank, method in enumerate(["lpet", "s3pet"]):
        fake_record(results, method, 0, values(rank), drf=4)
    out = tmp_path / "dose.png"
    single = cli("figure", "dose", "--out", str(out))
    assert single.exit_code == 2 and "several DRFs" in single.output
    for rank, method in enumerate(["lpet", "s3pet"]):
        fake_record(results, method, 0, values(rank - 2), drf=10)
    result = cli("figure", "dose", "--out", str(out))
    assert result.exit_code == 0, result.output
    info = png_info(out)
    assert info["x"] == "drf" and info["values"] == [4, 10] and info["metrics"] == ["psnr", "ssim", "nmse"]
    assert info["panels"] == 3 and info["methods"] == ["S3PET (ours)"] and info["reference"] == "LPET"
    assert info["points"]["LPET"]["psnr"] == {"4": 20.5, "10": 18.5}  # the input's line follows the dose
    same = cli("figure", "efficiency", "--x", "drf", "--metrics", "psnr,ssim,nmse", "--out", str(tmp_path / "e.png"))
    assert same.exit_code == 0 and png_info(tmp_path / "e.png")["points"] == info["points"]
    wrong = cli("figure", "dose", "--x", "n_train", "--out", str(out))
    assert wrong.exit_code == 2 and "figure efficiency" in wrong.output


def test_zoom_window_finds_the_structure():
    import numpy as np

    image = np.zeros((32, 32))
    image[20:26, 4:10] = 1.0
    y, x = zoom_window(image, 8)
    assert y <= 20 and y + 8 >= 26 and x <= 4 and x + 8 >= 10
