"""The snags a plugin author hit (issue 25): inspect for any dataset, the Table I error for protocols that
differ (and a fix that works), a fingerprint per component, conformance checks on data made at test time,
and help/template text."""
import importlib
import json
import sys
import textwrap
import types

import numpy as np
import pytest
from typer.testing import CliRunner

from petbench import Dataset, Subject, hookimpl
from petbench.cli import create_app
from petbench.data.nifti import affine_from_spacing, load_volume, save_volume
from petbench.results.identity import source_fingerprint
from petbench.testing import conformance_tests
from petbench.testing.toys import TOY_PLUGIN, isolated_host


def invoke(host, *args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(create_app(host), [str(a) for a in args])


# -- inspect -----------------------------------------------------------------------------------------------
class HalfBroken(Dataset):
    name = "half-broken"
    description = "Two good subjects and one whose load() raises (for tests)."
    drfs = (4,)
    units = "kBq/mL"

    def subject_ids(self):
        return ["good1", "good2", "bad"]

    def load(self, subject_id, drfs=()):
        if subject_id == "bad":
            raise FileNotFoundError("/data/bad/spet.nii.gz")
        volume = np.full((3, 5, 6), 2.0, np.float32)
        volume[1, 2, 3] = 9.0
        return Subject(subject_id, volume, {d: volume / d for d in drfs}, affine_from_spacing((2.0, 1.0, 1.0)),
                       units=self.units)


def registering(*datasets):
    return types.SimpleNamespace(__name__="snag-plugin", register_datasets=hookimpl(specname="register_datasets")(
        lambda register: [register(d) for d in datasets]))


def test_inspect_works_for_a_dataset_without_an_inspect_method():
    result = invoke(isolated_host(registering(HalfBroken)), "data", "inspect", "half-broken")
    assert result.exit_code == 0, result.output
    assert "good1" in result.output and "3 x 5 x 6" in result.output and "2 x 1 x 1" in result.output
    assert "2 usable subjects" in result.output and "1 problems" in result.output
    assert "subject bad: load() raised FileNotFoundError" in result.output and "Traceback" not in result.output


# -- Table I over protocols that differ ------------------------------------------------------------------------
LPET = ["run", "--method", "lpet", "--dataset", "tiny", "--n-train", "2", "--n-test", "2", "--n-unpaired", "0",
        "--drf", "4", "--metrics", "psnr", "-q"]


def test_table_error_names_the_differing_field_and_its_fix_works(tmp_path):
    host = isolated_host(TOY_PLUGIN)
    assert invoke(host, *LPET, "--results", tmp_path).exit_code == 0
    validated = [a if a != "lpet" else "tiny-cnn" for a in LPET] + ["-o", "epochs=1", "-o", "steps_per_epoch=2"]
    assert invoke(host, *validated, "--n-val", "1", "--results", tmp_path).exit_code == 0  # lpet has no epochs
    result = invoke(host, "compare", "--table", "1", "--results", tmp_path)
    assert result.exit_code == 2
    (line,) = [l for l in result.output.splitlines() if l.strip()]
    assert line.startswith("Error: ") and "n_val=1" in line
    assert "differ in n_val (0 / 1);" in line or "differ in n_val (1 / 0);" in line
    fix = line.split("choose one with ")[1].split(" ")[0]
    assert fix == "--protocol"
    for value, kept in (("0", "n_val"), ("1", None)):
        chosen = invoke(host, "compare", "--table", "1", "--results", tmp_path, "--protocol", f"n_val={value}",
                        "--format", "json")
        assert chosen.exit_code == 0, chosen.output
        protocol = json.loads(chosen.output[chosen.output.index("{"):])["protocol"]
        assert protocol.get("n_val", 0) == int(value)
    bad = invoke(host, "compare", "--results", tmp_path, "--protocol", "n_vol=1")
    assert bad.exit_code == 2 and "n_val" in bad.output


# -- one fingerprint per component -----------------------------------------------------------------------------
def make_package(root, name):
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("WIDTH = 4\n")
    (package / "layers.py").write_text("from .helpers import WIDTH\n")
    (package / "method.py").write_text(textwrap.dedent(f"""
        from petbench import Method
        from . import layers
        from {name}.helpers import WIDTH

        class M(Method):
            name = "m"
    """))
    (package / "dataset.py").write_text("from petbench import Dataset\nclass D(Dataset):\n    name = 'd'\n")
    (package / "plugin.py").write_text("from .method import M\nfrom .dataset import D\n")
    return package


def fingerprint_of(root, name):
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]
    sys.path.insert(0, str(root))
    try:
        importlib.invalidate_caches()
        module = importlib.import_module(f"{name}.plugin")
        return source_fingerprint(module.M, ""), source_fingerprint(module.D, "")
    finally:
        sys.path.remove(str(root))


def test_a_methods_fingerprint_changes_only_with_the_code_it_imports(tmp_path):
    package = make_package(tmp_path, "snag_pkg")
    method, dataset = fingerprint_of(tmp_path, "snag_pkg")
    (package / "dataset.py").write_text((package / "dataset.py").read_text() + "# edited\n")
    (package / "plugin.py").write_text((package / "plugin.py").read_text() + "# edited\n")
    after_dataset_edit = fingerprint_of(tmp_path, "snag_pkg")
    assert after_dataset_edit[0] == method  # the method does not import the dataset's module
    assert after_dataset_edit[1] != dataset
    (package / "helpers.py").write_text("WIDTH = 8\n")  # imported through layers (relative) and directly
    assert fingerprint_of(tmp_path, "snag_pkg")[0] != method
    (package / "helpers.py").write_text("WIDTH = 4\n")
    assert fingerprint_of(tmp_path, "snag_pkg")[0] == method  # same code, same fingerprint


# -- conformance checks on data made at test time ------------------------------------------------------------
class FilesDataset(Dataset):
    """Reads <root>/<id>/spet.nii.gz and drf4.nii.gz: data that exists only once a test has made it."""

    name = "files-data"
    description = "NIfTI files under a root (for tests)."
    defaults = {"data_root": ""}
    drfs = (4,)

    def subject_ids(self):
        from pathlib import Path

        return sorted(p.name for p in Path(self.options["data_root"]).iterdir())

    def load(self, subject_id, drfs=()):
        from pathlib import Path

        folder = Path(self.options["data_root"]) / subject_id
        spet, affine = load_volume(folder / "spet.nii.gz")
        return Subject(subject_id, spet, {d: load_volume(folder / f"drf{d}.nii.gz")[0] for d in drfs}, affine)


FILES_PLUGIN = registering(FilesDataset)


@pytest.fixture
def files_on_disk(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(4):
        spet = rng.uniform(0.5, 2.0, (4, 12, 12)).astype(np.float32)
        save_volume(tmp_path / f"s{index}" / "spet.nii.gz", spet, affine_from_spacing((2, 2, 2)))
        save_volume(tmp_path / f"s{index}" / "drf4.nii.gz", spet * 0.9, affine_from_spacing((2, 2, 2)))
    return {"data_root": str(tmp_path)}


test_files_dataset_conforms = conformance_tests(FILES_PLUGIN, options={"files-data": "files_on_disk"})


# -- help and template text --------------------------------------------------------------------------------
def test_info_of_a_dataset_names_its_option_flag():
    result = invoke(isolated_host(TOY_PLUGIN), "info", "tiny")
    assert "Options (-D key=value)" in result.output
    assert "Options (-o key=value)" in invoke(isolated_host(TOY_PLUGIN), "info", "tiny-cnn").output


def test_a_metric_credits_no_convention_unless_it_says_and_the_template_names_its_own():
    from petbench import Metric
    from petbench_plugin_template.metric import MAE
    from petbench_plugin_template.method import TemplateCNN

    assert Metric("m", lambda p, r: 0.0, higher_is_better=True).convention == ""
    assert MAE.convention != "challenge"
    assert TemplateCNN.defaults["steps_per_epoch"] is None  # "none" is None, not a magic 0
