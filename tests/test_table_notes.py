"""What Tables I/II say each row ran: provenance, variant marks and footnotes, options off the preset.

The declarations are a method's (``provenance``, ``provenance_source``, ``variant_note``,
``noted_options``); the host stores them and the options that differ from the run's preset in the run
record, and ``petbench.results.table_notes`` turns records into marks and note lines."""
from __future__ import annotations

import json

import pytest
import random

from petbench import Method
from petbench.errors import UserError
from petbench.results.table_notes import MARKS, table_notes
from petbench.grids.tables import build_paper_table, paper_table_model, render_paper_table
from petbench.method import provenance_of
from petbench.runner import method_extras, preset_differences
from petbench.testing.toys import TOY_PLUGIN, TinyMethod, isolated_host
from grid_helpers import fake_record

VALUES = {"psnr": [30.0, 31.0, 32.0], "ssim": [0.9, 0.91, 0.92], "nmse": [0.02, 0.021, 0.022]}


def extras(provenance=None, source=None, note=None, noted=None, differences=None, label="M", place=20):
    out = {"display_name": label, "table_places": {"1": [place, label]}}
    if provenance:
        out["provenance"] = provenance
    if source:
        out["provenance_source"] = source
    if note:
        out["variant_note"] = note
    if noted:
        out["noted_options"] = noted
    if differences is not None:
        out["preset_differences"] = differences
    return out


def test_a_variant_gets_a_mark_and_its_footnote_and_the_provenance_line(tmp_path):
    fake_record(tmp_path, "lpet", 0, VALUES, parameters=0)
    fake_record(tmp_path, "cyc", 0, VALUES, extras=extras("port", "upstream/repo", "no norm layers", label="Cyc",
                                                          place=20))
    fake_record(tmp_path, "rec", 0, VALUES, extras=extras("reconstruction", label="Rec", place=30))
    fake_record(tmp_path, "faithful", 0, VALUES, extras=extras("authors-code", label="Auth", place=40))
    from petbench.results.record import find_records

    table = build_paper_table(find_records(tmp_path), 1)
    shown = {row.data["method"]: row.shown_label for row in paper_table_model(table).rows}
    assert shown["cyc"] == "Cyc†"
    assert shown["rec"] == "Rec" and shown["faithful"] == "Auth"
    text = render_paper_table(table, "markdown")
    assert "| Cyc† " in text
    assert "† Cyc: no norm layers" in text
    assert ("Implementations: the authors' code: Auth; a port of published code: Cyc (upstream/repo); "
            "reconstructed from the paper (no code to follow): Rec.") in text
    data = json.loads(render_paper_table(table, "json"))
    assert data["marks"] == [{"kind": "variant", "symbol": "†", "note": "Cyc: no norm layers"}]
    assert r"$^\dagger$" in render_paper_table(table, "latex")


def test_the_leaderboard_marks_a_variant_and_says_what_each_row_ran(tmp_path):
    """compare's board carries the same marks and lines as Tables I/II (one table model for both)."""
    fake_record(tmp_path, "lpet", 0, VALUES, parameters=0)
    fake_record(tmp_path, "cyc", 0, VALUES, extras=extras("port", "upstream/repo", "no norm layers", label="Cyc"))
    from petbench.results.leaderboard import build_leaderboard, leaderboard_model
    from petbench.results.record import find_records

    model = leaderboard_model(build_leaderboard(find_records(tmp_path)))
    assert {row.label: row.shown_label for row in model.rows} == {"cyc": "cyc†", "lpet": "lpet"}
    lines = model.note_lines()
    assert lines[0] == "† cyc: no norm layers"  # the board names rows by method
    assert "Implementations: a port of published code: cyc (upstream/repo)." in lines


def test_rows_with_the_same_note_share_a_mark_and_different_notes_get_the_next():
    def rec(tmp, name, note):
        return fake_record(tmp, name, 0, VALUES, extras=extras(note=note, label=name))

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        rows = [(name, name, [rec(Path(tmp), name, note)]) for name, note in
                [("a", "2D"), ("b", "LPET-only"), ("c", "2D"), ("d", None)]]
        notes = table_notes(rows)
    assert notes.marks == {"a": "†", "b": "‡", "c": "†", "d": ""}
    assert notes.footnotes == ["† a: 2D", "‡ b: LPET-only"]


def test_the_options_line_names_what_differs_from_the_preset_and_the_noted_options(tmp_path):
    record = fake_record(tmp_path, "s3", 0, VALUES, options={"swap_decode": "transferred", "lr": 0.01, "epochs": 3},
                         extras=extras(noted=["swap_decode"], differences={"lr": {"preset": 0.001, "run": 0.01}},
                                       label="S3"))
    notes = table_notes([("s3", "S3", [record])])
    assert notes.options == "Options: S3: preset quick; lr=0.01 (preset: 0.001), swap_decode=transferred."
    untouched = fake_record(tmp_path, "plain", 0, VALUES, extras=extras(differences={}, label="P"))
    assert table_notes([("plain", "P", [untouched])]).options == ""


def test_a_trained_method_that_declares_nothing_is_listed_as_not_declared(tmp_path):
    declared = fake_record(tmp_path, "a", 0, VALUES, extras=extras("port", label="A"))
    silent = fake_record(tmp_path, "b", 0, VALUES, parameters=500, extras=extras(label="B"))
    no_net = fake_record(tmp_path, "lpet", 0, VALUES, parameters=0, extras=extras(label="LPET"))
    notes = table_notes([("a", "A", [declared]), ("b", "B", [silent]), ("lpet", "LPET", [no_net])])
    assert notes.provenance == "Implementations: a port of published code: A; not declared: B."


def test_more_footnotes_than_marks_double_the_marks(tmp_path):
    rows = [(str(i), str(i), [fake_record(tmp_path, f"m{i}", 0, VALUES, extras=extras(note=f"n{i}", label=str(i)))])
            for i in range(len(MARKS) + 1)]
    notes = table_notes(rows)
    assert notes.marks[str(len(MARKS))] == MARKS[0] * 2
    assert len(set(notes.marks.values())) == len(MARKS) + 1


class Declared(TinyMethod):
    name = "declared"
    provenance = "reconstruction"
    provenance_source = "a paper"
    variant_note = "a variant"
    noted_options = ("width",)


def test_the_declaration_is_stored_by_the_host():
    stored = method_extras(Declared())
    assert stored["provenance"] == "reconstruction"
    assert stored["provenance_source"] == "a paper"
    assert stored["variant_note"] == "a variant"
    assert stored["noted_options"] == ["width"]


@pytest.mark.parametrize("attribute, value, words", [
    ("provenance", "borrowed", "provenance 'borrowed' is not one of"),
    ("variant_note", "  ", "variant_note must be a non-empty string"),
    ("noted_options", ("no_such_option",), "noted_options names 'no_such_option'"),
    ("noted_options", "width", "noted_options must be a tuple"),
])
def test_a_malformed_declaration_is_a_user_error_naming_the_method(attribute, value, words):
    bad = type("Bad", (TinyMethod,), {"name": "bad", attribute: value})
    with pytest.raises(UserError, match=words) as caught:
        provenance_of(bad)
    assert "method 'bad'" in str(caught.value)


class Preset(Method):
    name = "preset-method"
    defaults = {"lr": 1e-3, "epochs": 10, "mode": "a"}
    presets = {"paper": {}, "quick": {"epochs": 2}}


def test_preset_differences_are_exactly_the_options_off_the_preset():
    rng = random.Random(27)
    for _ in range(60):  # generated option sets, each checked against the preset written out here
        lr = rng.choice([1e-3, 10 ** rng.uniform(-5, 0)])
        epochs, mode, preset = rng.randint(1, 12), rng.choice("ab"), rng.choice(["paper", "quick"])
        method = Preset({"lr": lr, "epochs": epochs, "mode": mode}, preset)
        base = {"lr": 1e-3, "epochs": 2 if preset == "quick" else 10, "mode": "a"}
        expected = {k: {"preset": base[k], "run": v} for k, v in {"lr": lr, "epochs": epochs, "mode": mode}.items()
                    if v != base[k]}
        assert preset_differences(method, preset) == expected


def test_a_run_records_its_preset_differences_and_an_unknown_preset_is_one_error(tmp_path):
    from petbench.data.protocol import Protocol
    from petbench.runner import RunConfig, execute

    host = isolated_host(TOY_PLUGIN)
    protocol = Protocol(n_train=2, n_test=1, n_unpaired=0, drf=4)
    record = execute(host, RunConfig(method="tiny-cnn", dataset="tiny", method_options={"epochs": 1, "width": 4},
                                     preset="paper", protocol=protocol), tmp_path, progress=False, log=lambda _: None)
    # the paper preset sets epochs 4 over the defaults' 2; width's default is 8
    assert record.data["method"]["preset_differences"] == {"epochs": {"preset": 4, "run": 1},
                                                           "width": {"preset": 8, "run": 4}}
    with pytest.raises(UserError, match="unknown preset of method 'tiny-cnn'.*'nope'|'nope'.*paper"):
        execute(host, RunConfig(method="tiny-cnn", dataset="tiny", preset="nope", protocol=protocol),
                tmp_path / "other", progress=False, log=lambda _: None)
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())


def test_compare_prints_what_each_row_ran(tmp_path):
    from typer.testing import CliRunner

    from petbench.cli import create_app

    app = create_app(isolated_host(TOY_PLUGIN))
    fake_record(tmp_path, "cyc", 0, VALUES, extras=extras("port", "upstream/repo", "no norm layers", label="Cyc"))
    result = CliRunner().invoke(app, ["compare", "--results", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "note: † cyc: no norm layers" in result.output
    assert "note: Implementations: a port of published code: cyc (upstream/repo)." in result.output


def test_the_options_line_states_what_a_method_fitted(tmp_path):
    runs = [fake_record(tmp_path, "g", seed, VALUES, extras={**extras(label="G", differences={}),
                                                              "fitted": {"sigma": sigma, "unit": "px", "search": {}}})
            for seed, sigma in ((0, 1.19), (1, 1.31))]
    assert table_notes([("g", "G", runs)]).options == \
        "Options: G: fitted on the paired training subjects: sigma=1.19–1.31 px over 2 runs."
    assert table_notes([("g", "G", runs[:1])]).options == \
        "Options: G: fitted on the paired training subjects: sigma=1.19 px."
