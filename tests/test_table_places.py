"""A method's display name, table places and reference role are class attributes, stored in its run
records: the built-in grids hold the methods that declare a place, the paper tables order and label rows
from the records (no plugin needed), and the host itself names no shipped method."""
import ast
import json
import pathlib
import re
import sys
import types

from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make grid_helpers importable
from grid_helpers import HELPER_PLUGIN, fake_record, helper_host  # noqa: E402

from petbench import hookimpl  # noqa: E402
from petbench.cli import create_app  # noqa: E402
from petbench.grids.run_grid import plan_grid  # noqa: E402
from petbench.grids.spec import Variant, resolve_grid  # noqa: E402
from petbench.grids.tables import build_paper_table  # noqa: E402
from petbench.results import find_records  # noqa: E402
from petbench.testing.toys import TOY_PLUGIN, TinyMethod, isolated_host  # noqa: E402

TINY = ["--dataset", "tiny", "--n-train", "4", "--n-test", "3", "--n-unpaired", "0", "--drf", "4", "--preset",
        "quick", "-q"]


class Mine(TinyMethod):
    """A third-party method between Auto-Context (30) and AR-GAN (40) in Table I, and its reference."""

    name = "mine"
    description = "a third-party method with a place in Table I"
    defaults = {**TinyMethod.defaults, "epochs": 1}
    display_name = "Mine"
    table_places = {1: (35, "Mine (ours)")}
    table_reference = True


@hookimpl(specname="register_methods")
def _register(register):
    register(Mine)


MINE_PLUGIN = types.SimpleNamespace(__name__="mine-plugin", register_methods=_register)


def test_a_third_party_method_with_a_place_is_in_the_table1_grid_at_its_place(tmp_path):
    host = isolated_host(TOY_PLUGIN, HELPER_PLUGIN, MINE_PLUGIN)
    spec = resolve_grid("table1", [Variant("tiny")], host=host, drfs=[4])
    order = ["lpet", "cyclegan", "autocontext", "mine", "argan", "cvtgan", "semipet", "s3pet"]
    assert [m.name for m in spec.methods] == order
    plan = plan_grid(host, spec, tmp_path / "results", preset="quick")
    assert [p.cell.method.name for p in plan.cells] == order
    assert "mine" not in [m.name for m in resolve_grid("table2", [Variant("tiny")], host=host).methods]
    status = CliRunner().invoke(create_app(host), ["grid", "table1", "--status", "--results",
                                                   str(tmp_path / "results"), *TINY[:2]])
    assert status.exit_code == 0, status.output
    lines = [line for line in status.output.splitlines() if re.search(r"\b(autocontext|mine|argan)\b", line)]
    assert [re.search(r"\b(autocontext|mine|argan)\b", line).group(1) for line in lines] == \
        ["autocontext", "mine", "argan"]


def test_compare_table1_places_and_labels_a_run_from_its_record_without_the_plugin(tmp_path):
    results = tmp_path / "results"
    with_mine = create_app(isolated_host(TOY_PLUGIN, HELPER_PLUGIN, MINE_PLUGIN))
    for method in ("mine", "lpet"):
        ran = CliRunner().invoke(with_mine, ["run", "--method", method, *TINY, "--results", str(results)])
        assert ran.exit_code == 0, ran.output
    stored = next(r for r in find_records(results) if r.method == "mine").data["method"]
    assert stored["display_name"] == "Mine" and stored["table_places"] == {"1": [35, "Mine (ours)"]}
    assert stored["table_reference"] is True
    # records of two Table I stand-ins in the same setting (their labels and places as the runner stores them)
    template = next(r for r in find_records(results) if r.method == "lpet")
    subjects = template.data["splits"]["test"]
    for method, offset in (("autocontext", -1.0), ("argan", -2.0)):
        record = fake_record(results, method, 0, {"psnr": [20 + offset + i for i in range(len(subjects))]},
                             subjects=subjects, protocol=template.data["protocol"])
        record.data["protocol"], record.data["dataset"] = template.data["protocol"], template.data["dataset"]
        record.data["config"]["seed"] = template.data["config"]["seed"]
        record.save()

    without = CliRunner().invoke(create_app(helper_host()), ["compare", "--table", "1", "--format", "json",
                                                             "--metrics", "psnr", "--results", str(results)])
    assert without.exit_code == 0, without.output
    table = json.loads(without.output[without.output.index("{"):])
    assert [r["method"] for r in table["rows"]] == ["lpet", "autocontext", "mine", "argan"]
    assert [r["label"] for r in table["rows"]] == ["LPET", "Auto-Context", "Mine (ours)", "AR-GAN"]
    assert table["reference"] == "mine" and "against Mine (ours)" in table["note"]
    assert table["rows"][2]["metrics"]["psnr"]["p"] is None and table["rows"][0]["metrics"]["psnr"]["p"] is not None


def test_records_from_before_declared_places_fall_back_on_what_they_stored(tmp_path):
    results = tmp_path / "results"
    full = {"DsMAE": True, "DKL": True}
    fake_record(results, "cyclegan", 0, {"psnr": [20, 21, 22]}, extras={"paper_name": "Cycle-GAN (+L1)"})
    fake_record(results, "s3pet", 0, {"psnr": [23, 24, 26]}, extras={"paper_name": "S3PET"}, components=full)
    fake_record(results, "s3pet-dsmae", 0, {"psnr": [22, 23, 25]}, components={"DsMAE": True, "DKL": False},
                extras={"paper_name": "+DsMAE", "variant_of": "s3pet"})
    records = find_records(results)
    one, two = build_paper_table(records, 1), build_paper_table(records, 2)
    assert [(r.method, r.label) for r in one.rows] == [("cyclegan", "Cycle-GAN (+L1)"), ("s3pet", "S3PET")]
    assert [r.method for r in two.rows] == ["s3pet", "s3pet-dsmae"]  # no places: by name
    assert one.reference_method == two.reference_method == "s3pet"  # the method the variant is a variant of
    assert two.components == ["Baseline", "DsMAE", "DKL"]
    assert [r.components["DKL"] for r in two.rows] == [True, False]


SHIPPED = ("s3pet", "cyclegan", "autocontext", "argan", "cvtgan", "semipet",
           "Cycle-GAN", "Auto-Context", "AR-GAN", "CVT-GAN", "SemiPET")
#: strings that cite the S3PET paper or group as a source (provenance), and the name of the paper's
#: evaluation convention (a metric attribute), not a method
ALLOWED = re.compile(r"the S3PET (paper|group)'s|^s3pet$", re.I)


def docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_the_host_names_no_shipped_method():
    """Every string constant in petbench/ but docstrings (which may describe the paper's tables)."""
    pattern = re.compile("|".join(re.escape(name) for name in SHIPPED), re.I)
    root = pathlib.Path(__file__).parent.parent / "petbench"
    hits = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = docstring_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs \
                    and pattern.search(node.value) and not ALLOWED.search(node.value):
                hits.append(f"{path.relative_to(root.parent)}:{node.lineno}: {node.value[:80]!r}")
    assert not hits, "\n".join(hits)
