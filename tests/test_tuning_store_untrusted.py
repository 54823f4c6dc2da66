"""The tuning store is untrusted like a saved run: clear messages, no writes through links, one search per study.

Each case has its own store: damaged (garbage, zeroed, truncated), a folder in its place, linked out of the
data home, read-only. Each ends in one TuningStoreError naming the store and the way out, in the CLI and in
the app's Tune mode, and leaves the store (and whatever a link points at) as it was. Two searches of one
study never run at once, and a resumed search does not repeat its first trials.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from recsys_core import tuning
from recsys_core.experiment import DataSource
from recsys_core.home import data_home
from recsys_core.tuning import TuningStoreError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def small(ml100k):
    return ml100k.subset(np.flatnonzero(ml100k.user < 150), name="ml-100k-small")


def _store() -> Path:
    return data_home() / "studies" / "studies.db"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _real_store(small) -> Path:
    tuning.run_study(small, "ease", "loo-sampled", trials=1, seed=0, device="cpu")
    return _store()


def _cli(args):
    from recsys_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def _garbage(small):
    _store().parent.mkdir(parents=True, exist_ok=True)
    _store().write_bytes(b"this is not a database\n" * 100)


def _zeroed(small):
    _store().parent.mkdir(parents=True, exist_ok=True)
    _store().write_bytes(b"\0" * 8192)


def _header_cut_short(small):
    _store().parent.mkdir(parents=True, exist_ok=True)
    _store().write_bytes(b"SQLite fo")  # the start of SQLite's 16-byte header, and nothing after it


def _truncated(small):
    path = _real_store(small)
    path.write_bytes(path.read_bytes()[:3000])


DAMAGED = [
    (_garbage, "is damaged: it is not an SQLite database"),
    (_zeroed, "is damaged: it is not an SQLite database"),
    (_header_cut_short, "is damaged: it is not an SQLite database"),
    (_truncated, "is damaged"),
]


@pytest.mark.parametrize(("damage", "message"), DAMAGED, ids=["garbage", "zeroed", "header-cut-short", "truncated"])
def test_a_damaged_store_is_one_clear_message_and_stays_as_it_was(small, damage, message):
    damage(small)
    before = _digest(_store())
    with pytest.raises(TuningStoreError, match=message) as caught:
        tuning.list_studies()
        tuning.run_study(small, "ease", "loo-sampled", trials=1, seed=0, device="cpu")
    assert "move the file aside" in caught.value.hint.lower()
    with pytest.raises(TuningStoreError, match=message):
        tuning.run_study(small, "ease", "loo-sampled", trials=1, seed=0, device="cpu")
    assert _digest(_store()) == before


def test_the_cli_says_the_store_is_damaged_without_a_traceback(ml100k_dir):
    from recsys_core.datasets import fetch

    fetch("ml-100k", source=ml100k_dir)
    _zeroed(None)
    code, out, err = _cli(["tune", "--dataset", "ml-100k", "--model", "ease", "--trials", "1", "--device", "cpu"])
    assert code != 0 and "the tuning store" in err and "is damaged" in err and "Traceback" not in err, err


def test_a_folder_in_place_of_the_store_is_refused():
    _store().mkdir(parents=True)
    with pytest.raises(TuningStoreError, match="studies.db is a folder, not a regular file"):
        tuning.list_studies()


def test_a_store_linked_out_of_the_home_is_never_written(small, tmp_path):
    outside = tmp_path / "outside.db"
    outside.write_bytes(b"")
    _store().parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, _store())
    with pytest.raises(TuningStoreError, match="studies.db is a symbolic link, not a regular file"):
        tuning.run_study(small, "ease", "loo-sampled", trials=1, seed=0, device="cpu")
    assert outside.read_bytes() == b""


def test_a_studies_folder_linked_out_of_the_home_is_never_written(small, tmp_path):
    outside = tmp_path / "studies-elsewhere"
    outside.mkdir()
    os.symlink(outside, data_home() / "studies")
    with pytest.raises(TuningStoreError, match="studies is a symbolic link, not a folder"):
        tuning.run_study(small, "ease", "loo-sampled", trials=1, seed=0, device="cpu")
    assert list(outside.iterdir()) == []


def test_a_read_only_store_is_a_clear_message(small, monkeypatch):
    path = _real_store(small)
    before = _digest(path)
    path.chmod(0o444)
    real_access = os.access
    if real_access(path, os.W_OK):  # root ignores file modes: report what an ordinary user would see
        monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == path and mode == os.W_OK else real_access(p, mode, **k))
    with pytest.raises(TuningStoreError, match="studies.db is read-only"):
        tuning.run_study(small, "ease", "loo-sampled", trials=1, seed=0, device="cpu")
    assert _digest(path) == before


def test_a_search_in_another_thread_of_the_same_process_is_refused_too():
    """Two browser tabs of one app server search in two threads of one process: the second is refused,
    while the search holding the lock may take it again (tune → run_study)."""
    import threading

    held, release, refused = threading.Event(), threading.Event(), []

    def first_tab():
        with tuning.study_lock("a-study"), tuning.study_lock("a-study"):  # re-entered by its own search
            held.set()
            release.wait(30)

    thread = threading.Thread(target=first_tab)
    thread.start()
    try:
        assert held.wait(30)
        with pytest.raises(TuningStoreError, match="is running in another process or browser tab"):
            with tuning.study_lock("a-study"):
                refused.append(False)
    finally:
        release.set()
        thread.join(30)
    assert refused == []
    with tuning.study_lock("a-study"):  # free again once the first search ends
        pass


def test_a_second_search_of_the_same_study_is_refused_while_one_runs(small):
    name = tuning.study_name(small, "ease", "loo-sampled", 0)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from recsys_core import tuning
            with tuning.study_lock({name!r}):
                print("held", flush=True)
                time.sleep(60)
        """),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(TuningStoreError, match="a search of the study .* is running in another process"):
            tuning.tune(small, "ease", "loo-sampled", trials=1, seed=0, device="cpu")
        assert time.monotonic() - started < 30  # refused at once, not after waiting
        assert tuning.list_studies() == []  # nothing was sampled, no run saved
        from recsys_core.runs import list_runs

        assert list_runs() == []
    finally:
        holder.kill()
        holder.wait()
    tuning.run_study(small, "ease", "loo-sampled", trials=1, seed=0, device="cpu")  # the lock went with its process


def test_a_resumed_search_does_not_repeat_its_trials(small):
    first = tuning.run_study(small, "ease", "loo-sampled", trials=3, seed=0, device="cpu")
    second = tuning.run_study(small, "ease", "loo-sampled", trials=3, seed=0, device="cpu")
    values = [round(t.params["l2"], 9) for t in second.trials]
    assert len(second.trials) == 6 and len(set(values)) == 6, values
    assert first.study_name == second.study_name


def test_the_tune_mode_shows_a_damaged_store_as_one_message(ml100k_dir):
    from recsys_core.datasets import fetch

    fetch("ml-100k", source=ml100k_dir)
    _garbage(None)
    before = _digest(_store())
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app_pages" / "2_Train.py"), default_timeout=300)
    at.session_state["source"] = DataSource.builtin("ml-100k").to_json()
    at.run()
    at.radio(key="train_mode").set_value("Tune").run()
    at.selectbox(key="tune_model").set_value("ease").run()
    assert not at.exception, [e.message for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "The tuning store cannot be read" in errors[0] and "is damaged" in errors[0], errors
    at.number_input(key="tune_trials").set_value(1).run()
    at.button(key="tune_start").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("is damaged" in e.value for e in at.error)
    assert _digest(_store()) == before
