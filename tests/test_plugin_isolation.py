"""A broken plugin affects only itself and is reported with its name and distribution: at import,
at registration (bad hooks, bad entries, a raising hook, a raising register_commands), during a
run (method, dataset, metric, run_finished); --strict-plugins; PETBENCH_DISABLE_PLUGINS."""
import importlib.metadata
import json
import types

import pytest
from typer.testing import CliRunner

from petbench import hookimpl
from petbench.cli import create_app
from petbench.data.protocol import Protocol
from petbench.errors import PluginError, PluginRunError, UserError
from petbench.metric import Metric
from petbench.plugins import get_plugin_manager, set_host
from petbench.results import find_records
from petbench.runner import RunConfig, execute
from petbench.testing.toys import TOY_PLUGIN, TinyDataset, TinyMethod, isolated_host

DIST = "petbench-broken==1.2.3"
RUN = ["run", "--dataset", "tiny", "--n-train", "2", "--n-test", "2", "--n-unpaired", "0", "--drf", "4",
       "--preset", "quick", "-q"]
SMALL = ["-o", "width=4", "-o", "epochs=1"]


def namespace(name, **hooks):
    return types.SimpleNamespace(__name__=name, **hooks)


def registers(kind, *targets, name="broken"):
    hook_name = f"register_{kind}s"

    def hook(register):
        for target in targets:
            register(target)

    hook.__name__ = hook_name
    return namespace(name, **{hook_name: hookimpl(hook)})


class FakeEntryPoint:
    def __init__(self, name, loader):
        self.name, self._loader = name, loader
        self.dist = types.SimpleNamespace(name=f"petbench-{name}", version="1.2.3")

    def load(self):
        return self._loader()


@pytest.fixture
def entry_points(monkeypatch):
    """Install fake entry-point plugins next to the toys; returns a function that builds the host."""
    def install(*eps):
        monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: list(eps))
        host = get_plugin_manager()
        host.add(TOY_PLUGIN, name="petbench-toys")
        return host

    return install


def invoke(host, *args, env=None):
    result = CliRunner().invoke(create_app(host), [str(a) for a in args], env=env)
    set_host(None)
    return result


def one_line(result, prefix):
    """The error is one line on stderr, without a traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(prefix), result.output
    assert "Traceback" not in result.output
    return lines[0]


# -- at import and at registration -------------------------------------------------------------
def broken_import():
    raise ImportError("No module named 'missing_dependency'")


def test_import_failure_is_listed_and_everything_else_works(entry_points, tmp_path):
    host = entry_points(FakeEntryPoint("broken", broken_import))
    listing = invoke(host, "plugins")
    assert listing.exit_code == 0
    assert "FAILED plugin 'broken' (petbench-broken==1.2.3) failed at import: ImportError" in listing.output
    assert "petbench-toys" in listing.output
    assert invoke(host, *RUN, "--method", "lpet", "--metrics", "psnr", "--results", tmp_path).exit_code == 0


def test_strict_plugins_makes_any_failure_fatal(entry_points):
    host = entry_points(FakeEntryPoint("broken", broken_import))
    result = invoke(host, "--strict-plugins", "list", "methods")
    assert result.exit_code == 2
    assert "plugin 'broken' (petbench-broken==1.2.3) failed at import" in one_line(result, "Error: ")


def test_strict_plugins_catches_a_registration_failure(entry_points):
    @hookimpl
    def register_methods(register):
        raise RuntimeError("boom")

    host = entry_points(FakeEntryPoint("broken", lambda: namespace("broken", register_methods=register_methods)))
    assert invoke(host, "list", "methods").exit_code == 0
    result = invoke(host, "--strict-plugins", "plugins")
    assert result.exit_code == 2 and "failed at register: RuntimeError: boom" in one_line(result, "Error: ")


def test_disabled_plugin_is_not_even_imported(entry_points, monkeypatch):
    monkeypatch.setenv("PETBENCH_DISABLE_PLUGINS", "broken, other")
    host = entry_points(FakeEntryPoint("broken", broken_import))
    assert host.failures == [] and "broken" not in host.infos
    listing = invoke(host, "--strict-plugins", "plugins")
    assert listing.exit_code == 0 and "disabled by PETBENCH_DISABLE_PLUGINS: broken, other" in listing.output


@pytest.mark.parametrize("plugin, fragment", [
    (namespace("broken", register_method=hookimpl(lambda register: None)),
     "implements 'register_method', which is not a petbench hook. Did you mean 'register_methods'?"),
    (namespace("broken", register_methods=lambda register: None), "register_methods() without @petbench.hookimpl"),
    (namespace("broken", register_methods=hookimpl(lambda registry: None)), "registry"),
])
def test_a_plugin_with_bad_hooks_is_refused_whole(entry_points, plugin, fragment):
    host = entry_points(FakeEntryPoint("broken", lambda: plugin))
    (failure,) = host.failures
    assert failure.name == "broken" and failure.dist == DIST and failure.stage == "register"
    assert fragment in failure.error
    assert "broken" not in host.infos and "tiny-cnn" in host.methods
    with pytest.raises(PluginError, match="not a petbench hook"):  # in-process too, at once
        isolated_host(namespace("typo", register_metric=hookimpl(lambda register: None)))


@pytest.mark.parametrize("kind, target, fragment", [
    ("method", object, "is not a subclass of petbench.Method"),
    ("method", TinyMethod(), "register the class itself"),
    ("dataset", TinyMethod, "is not a subclass of petbench.Dataset"),
    ("metric", lambda pred, ref: 0.0, "is not a petbench.Metric"),
    ("method", "no_colon_here", "'module:attribute'"),
])
def test_a_bad_entry_is_refused_and_the_plugins_other_entries_stay(kind, target, fragment):
    good = Metric("fine", lambda p, r: 0.0, True, "a fine metric") if kind == "metric" else \
        (type("Fine", (TinyDataset,), {"name": "fine"}) if kind == "dataset"
         else type("Fine", (TinyMethod,), {"name": "fine"}))
    host = isolated_host(registers(kind, target, good))
    registry = {"method": host.methods, "dataset": host.datasets, "metric": host.metrics}[kind]
    assert "fine" in registry
    (failure,) = host.failures
    assert failure.name == "broken" and fragment in failure.error


def test_a_lazy_entry_of_the_wrong_type_fails_on_use_naming_the_plugin():
    host = isolated_host(registers("method", "petbench.testing.toys:TinyDataset"))
    with pytest.raises(PluginError, match="plugin 'broken'.*not a subclass of petbench.Method"):
        host.methods.get("tinydataset")


def test_register_commands_that_raises_loses_only_its_commands(host):
    @hookimpl
    def register_commands(cli):
        raise RuntimeError("cannot add my command")

    @hookimpl
    def good_commands(cli):
        cli.command("hello")(lambda: print("hello"))

    host.add(namespace("broken", register_commands=register_commands), name="broken", dist=DIST)
    host.add(namespace("good", register_commands=good_commands), name="good")
    assert invoke(host, "hello").output.strip() == "hello"
    listing = invoke(host, "plugins", "--json")
    (failure,) = json.loads(listing.output)["failures"]
    assert failure["name"] == "broken" and failure["dist"] == DIST and "cannot add my command" in failure["error"]


# -- during a run ------------------------------------------------------------------------------
class RaisesInTraining(TinyMethod):
    name = "raises-in-training"

    def stages(self):
        (stage,) = super().stages()

        def step(batch, ctx):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

        stage.step = step
        return [stage]


class RaisesInPredict(TinyMethod):
    name = "raises-in-predict"

    def predict(self, lpet):
        raise KeyError("net")


class RaisesInInit(TinyMethod):
    name = "raises-in-init"

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        raise AttributeError("no attribute 'encoder'")


class UserErrorInInit(TinyMethod):
    name = "user-error"

    def __init__(self, options=None, preset=None):
        raise UserError("method 'user-error': width must be even")


class BrokenData(TinyDataset):
    name = "broken-data"

    def load(self, subject_id, drfs=()):
        raise OSError(f"cannot read {subject_id}.nii.gz")


BROKEN_METRIC = Metric("broken-metric", lambda pred, ref: 1 / 0, True, "raises")


@pytest.fixture
def broken_host(host):
    host.add(namespace("broken", **{
        "register_methods": hookimpl(specname="register_methods")(lambda register: [
            register(m) for m in (RaisesInTraining, RaisesInPredict, RaisesInInit, UserErrorInInit)]),
        "register_datasets": hookimpl(specname="register_datasets")(lambda register: register(BrokenData)),
        "register_metrics": hookimpl(specname="register_metrics")(lambda register: register(BROKEN_METRIC)),
    }), name="broken", dist=DIST)
    return host


@pytest.mark.parametrize("args, role, name, phase, error", [
    (["--method", "raises-in-training", *SMALL], "method", "raises-in-training", "training",
     "RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    (["--method", "raises-in-predict", *SMALL], "method", "raises-in-predict", "prediction", "KeyError: 'net'"),
    (["--method", "lpet", "--metrics", "psnr,broken-metric"], "metric", "broken-metric", "scoring",
     "ZeroDivisionError: division by zero"),
])
def test_plugin_code_raising_during_a_run_is_one_line_exit_1_and_recorded(broken_host, results, args, role,
                                                                          name, phase, error):
    result = invoke(broken_host, *RUN, *args, "--results", results)
    assert result.exit_code == 1
    line = one_line(result, "Run failed: ")
    assert line == f"Run failed: {role} {name!r} from plugin 'broken' ({DIST}) raised during {phase}: {error}"
    (record,) = find_records(results, finished_only=False)
    assert record.status == "failed" and record.data["error"] in line
    failure = record.data["failure"]
    assert (failure["role"], failure["name"], failure["plugin"], failure["dist"], failure["phase"]) == \
        (role, name, "broken", DIST, phase)
    assert "Traceback" in failure["traceback"]


def test_a_broken_dataset_is_named_too(broken_host, results):
    line = one_line(invoke(broken_host, "run", "--method", "lpet", "--dataset", "broken-data", "--n-train", "2",
                           "--n-test", "2", "--n-unpaired", "0", "--drf", "4", "-q", "--results", results),
                    "Run failed: ")
    assert "dataset 'broken-data' from plugin 'broken' (petbench-broken==1.2.3) raised during loading data: " \
           "OSError: cannot read" in line


def test_traceback_is_shown_on_request(broken_host, results):
    args = [*RUN, *SMALL, "--method", "raises-in-predict", "--results", results]
    assert "Traceback" not in invoke(broken_host, *args).output
    shown = invoke(broken_host, "--traceback", *args, "--force")
    assert shown.exit_code == 1 and "Traceback" in shown.output and "raise KeyError" in shown.output
    env = invoke(broken_host, *args, "--force", env={"PETBENCH_TRACEBACK": "1"})
    assert "Traceback" in env.stderr and env.stderr.rstrip().splitlines()[-1].startswith("Run failed: ")


def test_construction_failure_names_the_plugin_and_writes_nothing(broken_host, results):
    config = RunConfig(method="raises-in-init", dataset="tiny", protocol=Protocol(n_train=2, n_test=2, n_unpaired=0,
                                                                                 drf=4), preset="quick")
    with pytest.raises(PluginRunError) as info:
        execute(broken_host, config, results, progress=False, log=lambda _: None)
    assert (info.value.plugin, info.value.dist, info.value.phase) == ("broken", DIST, "construction")
    assert isinstance(info.value.__cause__, AttributeError)
    assert not results.exists()


def test_a_user_error_from_plugin_code_stays_a_user_error(broken_host, results):
    result = invoke(broken_host, *RUN, "--method", "user-error", "--results", results)
    assert result.exit_code == 2
    assert one_line(result, "Error: ") == "Error: method 'user-error': width must be even"


def test_the_other_plugins_still_run_after_a_failure(broken_host, results):
    assert invoke(broken_host, *RUN, *SMALL, "--method", "raises-in-training", "--results", results).exit_code == 1
    result = invoke(broken_host, *RUN, *SMALL, "--method", "tiny-cnn", "--results", results)
    assert result.exit_code == 0, result.output
    # the broken metric is one of "all metrics" here: it is left out of the run, said on screen and recorded
    assert "metric 'broken-metric' from plugin 'broken' (petbench-broken==1.2.3) raised during scoring: " \
           "ZeroDivisionError: division by zero; it is left out of this run" in " ".join(result.output.split())
    record = next(r for r in find_records(results) if r.method == "tiny-cnn")
    assert "broken-metric" not in record.summary and "psnr" in record.summary
    assert record.data["metrics_left_out"]["broken-metric"]["dist"] == DIST
    assert set(record.rows().metric) == set(record.summary) == set(record.data["metrics"])


def test_run_finished_that_raises_is_reported_with_its_distribution(host, results):
    @hookimpl
    def run_finished(record):
        raise ConnectionError("tracker unreachable")

    host.add(namespace("tracker", run_finished=run_finished), name="tracker", dist="petbench-tracker==0.3")
    messages = []
    config = RunConfig(method="lpet", dataset="tiny", protocol=Protocol(n_train=2, n_test=2, n_unpaired=0, drf=4))
    record = execute(host, config, results, progress=False, log=messages.append)
    assert record.finished
    assert "plugin 'tracker' (petbench-tracker==0.3) failed in run_finished: ConnectionError: tracker unreachable" \
        in messages
