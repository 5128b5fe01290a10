"""Every CLI command through Typer's CliRunner, and the error paths (one line, exit code 2)."""
import csv
import io
import json
import types

import pytest
from typer.testing import CliRunner

from petbench import hookimpl
from petbench.cli import create_app

RUN = ["run", "--method", "tiny-cnn", "--dataset", "tiny", "--n-train", "4", "--n-test", "3", "--n-unpaired", "0",
       "--drf", "4", "--preset", "quick", "-q"]


@pytest.fixture
def cli(host, results):
    app = create_app(host)
    runner = CliRunner()

    def invoke(*args):
        args = list(args)
        if args and args[0] in {"run", "compare"}:
            args += ["--results", str(results)]
        return runner.invoke(app, args)

    return invoke


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_plugins_lists_builtins_and_toys(cli):
    result = cli("plugins")
    assert result.exit_code == 0
    assert "lpet" in result.output and "petbench-toys" in result.output
    data = json.loads(cli("plugins", "--json").output)
    names = {p["name"]: p for p in data["plugins"]}
    assert names["lpet"]["methods"] == ["lpet"] and names["lpet"]["builtin"]
    assert data["failures"] == []


def test_list_kinds(cli):
    assert "tiny-cnn" in cli("list", "methods").output
    assert "tiny" in cli("list", "datasets").output
    assert "nmse" in cli("list", "metrics").output
    assert cli("list", "widgets").exit_code == 2


def test_run_then_compare_in_every_format(cli):
    result = cli(*RUN)
    assert result.exit_code == 0, result.output
    assert "psnr" in result.output and "preset 'quick'" in result.output
    assert cli("run", "--method", "lpet", "--dataset", "tiny", "--n-train", "4", "--n-test", "3",
               "--n-unpaired", "0", "--drf", "4", "-q").exit_code == 0

    table = cli("compare")
    assert table.exit_code == 0 and "tiny-cnn" in table.output and "lpet" in table.output

    markdown = cli("compare", "--format", "markdown").stdout.strip().splitlines()  # notes go to stderr
    assert len({line.count("|") for line in markdown}) == 1 and len(markdown) == 4  # header, rule, 2 rows
    assert "**" in markdown[2] + markdown[3]

    latex = cli("compare", "--format", "latex").output
    assert latex.count(r"\begin{tabular}") == latex.count(r"\end{tabular}") == 1 and r"\textbf{" in latex

    rows = list(csv.DictReader(io.StringIO(cli("compare", "--format", "csv").output)))
    assert {r["method"] for r in rows} == {"tiny-cnn", "lpet"}
    data = json.loads(cli("compare", "--format", "json").output)
    assert data["metrics"]["nmse"]["higher_is_better"] is False and len(data["rows"]) == 2


def test_compare_marks_best_by_direction(cli):
    cli(*RUN, "-o", "epochs=15")
    cli("run", "--method", "lpet", "--dataset", "tiny", "--n-train", "4", "--n-test", "3", "--n-unpaired", "0",
        "--drf", "4", "-q")
    rows = list(csv.DictReader(io.StringIO(cli("compare", "--format", "csv").output)))
    by_method = {r["method"]: r for r in rows}
    better = float(by_method["tiny-cnn"]["nmse_mean"]) < float(by_method["lpet"]["nmse_mean"])
    markdown = cli("compare", "--format", "markdown", "--metrics", "nmse").output
    best_line = next(line for line in markdown.splitlines() if "**" in line)
    assert ("tiny-cnn" in best_line) == better


def test_compare_notes_a_row_that_pools_different_settings(cli):
    assert cli(*RUN).exit_code == 0
    assert cli(*RUN, "--seed", "1").exit_code == 0  # another seed of the same setting: pooled silently
    assert "pools runs" not in cli("compare").output
    assert cli(*RUN, "-o", "epochs=3").exit_code == 0
    lines = cli("compare").output.splitlines()
    notes = [line for line in lines if line.startswith("note:") and "pools runs" in line]
    assert len(notes) == 1 and "'tiny-cnn'" in notes[0] and notes[0].count("tiny-cnn_tiny_drf4") == 3
    assert "note: Options: tiny-cnn: its runs differ in their options." in lines


@pytest.mark.parametrize("args, fragments", [
    (["run", "--method", "nope", "--dataset", "tiny"], ["unknown method 'nope'", "Valid:"]),
    (["run", "--method", "lpet", "--dataset", "nope"], ["unknown dataset 'nope'"]),
    (["run", "--method", "tiny-cnn", "--dataset", "tiny", "-o", "epochz=2"], ["option of method", "epochs"]),
    (["run", "--method", "tiny-cnn", "--dataset", "tiny", "-o", "epochs"], ["key=value"]),
    (["run", "--method", "tiny-cnn", "--dataset", "tiny", "-o", "epochs=abc"], ["option epochs must be an integer, not 'abc'"]),
    (["run", "--method", "lpet", "--dataset", "tiny", "--preset", "fast"], ["unknown preset 'fast'"]),
    (["run", "--method", "lpet", "--dataset", "tiny", "--device", "tpu"], ["--device 'tpu'"]),
    (["run", "--method", "lpet", "--dataset", "tiny", "--drf", "3"], ["no DRF 3"]),
    (["run", "--method", "lpet", "--dataset", "tiny", "--metrics", "psnr,foo"], ["unknown metric 'foo'"]),
    (["run", "--method", "lpet", "--dataset", "tiny"], ["has 12 usable subjects"]),
    (["compare"], ["no finished runs"]),
    (["compare", "--format", "xml"], ["unknown format 'xml'"]),
])
def test_user_mistakes_are_one_line_exit_2(cli, args, fragments):
    assert_user_error(cli(*args), *fragments)


def test_no_cuda_is_a_clear_error(cli, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert_user_error(cli("run", "--method", "lpet", "--dataset", "tiny", "--device", "cuda"), "no CUDA GPU")


def test_plugins_can_add_commands(host, results):
    @hookimpl
    def register_commands(cli):
        @cli.command("hello")
        def hello():
            print("hello from a plugin")

    host.add(types.SimpleNamespace(__name__="cmd", register_commands=register_commands), name="cmd")
    result = CliRunner().invoke(create_app(host), ["hello"])
    assert result.output.strip() == "hello from a plugin"


def test_run_finished_hook_receives_the_record(host, results):
    seen = []

    @hookimpl
    def run_finished(record):
        seen.append((record.status, record.method))

    host.add(types.SimpleNamespace(__name__="logger", run_finished=run_finished), name="logger")
    result = CliRunner().invoke(create_app(host), RUN + ["--results", str(results)])
    assert result.exit_code == 0 and seen == [("finished", "tiny-cnn")]
