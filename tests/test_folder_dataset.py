"""The ``folder`` dataset: a user's NIfTI volumes in paired/ and unpaired_spet/, with the UDPET checks."""
import logging

import numpy as np
import pytest

from udpet_fixtures import isolated_cache, low_dose, phantom, write_nifti  # noqa: E402,F401

from petbench import UserError  # noqa: E402
from petbench.datasets.folder import classify_paired_file  # noqa: E402
from petbench.datasets.udpet.preprocess import body_block, crop  # noqa: E402
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
