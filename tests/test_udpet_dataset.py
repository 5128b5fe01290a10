"""The ``udpet`` dataset end to end on small trees in the real layouts, and every bad-data case."""
import csv
import logging

import numpy as np
import pydicom
import pytest

from udpet_fixtures import isolated_cache  # noqa: E402,F401 (autouse fixture)
from udpet_fixtures import (HALF_LIFE, QUADRA_NAMES, SCAN_SECONDS, UEXPLORER_2022_NAMES, low_dose,  # noqa: E402
                            phantom, quadra_subject, suv_factor, uexplorer_subject, write_nifti, write_series)

from petbench import UserError  # noqa: E402
from petbench.datasets.udpet import dicom_series  # noqa: E402
from petbench.datasets.udpet.nifti_layouts import TEST_CSV_COLUMNS  # noqa: E402
from petbench.data.nifti import save_volume  # noqa: E402
from petbench.datasets.scanned.preprocess import body_block, crop, crop_affine, paper_block  # noqa: E402
from petbench.default_plugins.udpet import UdpetDataset  # noqa: E402
from petbench.plugins import DEFAULT_PLUGINS, get_plugin_manager  # noqa: E402

QUADRA = "01122021_1_20211201_164050"
UEXPLORER = "Anonymous_ANO_20230201_1523376_095203"
UEXPLORER_2022 = "Anonymous_ANO_20220224_1933412_110551"


def dataset(root, **options):
    return UdpetDataset(data_root=str(root), **options)


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "petbench.datasets" and r.levelno >= logging.WARNING]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """One subject per scanner and naming style."""
    root = tmp_path_factory.mktemp("udpet")
    return root, {QUADRA: quadra_subject(root), UEXPLORER: uexplorer_subject(root, seed=1),
                  UEXPLORER_2022: uexplorer_subject(root, UEXPLORER_2022, names=UEXPLORER_2022_NAMES, seed=2,
                                                    group="Shanghai-Ruijin-Hospital-2022")}


# -- where the data is --------------------------------------------------------------------------------
def test_without_a_data_root_one_line_says_how_to_get_the_data():
    with pytest.raises(UserError) as caught:
        UdpetDataset()
    message = str(caught.value)
    assert "\n" not in message
    assert "data transfer agreement" in message and "organisers" in message
    assert "--data-root" in message and "--dataset phantom" in message


def test_the_environment_variable_is_a_data_root(mixed, monkeypatch):
    monkeypatch.setenv("PETBENCH_UDPET_ROOT", str(mixed[0]))
    assert UdpetDataset().subject_ids() == [QUADRA]


def test_a_root_that_does_not_exist(tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path / 'nowhere'}.*does not exist"):
        dataset(tmp_path / "nowhere")


def test_an_empty_root(tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path}.*is empty"):
        dataset(tmp_path).subject_ids()


def test_a_root_that_is_not_udpet(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match=f"{tmp_path} does not look like UDPET data"):
        dataset(tmp_path).subject_ids()


@pytest.mark.parametrize("option", [{"crop": "middle"}, {"scanner": "vision"}, {"units": "kbq"}, {"size": 0}])
def test_bad_options(mixed, option):
    with pytest.raises(UserError, match=list(option)[0]):
        dataset(mixed[0], **option)


# -- reading both scanners ------------------------------------------------------------------------------
def test_both_scanners_and_every_name_variant(mixed):
    root, stored = mixed
    data = dataset(root, scanner="all", crop="none")
    assert data.subject_ids() == sorted(stored)
    for subject_id, volumes in stored.items():
        assert data.available_drfs(subject_id) == (4, 10, 20, 50, 100)
        subject = data.load(subject_id, (4, 100))
        assert subject.units == "Bq/mL"
        np.testing.assert_allclose(subject.spet, volumes[1], rtol=1e-6)
        np.testing.assert_allclose(subject.lpet[4], volumes[4], rtol=1e-6)
        np.testing.assert_allclose(subject.lpet[100], volumes[100], rtol=1e-6)
        assert set(subject.lpet) == {4, 100}
    assert data.load(QUADRA).meta["scanner"] == "quadra"
    assert data.load(UEXPLORER_2022).meta["scanner"] == "uexplorer"
    assert data.load(UEXPLORER).spacing == pytest.approx((2.886, 1.666667, 1.666667), abs=1e-4)


def test_the_paper_default_reads_quadra_only(mixed, caplog):
    root, _ = mixed
    caplog.set_level(logging.INFO)
    data = dataset(root)
    assert data.subject_ids() == [QUADRA]
    assert any("2 uexplorer" in message and "scanner=quadra" in message for message in warnings_of(caplog))
    assert dataset(root, scanner="uexplorer").subject_ids() == [UEXPLORER_2022, UEXPLORER]


def test_fixed_crop_is_the_default(mixed):
    root, stored = mixed
    data = dataset(root, size=8)
    subject = data.load(QUADRA, (10,))
    block = paper_block(stored[QUADRA][1].shape, 8)
    assert subject.spet.shape == (8, 8, 8)
    np.testing.assert_allclose(subject.spet, crop(stored[QUADRA][1], block), rtol=1e-6)
    np.testing.assert_allclose(subject.lpet[10], crop(stored[QUADRA][10], block), rtol=1e-6)
    uncropped = dataset(root, crop="none").load(QUADRA)
    np.testing.assert_allclose(subject.affine, crop_affine(uncropped.affine, block))
    assert subject.meta["crop"] == {"mode": "fixed", **block.to_json()}


def test_body_crop(mixed):
    root, stored = mixed
    subject = dataset(root, crop="body", size=6).load(QUADRA, (20,))
    block = body_block(stored[QUADRA][1], 6)
    np.testing.assert_allclose(subject.spet, crop(stored[QUADRA][1], block), rtol=1e-6)
    np.testing.assert_allclose(subject.lpet[20], crop(stored[QUADRA][20], block), rtol=1e-6)


def test_suv_units_use_each_series_own_factor(mixed):
    root, stored = mixed
    data = dataset(root, crop="none", units="suv")
    assert data.units == "SUV"
    subject = data.load(QUADRA, (10,))
    full_factor = suv_factor(70.0, 2.2e8, HALF_LIFE["quadra"], 3600.0)
    low_factor = suv_factor(70.0, 2.2e8, HALF_LIFE["quadra"], 3600.0 + SCAN_SECONDS["quadra"] * 0.45)
    assert subject.units == "SUV"
    np.testing.assert_allclose(subject.spet, stored[QUADRA][1] * full_factor, rtol=1e-5)
    np.testing.assert_allclose(subject.lpet[10], stored[QUADRA][10] * low_factor, rtol=1e-5)


def test_low_doses_are_not_rescaled(mixed):
    root, _ = mixed
    subject = dataset(root, crop="none").load(QUADRA, (100,))
    body = subject.spet > 100
    assert subject.lpet[100][body].mean() == pytest.approx(subject.spet[body].mean(), rel=0.05)


# -- bad data ------------------------------------------------------------------------------------------
def test_other_tracers_are_skipped_with_a_notice(tmp_path, caplog):
    quadra_subject(tmp_path, "good", drfs=(10,))
    quadra_subject(tmp_path, "dota", drfs=(10,), tracer="68Ga-DOTATATE", seed=3)
    uexplorer_subject(tmp_path, "Anonymous_ANO_20220224_1711567_102845", drfs=(10,), seed=4)  # listed by organisers
    data = dataset(tmp_path, scanner="all")
    assert data.subject_ids() == ["good"]
    messages = warnings_of(caplog)
    assert any("dota" in m and "68Ga-DOTATATE" in m and "not FDG" in m for m in messages)
    assert any("1711567_102845" in m and "DOTA" in m for m in messages)


def test_a_missing_dose_folder(tmp_path):
    quadra_subject(tmp_path, "p1", drfs=(4, 20, 50, 100))
    data = dataset(tmp_path)
    assert data.subject_ids() == ["p1"]
    assert data.available_drfs("p1") == (4, 20, 50, 100)
    [problem] = [p for p in data.index.problems if not p.notice]
    assert problem.path.endswith("p1") and "missing dose level(s): DRF 10" in problem.message
    with pytest.raises(UserError, match=r"'p1' \(.*p1\) has no usable DRF 10 \(DRFs it has: 4, 20, 50, 100\)"):
        data.load("p1", (10,))


def test_shapes_that_differ_between_doses(tmp_path):
    quadra_subject(tmp_path, "p1", drfs=(4,))
    bad = tmp_path / "Bern-Inselspital-2022/Subject_1-6/p1" / QUADRA_NAMES[10]
    write_series(bad, phantom(shape=(12, 10, 8)), drf=10)
    data = dataset(tmp_path)
    assert data.available_drfs("p1") == (4,)
    messages = [p.line() for p in data.index.problems]
    assert any(m.startswith(str(bad)) and "shape (z, y, x) (12, 10, 8) differs" in m for m in messages)


def test_a_subject_with_a_broken_full_dose_is_skipped_and_others_stay(tmp_path, caplog):
    quadra_subject(tmp_path, "good", drfs=(10,))
    quadra_subject(tmp_path, "cut", drfs=(10,), seed=2)
    folder = tmp_path / "Bern-Inselspital-2022/Subject_1-6/cut/Full_dose"
    victim = sorted(folder.iterdir())[3]
    victim.write_bytes(victim.read_bytes()[:-30])
    data = dataset(tmp_path)
    assert data.subject_ids() == ["good"]
    assert any(str(victim) in m and "truncated" in m for m in warnings_of(caplog))
    assert data.inspect().rows[0]["status"] == "skipped"


def test_an_unreadable_file_drops_only_that_dose(tmp_path):
    quadra_subject(tmp_path, "p1", drfs=(10, 20))
    victim = sorted((tmp_path / "Bern-Inselspital-2022/Subject_1-6/p1/1-20 dose").iterdir())[0]
    victim.write_bytes(b"garbage" * 100)
    data = dataset(tmp_path)
    assert data.available_drfs("p1") == (10,)
    assert any(p.path == str(victim) and "unreadable DICOM" in p.message for p in data.index.problems)


def test_two_series_for_one_dose(tmp_path):
    uexplorer_subject(tmp_path, "u1", drfs=(10,))
    write_series(tmp_path / "Shanghai-Ruijin-Hospital-2023/PART1/u1/2.886 x 600 WB DRF_10",
                 low_dose(phantom(), 10), scanner="uexplorer", extension=".dcm", drf=10)
    data = dataset(tmp_path, scanner="uexplorer")
    assert data.available_drfs("u1") == ()
    assert any("2 sources for the DRF 10" in p.message for p in data.index.problems)


def test_nans_in_a_nifti_subject(tmp_path, caplog):
    volume = phantom()
    write_nifti(tmp_path / "ok" / "Full_dose.nii.gz", volume)
    write_nifti(tmp_path / "ok" / "1-10 dose.nii.gz", low_dose(volume, 10))
    volume_with_nan = volume.copy()
    volume_with_nan[3, 4, 5] = np.nan
    write_nifti(tmp_path / "bad" / "Full_dose.nii.gz", volume_with_nan)
    data = dataset(tmp_path, crop="none")  # 1.65 mm isotropic: read as Quadra
    assert data.subject_ids() == ["ok"]
    assert any(str(tmp_path / "bad" / "Full_dose.nii.gz") in m and "NaN" in m for m in warnings_of(caplog))
    np.testing.assert_allclose(data.load("ok", (10,)).spet, volume, rtol=1e-6)


def test_no_usable_subject_is_one_clear_error(tmp_path):
    quadra_subject(tmp_path, "p1", drfs=())
    victim = sorted((tmp_path / "Bern-Inselspital-2022/Subject_1-6/p1/Full_dose").iterdir())[5]
    victim.write_bytes(victim.read_bytes()[:-30])
    with pytest.raises(UserError, match=f"no usable subject under {tmp_path} .*{victim}: truncated"):
        dataset(tmp_path).subject_ids()


def test_unknown_subject(mixed):
    with pytest.raises(UserError, match="no subject 'nobody'"):
        dataset(mixed[0]).load("nobody")


def test_prepare_reports_files_damaged_after_the_scan(tmp_path):
    quadra_subject(tmp_path, "p1", drfs=(10,))
    data = dataset(tmp_path)
    data.subject_ids()
    victim = sorted((tmp_path / "Bern-Inselspital-2022/Subject_1-6/p1/1-10 dose").iterdir())[2]
    victim.write_bytes(victim.read_bytes()[:-30])
    with pytest.raises(UserError, match=f"1 of 1 subjects could not be converted.*{victim}"):
        data.prepare(["p1"], (10,))


# -- the challenge's NIfTI test set ----------------------------------------------------------------------
def test_challenge_test_set_with_its_csv(tmp_path, mixed):
    test_dir = tmp_path / "test"
    volume = phantom()
    rows = []
    for drf, seconds in ((10, 3399), (100, 3408)):
        name = f"Anonymous-01_DRF-{drf}.nii.gz"
        write_nifti(test_dir / name, low_dose(volume, drf), spacing=(2.886, 1.666667, 1.666667))
        rows.append(["Anonymous-01", drf, name, 55, "BQML", 1.666667, 1.666667, 2.886 if drf == 10 else 3.0, "UIH",
                     "uEXPLORER", "3D iterative TOF PSF", "Fluorodeoxyglucose", seconds, 203500000, 6588, "START"])
    with open(test_dir / "PET_info_noNORMAL.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(TEST_CSV_COLUMNS)
        writer.writerows(rows)
    quadra_subject(tmp_path / "train", drfs=(10,))
    data = dataset(tmp_path, scanner="all", crop="none", units="suv")
    assert data.subject_ids() == [QUADRA]  # the test set has no reference: never a training or test subject
    assert data.available_drfs("Anonymous-01") == (10, 100)
    subject = data.load("Anonymous-01", (10,))
    assert subject.spet is None
    kul_factor = 1000 * 55 / (0.5 ** (3399 / 6588) * 203500000)  # the KUL team's formula from the CSV
    np.testing.assert_allclose(subject.lpet[10], low_dose(volume, 10) * kul_factor, rtol=1e-5)
    row = next(r for r in data.inspect().rows if r["id"] == "Anonymous-01")
    assert (row["status"], row["scanner"], row["full"]) == ("low dose only", "uexplorer", "no")
    notes = [p.line() for p in data.index.problems if p.notice]
    assert any("DRF-100" in n and "differs from the metadata CSV" in n for n in notes)  # header wins


# -- the cache ---------------------------------------------------------------------------------------------
def test_dicom_is_read_once(tmp_path, monkeypatch):
    quadra_subject(tmp_path, "p1", drfs=(10,))
    first = dataset(tmp_path, size=8).load("p1", (10,))

    def refuse(*args, **kwargs):
        raise AssertionError("DICOM read again")

    monkeypatch.setattr(dicom_series, "read_series_info", refuse)
    monkeypatch.setattr(dicom_series, "read_series_volume", refuse)
    monkeypatch.setattr(pydicom, "dcmread", refuse)
    again = dataset(tmp_path, size=8, scanner="all").load("p1", (10,))
    np.testing.assert_array_equal(again.spet, first.spet)
    np.testing.assert_array_equal(again.lpet[10], first.lpet[10])


def test_corrupt_cache_files_are_rebuilt(tmp_path, isolated_cache, caplog):
    quadra_subject(tmp_path, "p1", drfs=(10,))
    first = dataset(tmp_path, size=8).load("p1", (10,))
    volumes = sorted((isolated_cache / "udpet" / "volumes").rglob("*.nii.gz"))
    headers = sorted((isolated_cache / "udpet" / "headers").rglob("*.json"))
    assert len(volumes) == 2 and len(headers) == 2
    volumes[0].write_bytes(volumes[0].read_bytes()[:100])
    headers[0].write_text("{not json")
    again = dataset(tmp_path, size=8).load("p1", (10,))
    np.testing.assert_array_equal(again.spet, first.spet)
    np.testing.assert_array_equal(again.lpet[10], first.lpet[10])
    corrupt = [m for m in warnings_of(caplog) if "conversion cache entry" in m and "is damaged" in m]
    assert len(corrupt) == 2


def test_fingerprint_follows_the_data(tmp_path):
    quadra_subject(tmp_path, "p1", drfs=(10,))
    before = dataset(tmp_path).fingerprint()
    assert before["name"] == "udpet" and before["options"]["data_root"] == str(tmp_path.resolve())
    quadra_subject(tmp_path, "p2", drfs=(10,), seed=5)
    assert dataset(tmp_path).fingerprint()["content"] != before["content"]


def test_registered_as_a_default_plugin():
    import petbench.default_plugins.udpet as plugin

    assert "petbench.default_plugins.udpet" in DEFAULT_PLUGINS
    host = get_plugin_manager(entrypoints=False, builtins=False)
    host.add(plugin, name="udpet")
    assert host.datasets.get("udpet") is UdpetDataset
    assert UdpetDataset.defaults["data_root"] == ""


def test_passes_the_dataset_conformance_suite(tmp_path):
    from petbench.testing.conformance import check_dataset

    quadra_subject(tmp_path, "p1", drfs=(10, 100))
    quadra_subject(tmp_path, "p2", drfs=(10, 100), seed=3)
    check_dataset(UdpetDataset, options={"data_root": str(tmp_path), "size": 8})


def test_label_maps_of_a_dicom_subject_are_read_from_labels_folder(tmp_path):
    stored = quadra_subject(tmp_path, drfs=(10,))
    whole = dataset(tmp_path, crop="none").load(QUADRA, ())
    regions = (np.indices(whole.spet.shape)[2] >= 4).astype(np.float32) + 1
    save_volume(tmp_path / "labels" / QUADRA / "regions.nii.gz", regions, whole.affine)
    (tmp_path / "labels" / QUADRA / "regions.json").write_text('{"1": "left", "2": "right"}')
    data = dataset(tmp_path, crop="body", size=6)
    assert data.subject_ids() == [QUADRA]
    assert not any("labels" in p.line() for p in data.inspect().problems)  # not mistaken for scans
    subject = data.load(QUADRA, (10,))
    block = body_block(stored[1], 6)
    np.testing.assert_array_equal(subject.labels["regions"].array, crop(regions, block).astype(int))
    assert subject.labels["regions"].names == {1: "left", 2: "right"}
