"""Registration through hooks, provenance, duplicates, broken plugins, strict mode."""
import importlib.metadata
import types

import pytest

from petbench import Method, hookimpl
from petbench.errors import PluginError, UserError
from petbench.plugins import get_plugin_manager, load_entrypoints
from petbench.testing.toys import isolated_host


def method_plugin(name, method_name):
    cls = type(f"M_{method_name}", (Method,), {"name": method_name, "description": f"{method_name} method\nmore",
                                               "predict": lambda self, x: x})

    @hookimpl
    def register_methods(register):
        register(cls)

    return types.SimpleNamespace(__name__=name, register_methods=register_methods)


def test_builtins_register_through_the_same_hooks():
    host = isolated_host()
    assert "lpet" in host.methods
    assert {"psnr", "ssim", "nmse"} <= set(host.metrics.names())
    entry = host.methods.entry("lpet")
    assert entry.plugin == "lpet" and entry.dist.startswith("petbench==")


def test_registry_records_plugin_and_first_description_line():
    host = isolated_host(method_plugin("my-plugin", "mine"))
    entry = host.methods.entry("mine")
    assert entry.plugin == "my-plugin"
    assert entry.description == "mine method"
    assert host.methods.get("mine").name == "mine"


def test_duplicate_name_is_refused_naming_both_plugins():
    host = isolated_host(method_plugin("first", "same"), method_plugin("second", "same"))
    assert host.methods.entry("same").plugin == "first"
    assert len(host.failures) == 1
    message = host.failures[0].line()
    assert "'first'" in message and "'second'" in message and "same" in message


def test_duplicate_is_fatal_in_strict_mode():
    host = get_plugin_manager(entrypoints=False, strict=True)
    host.add(method_plugin("first", "same"), name="first")
    host.add(method_plugin("second", "same"), name="second")
    with pytest.raises(PluginError, match="registered twice"):
        host.registries


def test_plugin_that_raises_at_registration_stops_nothing_else():
    @hookimpl
    def register_methods(register):
        raise RuntimeError("boom")

    broken = types.SimpleNamespace(__name__="broken", register_methods=register_methods)
    host = isolated_host(broken, method_plugin("good", "fine"))
    assert "fine" in host.methods and "lpet" in host.methods
    assert host.failures[0].name == "broken" and host.failures[0].stage == "register"
    assert "boom" in host.failures[0].error


class FakeEntryPoint:
    def __init__(self, name, loader):
        self.name, self._loader = name, loader
        self.dist = types.SimpleNamespace(name=f"petbench-{name}", version="1.2.3")

    def load(self):
        return self._loader()


def fake_entry_points(monkeypatch, *eps):
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: list(eps))


def test_entry_point_that_fails_to_import_is_reported_with_its_distribution(monkeypatch):
    def bad_import():
        raise ImportError("no module named nothing")

    fake_entry_points(monkeypatch, FakeEntryPoint("bad", bad_import),
                      FakeEntryPoint("good", lambda: method_plugin("good", "fine")))
    host = get_plugin_manager(entrypoints=False)
    load_entrypoints(host)
    assert "fine" in host.methods
    assert host.infos["good"].dist == "petbench-good==1.2.3"
    (failure,) = host.failures
    assert failure.name == "bad" and failure.stage == "import" and failure.dist == "petbench-bad==1.2.3"


def test_strict_env_makes_a_broken_entry_point_fatal(monkeypatch):
    def bad_import():
        raise ImportError("nope")

    fake_entry_points(monkeypatch, FakeEntryPoint("bad", bad_import))
    monkeypatch.setenv("PETBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="'bad'"):
        get_plugin_manager()


def test_disabled_plugins_are_not_loaded(monkeypatch):
    fake_entry_points(monkeypatch, FakeEntryPoint("good", lambda: method_plugin("good", "fine")))
    monkeypatch.setenv("PETBENCH_DISABLE_PLUGINS", "good,lpet")
    host = get_plugin_manager()
    assert "fine" not in host.methods and "lpet" not in host.methods


def test_unknown_name_suggests_the_closest():
    host = isolated_host()
    with pytest.raises(UserError, match="Did you mean 'lpet'"):
        host.methods.entry("lpte")


def test_lazy_string_target_loads_on_use():
    @hookimpl
    def register_methods(register):
        register("petbench.default_plugins.lpet:LowDoseInput")

    host = isolated_host(types.SimpleNamespace(__name__="lazy", register_methods=register_methods), builtins=False)
    assert host.methods.get("lowdoseinput").name == "lpet"


def test_an_unknown_name_says_which_plugin_failed_to_load_and_why(monkeypatch, tmp_path):
    """A plugin that fails at import, then `run` and `check` of a name it would have registered."""
    from typer.testing import CliRunner

    from petbench.cli import create_app

    def bad_import():
        raise ImportError("No module named 'torchvision'\nsecond line of the error")

    fake_entry_points(monkeypatch, FakeEntryPoint("mine", bad_import))
    host = get_plugin_manager(entrypoints=False)
    load_entrypoints(host)
    app = create_app(host)
    for args in (["run", "--method", "mine", "--dataset", "phantom", "--results", str(tmp_path / "r")],
                 ["check", "mine"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert "unknown method 'mine'" in text or "unknown method, dataset or metric 'mine'" in text
        assert "plugin 'mine' (petbench-mine==1.2.3) failed at import: ImportError: No module named 'torchvision'" \
            in text
        assert "second line" not in text and "petbench plugins" in text and "Traceback" not in text
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
