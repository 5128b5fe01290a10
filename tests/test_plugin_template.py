"""examples/plugin-template works: its pyproject declares the entry point of the module that
registers its method and metric, and both pass petbench's conformance checks. (CI also installs
the template and runs its own tests, which pytest's testpaths include.) The walk-through in
docs/writing-plugins.md shows the template's files verbatim."""
import re
import sys
import tomllib
from pathlib import Path

import pytest

from petbench.testing import check_method, check_metric, isolated_host

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "examples" / "plugin-template"


@pytest.fixture
def template_plugin(monkeypatch):
    project = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())["project"]
    (value,) = project["entry-points"]["petbench"].values()
    monkeypatch.syspath_prepend(str(TEMPLATE))
    module_name = value.partition(":")[0]
    __import__(module_name)
    return sys.modules[module_name]


def test_pyproject_declares_a_unique_distribution_and_its_entry_point():
    data = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())
    project = data["project"]
    assert project["name"] == "petbench-plugin-template"
    assert project["entry-points"]["petbench"] == {"template": "petbench_plugin_template.plugin"}
    assert data["tool"]["setuptools"]["packages"]["find"]["include"] == ["petbench_plugin_template*"]
    assert any(dep.startswith("petbench") for dep in project["dependencies"])
    assert (TEMPLATE / "petbench_plugin_template" / "plugin.py").is_file()
    assert "examples/plugin-template/tests" in tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["pytest"]["ini_options"]["testpaths"]
    # CI (.ci/run) runs `make test`, whose set-up installs the template
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "-e examples/plugin-template" in (ROOT / "Makefile").read_text()


def test_template_registers_and_conforms(template_plugin):
    host = isolated_host(template_plugin)
    assert host.failures == []
    assert host.methods.entry("template-cnn").plugin == template_plugin.__name__
    check_method("template-cnn", host=host)
    check_metric("template-mae", host=host)


def test_walkthrough_shows_the_template_files_verbatim():
    doc = (ROOT / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^\*\*`([^`]+)`\*\*\n\n```\w*\n(.*?)^```$", doc, flags=re.M | re.S)
    shown = {path: text for path, text in blocks}
    expected = {"pyproject.toml", "petbench_plugin_template/plugin.py", "petbench_plugin_template/method.py",
                "petbench_plugin_template/metric.py", "tests/test_plugin.py"}
    assert expected <= set(shown)
    for path in expected:
        assert shown[path] == (TEMPLATE / path).read_text(encoding="utf-8"), f"docs differ from the template's {path}"


@pytest.mark.slow
def test_template_installs_as_a_wheel_with_its_entry_point(tmp_path, monkeypatch):
    """pip builds and installs a copy of the template (no network); the installed files hold the
    package and the entry point, and the installed module registers the method and metric."""
    import importlib.metadata
    import shutil
    import subprocess

    pytest.importorskip("setuptools", reason="building without network needs setuptools installed")
    source = tmp_path / "source"
    shutil.copytree(TEMPLATE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True)
    (dist_info,) = target.glob("petbench_plugin_template-*.dist-info")
    dist = importlib.metadata.PathDistribution(dist_info)
    assert dist.metadata["Name"] == "petbench-plugin-template"
    (entry_point,) = [ep for ep in dist.entry_points if ep.group == "petbench"]
    assert (entry_point.name, entry_point.value) == ("template", "petbench_plugin_template.plugin")

    ours = lambda: [m for m in sys.modules if m.split(".")[0] == "petbench_plugin_template"]  # noqa: E731
    saved = {name: sys.modules.pop(name) for name in ours()}  # import the installed copy, not a development one
    monkeypatch.syspath_prepend(str(target))
    try:
        module = entry_point.load()
        assert Path(module.__file__).is_relative_to(target)
        host = isolated_host(module)
        assert host.failures == [] and "template-cnn" in host.methods and "template-mae" in host.metrics
    finally:
        for name in ours():
            del sys.modules[name]
        sys.modules.update(saved)
