"""End to end in a real browser: ``streamlit run app.py`` in a subprocess, driven by Playwright + Chromium.

The data home is filled first (MovieLens 100K imported from the shared copy, an EASE and an item-kNN
run), so the app starts straight into recommendations. Screenshots go to tests/screenshots/ (git-ignored);
small copies of the main pages go to docs/screenshots/ when they are missing or UPDATE_SCREENSHOTS=1.
The walks also check what a newcomer's demo of issue 21 exposed (items 1-9), each where a person would meet it.

This test fails (it does not skip) when Chromium or Playwright is missing (the chromium_browser fixture): CI installs both.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from homes import child_env

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "tests" / "screenshots"
DOC_SHOTS = REPO / "docs" / "screenshots"
START_TIMEOUT_S = 90
PAGE_TIMEOUT_MS = 120_000
MAP_TIMEOUT_MS = 360_000  # the first UMAP import and fit in the server process (numba compiles)
MAX_DOC_SHOT_BYTES = 300_000

pytestmark = pytest.mark.browser

# Screen position of the first point of the map's first trace (plotly's own axis conversions).
FIRST_POINT_JS = """() => {
  const plot = document.querySelector('.js-plotly-plot');
  const layout = plot._fullLayout, trace = plot._fullData[0], box = plot.getBoundingClientRect();
  return {x: box.left + layout._size.l + layout.xaxis.l2p(trace.x[0]), y: box.top + layout._size.t + layout.yaxis.l2p(trace.y[0])};
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with code {process.returncode} before it was healthy:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"streamlit was not healthy within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def _doc_copy(source: Path, name: str) -> None:
    """A small copy for the README: 1000 px wide, 256 colours, under 300 KB."""
    target = DOC_SHOTS / name
    if target.exists() and os.environ.get("UPDATE_SCREENSHOTS") != "1":
        return
    from PIL import Image

    DOC_SHOTS.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        image = image.convert("RGB")
        width = min(1000, image.width)
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    assert target.stat().st_size < MAX_DOC_SHOT_BYTES, f"{target} is {target.stat().st_size} bytes"


@pytest.fixture
def filled_home(_isolated_home, ml100k_dir):
    from recsys_core.datasets import fetch
    from recsys_core.experiment import DataSource, run_experiment
    from recsys_core.runs import load_run

    fetch("ml-100k", source=ml100k_dir)
    source = DataSource.builtin("ml-100k")
    data = source.load()
    run_experiment(data, "itemknn", seed=0, device="cpu", source=source)
    ease = run_experiment(data, "ease", seed=0, device="cpu", source=source, overrides={"l2": 500.0})
    # The Recommend page opens on the newest run (EASE) and the first user by id.
    expected = load_run(ease.run_id).recommend(1, k=10)
    return _isolated_home, ease.run_id, list(expected["title"])


@contextmanager
def _served(browser, home: Path, tmp_path: Path, offline_fetch: bool = False):
    """``streamlit run app.py`` on a free port with ``home`` as the data home, and a page of ``browser`` (the
    chromium_browser fixture) on it: yields (page, base url, server log). The log must hold no traceback
    when the server stops. ``offline_fetch``: the Data page's Fetch imports from the shared copies
    (tests/serve_offline.py)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = tmp_path / "streamlit.log"
    env = child_env(home, PYTHONUNBUFFERED="1")
    launcher = [str(REPO / "tests" / "serve_offline.py")] if offline_fetch else ["-m", "streamlit"]
    command = [sys.executable, *launcher, "run", "app.py", "--server.headless", "true", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(port, process, log)
        page = browser.new_page(viewport={"width": 1280, "height": 960})  # in a context of its own, closed with it
        try:
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            yield page, f"http://127.0.0.1:{port}", log
        finally:
            page.close()
    finally:
        _stop(process)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _open_in_sidebar(page, title: str) -> None:
    """Go to a page through the sidebar, as a person does: the browser session (and the active data) stays."""
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` (a part of its text) in the selectbox labelled ``label``."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.locator('[role="option"]', has_text=option).first.click()


def _multichoose(page, label: str, option: str) -> None:
    """Add ``option`` (a part of its text) to the multiselect labelled ``label``."""
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text=label).first.locator("input").first
    box.click()
    box.fill(option)
    page.locator('[role="option"]', has_text=option).first.click()
    page.keyboard.press("Escape")


def _tick(page, label: str) -> None:
    """Tick the checkbox labelled ``label`` by clicking its label, as a person does."""
    page.locator('[data-testid="stCheckbox"]').filter(has_text=label).first.locator("label").first.click()


def _table(page, column: str) -> dict[str, list[str]]:
    """The first table with a column headed ``column``, read from the grid's accessible cells: header -> cells.
    The grid renders the columns in view only: keep the asked-for ones in view."""
    grid = page.locator('[data-testid="stDataFrame"]').filter(has=page.locator('[role="columnheader"]', has_text=column)).first
    grid.locator('[role="gridcell"]').first.wait_for(state="attached")
    rows = grid.locator('[role="row"]')
    header = [text.strip() for text in rows.first.locator('[role="columnheader"]').all_inner_texts()]
    cells = [[text.strip() for text in rows.nth(i).locator('[role="gridcell"]').all_inner_texts()] for i in range(1, rows.count())]
    return {name: [row[j] for row in cells if j < len(row)] for j, name in enumerate(header)}


def _significant_digits(number: str) -> int:
    """How many significant digits a printed number shows ("0.000555" and "5.55e-05": 3)."""
    mantissa = re.split("[eE]", number.lstrip("+-"))[0].replace(".", "").lstrip("0")
    return len(mantissa)


def test_app_in_a_real_browser(filled_home, tmp_path, chromium_browser):
    home, run_id, titles = filled_home
    with _served(chromium_browser, home, tmp_path) as (page, base, log):
        page.goto(base + "/")
        page.get_by_text("Recsys Explorer").first.wait_for()
        page.locator('[role="gridcell"]').first.wait_for(state="attached")
        page.locator('[role="gridcell"]', has_text="Because you liked").first.wait_for(state="attached")
        # The sidebar calls the home page "Home" (st.navigation), not after the script "app".
        page.locator('[data-testid="stSidebarNav"]').get_by_text("Home", exact=True).wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "home.png"))
        # Item 5: a run's name carries the score the best-run rule judges it by, its protocol named (never the
        # sampled HR@10), and the sidebar names the best run by that rule.
        sidebar = page.locator('[data-testid="stSidebar"]')
        run_line = sidebar.locator("p", has_text="Run:").first.inner_text()
        assert re.search(r"EASE · ml-100k · .* · HR@10 \d\.\d{3}, full ranking$", run_line), run_line
        sidebar.get_by_text(re.compile(r"^Best run: ")).first.wait_for()
        assert "sampled" not in sidebar.inner_text()

        page.goto(base + "/Recommend")
        page.get_by_text("Top 10 from EASE").first.wait_for()
        # The table is a canvas grid; its accessible cells carry the text.
        page.locator('[role="gridcell"]', has_text=titles[0]).first.wait_for(state="attached")
        page.locator('[role="gridcell"]', has_text="Because you liked").first.wait_for(state="attached")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "recommend.png"))

        page.goto(base + "/Compare")
        page.get_by_text("Leaderboard").first.wait_for()
        page.get_by_text("is better").first.wait_for()
        page.get_by_text(re.compile(r"^Best run: .*full ranking")).first.wait_for()
        page.get_by_text("Best run = the highest test score on the full ranking", exact=False).first.wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "compare.png"))
        beyond = page.get_by_role("heading", name="Beyond accuracy").first
        beyond.scroll_into_view_if_needed()
        page.locator(".js-plotly-plot").nth(1).wait_for()
        page.evaluate("window.scrollBy(0, -40)")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "compare-beyond.png"))

        page.goto(base + "/Inside")
        page.get_by_text("Inside the model").first.wait_for()
        page.locator(".js-plotly-plot").first.wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "inside.png"))

        # Tune mode: an 8-trial EASE study, its live table and Optuna's plots (eight trials, several seconds, so that
        # the once-a-second progress line is seen while the search runs: three took 1.6 s and could be missed).
        page.goto(base + "/Train")
        page.get_by_text("Device:").first.wait_for()
        page.locator('[data-testid="stRadio"]').filter(has_text="Mode").get_by_text("Tune", exact=True).click()
        page.get_by_text("Model to tune").first.wait_for()
        _choose(page, "Model to tune", "ease")
        page.locator('[role="gridcell"]', has_text="λ of EASE").first.wait_for(state="attached")
        trials = page.get_by_role("spinbutton", name="Trials")
        trials.fill("8")
        trials.press("Enter")
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Tune", exact=True).click()
        # Item 7: the running search says which trial of how many runs and the time left (from the trials done),
        # and the stored study's "No study yet" box is gone while it runs.
        page.get_by_text(re.compile(r"^Trial [2-8] of 8 · .* · (about \d+:\d\d|under a second) left$")).first.wait_for(timeout=MAP_TIMEOUT_MS)
        assert page.get_by_text("No study for this model").count() == 0
        page.get_by_role("heading", name="Study ml-100k").first.wait_for(timeout=MAP_TIMEOUT_MS)
        # The study's table fills in as trials finish: wait for all eight.
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('[role=gridcell]')).filter(c => c.textContent.includes('COMPLETE')).length >= 8",
            timeout=MAP_TIMEOUT_MS,
        )
        page.locator(".js-plotly-plot").first.wait_for()
        best = page.locator("p", has_text="Best so far:").first.inner_text()
        settings = re.findall(r"(\w+)=([-+.\deE]+)", best)
        assert settings and all(_significant_digits(value) <= 3 for _, value in settings), best
        page.wait_for_timeout(2000)
        page.screenshot(path=str(SHOTS / "tune.png"))

        page.set_viewport_size({"width": 1280, "height": 1300})
        page.goto(base + "/Embeddings")
        plot = page.locator(".js-plotly-plot").first
        plot.wait_for(timeout=MAP_TIMEOUT_MS)
        plot.locator("canvas").first.wait_for(state="attached")
        # First the instant PCA preview, then the page switches itself to the UMAP map when it is ready.
        page.get_by_text("saved beside the run").first.wait_for(timeout=MAP_TIMEOUT_MS)
        plot = page.locator(".js-plotly-plot").first
        plot.locator("canvas").first.wait_for(state="attached")
        assert page.locator(".js-plotly-plot .legend").count() >= 1
        page.wait_for_timeout(2500)
        plot.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "embeddings.png"))
        # Click the first point of the first trace: the page shows that item and its neighbours.
        point = page.evaluate(FIRST_POINT_JS)
        page.mouse.click(point["x"], point["y"])
        page.get_by_text("Nearest items").first.wait_for()
        page.locator('[role="gridcell"]').first.wait_for(state="attached")
        # Item 9: the clicked point's neighbours are marked on the map itself, not only listed below it.
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.js-plotly-plot')).some(p => (p._fullData || []).some(t => String(t.name).startsWith('nearest 10 to')))"
        )
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "embeddings-selected.png"))
        assert (home / "runs" / run_id / "map-items.npz").exists()

        # Item 1: before a run, each chosen model's expected time: EASE's from the earlier run, GMF's (no
        # earlier run) from a short measured probe; during the run the progress line's time left in all.
        page.set_viewport_size({"width": 1280, "height": 960})
        _open_in_sidebar(page, "Train")
        page.get_by_text("Device:").first.wait_for()
        expected = _table(page, "expected time")
        assert expected["model"] == ["ease"] and re.fullmatch(r"about \d+:\d\d|under a second", expected["expected time"][0]), expected
        assert "earlier run on this data" in expected["estimated from"][0], expected
        _multichoose(page, "Models", "gmf")
        page.get_by_role("button", name=re.compile(r"^Measure gmf here")).click()
        page.locator('[role="gridcell"]', has_text="probe on this data").first.wait_for(state="attached")
        expected = _table(page, "expected time")
        assert expected["model"] == ["ease", "gmf"], expected
        assert all(re.fullmatch(r"about \d+:\d\d|under a second", text) for text in expected["expected time"]), expected
        page.get_by_text("Settings of gmf").first.click()
        epochs = page.get_by_role("spinbutton", name="epochs")
        epochs.fill("6")
        epochs.press("Enter")
        # The probe measured GMF's 20 epochs: with 6 it no longer says, and offers to measure again.
        page.locator('[role="gridcell"]', has_text="not known yet").first.wait_for(state="attached")
        page.get_by_role("button", name=re.compile(r"^Measure gmf here")).wait_for()
        assert _table(page, "expected time")["expected time"] == [expected["expected time"][0], "not known yet"]
        page.get_by_role("button", name="Train", exact=True).click()
        page.get_by_text(re.compile(r"gmf \(2 of 2\) · .*epoch .*(about \d+:\d\d|under a second) left in all")).first.wait_for(timeout=MAP_TIMEOUT_MS)
        page.screenshot(path=str(SHOTS / "train-running.png"))
        page.get_by_text("Trained in this session").first.wait_for(timeout=MAP_TIMEOUT_MS)
        assert page.get_by_text("Training was cancelled").count() == 0
    for name in ("home", "recommend", "compare", "embeddings", "compare-beyond", "inside", "tune"):
        _doc_copy(SHOTS / f"{name}.png", f"{name}.png")


@pytest.fixture
def drugs_home(_isolated_home, ml100k_dir, drugs_sample_dir):
    """Both data sets fetched, no run yet: the walkthrough trains its own."""
    from recsys_core.datasets import fetch

    fetch("ml-100k", source=ml100k_dir)
    fetch("drugscom-sample", source=drugs_sample_dir)
    return _isolated_home


def test_drug_walkthrough_in_a_real_browser(drugs_home, tmp_path, chromium_browser):
    """Choose the drug data, train a quick model, a condition's drugs with evidence, then a drug's conditions."""
    from recsys_core.runs import RunRecord, list_runs

    with _served(chromium_browser, drugs_home, tmp_path) as (page, base, log):
        page.set_viewport_size({"width": 1600, "height": 1000})  # room for the evidence columns
        page.goto(base + "/")
        page.get_by_text("Recsys Explorer").first.wait_for()
        # Item 2: the first visit shows popularity's top 10 for the sample user at once, then EASE's in its place.
        page.get_by_text(re.compile(r"^Meanwhile: the most popular items for user \d+$")).first.wait_for()
        page.locator('[role="gridcell"]').first.wait_for(state="attached")
        page.get_by_text("Top 10 for a sample user").first.wait_for()
        page.locator('[role="gridcell"]', has_text="Because you liked").first.wait_for(state="attached")
        assert page.get_by_text("Meanwhile: the most popular").count() == 0
        assert re.search(r"Run EASE · ml-100k · .*, full ranking", page.get_by_text("tested on").first.inner_text())

        _open_in_sidebar(page, "Data")
        _choose(page, "Data set", "(drugscom-sample)")
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("drugscom-sample").first.wait_for()
        page.get_by_text("not medical advice").first.wait_for()
        # Item 8: one status in the sidebar; every review by class, the positive rule marked between the classes.
        page.get_by_role("heading", name="Ratings of all reviews, and the positive rule").first.wait_for()
        page.locator(".annotation-text", has_text="positive rule: rating ≥ 7").first.wait_for()
        page.get_by_text(re.compile(r"^positive: [\d,]+ · neutral: [\d,]+ · negative: [\d,]+\. Positive reviews")).first.wait_for()
        ticks = " ".join(page.locator(".js-plotly-plot .xtick text").all_text_contents())
        assert all(kind in ticks for kind in ("positive", "neutral", "negative")), ticks
        page.wait_for_timeout(1000)
        assert sidebar.get_by_text("Dataset:").count() == 1 and sidebar.locator("p", has_text="Run:").count() <= 1
        page.get_by_role("heading", name="Ratings of all reviews, and the positive rule").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "data-drugs.png"))

        _open_in_sidebar(page, "Train")
        page.get_by_text("Data: drugscom-sample").first.wait_for()
        page.get_by_role("button", name="Train", exact=True).click()
        # Training runs in the background: opening another page neither stops it nor loses its run.
        page.get_by_text("goes on while you open other pages").or_(page.get_by_text("Trained in this session")).first.wait_for()
        _open_in_sidebar(page, "Data")
        page.get_by_text("not medical advice").first.wait_for()
        _open_in_sidebar(page, "Train")
        page.get_by_text("Trained in this session").first.wait_for()
        assert page.get_by_text("Training was cancelled").count() == 0
        page.get_by_text("EASE · drugscom-sample").first.wait_for()

        _open_in_sidebar(page, "Recommend")
        page.get_by_text("Part 1 · Drugs reviewed for").first.wait_for()
        page.get_by_text("Part 2 · Not yet reviewed for").first.wait_for()
        # Each drug's rank for the condition in words and the reviews' evidence beside it (the grid
        # only renders the columns in view, so the review counts are checked and not the snippets).
        page.locator('[role="gridcell"]', has_text="ranked").first.wait_for(state="attached")
        page.locator('[role="columnheader"]', has_text="Strength").first.wait_for(state="attached")
        headers = [text.strip() for text in page.locator('[role="columnheader"]').all_inner_texts()]
        assert "Reviews" in headers and "positive" in headers and "negative" in headers, headers
        # Item 9: the negative-reviews flag right after the drug's name, in view without scrolling.
        assert headers[headers.index("Drug") + 1] == "Flag", headers
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "recommend-drugs.png"))

        page.get_by_text("A drug (reverse: which conditions)").first.click()
        page.get_by_text("Part 1 · Conditions").first.wait_for()
        page.get_by_text("is reviewed for").first.wait_for()
        page.locator('[role="columnheader"]', has_text="Condition").first.wait_for(state="attached")
        page.locator('[role="gridcell"]', has_text="ranked").first.wait_for(state="attached")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "recommend-drug-reverse.png"))
    trained = [r for r in list_runs() if isinstance(r, RunRecord) and r.dataset.name == "drugscom-sample"]
    assert [r.model.name for r in trained] == ["ease"] and trained[0].dataset.positive_rule.threshold == 7.0
    _doc_copy(SHOTS / "recommend-drugs.png", "recommend-drugs.png")


def test_fetch_then_upload_on_a_fresh_home_in_a_real_browser(_isolated_home, tmp_path, chromium_browser):
    """Issue 21 item 4: fetch a built-in data set on the Data page of an empty data home, then upload a file."""
    with _served(chromium_browser, _isolated_home, tmp_path, offline_fetch=True) as (page, base, log):
        page.goto(base + "/Data")
        page.get_by_text("Built-in data sets").first.wait_for()
        _choose(page, "Data set", "(drugscom-sample)")
        page.get_by_role("button", name="Fetch drugscom-sample").click()
        page.get_by_text("drugscom-sample is fetched and is the active data").first.wait_for()
        page.get_by_role("tab", name="Upload your own file").click()
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
            str(REPO / "tests" / "fixtures" / "user_files" / "plays.tsv")
        )
        page.get_by_text("Which column is what?").first.wait_for()
        page.wait_for_timeout(1000)
        assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]').first.inner_text()
        assert page.get_by_text("unknown data set").count() == 0

        # Item 6: a realistic export with blank star ratings is refused with their count, then loaded with
        # "Drop rows with a blank rating" ticked, the dropped rows in the row accounting.
        rows = ["user,item,stars"] + [f"{u},{i},{(u + i) % 5 + 1 if (u * 7 + i) % 9 else ''}" for u in range(1, 9) for i in range(1, 9)]
        blank = sum(1 for row in rows[1:] if row.endswith(","))
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
            {"name": "export.csv", "mimeType": "text/csv", "buffer": ("\n".join(rows) + "\n").encode()}
        )
        page.get_by_text("export.csv").first.wait_for()
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Use this data").click()
        refusal = page.locator('[data-testid="stAlertContentError"]').filter(has_text="is empty in").first
        refusal.wait_for()
        assert f"and {blank - 1} more rows" in refusal.inner_text() and f"drop the {blank} rows with a blank rating" in refusal.inner_text()
        _tick(page, "Drop rows with a blank rating")
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Use this data").click()
        page.get_by_text("export is now the active data").first.wait_for()
        account = _table(page, "rows read")
        assert account["rows read"] == ["64"] and account["dropped: blank stars"] == [str(blank)], account
        page.locator('[data-testid="stDataFrame"]').filter(has=page.locator('[role="columnheader"]', has_text="rows read")).first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "upload-blank-ratings.png"))
