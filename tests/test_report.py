"""``petbench report``: the page renders the CLI's own tables (its embedded leaderboard is byte-for-byte
``compare --format json``), leaves a gap with a reason for every missing piece, keeps record text as
text, carries volumes that decode to what was predicted, and stays within its size budget."""
import json
import pathlib
from collections import Counter
import re
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make the helpers importable
from grid_helpers import fake_record, helper_host  # noqa: E402
from report_helpers import SUBJECTS, table1_results, values  # noqa: E402

from petbench.cli import create_app  # noqa: E402
from petbench.report.build import SIZE_BUDGET_BYTES, build_report  # noqa: E402
from petbench.report.volumes import decode, downsample, encode, lesion_centres  # noqa: E402
from petbench.results.record import find_records  # noqa: E402
from petbench.tables.cells import StatsOptions, parse_stats  # noqa: E402


@pytest.fixture
def cli(tmp_path):
    app = create_app(helper_host())
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [*args, "--results", str(tmp_path / "results")])


class Page(HTMLParser):
    """Tables by id (cell texts without the mark badges), script blocks by id, every tag and attribute."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self.scripts, self.tags, self.attributes = {}, {}, [], []
        self.table = self.row = self.cell = self.script = None
        self.in_mark = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attributes += list(attrs)
        if tag == "table" and attrs.get("id"):
            self.table = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self.table is not None:
            self.row = []
            self.table.append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
        elif tag == "span" and attrs.get("class") == "mark":
            self.in_mark = True
        elif tag == "script":
            self.script = (attrs.get("id"), [])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell))
            self.cell = None
        elif tag == "table":
            self.table = None
        elif tag == "span":
            self.in_mark = False
        elif tag == "script" and self.script:
            self.scripts[self.script[0]] = "".join(self.script[1])
            self.script = None

    def handle_data(self, data):
        if self.script is not None:
            self.script[1].append(data)
        elif self.cell is not None and not self.in_mark:
            self.cell.append(data)


def test_the_pages_tables_are_the_clis(cli, tmp_path):
    made = table1_results(tmp_path / "results")
    out = tmp_path / "report.html"
    result = cli("report", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    page = Page(out.read_text())

    # the embedded leaderboard is compare --format json with the page's statistics (CIs, Holm p, ranks)
    stats = ["--stats", "ci,holm,rank"]
    compare = cli("compare", *stats, "--format", "json")
    assert compare.exit_code == 0
    assert json.loads(page.scripts["leaderboard-json"]) == json.loads(compare.stdout)
    table1 = cli("compare", "--table", "1", *stats, "--format", "json")
    assert json.loads(page.scripts["table1-json"]) == json.loads(table1.stdout)

    # the visible table: one row per method, its PSNR cell the mean ± std of the values pooled over seeds
    header, *rows = page.tables["leaderboard-table"]
    assert header[:2] == ["Method", "PSNR [dB] ↑"] and {"PSNR 95 % CI", "p (PSNR)", "Rank", "Rank 1 in"} <= set(header)
    by_method = {row[0]: row for row in rows}
    assert sorted(by_method) == sorted(made)
    rank = list(made).index("s3pet")
    per_seed = [np.mean(values(rank, seed)["psnr"]) for seed in (0, 1)]
    subject_std = np.mean([np.std(values(rank, seed)["psnr"], ddof=1) for seed in (0, 1)])
    assert by_method["s3pet"][1] == f"{np.mean(per_seed):.3f} ± {subject_std:.3f} ({np.std(per_seed, ddof=1):.3f})"
    markdown = cli("compare", *stats, "--format", "markdown").stdout  # the same cells, bold marks aside
    printed = [[c.strip().replace("**", "") for c in line.strip("|").split("|")] for line in markdown.splitlines()]
    assert [header] + rows == [printed[0]] + printed[2:]

    # Table I in the paper's order, S3PET last, as compare --table 1 prints it
    labels = [row[0] for row in page.tables["table1-table"][1:]]
    assert labels == [r["label"] for r in json.loads(table1.stdout)["rows"]] and labels[-1] == "S3PET (ours)"


def test_every_missing_piece_is_a_gap_with_its_reason(cli, tmp_path):
    results = tmp_path / "results"
    made = table1_results(results, seeds=(0,))
    no_predictions = fake_record(results, "cvtgan", 3, values(3, 0), subjects=SUBJECTS)  # --no-predictions
    (made["semipet"][0].path / "history.jsonl").write_text("{not json\n")             # a damaged history
    (made["argan"][0].path / "predictions" / "tiny007.nii.gz").write_bytes(b"\x1f\x8bnot a volume")  # damaged
    damaged = results / "broken_run"
    damaged.mkdir()
    (damaged / "run.json").write_text('{"status": "finished", "method": 3}')           # a damaged record
    out = tmp_path / "report.html"
    result = cli("report", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    page = Page(text)
    gaps = re.findall(r'<p class="gap"><b>(.*?)</b>: (.*?)</p>', text)
    reasons = {what: why for what, why in gaps}
    assert "history.jsonl" in reasons["training curves of semipet"] and "line 1" in reasons["training curves of semipet"]
    assert any("broken_run" in why and "method: input should be a valid dictionary" in why
               for what, why in gaps if what == "damaged record left out")
    assert "trains nothing" in reasons["training curves of lpet"]
    # the run without predictions is still in the tables; the viewer shows the other columns
    assert "cvtgan" in [row[0] for row in page.tables["leaderboard-table"][1:]]
    volumes = json.loads(page.scripts["petbench-volumes"])
    assert [c["title"] for c in volumes["subjects"][0]["columns"]] == \
        ["SPET", "LPET", "argan", "autocontext", "cvtgan", "cyclegan", "s3pet", "semipet"]
    assert no_predictions.run_id not in {c["run"] for c in volumes["subjects"][0]["columns"]}
    # the damaged prediction loses its column for that subject only
    assert "prediction unreadable" in reasons["argan, subject tiny007"]
    assert [s["id"] for s in volumes["subjects"]] == SUBJECTS
    assert "argan" not in [c["title"] for c in volumes["subjects"][1]["columns"]]


def test_a_page_for_one_run(cli, tmp_path):
    made = table1_results(tmp_path / "results", seeds=(0,))
    run = made["s3pet"][0]
    out = tmp_path / "one.html"
    result = cli("report", "--run", run.run_id, "--out", str(out))
    assert result.exit_code == 0, result.output
    page = Page(out.read_text())
    assert [row[0] for row in page.tables["leaderboard-table"][1:]] == ["s3pet"]
    provenance = page.tables["provenance-table"]
    assert len(provenance) == 2 and provenance[1][0] == run.run_id
    assert f"petbench report --results {tmp_path / 'results'} --out {out} --run {run.run_id}" in out.read_text()
    volumes = json.loads(page.scripts["petbench-volumes"])
    assert [c["title"] for c in volumes["subjects"][0]["columns"]] == ["SPET", "LPET", "s3pet"]
    # the low-dose input alone: SPET and LPET from the dataset
    assert cli("report", "--run", made["lpet"][0].run_id, "--out", str(out)).exit_code == 0
    volumes = json.loads(Page(out.read_text()).scripts["petbench-volumes"])
    assert [c["title"] for c in volumes["subjects"][0]["columns"]] == ["SPET", "LPET"]


def test_a_page_for_one_grid(cli, tmp_path):
    made = table1_results(tmp_path / "results", seeds=(0,), methods=["lpet", "argan", "s3pet"])
    grids = tmp_path / "results" / ".grids"
    grids.mkdir()
    cells = {"a": {"status": "finished", "run_id": made["argan"][0].run_id},
             "b": {"status": "finished", "run_id": made["s3pet"][0].run_id},
             "c": {"status": "failed", "run_id": made["lpet"][0].run_id}}  # not finished: left out
    (grids / "mine.json").write_text(json.dumps({"cells": cells}))
    out = tmp_path / "grid.html"
    result = cli("report", "--grid", "mine", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(row[0] for row in Page(out.read_text()).tables["leaderboard-table"][1:]) == ["argan", "s3pet"]


def test_marks_of_external_reimplemented_and_variant_records(cli, tmp_path):
    made = table1_results(tmp_path / "results", seeds=(0,), methods=["lpet", "argan", "semipet", "s3pet"])
    for record in made["argan"]:  # issue 27: a method's declared provenance and variant note
        record.data["method"].update(provenance="port", provenance_source="github.com/x/argan", variant_note="2D")
        record.save()
    for record in made["semipet"]:  # issue 25: an imported (external) record
        record.data["provenance"] = {"kind": "external"}
        record.save()
    out = tmp_path / "marks.html"
    assert cli("report", "--out", str(out)).exit_code == 0
    text = out.read_text()
    row = {m: re.search(rf'<tr data-method="{m}">(.*?)</tr>', text).group(1) for m in made}
    badges = {m: re.findall(r'<span class="mark" title="([^"]*)">([^<]*)</span>', r) for m, r in row.items()}
    # the table model's own mark first (its footnote names the row), then what only the record says
    assert badges["argan"] == [("variant: argan: 2D", "†"),
                               ("re-implementation (port): github.com/x/argan", "re-implementation")]
    assert [b[1] for b in badges["semipet"]] == ["external"]
    assert badges["s3pet"] == [] and badges["lpet"] == []


@pytest.mark.parametrize("args, fragment", [
    (["--out", "{tmp}/r.txt"], "ending in .html"),
    (["--run", "nope", "--out", "{tmp}/r.html"], "--run nope: no such run"),
    (["--image-subjects", "tiny999", "--out", "{tmp}/r.html"], "--image-subjects: 'tiny999'"),
    (["--metrics", "psnr,nope", "--out", "{tmp}/r.html"], "metric 'nope'"),
    (["--image-size", "2", "--out", "{tmp}/r.html"], "--image-size 2"),
    (["--grid", "table1", "--out", "{tmp}/r.html"], "--grid table1: no grid"),
])
def test_user_mistakes_are_one_error_line_and_write_nothing(cli, tmp_path, args, fragment):
    table1_results(tmp_path / "results", seeds=(0,), methods=["lpet", "s3pet"])
    result = cli("report", *[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("r.*"))


def test_volumes_decode_to_the_quantized_block_means():
    rng = np.random.default_rng(0)
    volume = rng.uniform(0, 3, (10, 12, 9)).astype(np.float32)
    small, factor = downsample(volume, 5)
    assert factor == 3 and small.shape == (4, 4, 3)
    padded = np.zeros((12, 12, 9), np.float32)
    padded[:10] = volume
    expected = padded.reshape(4, 3, 4, 3, 3, 3).mean(axis=(1, 3, 5))  # block means, zeros beyond the edge
    np.testing.assert_allclose(small, expected, rtol=1e-5)
    scale = float(small.max())
    np.testing.assert_array_equal(decode(encode(small, scale), small.shape),
                                  np.round(small / scale * 255).astype(np.uint8))


def test_non_finite_predictions_are_drawn_as_0_and_full_scale():
    volume = np.array([[[np.nan, -1.0, 0.5, np.inf, 2.0]]])
    np.testing.assert_array_equal(decode(encode(volume, 1.0), volume.shape), [[[0, 0, 128, 255, 255]]])


def test_lesion_centres_are_the_label_centres_in_page_voxels():
    from petbench.data.subject import LabelMap

    labels = np.zeros((16, 16, 16), np.uint8)
    labels[2:6, 8:12, 4:8] = 1   # centre (3.5, 9.5, 5.5)
    labels[10:12, 0:2, 14:16] = 2  # centre (10.5, 0.5, 14.5)
    subject = type("S", (), {"labels": {"lesions": LabelMap(labels, {1: "hot one", 2: "cold two"})}})()
    assert lesion_centres(subject, 1) == [{"name": "hot one", "z": 3, "y": 9, "x": 5},
                                          {"name": "cold two", "z": 10, "y": 0, "x": 14}]
    assert lesion_centres(subject, 2)[0] == {"name": "hot one", "z": 1, "y": 4, "x": 2}


@pytest.fixture(scope="module")
def small_results(tmp_path_factory):
    results = tmp_path_factory.mktemp("report") / "results"
    table1_results(results, seeds=(0,), methods=["lpet", "s3pet"])
    return results


PLAIN_PAGES: dict = {}
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # generated names in matplotlib titles
@settings(max_examples=10, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=TEXT, dataset=TEXT, mark=TEXT)
def test_record_text_stays_text(small_results, method, dataset, mark):
    """Whatever a record says (a method named ``</script><img onerror=…>``) shows as text: the page has the
    same tags and attributes as with plain names, and the embedded JSON reads back the same text."""
    host = helper_host()

    def page_of(name, dataset_name, marks):
        records = find_records(small_results)
        for record in records:
            record.data["dataset"]["name"] = dataset_name
            if record.method == "s3pet":
                record.data["method"]["name"] = name
                record.data["method"]["marks"] = marks
        return build_report(records, host, image_subjects="1", progress=False,
                            options=StatsOptions(shown=parse_stats("ci,holm,rank"), resamples=200)).html

    assume(method != "lpet" and dataset != "tiny")  # those would merge rows / find the dataset: another page
    # the plain page's dataset is not installed either, as the generated one is not
    if small_results not in PLAIN_PAGES:  # the page to compare with, made once
        PLAIN_PAGES[small_results] = Page(page_of("plain", "elsewhere", ["variant"]))
    plain, tricky = PLAIN_PAGES[small_results], Page(page_of(method, dataset, [mark]))
    # rows sort by name, so compare as multisets
    assert Counter(tricky.tags) == Counter(plain.tags)
    assert Counter(tricky.attributes) == Counter(plain.attributes)
    rows = json.loads(tricky.scripts["leaderboard-json"])["rows"]
    assert method in {row["method"] for row in rows}


def test_table1_page_fits_the_size_budget(tmp_path):
    """Table I's grid at its real size (the input and 7 methods, 20 test subjects) with volumes at the
    page's largest image size (64 voxels a side; bigger ones are downsampled to it), predictions with
    noise (which compresses worst): the page at the defaults stays within the budget."""
    from petbench.data.nifti import save_volume
    from petbench.testing.toys import TinyDataset

    results = tmp_path / "results"
    subjects = [f"tiny{i:03d}" for i in range(20)]
    methods = ["lpet", "cyclegan", "autocontext", "argan", "cvtgan", "semipet", "s3pet-dsmae", "s3pet"]
    dataset = TinyDataset(size=64, depth=64, n_subjects=20)
    rng = np.random.default_rng(1)
    spets = {sid: dataset.load(sid, ()) for sid in subjects[:4]}  # the page holds the first 4 by default
    for rank, method in enumerate(methods):
        record = fake_record(results, method, 0, {"psnr": list(20 + rank + rng.normal(0, 1, 20)),
                                                  "ssim": list(rng.uniform(0.7, 0.9, 20)),
                                                  "nmse": list(rng.uniform(0.05, 0.2, 20))}, subjects=subjects)
        record.data["dataset"]["options"] = {"size": 64, "depth": 64, "n_subjects": 20}
        record.save()
        for sid, subject in spets.items():
            noisy = subject.spet + rng.normal(0, 0.2, subject.spet.shape).astype(np.float32)
            save_volume(record.path / "predictions" / f"{sid}.nii.gz", noisy, subject.affine)
    report = build_report(find_records(results), helper_host(), progress=False)
    assert report.image_subjects == subjects[:4]
    assert len(json.loads(Page(report.html).scripts["petbench-volumes"])["subjects"][0]["columns"]) == 2 + 7
    print(f"Table I page at the defaults: {report.bytes} bytes")
    assert report.bytes <= SIZE_BUDGET_BYTES, report.bytes


def test_provenance_names_the_code_and_data_of_each_run(cli, tmp_path):
    made = table1_results(tmp_path / "results", seeds=(0,), methods=["lpet", "s3pet"])
    record = made["s3pet"][0]
    record.data["environment"] = {"petbench": "9.9.9", "plugins": ["petbench-s3pet==1.2.3"], "python": "3.11.7",
                                  "torch": "2.13.0", "git_commit": "0123abcd", "git_dirty": True}
    record.data["identity"] = {"dataset": {"fingerprint": {"name": "tiny", "options": {}, "generator_version": 1}}}
    record.save()
    out = tmp_path / "provenance.html"
    assert cli("report", "--out", str(out)).exit_code == 0
    header, *rows = Page(out.read_text()).tables["provenance-table"]
    row = dict(zip(header, next(r for r in rows if r[0] == record.run_id)))
    assert row["git commit"] == "0123abcd (with uncommitted changes)"
    assert (row["petbench"], row["plugins"]) == ("9.9.9", '["petbench-s3pet==1.2.3"]')
    assert row["environment"] == "python 3.11.7, torch 2.13.0"
    import hashlib
    fingerprint = json.dumps({"name": "tiny", "options": {}, "generator_version": 1}, sort_keys=True)
    assert row["dataset fingerprint"] == hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
    assert json.loads(row["protocol"])["n_test"] == 3 and row["seed"] == "0"
    other = dict(zip(header, next(r for r in rows if r[0] == made["lpet"][0].run_id)))
    assert other["git commit"] == "not recorded"


def test_runs_record_the_git_commit_of_a_work_tree():
    import subprocess

    import petbench
    from petbench.results.environment import git_state

    source = pathlib.Path(petbench.__file__).parent
    head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True)
    tracked = subprocess.run(["git", "-C", str(source), "ls-files", "--error-unmatch", "__init__.py"],
                             capture_output=True, text=True)
    if head.returncode != 0 or tracked.returncode != 0:
        assert git_state() == {}  # an installed release: nothing claimed
        return
    assert git_state()["git_commit"] == head.stdout.strip()
