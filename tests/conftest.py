"""Shared fixtures: the real data beside the checkout, a private data home per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test writes into its own data home, never into the repository's artifacts/."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("RECSYS_HOME", str(home))
    # Saving a run in the app starts its UMAP maps in the background: not on the test machine's cores.
    monkeypatch.setenv("RECSYS_MAPS_ON_SAVE", "0")
    yield home


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
