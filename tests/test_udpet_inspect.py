"""``petbench data inspect``: subjects, scanner, DRFs, shapes, spacing, units and every problem."""

import pytest
import typer
from typer.testing import CliRunner

from udpet_fixtures import isolated_cache, quadra_subject, uexplorer_subject  # noqa: E402,F401

import petbench.default_plugins.folder as folder_plugin  # noqa: E402
import petbench.default_plugins.udpet as udpet_plugin  # noqa: E402
from petbench import UserError  # noqa: E402
from petbench.cli.data_inspect import data_app  # noqa: E402
from petbench.plugins import get_plugin_manager, set_host  # noqa: E402


@pytest.fixture
def inspect():
    host = get_plugin_manager(entrypoints=False, builtins=False)
    host.add(udpet_plugin, name="udpet")
    host.add(folder_plugin, name="folder")
    set_host(host)
    app = typer.Typer()
    app.add_typer(data_app, name="data")

    def run(*args):
        return CliRunner().invoke(app, ["data", "inspect", *map(str, args)], env={"COLUMNS": "250"})

    yield run
    set_host(None)


def test_prints_what_was_found_and_every_problem(tmp_path, inspect):
    quadra_subject(tmp_path, "p1", drfs=(4, 20))
    uexplorer_subject(tmp_path, "u1", drfs=(10,))
    victim = sorted((tmp_path / "Bern-Inselspital-2022/Subject_1-6/p1/1-20 dose").iterdir())[0]
    victim.write_bytes(b"junk" * 50)
    result = inspect("udpet", "--data-root", tmp_path, "-D", "scanner=all")
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"udpet data root: {tmp_path}" in out
    assert "fixed 128^3 block" in out
    for text in ("p1", "u1", "quadra", "uexplorer", "12 x 10 x 9", "1.65 x 1.65 x 1.65", "2.886 x 1.667 x 1.667",
                 "Bq/mL", "usable"):
        assert text in out, text
    assert "2 usable subjects (1 quadra, 1 uexplorer) of 2 found" in out
    assert f"problem {victim}: unreadable DICOM file" in out
    assert "p1: missing dose level(s): DRF 10, DRF 50, DRF 100" in out  # DRF 20 is there, but broken


def test_without_a_root_the_error_explains_the_data_agreement(inspect):
    result = inspect("udpet")
    assert isinstance(result.exception, UserError)
    assert "data transfer agreement" in str(result.exception)


def test_folder_dataset_too(tmp_path, inspect):
    import numpy as np

    from petbench.data.nifti import save_volume

    volume = np.arange(120, dtype=np.float32).reshape(4, 5, 6)  # a constant volume would be refused as degenerate
    save_volume(tmp_path / "unpaired_spet" / "s1.nii.gz", volume, np.eye(4))
    result = inspect("folder", "--data-root", tmp_path)
    assert result.exit_code == 0, result.output
    assert "s1" in result.output and "1 usable subjects" in result.output
