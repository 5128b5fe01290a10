"""Reading PET DICOM series: values, slice order, orientation, SUV, and every kind of broken file."""
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest

from udpet_fixtures import HALF_LIFE, SCAN_SECONDS, isolated_cache, phantom, suv_factor, write_series  # noqa: E402,F401

from petbench.datasets.udpet.dicom_series import read_series_info, read_series_volume  # noqa: E402
from petbench.datasets.scanned.problems import SourceProblem  # noqa: E402


def files_of(folder):
    return sorted(p.name for p in folder.iterdir())


def read(folder):
    info = read_series_info(folder, files_of(folder))
    return info, read_series_volume(folder, info)


def test_quadra_values_with_per_slice_slopes_in_position_order(tmp_path):
    folder = tmp_path / "Full_dose"
    stored = write_series(folder, phantom(), intercept=-3.0)
    slopes = {float(pydicom.dcmread(folder / name, stop_before_pixels=True).RescaleSlope) for name in files_of(folder)}
    assert len(slopes) == len(files_of(folder))  # a different slope on every slice
    info, volume = read(folder)
    assert list(info.files) != files_of(folder)  # name order is not slice order
    assert info.shape == (12, 10, 9)
    np.testing.assert_allclose(volume, stored, rtol=1e-6, atol=1e-3)
    assert np.abs(volume - phantom()).max() < 1e-3 * phantom().max()  # int16 quantisation only
    assert info.scanner == "quadra" and info.model == "Biograph128_Vision Quadra Edge"
    assert info.units == "BQML" and info.tracer == "Fluorodeoxyglucose"


def test_affine_maps_voxels_to_the_dicom_positions(tmp_path):
    folder = tmp_path / "Full_dose"
    write_series(folder, phantom())
    info, _ = read(folder)
    affine = info.affine_array
    # slice k at LPS (-100, -80, -500 + 1.65 k) -> RAS (100, 80, -500 + 1.65 k); x runs to patient left
    np.testing.assert_allclose(affine @ [0, 0, 5, 1], [100, 80, -500 + 5 * 1.65, 1], atol=1e-4)
    np.testing.assert_allclose(affine @ [2, 3, 0, 1], [100 - 2 * 1.65, 80 - 3 * 1.65, -500, 1], atol=1e-4)
    assert nib.aff2axcodes(affine) == ("L", "P", "S")


def test_slices_going_down_are_ordered_along_the_normal(tmp_path):
    folder = tmp_path / "Full_dose"
    stored = write_series(folder, phantom(), z_direction=-1)  # array slice k lies *below* slice k-1
    info, volume = read(folder)
    np.testing.assert_allclose(volume, stored[::-1], rtol=1e-6)
    np.testing.assert_allclose(info.affine_array @ [0, 0, 0, 1], [100, 80, -500 - 11 * 1.65, 1], atol=1e-4)


def test_uexplorer_geometry(tmp_path):
    folder = tmp_path / "2.886 x 600 WB NORMAL"
    stored = write_series(folder, phantom(), scanner="uexplorer", extension=".dcm")
    info, volume = read(folder)
    np.testing.assert_allclose(volume, stored, rtol=1e-6)
    zooms = np.sqrt((info.affine_array[:3, :3] ** 2).sum(axis=0))
    np.testing.assert_allclose(zooms, [1.666667, 1.666667, 2.886], atol=1e-4)
    assert info.scanner == "uexplorer" and info.model == "uEXPLORER"
    assert all(name.endswith(".dcm") and len(name) == 12 for name in info.files)


@pytest.mark.parametrize("scanner", ["quadra", "uexplorer"])
def test_suv_factor_uses_the_dose_decayed_to_each_series_start(tmp_path, scanner):
    full = read_series_info(tmp_path / "full", files_of(write_dir(tmp_path / "full", scanner, 1)))
    low = read_series_info(tmp_path / "low", files_of(write_dir(tmp_path / "low", scanner, 10)))
    expected_full = suv_factor(64.0, 1.9e8, HALF_LIFE[scanner], 3700.0)
    expected_low = suv_factor(64.0, 1.9e8, HALF_LIFE[scanner], 3700.0 + SCAN_SECONDS[scanner] * 0.45)
    assert full.suv_factor == pytest.approx(expected_full, rel=1e-6)
    assert low.suv_factor == pytest.approx(expected_low, rel=1e-6)
    assert low.suv_factor > full.suv_factor  # a later start: less activity left
    suv = phantom() * full.suv_factor
    assert 0.5 < np.median(suv) < 5  # a plausible body SUV


def write_dir(folder, scanner, drf):
    write_series(folder, phantom(), scanner=scanner, extension=".dcm" if scanner == "uexplorer" else ".IMA",
                 drf=drf, weight_kg=64.0, injected_bq=1.9e8, uptake_s=3700.0)
    return folder


def test_missing_radiopharmaceutical_data_means_no_suv(tmp_path):
    folder = tmp_path / "Full_dose"
    write_series(folder, phantom())
    for name in files_of(folder):
        ds = pydicom.dcmread(folder / name)
        del ds.PatientWeight
        ds.save_as(folder / name)
    info = read_series_info(folder, files_of(folder))
    assert info.suv_factor is None and "patient weight" in info.suv_missing


def broken(tmp_path, damage):
    folder = tmp_path / "1-10 dose"
    write_series(folder, phantom())
    victim = folder / read_series_info(folder, files_of(folder)).files[4]  # a slice in the middle
    damage(folder, victim)
    with pytest.raises(SourceProblem) as caught:
        read(folder)
    return caught.value, victim


def test_truncated_pixel_data(tmp_path):
    problem, victim = broken(tmp_path, lambda folder, path: path.write_bytes(path.read_bytes()[:-40]))
    assert problem.path == str(victim) and "truncated" in problem.message


def test_file_cut_inside_its_header(tmp_path):
    problem, victim = broken(tmp_path, lambda folder, path: path.write_bytes(path.read_bytes()[:400]))
    assert problem.path == str(victim)


def test_not_a_dicom_file(tmp_path):
    problem, victim = broken(tmp_path, lambda folder, path: path.write_bytes(b"this is not DICOM" * 20))
    assert problem.path == str(victim) and "unreadable DICOM file" in problem.message


def test_missing_slice(tmp_path):
    problem, _ = broken(tmp_path, lambda folder, path: path.unlink())
    assert problem.path.endswith("1-10 dose") and "not evenly spaced" in problem.message


def test_two_series_in_one_folder(tmp_path):
    other = tmp_path / "other"
    write_series(other, phantom(seed=4))

    def add_foreign_file(folder, path):
        shutil.copy(other / files_of(other)[0], folder / "foreign.IMA")

    problem, _ = broken(tmp_path, add_foreign_file)
    assert "mixes series" in problem.message


def test_nan_rescale_slope(tmp_path):
    def nan_slope(folder, path):
        ds = pydicom.dcmread(path)
        ds.RescaleSlope = "NaN"
        ds.save_as(path)

    with pytest.warns(UserWarning):
        problem, victim = broken(tmp_path, nan_slope)
    assert problem.path == str(victim) and "RescaleSlope" in problem.message


def test_not_pet(tmp_path):
    folder = tmp_path / "Full_dose"
    write_series(folder, phantom(), modality="CT")
    with pytest.raises(SourceProblem, match="not PT"):
        read(folder)


def test_pixel_data_damaged_after_the_header_check(tmp_path):
    folder = tmp_path / "Full_dose"
    write_series(folder, phantom())
    info = read_series_info(folder, files_of(folder))
    victim = folder / info.files[3]
    victim.write_bytes(victim.read_bytes()[:-40])
    with pytest.raises(SourceProblem) as caught:
        read_series_volume(folder, info)
    assert caught.value.path == str(victim)
