"""The built-in phantom: projector, physics, determinism, dose behaviour, calibration, cache, CLI.

Small volumes (32³, 64³) keep this fast; only the calibration test simulates 128³ head blocks.
"""
import logging
import threading

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy import ndimage
from typer.testing import CliRunner

from petbench import UserError
from petbench.cli import create_app
from petbench.datasets.phantom import Physics, SubjectStore, generate_subjects, simulate_subject
from petbench.datasets.phantom import generate as generate_module
from petbench.datasets.phantom.anatomy import make_anatomy
from petbench.data.cache import default_cache_root
from petbench.datasets.phantom.projector import ParallelBeamProjector
from petbench.datasets.phantom.recon import osem
from petbench.datasets.phantom.labels import SCORED
from petbench.datasets.phantom.simulate import poisson, stream, thin
from petbench.default_plugins.metrics import nmse
from petbench.default_plugins.phantom import Phantom
from petbench.metrics.group import nmse_paper, nmse_paper_refnorm, psnr_paper
from petbench.plugins import get_plugin_manager
from petbench.testing.conformance import check_dataset


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PETBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def count_simulations(monkeypatch) -> list:
    """Record each simulate_subject call the generator makes."""
    calls, real = [], generate_module.simulate_subject

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(generate_module, "simulate_subject", counting)
    return calls


# -- projector and reconstruction -----------------------------------------------------------
def test_projector_is_a_line_integral_and_back_is_its_adjoint():
    projector = ParallelBeamProjector(32, n_subsets=8)
    image = torch.rand(projector.n_pixels, 3)
    sinogram = torch.rand(projector.n_angles * projector.n_bins, 3)
    assert (projector.forward(image) * sinogram).sum().item() == pytest.approx(
        (image * projector.back(sinogram)).sum().item(), rel=1e-5)
    # A uniform disk of radius 10 pixels: the central ray crosses 20 pixels at every angle.
    centre = 15.5
    y, x = torch.meshgrid(torch.arange(32) - centre, torch.arange(32) - centre, indexing="ij")
    disk = ((x ** 2 + y ** 2) <= 10 ** 2).float()[None]
    profile = projector.forward(projector.to_pixels(disk)).reshape(32, 32)
    assert profile.max(dim=1).values.mean() == pytest.approx(20, rel=0.05)
    assert torch.equal(projector.to_volume(projector.to_pixels(disk)), disk)


def test_osem_is_quantitative_without_noise():
    """Noise-free data, attenuation and background modelled: the recon matches the truth."""
    truth = make_anatomy("brain", 64, np.random.default_rng(0))
    projector = ParallelBeamProjector(64)
    activity = projector.to_pixels(truth.activity)
    attenuation = torch.exp(-projector.forward(projector.to_pixels(truth.mu)) * truth.spacing_mm[2] / 10)
    expected = attenuation * projector.forward(activity)
    background = torch.full_like(expected, float(expected.mean()) * 0.3)
    image = osem(projector, expected + background, attenuation, background, iterations=10)
    brain = projector.to_pixels((truth.labels >= truth.regions.index("grey_matter")).float()) > 0
    assert float(image[brain].sum() / activity[brain].sum()) == pytest.approx(1.0, abs=0.05)


# -- anatomy and physics --------------------------------------------------------------------
def test_brain_regions_and_uptake():
    truth = make_anatomy("brain", 64, np.random.default_rng(1))
    mean = {r: float(truth.activity[truth.region_mask(r)].mean()) for r in truth.regions if truth.region_mask(r).any()}
    assert set(mean) >= {"scalp", "skull", "csf", "grey_matter", "white_matter", "putamen", "thalamus",
                         "cerebellum", "brainstem"}
    assert 3 < mean["grey_matter"] / mean["white_matter"] < 5.5  # GM:WM ≈ 4:1
    assert 6 < mean["grey_matter"] < 10  # SUV-like, GM ≈ 8
    assert float(truth.mu[truth.region_mask("skull")].mean()) == pytest.approx(0.15)
    assert truth.spacing_mm == pytest.approx((3.3, 3.3, 3.3))  # the 128³ block's field of view


def test_torso_simulates():
    subject = simulate_subject(0, anatomy="torso", size=32, drfs=(10,))
    truth = subject.anatomy
    assert {"liver", "kidney", "lung", "myocardium", "spine", "bladder"} <= {
        r for r in truth.regions if truth.region_mask(r).any()}
    assert truth.spacing_mm == pytest.approx((24.0, 14.0, 14.0))
    assert np.isfinite(subject.lpet[10]).all() and subject.spet.max() > 0


def test_subject_is_a_function_of_seed_and_index():
    first = simulate_subject(3, seed=5, size=32, drfs=(10, 20))
    again = simulate_subject(3, seed=5, size=32, drfs=(20,))
    atol = 1e-5 * float(first.spet.max())
    np.testing.assert_allclose(again.spet, first.spet, atol=atol)
    np.testing.assert_allclose(again.lpet[20], first.lpet[20], atol=atol)  # whatever other DRFs were asked for
    assert first.spet.dtype == np.float32 and first.spet.shape == (32, 32, 32)
    assert not np.allclose(simulate_subject(4, seed=5, size=32).spet, first.spet, atol=atol)
    assert not np.allclose(simulate_subject(3, seed=6, size=32).spet, first.spet, atol=atol)


def test_thinning_keeps_a_subset_without_bias():
    rng = np.random.default_rng(0)
    counts = poisson(torch.full((4000, 50), 12.0), rng)
    low = thin(counts, 0.1, rng)
    assert (low <= counts).all()  # the low dose's events are among the standard dose's
    assert float(low.mean()) * 10 == pytest.approx(float(counts.mean()), rel=0.01)


@pytest.fixture(scope="module")
def subject_64():
    return simulate_subject(2, size=64, drfs=(2, 4, 10, 100))


def test_noise_rises_with_drf(subject_64):
    errors = [nmse(subject_64.lpet[d], subject_64.spet) for d in (2, 4, 10, 100)]
    assert errors == sorted(errors) and errors[0] > 0


def test_low_dose_mean_equals_standard_dose_mean(subject_64):
    for drf in (4, 10):
        assert subject_64.lpet[drf].mean() == pytest.approx(subject_64.spet.mean(), rel=0.03)


def test_calibration_band_drf10():
    """DRF-10 LPET of 128³ brains against the paper's LPET row (21.3 dB, NMSE 0.080).

    The subjects are the first four test subjects of the default protocol split, the first rows
    behind docs/datasets.md's table (20 subjects: the acceptance band 19.5-23 dB, NMSE 0.05-0.11,
    is checked there). The paper convention varies a lot from volume to volume, so this 4-subject
    check uses a wider band: 19-24 dB and NMSE 0.04-0.13. The band holds for the NMSE in the reference's
    orientation (nmse_paper_refnorm); test.py's own orientation (nmse_paper, Σpred² below) gives
    about 0.15 for the same images, outside any band around 0.080 (docs/datasets.md).
    """
    psnrs, nmses, swapped = [], [], []
    for index in (154, 90, 64, 88):
        subject = simulate_subject(index, drfs=(10,))
        psnrs.append(psnr_paper(subject.lpet[10], subject.spet))
        nmses.append(nmse_paper_refnorm(subject.lpet[10], subject.spet))
        swapped.append(nmse_paper(subject.lpet[10], subject.spet))
    assert 19.0 <= np.mean(psnrs) <= 24.0, psnrs
    assert 0.04 <= np.mean(nmses) <= 0.13, nmses
    assert np.mean(swapped) > 0.13, swapped


# -- the dataset plugin and its cache -------------------------------------------------------
def test_registered_and_loads_subjects(cache_dir):
    assert get_plugin_manager(entrypoints=False).datasets.get("phantom") is Phantom
    phantom = Phantom(size=32, n_subjects=3)
    assert phantom.subject_ids() == ["phantom-0000", "phantom-0001", "phantom-0002"]
    subject = phantom.load("phantom-0001", (10, 20))
    assert subject.units == "SUV" and subject.spacing == pytest.approx((6.6, 6.6, 6.6))
    assert subject.spet.dtype == np.float32 and set(subject.lpet) == {10, 20}
    stored = phantom.store.path("phantom-0001", 10)
    assert stored.is_file() and str(stored).startswith(str(cache_dir))
    image = nib.load(str(stored))
    np.testing.assert_allclose(image.affine, subject.affine)
    assert image.shape == (32, 32, 32)


@pytest.mark.parametrize("anatomy", ["brain", "torso"])
def test_label_maps_are_the_exact_anatomy_and_line_up_with_the_volumes(anatomy):
    phantom = Phantom(size=32, anatomy=anatomy, n_subjects=8)
    index = 2  # brain subject 2 and torso subject 2 both have hot lesions
    subject = phantom.load(f"phantom-{index:04d}", (10,))
    truth = make_anatomy(anatomy, 32, stream(0, index, "anatomy"))
    lesions, tissue = truth.lesions.numpy(), truth.labels.numpy()
    assert subject.labels["lesions"].array.tobytes() == lesions.tobytes()  # the exact anatomy, [z, y, x]
    regions = subject.labels["regions"]
    for name, parts in SCORED[anatomy].items():
        value = next(v for v, n in regions.names.items() if n == name)
        expected = np.isin(tissue, [truth.regions.index(part) for part in parts])
        assert np.array_equal(regions.array == value, expected), name
    background = subject.labels["background"].array > 0
    host = {"brain": "white_matter", "torso": "liver"}[anatomy]
    assert background.any() and (tissue[background] == truth.regions.index(host)).all()
    assert not (background & ndimage.binary_dilation(lesions > 0)).any()

    activity, spet = truth.activity.numpy(), subject.spet
    hot = 0
    for k in subject.labels["lesions"].present():
        inside = lesions == k
        ring = ndimage.binary_dilation(inside, iterations=3) & ~ndimage.binary_dilation(lesions > 0, iterations=1)
        if activity[inside].mean() < 1.5 * activity[ring].mean():
            continue  # a cold or faint lesion: no hot spot to find
        hot += 1
        # the hottest SPET voxel near the lesion lies in it (or on its blurred edge), and it is hot there
        near = ndimage.binary_dilation(inside, iterations=2)
        peak = np.unravel_index(np.argmax(np.where(near, spet, -np.inf)), spet.shape)
        assert ndimage.binary_dilation(inside)[peak], (k, peak)
        assert spet[inside].mean() > 1.2 * spet[ring].mean(), k
    assert hot >= 1


def test_label_maps_are_stored_and_made_again_without_simulating(monkeypatch):
    phantom = Phantom(size=32, anatomy="torso")
    first = phantom.load("phantom-0001", ())
    calls = count_simulations(monkeypatch)
    path = phantom.store.label_path("phantom-0001", "lesions")
    assert path.is_file() and phantom.store.label_path("phantom-0001", "tissue").is_file()
    path.unlink()  # a cache written before label maps existed
    again = phantom.load("phantom-0001", ())
    lesions = again.labels["lesions"]  # label maps are read when first looked at
    assert calls == [] and path.is_file()
    assert lesions.array.tobytes() == first.labels["lesions"].array.tobytes()


def test_passes_the_dataset_conformance_checks():
    check_dataset("phantom", options={"n_subjects": 3})


def test_cache_is_reused_and_bad_files_are_regenerated(monkeypatch, caplog):
    phantom = Phantom(size=32)
    calls = count_simulations(monkeypatch)
    original = phantom.load("phantom-0000", (10,))
    assert phantom.load("phantom-0000", (10,)).spet.tobytes() == original.spet.tobytes()
    assert len(calls) == 1

    spet_path, lpet_path = phantom.store.path("phantom-0000"), phantom.store.path("phantom-0000", 10)
    (spet_path.parent / ".tmp-leftover.nii.gz").write_bytes(b"half a file")  # a crashed writer's leftover
    spet_path.write_bytes(spet_path.read_bytes()[:5000])  # truncated
    altered = nib.load(str(lpet_path))  # valid NIfTI, wrong voxels (its stored checksum no longer fits)
    nib.save(nib.Nifti1Image(np.asarray(altered.dataobj) * 1.01, altered.affine, altered.header), str(lpet_path))
    with caplog.at_level(logging.WARNING):
        again = phantom.load("phantom-0000", (10,))
    assert len(calls) == 2 and caplog.text.count("corrupt") == 2
    np.testing.assert_allclose(again.spet, original.spet, atol=1e-5 * original.spet.max())
    np.testing.assert_allclose(again.lpet[10], original.lpet[10], atol=1e-5 * original.spet.max())

    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), str(spet_path))  # wrong shape
    assert phantom.load("phantom-0000", ()).spet.shape == (32, 32, 32) and len(calls) == 3


def test_concurrent_loads_simulate_once(monkeypatch):
    phantom = Phantom(size=32)
    calls = count_simulations(monkeypatch)
    results = [None, None]

    def load(slot):
        results[slot] = Phantom(size=32).load("phantom-0004", (4,))

    threads = [threading.Thread(target=load, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [4]
    assert results[0].lpet[4].tobytes() == results[1].lpet[4].tobytes()
    assert phantom.load("phantom-0004", (4,)).spet.tobytes() == results[0].spet.tobytes()


def test_prepare_generates_missing_subjects(monkeypatch):
    phantom = Phantom(size=32, n_subjects=4)
    calls = count_simulations(monkeypatch)
    phantom.prepare(["phantom-0000", "phantom-0002"], (10,))
    phantom.prepare(["phantom-0000", "phantom-0002"], (10,))
    assert calls == [0, 2]
    assert phantom.store.has("phantom-0002", 10) and not phantom.store.has("phantom-0001")


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("PETBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_root() == tmp_path / "xdg" / "petbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_root() == tmp_path / "home" / ".cache" / "petbench"
    # Different settings never share a cache folder.
    assert Phantom(size=32).store.root != Phantom(size=32, counts=2e5).store.root != Phantom(size=32, seed=1).store.root


@pytest.mark.parametrize("options,fragment", [
    ({"anatomy": "knee"}, "anatomy"), ({"size": 20}, "size"), ({"n_subjects": 0}, "n_subjects"),
    ({"counts": -1}, "counts"), ({"counts": "lots"}, "counts"),
])
def test_bad_options_are_user_errors(options, fragment):
    with pytest.raises(UserError, match=fragment):
        Phantom(**options)


def test_bad_requests_are_user_errors():
    phantom = Phantom(size=32, n_subjects=2)
    with pytest.raises(UserError, match="DRF 7"):
        phantom.load("phantom-0000", (7,))
    with pytest.raises(UserError, match="n_subjects"):
        phantom.load("phantom-0002")
    with pytest.raises(UserError, match="not a phantom subject"):
        phantom.load("subject-1")


def test_unwritable_cache_is_a_user_error(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PETBENCH_CACHE", str(blocker))
    with pytest.raises(UserError, match="PETBENCH_CACHE"):
        Phantom(size=32).load("phantom-0000")


# -- the command ----------------------------------------------------------------------------
def test_data_generate_command(host, tmp_path):
    app, runner, out = create_app(host), CliRunner(), tmp_path / "out"
    args = ["data", "generate", "phantom", "--subjects", "2", "--drf", "10,20", "--size", "32", "--seed", "3",
            "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for subject in ("phantom-0000", "phantom-0001"):
        for name in ("spet.nii.gz", "lpet_drf10.nii.gz", "lpet_drf20.nii.gz"):
            image = nib.load(str(out / subject / name))
            assert image.shape == (32, 32, 32) and image.header.get_zooms() == pytest.approx((6.6, 6.6, 6.6))
    expected = simulate_subject(1, seed=3, size=32, drfs=(20,)).lpet[20]
    written = np.asarray(nib.load(str(out / "phantom-0001" / "lpet_drf20.nii.gz")).dataobj).transpose(2, 1, 0)
    np.testing.assert_allclose(written, expected, atol=2e-5 * expected.max())  # stored as int16 + scale factor
    assert runner.invoke(app, args).exit_code == 0  # a second run keeps the valid files

    for bad, fragment in ((["--drf", "7"], "DRF 7"), (["--drf", "ten"], "--drf"), (["--anatomy", "knee"], "anatomy")):
        result = runner.invoke(app, args + bad)
        assert result.exit_code == 2 and fragment in result.output, result.output
    result = runner.invoke(app, ["data", "generate", "udpet", "--out", str(out)])
    assert result.exit_code == 2 and "only the built-in 'phantom'" in result.output


def test_generate_without_progress_bar(tmp_path):
    store = SubjectStore(tmp_path / "plain")
    config = Phantom(size=32).config
    assert generate_subjects(config, store, [0], (2,), progress=False) == 1
    assert generate_subjects(config, store, [0], (2,), progress=False) == 0
    assert Physics().iterations == 4 and Physics().subsets == 8
