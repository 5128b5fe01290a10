"""The table model (petbench.tables): per-row marks with their footnotes and notes reach every format,
and a renderer prints the cells it is given (it computes nothing)."""
import csv
import io
import json

from rich.console import Console

from petbench.tables import Cell, Column, Mark, TableModel, TableRow, render


def model():
    columns = [Column("label", "Method", "label"), Column("psnr", "PSNR [dB] ↑", "metric", "psnr"),
               Column("rank", "Rank", "rank")]
    rows = [TableRow("a", "Cycle_GAN", {"psnr": Cell("21.000 ± 0.500", 21.0), "rank": Cell("2", 2.0)},
                     values={"psnr_mean": 21.0}),
            TableRow("b", "S3PET", {"psnr": Cell("23.000 ± 0.400", 23.0, best=True), "rank": Cell("1", 1.0)},
                     values={"psnr_mean": 23.0})]
    table = TableModel("table1", "Table I. Test.", columns, rows)
    table.mark_row("a", Mark("reimplementation", "†", "re-implemented from the paper's description"))
    table.mark_row("b", Mark("external", "‡", "imported predictions"))
    table.add_note("layout", "mean ± std over test subjects.")
    return table


def test_row_marks_and_notes_reach_every_format():
    table = model()
    markdown = render(table, "markdown")
    assert "| Cycle_GAN† " in markdown and "| S3PET‡ " in markdown and "**23.000 ± 0.400**" in markdown
    assert "† re-implemented from the paper's description" in markdown and "mean ± std over test subjects." in markdown
    latex = render(table, "latex")
    assert r"Cycle\_GAN$^\dagger$" in latex and r"\textbf{23.000 $\pm$ 0.400}" in latex
    assert r"$^\ddagger$ imported predictions" in latex
    console = Console(width=200, record=True)
    console.print(render(table, "table"))
    text = console.export_text()
    assert "Cycle_GAN†" in text and "‡ imported predictions" in text and "[dB]" in text
    data = json.loads(render(table, "json"))
    assert data["rows"][0]["marks"] == [{"kind": "reimplementation", "symbol": "†",
                                         "note": "re-implemented from the paper's description"}]
    assert data["rows"][1]["cells"]["psnr"] == {"text": "23.000 ± 0.400", "value": 23.0, "best": True, "marks": []}
    assert [m["symbol"] for m in data["marks"]] == ["†", "‡"] and data["notes"][0]["kind"] == "layout"
    rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert rows[0]["marks"] == "reimplementation" and float(rows[1]["psnr_mean"]) == 23.0


def test_a_footnote_shared_by_rows_is_listed_once():
    table = model()
    table.mark_row("b", Mark("reimplementation", "†", "re-implemented from the paper's description"))
    assert [m.symbol for m in table.footnotes()] == ["†", "‡"]
    assert render(table, "markdown").count("† re-implemented") == 1


def test_several_tables_stack_and_nan_is_null_in_json():
    first, second = model(), model()
    second.name = "other"
    second.rows[0].values["psnr_mean"] = float("nan")
    data = json.loads(render([first, second], "json"))
    assert [t["name"] for t in data["tables"]] == ["table1", "other"]
    assert data["tables"][1]["rows"][0]["values"]["psnr_mean"] is None
    rows = list(csv.DictReader(io.StringIO(render([first, second], "csv"))))
    assert [r["table"] for r in rows] == ["table1", "table1", "other", "other"]
