"""The demo polish: page navigation, run names, the first fit's progress, the sample user's profile, no emoji.

Pure helpers are tested directly; the page behaviour is driven with AppTest in a temporary data home.
"""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # webapp/ is not an installed package; `streamlit run` has the repo on its path
    sys.path.insert(0, str(REPO))

from recsys_core.runs import RunRecord  # noqa: E402
from webapp import data_ui, home_ui, navigation, run_labels  # noqa: E402

EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u26ff\u2700-\u27bf\u2b00-\u2bff\ufe0f]")


def record(**changes) -> dict:
    base = {
        "run_id": "20261123-092156-ml-100k-ease-75850a",
        "model": "ease",
        "dataset": {"name": "ml-100k"},
        "created": "2026-11-23T09:21:56.123456",
        "protocol": "loo-sampled",
        "headline": "HR@10",
        "metrics": {"HR@10": 0.6691},
    }
    return {**base, **changes}


def test_run_label_names_model_data_time_and_score():
    today = date(2026, 11, 23)
    label = run_labels.run_label
    # A leave-one-out run is named by its full-ranking HR@10 (the score the best-run rule uses), never the sampled one.
    tested = record(test={"loo-sampled": {"metrics": {"HR@10": 0.6691}}, "loo-full": {"metrics": {"HR@10": 0.1336}}})
    assert label(RunRecord.from_json(tested), today=today) == "EASE · ml-100k · 09:21 · HR@10 0.134, full ranking"
    assert label(RunRecord.from_json(tested), today=date(2026, 11, 24)) == "EASE · ml-100k · 23 Nov 09:21 · HR@10 0.134, full ranking"
    # An old run tested only on the sampled protocol: its score, named as sampled.
    assert label(RunRecord.from_json(record()), today=today) == "EASE · ml-100k · 09:21 · HR@10 0.669, sampled"
    other = record(model="multvae", protocol="heldout-users", headline="Recall@20", metrics={"Recall@20": 0.4321})
    assert label(RunRecord.from_json(other), today=today) == "Mult-VAE · ml-100k · 09:21 · Recall@20 0.432, held-out users"
    # A run without a time or a score still gets a readable, distinguishable name.
    bare = label(RunRecord.from_json(record(created="", metrics={})), today=today)
    assert bare == "EASE · ml-100k · 75850a · no test score"


def listed_pages() -> list[tuple[str, str, str, bool]]:
    """navigation.app_pages() as (title, icon, url path, default), made inside a script run (st.Page needs one)."""
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from webapp import navigation

        st.session_state["listed"] = [(p.title, p.icon, p.url_path, p._default) for p in navigation.app_pages()]

    at = AppTest.from_function(script).run()
    assert not at.exception, [e.message for e in at.exception]
    return at.session_state["listed"]


def test_navigation_lists_every_page_file_once_with_a_material_icon():
    listed = listed_pages()
    titles = [title for title, _, _, _ in listed]
    assert titles == ["Home", "Data", "Train", "Recommend", "Compare", "Embeddings", "Inside"]
    assert [default for _, _, _, default in listed] == [True] + [False] * (len(listed) - 1)
    # One list of pages: every page script in the folder is in it, once, by the name Streamlit would infer.
    files = sorted(navigation.PAGES_DIR.glob("*.py"), key=lambda path: int(path.stem.split("_", 1)[0]))
    assert [path.stem.split("_", 1)[1] for path in files] == titles
    assert [url for _, _, url, _ in listed][1:] == titles[1:]
    assert all(icon.startswith(":material/") for _, icon, _, _ in listed)


def test_a_first_request_for_a_page_goes_through_the_router():
    """On a fresh server whose first request was a page URL (/Data), Streamlit ran that page under its older layout
    for a pages/ folder beside the main script, and the sidebar listed "app" and the page files instead of "Home".
    The page scripts are not in pages/, so every request, the first included, goes through app.py's st.navigation."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    assert not (REPO / "pages").exists(), "a pages/ folder beside app.py brings back Streamlit's older page layout"
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240)
    at.switch_page("app_pages/1_Data.py")  # the first request is the Data page's
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert PagesManager.uses_pages_directory is False  # st.navigation ran: the sidebar is navigation's list
    assert at.title[0].value == "Data" and at.selectbox(key="data_builtin").value == "ml-100k"


def test_no_emoji_in_the_app_sources():
    """Emoji render as empty boxes without an emoji font (Debian's chromium): Material icons only."""
    files = [REPO / "app.py", *sorted((REPO / "app_pages").glob("*.py")), *sorted((REPO / "webapp").glob("*.py"))]
    found = [f"{f.name}:{n}" for f in files for n, line in enumerate(f.read_text().splitlines(), 1) if EMOJI.search(line)]
    assert not found, found


def test_app_sidebar_calls_the_home_page_home(ml100k_dir):
    from streamlit.testing.v1 import AppTest

    from recsys_core.datasets import fetch

    fetch("ml-100k", source=ml100k_dir, progress=False)
    assert "st.navigation(navigation.app_pages())" in (REPO / "app.py").read_text()
    assert 'title="Home"' in (REPO / "webapp" / "navigation.py").read_text()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240).run()
    assert not at.exception, [e.message for e in at.exception]
    links = at.get("page_link")
    assert [link.proto.page for link in links] == [title for title, _, _, _ in listed_pages()][1:]
    assert all(link.proto.icon.startswith(":material/") for link in links)


def test_first_fit_watch_follows_the_trainer_stages():
    from recsys_core.fit_context import TrainingEvent

    watch = home_ui.FitWatch()
    assert watch.stage == "splitting"
    watch(TrainingEvent("start", phase="split", message="100,000 interactions for loo-sampled"))
    assert watch.stage == "splitting"
    watch(TrainingEvent("start"))
    assert watch.stage == "fitting"
    watch(TrainingEvent("epoch"))
    assert watch.stage == "fitting"
    watch(TrainingEvent("end"))
    assert watch.stage == "testing"
    watch(TrainingEvent("start", phase="test", message="loo-full (2 of 2)"))
    assert watch.stage == "testing"
    starts = [home_ui.STAGE_START[s] for s in ("splitting", "fitting", "testing")]
    assert starts == sorted(starts) and starts[-1] < 1.0


def test_profile_text_on_movielens(ml100k):
    user = 0
    info = ml100k.user_info.iloc[user]
    text = home_ui.profile_text(ml100k, user)
    assert f"aged {int(info['age'])}" in text and str(info["occupation"]) in text
    assert text.split(",")[0] in ("man", "woman")


def test_profile_text_without_user_table_and_with_age_codes(ml100k):
    from types import SimpleNamespace

    assert home_ui.profile_text(SimpleNamespace(user_info=None), 0) is None
    coded = SimpleNamespace(user_info=pd.DataFrame({"age": [25, 1], "gender": ["F", "M"], "occupation": ["writer", "K-12 student"]}))
    assert home_ui.profile_text(coded, 0) == "woman, 25–34, writer"
    assert home_ui.profile_text(coded, 1) == "man, under 18, K-12 student"


@pytest.fixture
def fitted_ease(ml100k):
    from recsys_core.experiment import run_experiment
    from recsys_core.runs import load_run

    result = run_experiment(ml100k, "ease", protocol="loo-sampled", seed=0)
    return load_run(result.run_id)


def test_top_with_reasons_matches_the_core(fitted_ease, ml100k):
    from recsys_core import explain

    table = explain.recommendations_with_reasons(fitted_ease, ml100k, user=3, k=10)
    assert len(table) == 10 and table["because"].str.startswith("Because you liked ").all()
    items, ratings = explain.user_item_ratings(ml100k, 3)
    expected = explain.explain(fitted_ease.model, items, table["item_index"].to_numpy(), fitted_ease.item_titles(), ratings, 5.0)
    assert table["because"].tolist() == expected["because"].tolist()
    assert np.all(np.diff(table["score"].to_numpy()) <= 0)


def test_a_new_run_does_not_replace_the_active_run_and_the_best_is_offered(ml100k_dir, finish_training):
    from streamlit.testing.v1 import AppTest

    from recsys_core.datasets import fetch
    from recsys_core.experiment import DataSource, run_experiment
    from recsys_core.runs import list_runs

    fetch("ml-100k", source=ml100k_dir, progress=False)
    source = DataSource.builtin("ml-100k")
    ease = run_experiment(source, "ease", protocol="loo-sampled", seed=0).run_id
    at = AppTest.from_file(str(REPO / "app_pages" / "2_Train.py"), default_timeout=240).run()
    assert not at.exception
    at.multiselect(key="train_models").set_value(["pop"]).run()
    at.button(key="train_start").click().run()
    finish_training(at)
    assert not at.exception, [e.message for e in at.exception]
    pop = next(r.run_id for r in list_runs() if r.model.name == "pop")
    assert at.session_state["train_results"] == [pop]
    assert at.session_state["run_id"] == ease, "the worse new run did not become active"
    assert at.selectbox(key="train_active_run").value == ease
    assert not [b for b in at.button if b.key == "train_use_best_run"], "the active run is already the best"

    # The person picks the new run; the page then offers the best one and one click brings it back.
    at.selectbox(key="train_active_run").set_value(pop).run()
    assert at.session_state["run_id"] == pop
    best = at.button(key="train_use_best_run")
    assert "Use the best run on this data: EASE · ml-100k" in best.label
    best.click().run()
    assert not at.exception
    assert at.session_state["run_id"] == ease and at.selectbox(key="train_active_run").value == ease


def test_read_account_adds_up_every_row():
    from recsys_core.datasets.user_files import UserFileOptions, read_user_file_with_account

    text = "user,item,rating\n" + "".join(f"u{u},i{i},{(u + i) % 5 + 1}\n" for u in range(6) for i in range(5)) + "u0,i0,5\nu1,i1,1\n"
    options = UserFileOptions(user_col="user", item_col="item", rating_col="rating", threshold=3.0, min_user_interactions=3)
    data, account = read_user_file_with_account(text.encode(), options, name="grid")
    assert account.rows_read == 32 and account.duplicates_merged == 2 and account.duplicate_rule == "latest"
    assert account.kept == len(data)
    assert account.rows_read - account.duplicates_merged - account.below_threshold - account.removed_by_kcore == account.kept
    assert account.below_threshold > 0 and account.removed_by_kcore >= 0


def test_log_histograms_label_only_powers_of_ten():
    counts = pd.DataFrame({"bin": ["1", "2", "3–5"], "count": [1000, 30, 2]})
    log_axis = data_ui.count_figure(counts, "interactions", "users", log_y=True).layout.yaxis
    assert log_axis.type == "log" and log_axis.dtick == 1 and log_axis.minor.ticks == ""
    assert data_ui.count_figure(counts, "interactions", "users", log_y=False).layout.yaxis.dtick is None


PAGES = ["1_Data.py", "2_Train.py", "3_Recommend.py", "4_Compare.py", "5_Embeddings.py"]


def _page_text(at) -> str:
    parts = [str(e.value) for kind in ("info", "markdown", "caption", "error", "warning") for e in at.get(kind)]
    return "\n".join(parts)


@pytest.mark.parametrize("name", PAGES)
def test_every_page_without_data_says_what_to_do(name):
    """A fresh data home with nothing fetched: no traceback, a pointer to the Data page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    # Data loaded by earlier tests (in their own data homes) stays in this process's caches.
    st.cache_resource.clear()
    st.cache_data.clear()

    at = AppTest.from_file(str(REPO / "app_pages" / name), default_timeout=240).run()
    assert not at.exception, [e.message for e in at.exception]
    text = _page_text(at)
    assert "Data" in text and ("fetch" in text.lower() or "upload" in text.lower()), text


@pytest.mark.parametrize("name", ["3_Recommend.py", "4_Compare.py", "5_Embeddings.py"])
def test_every_run_page_without_runs_points_to_training(name, ml100k_dir):
    from streamlit.testing.v1 import AppTest

    from recsys_core.datasets import fetch

    fetch("ml-100k", source=ml100k_dir, progress=False)
    at = AppTest.from_file(str(REPO / "app_pages" / name), default_timeout=240).run()
    assert not at.exception, [e.message for e in at.exception]
    text = _page_text(at)
    assert "No saved run on ml-100k yet" in text and "Train" in text, text


def test_first_visit_fetches_fits_and_clears_its_banners(monkeypatch, ml100k_dir):
    """An empty data home: the fetch bar, the fit banner and its bar are gone once the top 10 shows."""
    from streamlit.testing.v1 import AppTest

    import recsys_core.datasets as datasets
    from recsys_core.runs import list_runs

    real_fetch = datasets.fetch
    monkeypatch.setattr(datasets, "fetch", lambda name, **kwargs: real_fetch(name, source=ml100k_dir, progress=kwargs.get("progress")))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240).run()
    assert not at.exception, [e.message for e in at.exception]
    assert [r.model.name for r in list_runs()] == ["ease"]
    assert len(at.dataframe[0].value) == 10
    assert not at.get("progress"), "no finished progress bar is left on the page"
    assert not any("First visit" in str(i.value) or "Fitting a first model" in str(i.value) for i in at.info)


def test_the_runs_are_read_again_only_when_a_record_changed(ml100k, monkeypatch):
    """Pages ask for the runs several times per rerun: the records are read once, and again after a save, a rename or
    a delete."""
    import recsys_core.run_store as run_store
    from recsys_core.experiment import run_experiment
    from recsys_core.runs import delete_run, rename_run
    from webapp import loading

    small = ml100k.subset(np.flatnonzero(ml100k.user < 120), name="ml-100k-small")
    first = run_experiment(small, "pop", device="cpu").run_id
    reads = []
    real = run_store.list_runs
    monkeypatch.setattr(run_store, "list_runs", lambda: reads.append(1) or real())
    loading._readable_runs.clear()
    assert [r.run_id for r in loading.all_runs()] == [first]
    assert [r.run_id for r in loading.all_runs()] == [first]
    assert len(reads) == 1
    second = run_experiment(small, "pop", device="cpu", seed=1).run_id
    assert {r.run_id for r in loading.all_runs()} == {first, second}
    rename_run(first, "renamed")
    assert next(r for r in loading.all_runs() if r.run_id == first).title == "renamed"
    delete_run(second)
    assert [r.run_id for r in loading.all_runs()] == [first]
    assert len(reads) == 4
