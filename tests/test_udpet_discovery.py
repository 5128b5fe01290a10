"""Finding UDPET subjects: anchored dose names, any nesting, every layout the challenge used."""

import pytest

from udpet_fixtures import (UEXPLORER_2022_NAMES, isolated_cache, phantom, quadra_subject,  # noqa: F401
                            uexplorer_subject, write_nifti, write_series)

from petbench.datasets.udpet.discovery import FULL_DOSE, classify_dose_name, discover


@pytest.mark.parametrize("name, drf", [
    ("Full_dose", FULL_DOSE), ("full_dose", FULL_DOSE), ("Full dose", FULL_DOSE),
    ("1-4 dose", 4), ("1-10 dose", 10), ("1-100 dose", 100), ("1-20dose", 20), ("1-2 dose", 2),
    ("2.886 x 600 WB NORMAL", FULL_DOSE), ("2.886 x 600 WB normal", FULL_DOSE), ("2.886 x 600 WB Full_dose", FULL_DOSE),
    ("2.886 x 600 WB D4", 4), ("2.886 x 600 WB D10", 10), ("2.886 x 600 WB D100", 100),
    ("2.886 x 600 WB DRF_10", 10), ("2.886 x 600 WB DRF_100", 100), ("2.886 x 600 WB 1-50 dose", 50),
    ("NORMAL", FULL_DOSE), ("D20", 20), ("DRF_50", 50),
])
def test_dose_names_of_both_scanners(name, drf):
    assert classify_dose_name(name) == drf


@pytest.mark.parametrize("name", [
    "1-10 dose (copy)", "x1-10 dose", "1-10 doses", "1-1 dose", "D1", "CT", "2.886 x 600 WB CT", "Full_dose_old",
    "Subject_1-6", "01122021_1_20211201_164050", "Anonymous_ANO_20230505_1758162_120417", "PART1", "1-10", "D 10x",
])
def test_other_names_are_not_dose_levels(name):
    assert classify_dose_name(name) is None


def test_walks_any_depth_and_groups_series_by_patient(tmp_path):
    quadra_subject(tmp_path, drfs=(10, 100))  # Bern-Inselspital-2022/Subject_1-6/<patient>/...
    uexplorer_subject(tmp_path, drfs=(10,), group="deeper/PART3/PART3")
    uexplorer_subject(tmp_path, patient="Anonymous_ANO_20220224_1933412_110551", drfs=(10, 20),
                      names=UEXPLORER_2022_NAMES, group="")  # right under the root
    found = {s.name: s for s in discover(tmp_path).subjects}
    assert set(found) == {"01122021_1_20211201_164050", "Anonymous_ANO_20230201_1523376_095203",
                          "Anonymous_ANO_20220224_1933412_110551"}
    assert sorted(s.drf for s in found["01122021_1_20211201_164050"].sources) == [1, 10, 100]
    assert sorted(s.drf for s in found["Anonymous_ANO_20220224_1933412_110551"].sources) == [1, 10, 20]
    quadra = found["01122021_1_20211201_164050"]
    assert {s.path.name for s in quadra.sources} == {"Full_dose", "1-10 dose", "1-100 dose"}
    assert all(len(s.files) == 12 and s.files[0].endswith(".IMA") for s in quadra.sources)
    assert found["Anonymous_ANO_20230201_1523376_095203"].sources[0].name_scanner == "uexplorer"


def test_a_dicom_folder_with_another_name_is_a_notice(tmp_path):
    write_series(tmp_path / "patient" / "CT 5mm", phantom())
    discovery = discover(tmp_path)
    assert discovery.subjects == []
    [problem] = discovery.problems
    assert problem.notice and "CT 5mm" in problem.path and "not a UDPET dose level" in problem.message


def test_same_patient_name_in_two_places_gets_distinct_ids(tmp_path):
    quadra_subject(tmp_path, patient="p1", drfs=(10,), group="2022")
    quadra_subject(tmp_path, patient="p1", drfs=(10,), group="2023/batch")
    names = sorted(s.name for s in discover(tmp_path).subjects)
    assert names == ["2022__p1", "2023__batch__p1"]


def test_nifti_layouts(tmp_path):
    volume = phantom()
    for drf in (10, 100):
        write_nifti(tmp_path / "test" / f"Anonymous-01_DRF-{drf}.nii.gz", volume)
    write_nifti(tmp_path / "nifti" / "subj1" / "Full_dose.nii.gz", volume)
    write_nifti(tmp_path / "nifti" / "subj1" / "1-10 dose.nii.gz", volume)
    write_nifti(tmp_path / "nifti" / "subj2" / "2.886 x 600 WB NORMAL" / "pet.nii.gz", volume)
    write_nifti(tmp_path / "nifti" / "subj2" / "2.886 x 600 WB D10" / "pet.nii.gz", volume)
    write_nifti(tmp_path / "nifti" / "subj1" / "segmentation.nii.gz", volume)
    discovery = discover(tmp_path)
    found = {s.name: s for s in discovery.subjects}
    assert found["Anonymous-01"].layout == "challenge-test"
    assert sorted(s.drf for s in found["Anonymous-01"].sources) == [10, 100]
    assert sorted(s.drf for s in found["subj1"].sources) == [1, 10]
    assert sorted(s.drf for s in found["subj2"].sources) == [1, 10]
    assert found["subj2"].layout == "nifti"
    assert [p.path.endswith("segmentation.nii.gz") and p.notice for p in discovery.problems] == [True]
