"""The ``folder`` dataset: a user's NIfTI volumes in paired/ and unpaired_spet/, with the UDPET checks."""
import logging

import numpy as np
import pytest

from udpet_fixtures import isolated_cache, low_dose, phantom, write_nifti  # noqa: E402,F401

from petbench import UserError  # noqa: E402
from petbench.datasets.folder import classify_paired_file  # noqa: E402
from petbench.datasets.scanned.preprocess import body_block, crop  # noqa: E402
from petbench.default_plugins.folder import FolderDataset  # noqa: E402
from petbench.plugins import DEFAULT_PLUGINS  # noqa: E402


def make_folder(root, paired=("a", "b"), unpaired=("u1", "u2"), drfs=(4, 10)):
    volumes = {}
    for i, name in enumerate(paired):
        full = phantom(seed=i)
        write_nifti(root / "paired" / name / "spet.nii.gz", full)
        volumes[name] = {1: full}
        for drf in drfs:
            volumes[name][drf] = low_dose(full, drf, seed=i)
            write_nifti(root / "paired" / name / f"lpet_drf{drf}.nii.gz", volumes[name][drf])
    for i, name in enumerate(unpaired):
        volumes[name] = {1: phantom(seed=10 + i)}
        write_nifti(root / "unpaired_spet" / f"{name}.nii", volumes[name][1])
    return volumes


def folder(root, **options):
    return FolderDataset(data_root=str(root), **options)


@pytest.mark.parametrize("name, drf", [("spet.nii.gz", 1), ("SPET.nii", 1), ("lpet_drf10.nii.gz", 10),
                                       ("lpet_drf100.nii", 100), ("lpet_drf1.nii.gz", None), ("lpet.nii.gz", None),
                                       ("spet.nii.gz.bak", None), ("lpet_drf10_old.nii.gz", None)])
def test_file_names(name, drf):
    assert classify_paired_file(name) == drf


def test_paired_and_unpaired_subjects(tmp_path):
    volumes = make_folder(tmp_path)
    data = folder(tmp_path)
    assert data.drfs == (4, 10)  # what the files are named with
    assert data.subject_ids() == ["a", "b", "u1", "u2"]
    assert data.available_drfs("a") == (4, 10)
    assert data.available_drfs("u1") == ()
    subject = data.load("b", (10,))
    np.testing.assert_allclose(subject.spet, volumes["b"][1], rtol=1e-6)
    np.testing.assert_allclose(subject.lpet[10], volumes["b"][10], rtol=1e-6)
    assert subject.units == "a.u." and subject.spacing == pytest.approx((1.65, 1.65, 1.65))
    unpaired = data.load("u2")
    np.testing.assert_allclose(unpaired.spet, volumes["u2"][1], rtol=1e-6)
    assert unpaired.lpet == {}
    with pytest.raises(UserError, match=r"'u2' .* has no usable DRF 10"):
        data.load("u2", (10,))


def test_crop_and_units_options(tmp_path):
    volumes = make_folder(tmp_path, unpaired=())
    data = folder(tmp_path, crop="body", size=6, units="Bq/mL")
    subject = data.load("a", (4,))
    block = body_block(volumes["a"][1], 6)
    np.testing.assert_allclose(subject.lpet[4], crop(volumes["a"][4], block), rtol=1e-6)
    assert subject.units == "Bq/mL" == data.units


def test_without_a_root():
    with pytest.raises(UserError, match="--data-root.*paired/<subject>/spet.nii.gz"):
        FolderDataset()


def test_empty_and_foreign_roots(tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path} is empty"):
        folder(tmp_path).subject_ids()
    (tmp_path / "images").mkdir()
    with pytest.raises(UserError, match=f"{tmp_path} is not a folder dataset: no paired/ or unpaired_spet/"):
        folder(tmp_path).subject_ids()


def test_bad_subjects_are_skipped_with_a_warning(tmp_path, caplog):
    make_folder(tmp_path, paired=("good", "nan", "shape", "nospet", "unreadable", "missing"))
    with_nan = phantom()
    with_nan[1, 2, 3] = np.nan
    write_nifti(tmp_path / "paired/nan/spet.nii.gz", with_nan)
    write_nifti(tmp_path / "paired/shape/lpet_drf10.nii.gz", phantom(shape=(12, 10, 7)))
    (tmp_path / "paired/nospet/spet.nii.gz").unlink()
    (tmp_path / "paired/unreadable/lpet_drf4.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    (tmp_path / "paired/missing/lpet_drf4.nii.gz").unlink()
    (tmp_path / "paired/good/notes.txt").write_text("ignored")
    data = folder(tmp_path)
    assert data.subject_ids() == ["good", "missing", "shape", "u1", "u2", "unreadable"]
    assert data.available_drfs("shape") == (4,)
    assert data.available_drfs("unreadable") == (10,)
    assert data.available_drfs("missing") == (10,)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    def said(path, text):
        return any(f"{tmp_path / path}: " in line and text in line for line in lines)

    assert said("paired/nan/spet.nii.gz", "NaN")
    assert said("paired/nan", "the subject is skipped")
    assert said("paired/shape/lpet_drf10.nii.gz", "shape (z, y, x) (12, 10, 7) differs")
    assert said("paired/nospet", "standard (full) dose was not found")
    assert said("paired/unreadable/lpet_drf4.nii.gz", "unreadable NIfTI file")
    assert said("paired/missing", "missing dose level(s): DRF 4")
    assert said("paired/good/notes.txt", "ignored")


def test_a_name_in_both_sets(tmp_path):
    make_folder(tmp_path, paired=("a",), unpaired=("a",))
    data = folder(tmp_path)
    assert data.subject_ids() == ["a"] and data.available_drfs("a") == (4, 10)
    assert any("also in paired/" in p.message for p in data.index.problems)


def test_registered_as_a_default_plugin():
    assert "petbench.default_plugins.folder" in DEFAULT_PLUGINS
    assert FolderDataset.name == "folder" and FolderDataset.defaults["data_root"] == ""


def test_passes_the_dataset_conformance_suite(tmp_path):
    from petbench.testing.conformance import check_dataset

    make_folder(tmp_path)
    check_dataset(FolderDataset, options={"data_root": str(tmp_path)})


# -- optional label maps ------------------------------------------------------------------------
def write_labels(root, subject, shape, spacing=(1.65, 1.65, 1.65)):
    z, y, x = np.indices(shape)
    regions = np.where(x < shape[2] // 2, 1, 2).astype(np.float32)
    lesions = np.zeros(shape, np.float32)
    lesions[2:4, 2:4, 2:4] = 1  # a binary mask with two separate lesions
    lesions[7:9, 6:8, 5:7] = 1
    write_nifti(root / "labels" / subject / "regions.nii.gz", regions, spacing)
    write_nifti(root / "labels" / subject / "lesions.nii.gz", lesions, spacing)
    (root / "labels" / "regions.json").write_text('{"1": "liver", "2": "spleen"}')
    return regions, lesions


def test_label_maps_are_read_named_and_cropped_like_the_volumes(tmp_path):
    make_folder(tmp_path)
    full = phantom(seed=0)
    regions, lesions = write_labels(tmp_path, "a", full.shape)
    subject = folder(tmp_path).load("a", (4,))
    assert set(subject.labels) == {"regions", "lesions"}
    np.testing.assert_array_equal(subject.labels["regions"].array, regions.astype(int))
    assert subject.labels["regions"].names == {1: "liver", 2: "spleen"}
    found = subject.labels["lesions"]
    assert found.names == {1: "lesion 1", 2: "lesion 2"}  # the binary mask's two components
    assert (found.array[2:4, 2:4, 2:4] == 1).all() and (found.array[7:9, 6:8, 5:7] == 2).all()
    assert folder(tmp_path).load("b").labels == {}  # no labels/ folder: no label maps

    cropped = folder(tmp_path, crop="body", size=6).load("a", (4,))
    block = body_block(full, 6)
    np.testing.assert_array_equal(cropped.labels["regions"].array, crop(regions, block).astype(int))
    assert cropped.labels["regions"].array.shape == cropped.spet.shape == (6, 6, 6)


def test_a_label_map_off_the_standard_dose_grid_is_an_error(tmp_path):
    make_folder(tmp_path)
    write_nifti(tmp_path / "labels" / "a" / "regions.nii.gz", np.ones((3, 3, 3), np.float32))
    with pytest.raises(UserError, match=r"label map .*regions.nii.gz has shape"):
        folder(tmp_path).load("a")
    write_nifti(tmp_path / "labels" / "a" / "regions.nii.gz", np.ones(phantom().shape, np.float32), (2.0, 2.0, 2.0))
    with pytest.raises(UserError, match="another voxel grid"):
        folder(tmp_path).load("a")
    write_nifti(tmp_path / "labels" / "a" / "regions.nii.gz", np.full(phantom().shape, 0.5, np.float32))
    with pytest.raises(UserError, match="non-negative integers"):
        folder(tmp_path).load("a")


def test_split_and_import_on_a_folder_dataset(tmp_path, isolated_cache, request):
    """`petbench split --volumes` on a user's folder: its files named, the host's volumes written; the
    test inputs imported back unchanged score as the lpet row does."""
    import json

    import nibabel as nib
    from typer.testing import CliRunner

    from petbench.cli import create_app
    from petbench.plugins import set_host
    from petbench.testing.toys import isolated_host

    request.addfinalizer(lambda: set_host(None))  # create_app makes its host the CLI's: later tests get the default
    make_folder(tmp_path / "data", paired=("a", "b", "c"), unpaired=("u1",))
    app, runner = create_app(isolated_host()), CliRunner()
    protocol = ["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--drf", "4", "--n-train", "2",
                "--n-test", "1", "--n-unpaired", "1"]
    result = runner.invoke(app, ["split", *protocol, "--out", str(tmp_path / "split"), "--volumes", "-q"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "split" / "split.json").read_text())
    (test,) = manifest["splits"]["test"]
    assert test["source_files"] == {"drf4": str((tmp_path / "data" / "paired" / test["id"] / "lpet_drf4.nii.gz")
                                                .resolve())}
    assert manifest["splits"]["unpaired"][0]["source_files"]["spet"].endswith("u1.nii")
    (tmp_path / "pred").mkdir()
    image = nib.load(tmp_path / "split" / test["files"]["drf4"])
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), image.affine), tmp_path / "pred" / f"{test['id']}.nii.gz")
    results = tmp_path / "res"
    for args in (["import", "--name", "identity", "--predictions", str(tmp_path / "pred")], ["run", "--method", "lpet"]):
        done = runner.invoke(app, [*args, *protocol, "--metrics", "psnr", "--results", str(results), "-q"])
        assert done.exit_code == 0, done.output
    board = runner.invoke(app, ["compare", "--results", str(results), "--format", "json", "--metrics", "psnr"])
    table = json.JSONDecoder().raw_decode(board.output[board.output.index("{"):])[0]
    rows = {row["method"]: row["values"]["psnr_mean"] for row in table["rows"]}
    assert rows["identity"] == pytest.approx(rows["lpet"], rel=1e-6)
