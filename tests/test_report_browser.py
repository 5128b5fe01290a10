"""The report in a real browser: headless Chromium (the system's, driven by Playwright; nothing is
downloaded) opens the page offline, with every non-file request refused and counted, and a user's
actions do what the page says. Skips, saying why, where no Chromium or no Playwright is installed.
``PETBENCH_REPORT_SCREENSHOTS=DIR`` keeps the screenshots of each section in DIR."""
import json
import os
import pathlib
import shutil
import sys

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # --import-mode=importlib: make the helpers importable
from grid_helpers import helper_host  # noqa: E402
from report_helpers import lesion_host, table1_results  # noqa: E402

from petbench.cli import create_app  # noqa: E402

SECTIONS = ["leaderboard", "paper-tables", "distributions", "images", "curves", "provenance"]


def chromium() -> str | None:
    for name in (os.environ.get("PETBENCH_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium; or set PETBENCH_CHROMIUM); "
                    "the report's browser test needs one")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    table1_results(folder / "results")
    runner, app = CliRunner(), create_app(helper_host())
    out = folder / "report.html"
    result = runner.invoke(app, ["report", "--results", str(folder / "results"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    compare = runner.invoke(app, ["compare", "--results", str(folder / "results"), "--stats", "ci,holm,rank",
                                  "--format", "json"])
    return out, json.loads(compare.stdout)


def canvas_pixels(page, index: int = 0) -> str:
    return page.evaluate(f"document.querySelectorAll('#viewer-grid canvas[data-view=axial]')[{index}].toDataURL()")


def leaderboard_rows(page) -> list[list[str]]:
    return page.evaluate("""Array.from(document.querySelectorAll('#leaderboard-table tbody tr')).map(
        (tr) => Array.from(tr.cells).map((td) => td.querySelector('span.cell').textContent))""")


def test_the_page_in_chromium(browser, report, tmp_path):
    out, compare = report
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems, outside = [], []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    def refuse(route):
        if not route.request.url.startswith(("file:", "data:")):
            outside.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route("**/*", refuse)
    page.goto(out.as_uri())
    page.wait_for_selector("#viewer[data-ready='1']", timeout=20000)

    # the leaderboard shown is compare --format json's, cell for cell
    columns = compare["columns"]
    expected = [[row["label"] if c["kind"] == "label" else row["cells"][c["key"]]["text"] for c in columns]
                for row in compare["rows"]]
    assert page.evaluate("Array.from(document.querySelectorAll('#leaderboard-table th')).map((th) => th.textContent)") \
        == [c["title"] for c in columns]
    assert leaderboard_rows(page) == expected

    # sorting a column reorders the rows: PSNR ascending, then descending
    psnr = {row["label"]: row["values"]["psnr_mean"] for row in compare["rows"]}
    header = page.locator("#leaderboard-table th", has_text="PSNR [dB]")
    header.click()
    assert [r[0] for r in leaderboard_rows(page)] == sorted(psnr, key=psnr.get)
    header.click()
    assert [r[0] for r in leaderboard_rows(page)] == sorted(psnr, key=psnr.get, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"

    # the axial slider changes the slice shown (its label and every axial image)
    before, label = canvas_pixels(page), page.text_content("#slice-z-label")
    page.focus("#slice-z")
    page.keyboard.press("Home")
    assert page.text_content("#slice-z-label").startswith("0 /") and label != page.text_content("#slice-z-label")
    assert page.get_attribute("#viewer", "data-slice") == "0"
    assert canvas_pixels(page) != before
    # zoom and the SUV window change the images too
    unzoomed = canvas_pixels(page)
    page.select_option("#zoom", "4")
    assert canvas_pixels(page) != unzoomed

    # a strip plot's point opens its subject in the viewer
    page.locator("circle.point[data-subject='tiny008']").first.click()
    assert page.input_value("#subject-select") == "tiny008"

    shots = pathlib.Path(os.environ.get("PETBENCH_REPORT_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    for section in SECTIONS:
        page.locator(f"#{section}").screenshot(path=str(shots / f"{section}.png"))
        assert (shots / f"{section}.png").stat().st_size > 2000
    assert problems == [], problems
    assert outside == [], outside
    context.close()


def test_jump_to_a_lesion(browser, tmp_path):
    table1_results(tmp_path / "results", seeds=(0,), methods=["lpet", "s3pet"])
    out = tmp_path / "lesion.html"
    result = CliRunner().invoke(create_app(lesion_host()), ["report", "--results", str(tmp_path / "results"),
                                                            "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = browser.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(out.as_uri())
    page.wait_for_selector("#viewer[data-ready='1']", timeout=20000)
    assert page.eval_on_selector_all("#lesion-select option", "options => options.map((o) => o.textContent)") == \
        ["jump to a lesion…", "lesion 1 (z 3, y 4, x 4)"]  # the centre (3.5, 4.5, 4.5), in whole voxels
    before = canvas_pixels(page)
    page.select_option("#lesion-select", "0")
    assert [page.text_content(f"#slice-{axis}-label") for axis in "zyx"] == ["3 / 7", "4 / 15", "4 / 15"]
    assert page.input_value("#zoom") == "4" and canvas_pixels(page) != before
    assert problems == []
    page.close()
