"""`petbench split` and `petbench import`: the protocol written out for an outside tool, and that tool's
predictions checked, scored as a trained run is, recorded as an external run and ranked with the others."""
import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter
from typer.testing import CliRunner

from petbench.cli import create_app
from petbench.testing.toys import TinyDataset

TINY = TinyDataset.defaults
PROTOCOL = ["--n-train", "3", "--n-test", "3", "--n-unpaired", "2", "--drf", "4"]


@pytest.fixture
def cli(host):
    app = create_app(host)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write_split(cli, out, *extra):
    result = cli("split", "--dataset", "tiny", *PROTOCOL, "--out", out, "--volumes", "-q", *extra)
    assert result.exit_code == 0, result.output
    return json.loads((out / "split.json").read_text())


def smooth_predictions(split_dir: Path, manifest: dict, out: Path, sigma: float = 0.8) -> dict[str, np.ndarray]:
    """An outside tool (scipy's Gaussian filter) predicting every test subject from the files split wrote."""
    out.mkdir(parents=True, exist_ok=True)
    made = {}
    for subject in manifest["splits"]["test"]:
        image = nib.load(split_dir / subject["files"]["drf4"])
        volume = gaussian_filter(np.asarray(image.dataobj, dtype=np.float32), sigma)
        nib.save(nib.Nifti1Image(volume, image.affine), out / f"{subject['id']}.nii.gz")
        made[subject["id"]] = volume.transpose(2, 1, 0)  # [z, y, x] as petbench holds it
    return made


def test_split_names_the_subjects_a_run_uses_and_never_writes_test_standard_dose(cli, tmp_path):
    manifest = write_split(cli, tmp_path / "split")
    run = cli("run", "--method", "lpet", "--dataset", "tiny", *PROTOCOL, "--results", tmp_path / "res", "-q",
              "--metrics", "psnr")
    assert run.exit_code == 0, run.output
    record = json.loads(next((tmp_path / "res").glob("*/run.json")).read_text())
    for key in ("train", "test", "unpaired"):
        assert [s["id"] for s in manifest["splits"][key]] == record["splits"][key]
    assert manifest["scale"] == pytest.approx(record["dataset"]["scale"])
    # the scale, recomputed: 99.5th percentile of the paired-train standard-dose voxels
    train = [TinyDataset().load(sid).spet for sid in record["splits"]["train"]]
    assert manifest["scale"] == pytest.approx(np.percentile(np.concatenate([v.ravel() for v in train]), 99.5),
                                              rel=1e-5)
    written = sorted(p.relative_to(tmp_path / "split").as_posix() for p in (tmp_path / "split").rglob("*.nii.gz"))
    assert not [p for p in written if p.startswith("test/") and not p.endswith("/drf4.nii.gz")]
    assert len([p for p in written if p.startswith("test/")]) == 3
    sid = record["splits"]["test"][0]
    saved = np.asarray(nib.load(tmp_path / "split" / "test" / sid / "drf4.nii.gz").dataobj).transpose(2, 1, 0)
    np.testing.assert_allclose(saved, TinyDataset().load(sid, (4,)).lpet[4])
    assert manifest["splits"]["test"][0]["shape"] == [TINY["depth"], TINY["size"], TINY["size"]]
    assert "validation" not in manifest["splits"]


def test_split_with_validation_subjects(cli, tmp_path):
    manifest = write_split(cli, tmp_path / "split", "--n-val", "2")
    ids = [[s["id"] for s in manifest["splits"][k]] for k in ("train", "test", "unpaired", "validation")]
    assert len(ids[3]) == 2 and len({i for group in ids for i in group}) == sum(map(len, ids))


def test_imported_predictions_are_scored_as_recomputed_and_ranked(cli, tmp_path):
    manifest = write_split(cli, tmp_path / "split")
    made = smooth_predictions(tmp_path / "split", manifest, tmp_path / "pred")
    res = tmp_path / "res"
    for method in ("lpet", "tiny-cnn"):
        run = cli("run", "--method", method, "--dataset", "tiny", *PROTOCOL, "--results", res, "-q",
                  "--metrics", "psnr,nmse", "-o", "epochs=1") if method == "tiny-cnn" else \
            cli("run", "--method", method, "--dataset", "tiny", *PROTOCOL, "--results", res, "-q", "--metrics", "psnr,nmse")
        assert run.exit_code == 0, run.output
    result = cli("import", "--name", "gauss", "--dataset", "tiny", *PROTOCOL, "--predictions", tmp_path / "pred",
                 "--results", res, "--metrics", "psnr,nmse", "--description", "scipy gaussian_filter",
                 "--parameters", "0", "--place", "1:15", "-q")
    assert result.exit_code == 0, result.output
    run_dir = next(res.glob("gauss_*"))
    record = json.loads((run_dir / "run.json").read_text())
    assert record["provenance"]["kind"] == "external"
    assert record["provenance"]["description"] == "scipy gaussian_filter"
    import hashlib

    for sid in made:
        assert record["provenance"]["files"][sid]["sha256"] == \
            hashlib.sha256((tmp_path / "pred" / f"{sid}.nii.gz").read_bytes()).hexdigest()
    rows = pd.read_csv(run_dir / "metrics.csv", dtype={"subject": str})
    for sid, pred in made.items():  # recomputed here with the formulas of docs/metrics.md
        ref = TinyDataset().load(sid).spet.astype(np.float64)
        pred = pred.astype(np.float64)
        psnr = 20 * np.log10(ref.max() / np.sqrt(np.mean((pred - ref) ** 2)))
        nmse = np.sum((pred - ref) ** 2) / np.sum(ref ** 2)
        got = rows[rows.subject == sid].set_index("metric")["value"]
        assert got["psnr"] == pytest.approx(psnr, rel=1e-9)
        assert got["nmse"] == pytest.approx(nmse, rel=1e-9)
    board = cli("compare", "--results", res, "--format", "csv")
    assert board.exit_code == 0, board.output
    methods = [row["method"] for row in csv.DictReader(board.stdout.splitlines())]
    assert sorted(methods) == ["gauss", "lpet", "tiny-cnn"]
    assert "external" in board.output  # the note names the imported row
    table = cli("compare", "--results", res, "--table", "1", "--format", "csv")
    assert table.exit_code == 0, table.output
    assert "gauss (external)" in table.output
    figure = cli("figure", "--table", "1", "--results", res, "--out", tmp_path / "fig.png")
    assert figure.exit_code == 0 and "gauss (external)" in figure.output, figure.output
    score = cli("score", "--results", res, "--metrics", "ssim", "-q")  # scored later from the saved copies
    assert score.exit_code == 0, score.output
    assert "ssim" in pd.read_csv(run_dir / "metrics.csv")["metric"].tolist()


def test_importing_again_does_nothing_and_changed_files_make_a_new_record(cli, tmp_path):
    manifest = write_split(cli, tmp_path / "split")
    smooth_predictions(tmp_path / "split", manifest, tmp_path / "pred")
    args = ["import", "--name", "gauss", "--dataset", "tiny", *PROTOCOL, "--predictions", tmp_path / "pred",
            "--results", tmp_path / "res", "--metrics", "psnr", "-q"]
    assert cli(*args).exit_code == 0
    first = sorted(p.name for p in (tmp_path / "res").glob("gauss_*"))
    stamp = (tmp_path / "res" / first[0] / "run.json").stat().st_mtime_ns
    again = cli(*args)
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert sorted(p.name for p in (tmp_path / "res").glob("gauss_*")) == first
    assert (tmp_path / "res" / first[0] / "run.json").stat().st_mtime_ns == stamp
    smooth_predictions(tmp_path / "split", manifest, tmp_path / "pred", sigma=1.5)
    assert cli(*args).exit_code == 0
    assert len(list((tmp_path / "res").glob("gauss_*"))) == 2


def damage(case: str, pred: Path, manifest: dict) -> str:
    """Break the predictions folder one way; returns the file name the error must name."""
    first = manifest["splits"]["test"][0]["id"]
    path = pred / f"{first}.nii.gz"
    image = nib.load(path)
    data = np.asarray(image.dataobj, dtype=np.float32)
    if case == "missing":
        path.unlink()
    elif case == "extra":
        nib.save(image, pred / "stranger.nii.gz")
        return "stranger.nii.gz"
    elif case == "shape":
        nib.save(nib.Nifti1Image(data[:-1], image.affine), path)
    elif case == "affine":
        nib.save(nib.Nifti1Image(data, np.diag([3.0, 2.0, 2.0, 1.0])), path)
    elif case == "nan":
        data[0, 0, 0] = np.nan
        nib.save(nib.Nifti1Image(data, image.affine), path)
    elif case == "units":
        changed = nib.Nifti1Image(data, image.affine)
        changed.header["descrip"] = b"Bq/mL"
        nib.save(changed, path)
    elif case == "not nifti":
        (pred / "notes.txt").write_text("hello")
        return "notes.txt"
    elif case == "registered name":
        return ""
    return f"{first}.nii.gz"


@pytest.mark.parametrize("case", ["missing", "extra", "shape", "affine", "nan", "units", "not nifti",
                                  "registered name"])
def test_each_problem_is_one_error_line_naming_the_file_and_leaves_no_record(cli, tmp_path, case):
    manifest = write_split(cli, tmp_path / "split")
    smooth_predictions(tmp_path / "split", manifest, tmp_path / "pred")
    named = damage(case, tmp_path / "pred", manifest)
    name = "tiny-cnn" if case == "registered name" else "gauss"
    result = cli("import", "--name", name, "--dataset", "tiny", *PROTOCOL, "--predictions", tmp_path / "pred",
                 "--results", tmp_path / "res", "--metrics", "psnr", "-q")
    assert_user_error(result, named if named else "registered method")
    assert not list((tmp_path / "res").glob("*/run.json"))


class TinyWithFiles(TinyDataset):
    name = "tiny-files"

    def source_files(self, subject_id):
        return {"spet": f"/data/{subject_id}/spet.nii.gz", "drf4": f"/data/{subject_id}/drf4.nii.gz"}


def test_a_test_subjects_reference_file_is_never_named(tmp_path):
    import types

    from petbench import hookimpl
    from petbench.testing.toys import TOY_PLUGIN, isolated_host

    plugin = types.SimpleNamespace(__name__="files", register_datasets=hookimpl(specname="register_datasets")(
        lambda register: register(TinyWithFiles)))
    result = CliRunner().invoke(create_app(isolated_host(TOY_PLUGIN, plugin)), [
        "split", "--dataset", "tiny-files", *PROTOCOL, "--out", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "split.json").read_text())
    for subject in manifest["splits"]["test"]:
        assert subject["source_files"] == {"drf4": f"/data/{subject['id']}/drf4.nii.gz"}
    for subject in manifest["splits"]["train"]:
        assert set(subject["source_files"]) == {"spet", "drf4"}


def test_any_stray_file_name_in_the_predictions_folder_is_named_and_nothing_is_written(tmp_path_factory):
    """Generated names (Hypothesis) for one file too many: always one UserError naming it, never a record."""
    import shutil

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from petbench.data.protocol import Protocol
    from petbench.errors import UserError
    from petbench.external.predictions import ExternalMethod, import_predictions
    from petbench.external.split import ProtocolSplit
    from petbench.testing.toys import TOY_PLUGIN, isolated_host

    host = isolated_host(TOY_PLUGIN)
    protocol = Protocol(n_train=3, n_test=3, n_unpaired=2, drf=4)
    split = ProtocolSplit(host, "tiny", {}, protocol)
    good = tmp_path_factory.mktemp("good")
    for sid in split.splits.test:
        subject = split.load(sid, with_low_dose=True)
        nib.save(nib.Nifti1Image(subject.lpet[4].transpose(2, 1, 0), subject.affine), good / f"{sid}.nii.gz")

    names = st.text(st.characters(codec="utf-8", exclude_characters="/\0", exclude_categories=("Cs",)),
                    min_size=1, max_size=30).filter(lambda n: n not in (".", "..") and not n.startswith("."))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(name=names)
    def check(name):
        work = tmp_path_factory.mktemp("pred")
        folder = work / "pred"
        shutil.copytree(good, folder)
        try:
            (folder / name).write_bytes(b"stray")
        except OSError:  # a name this file system cannot hold (too long in bytes)
            return
        if name.removesuffix(".gz").removesuffix(".nii") in split.splits.test:
            return  # a second file of a test subject: also refused, by another message
        with pytest.raises(UserError) as error:
            import_predictions(host, split, folder, ExternalMethod("gauss"), work / "res", progress=False,
                               log=lambda _: None)
        from petbench.paths import shown_path

        assert shown_path(folder / name) in str(error.value) and "\n" not in str(error.value)
        assert not list((work / "res").glob("*/run.json")) if (work / "res").exists() else True

    check()
