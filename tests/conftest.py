"""Shared fixtures, each written once: the real data beside the checkout, the data home (a private one per
test, :func:`temporary_data_home` for a module's shared runs; tests/homes.py for a child process's), and the
one Chromium of the browser tests (:func:`chromium_browser`).

Test modules import the helpers beside them by module name (``from model_contract import ModelContract``,
``from homes import child_env``): pytest puts tests/ on the path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test writes into its own data home, never into the repository's artifacts/."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("RECSYS_HOME", str(home))
    # Saving a run in the app starts its UMAP maps in the background: not on the test machine's cores.
    monkeypatch.setenv("RECSYS_MAPS_ON_SAVE", "0")
    yield home


@pytest.fixture(scope="session")
def temporary_data_home(tmp_path_factory):
    """``with temporary_data_home("inside-home") as home:`` a fresh data home as RECSYS_HOME for the block,
    the previous value restored after it. For module-scoped fixtures (shared runs), which pytest builds
    before the per-test home of :func:`_isolated_home`; a test then points at ``home`` with
    ``monkeypatch.setenv("RECSYS_HOME", str(home))``."""

    @contextmanager
    def use(name: str = "home") -> Iterator[Path]:
        home = tmp_path_factory.mktemp(name)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RECSYS_HOME", str(home))
            yield home

    return use


@pytest.fixture(scope="session")
def chromium_browser():
    """One headless Chromium (Playwright) for every browser test of the session; a test opens its own page or
    context and closes it. Fails, never skips, when Chromium or Playwright is missing: CI installs both."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is needed for the browser tests and is not at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need the playwright package (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    path = SHARED_DATA / "ml-100k"
    assert (path / "u.data").exists(), f"the real MovieLens 100K files are expected at {path}"
    return path


@pytest.fixture(scope="session")
def drugs_sample_dir() -> Path:
    path = SHARED_DATA / "drugscom-sample"
    assert (path / "drugsComTrain.tsv").exists(), f"the Drugs.com sample is expected at {path}"
    return path


@pytest.fixture(scope="session")
def ml100k():
    """MovieLens 100K read from the original GroupLens files (loaded once per session)."""
    from recsys_core.datasets import read_ml100k

    return read_ml100k(SHARED_DATA / "ml-100k")


@pytest.fixture(scope="session")
def drugs_sample():
    from recsys_core.datasets import read_drugscom

    return read_drugscom(SHARED_DATA / "drugscom-sample", name="drugscom-sample")


@pytest.fixture
def finish_training():
    """``finish_training(at)``: wait for the background training an AppTest session started on the Train page
    (webapp.train_jobs), then rerun the page, as its once-a-second refresh does in the browser."""

    def finish(at, timeout: float = 300):
        from webapp import train_jobs

        job = train_jobs.job_for(at.session_state["train_session_key"])
        assert job is not None, "no training was started"
        assert job.finished.wait(timeout), f"the training did not finish within {timeout} s"
        return at.run()

    return finish


os.environ.setdefault("PYTHONHASHSEED", "0")
