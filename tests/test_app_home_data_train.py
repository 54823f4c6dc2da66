"""The home, Data and Train pages of the Streamlit app, driven with AppTest in a temporary data home.

The data home (``RECSYS_HOME``) is a fresh temporary folder per test (tests/conftest.py); data sets
get into it without network through ``fetch(..., source=...)`` from the real files beside the checkout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from homes import child_env
from streamlit.testing.v1 import AppTest

from recsys_core.datasets import fetch
from recsys_core.errors import DataError, FetchError, RecsysError
from recsys_core.experiment import DataSource, run_experiment
from recsys_core.home import uploads_dir
from recsys_core.runs import list_runs

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # webapp/ is not an installed package; `streamlit run` has the repo on its path
    sys.path.insert(0, str(REPO))

USER_FILES = REPO / "tests" / "fixtures" / "user_files"
DRUGS_RAW = REPO / "tests" / "fixtures" / "drugscom-raw" / "drugsComTrain_raw.tsv"
TIMEOUT = 240



def _seconds_estimate(text: str) -> bool:
    """A few seconds at most, as the Train page words an estimate ("under a second", "about 0:04")."""
    return text == "under a second" or re.fullmatch(r"about 0:0\d", text) is not None

def app(page: str) -> AppTest:
    return AppTest.from_file(str(REPO / page), default_timeout=TIMEOUT)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


@pytest.fixture
def ml100k_home(ml100k_dir):
    fetch("ml-100k", source=ml100k_dir, progress=False)


@pytest.fixture
def drugs_home(drugs_sample_dir):
    fetch("drugscom-sample", source=drugs_sample_dir, progress=False)


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


# -- home ------------------------------------------------------------------------------------------------------------------
def test_home_fits_ease_on_a_fresh_home_and_reuses_it(ml100k_home):
    import time

    assert list_runs() == []
    started = time.monotonic()
    at = app("app.py").run()
    seconds = time.monotonic() - started
    assert_clean(at)
    assert seconds < 60, f"the first visit took {seconds:.0f} s (goal: under 20 s on a busy 2-core machine)"
    runs = list_runs()
    assert [r.model.name for r in runs] == ["ease"], "the first visit fits EASE"
    recs = at.dataframe[0].value
    assert len(recs) == 10
    assert recs["item"].str.contains(r"\(\d{4}\)").all(), "recommendations are shown with their titles"
    # The run is named by model, data, time and score, not by its raw id.
    from webapp.run_labels import run_label

    label = run_label(runs[0])
    assert label.startswith("EASE · ml-100k · ") and "HR@10 0." in label
    assert label in texts(at.markdown) and runs[0].run_id not in texts(at.markdown)
    assert "ml-100k" in texts(at.markdown)
    # The fit's banner and finished progress bar are gone; the reasons and the user's profile are shown.
    assert not at.get("progress"), "the finished progress bar is cleared"
    assert not any("Fitting a first model" in str(i.value) for i in at.info), "the fit banner is cleared"
    assert recs["because"].str.startswith("Because you liked ").all()
    shown_user = at.session_state["home_user"]
    assert any(f"{shown_user}:** " in m.value and "aged " in m.value for m in at.markdown), "the sample user's profile"

    # Another user, the same session: no retraining.
    user = at.selectbox(key="home_user")
    user.set_value(user.options[1]).run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == 10
    # A later visit (a new session): the newest run is reused, nothing is fetched or trained.
    again = app("app.py").run()
    assert_clean(again)
    assert len(list_runs()) == 1
    assert again.session_state["run_id"] == runs[0].run_id


def test_home_on_drug_data_shows_the_recommend_pages_answer(drugs_home):
    """With drug data active Home opens on a well-reviewed condition (or the last one looked at) and shows the
    same two-part answer with evidence as the Recommend page, from the same function."""
    from recsys_core.drugs import MEDICAL_NOTE, explorer_for_run
    from recsys_core.experiment import run_experiment
    from recsys_core.runs import load_run

    source = DataSource.builtin("drugscom-sample")
    run_id = run_experiment(source, "ease", device="cpu").run_id
    at = app("app.py")
    at.session_state["source"] = source.to_json()
    at.run()
    assert_clean(at)
    explorer = explorer_for_run(load_run(run_id))
    shown = explorer.reviews.users.ids[at.session_state["home_condition"]]
    assert at.session_state["drug_last_condition"] == shown
    assert explorer.reviews.user_counts()[explorer.reviews.users.index(shown)] >= 10  # a well-reviewed condition
    assert MEDICAL_NOTE in texts(at.info)
    assert any(f"Part 1 · Drugs reviewed for {shown}" in str(h.value) for h in at.subheader)

    # the last condition looked at (here: set as the Recommend page sets it) is the one Home opens on
    at = app("app.py")
    at.session_state["source"] = source.to_json()
    at.session_state["drug_last_condition"] = "Birth Control"
    at.run()
    assert_clean(at)
    reviewed, suggested = at.dataframe[0].value, at.dataframe[1].value
    expected = explorer.for_condition("Birth Control", k=10)
    assert list(reviewed["name"]) == list(expected.reviewed["name"]) and list(suggested["name"]) == list(expected.suggested["name"])
    assert {"strength", "reviews", "positive", "negative", "status", "provenance"} <= set(reviewed.columns) | set(suggested.columns)
    assert "score" not in reviewed.columns and "Part 2 · Not yet reviewed for Birth Control" in texts(at.subheader)
    # choosing another condition on Home remembers it
    at.selectbox(key="home_condition").set_value(explorer.reviews.users.index("Depression")).run()
    assert_clean(at)
    assert at.session_state["drug_last_condition"] == "Depression" and "Part 1 · Drugs reviewed for Depression" in texts(at.subheader)


def test_the_first_visit_shows_popularity_at_once_while_ease_fits(ml100k_home, ml100k, monkeypatch):
    """Issue 21 item 2: popularity's top 10 for the sample user is on screen before EASE's fit ends (here the fit
    fails, so what was drawn before it stays), and it names what it is."""
    from webapp import home_ui

    def fit_that_fails(data, source):
        raise DataError("the fit failed on purpose")

    monkeypatch.setattr(home_ui, "first_fit_with_progress", fit_that_fails)
    at = app("app.py").run()
    assert_clean(at)
    first_user = home_ui.sample_users(ml100k)[0]
    assert f"Meanwhile: the most popular items for user {first_user}" in texts(at.subheader)
    table = at.dataframe[0].value
    expected = home_ui.popular_top10(ml100k, ml100k.users.index(first_user))
    assert table["item"].tolist() == expected["title"].tolist() and len(table) == 10
    assert "the fit failed on purpose" in texts(at.error)


def test_popular_top10_leaves_out_what_the_user_has_seen(ml100k):
    from webapp.home_ui import popular_top10

    user = 0
    table = popular_top10(ml100k, user)
    counts = ml100k.item_counts()
    seen = set(ml100k.item[ml100k.user == user].tolist())
    unseen = np.array([i for i in range(ml100k.n_items) if i not in seen])
    best = unseen[np.argsort(-counts[unseen], kind="stable")][:10]
    assert table["title"].tolist() == ml100k.item_titles()[best].tolist()
    assert table["interactions"].tolist() == counts[best].tolist() and table["rank"].tolist() == list(range(1, 11))


def test_home_without_data_or_network_points_to_the_upload(monkeypatch):
    import recsys_core.datasets as datasets

    def offline(name, **kwargs):
        raise FetchError(f"could not fetch {name} from any source:\n  - GroupLens: cannot connect", "Put the files by hand …")

    monkeypatch.setattr(datasets, "fetch", offline)
    at = app("app.py").run()
    assert_clean(at)
    assert "could not be downloaded" in texts(at.error)
    assert "upload" in (texts(at.markdown) + texts(at.get("page_link"))).lower()
    assert list_runs() == []


def test_home_does_not_import_umap(ml100k_dir, tmp_path):
    """In a fresh interpreter (other tests may have imported umap): the home page never loads it."""
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(REPO)!r})
        from recsys_core.datasets import fetch
        from recsys_core.experiment import run_experiment, DataSource
        from streamlit.testing.v1 import AppTest
        fetch("ml-100k", source={str(ml100k_dir)!r}, progress=False)
        run_experiment(DataSource.builtin("ml-100k"), "pop")
        at = AppTest.from_file({str(REPO / "app.py")!r}, default_timeout=120).run()
        print(json.dumps({{"exceptions": len(at.exception), "umap": "umap" in sys.modules, "numba": "numba" in sys.modules}}))
        """
    )
    env = child_env(tmp_path / "home")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"exceptions": 0, "umap": False, "numba": False}


# -- data page ------------------------------------------------------------------------------------------------------------
def test_data_page_switches_between_builtin_data_sets(ml100k_home, drugs_home):
    at = app("app_pages/1_Data.py").run()
    assert_clean(at)
    assert [m.value for m in at.metric][:3] == ["943", "1,682", "100,000"]
    assert len(at.get("plotly_chart")) == 3  # per user, per item, ratings

    at.selectbox(key="data_builtin").set_value("drugscom-sample").run()
    assert_clean(at)
    assert at.session_state["source"] == DataSource.builtin("drugscom-sample").to_json()
    assert [m.label for m in at.metric][:2] == ["conditions", "drugs"]
    assert "not medical advice" in texts(at.info)
    # The positive rule: 626 of the 965 reviews are labelled positive; the rest are evidence only.
    assert at.checkbox(key="data_rule_on_drugscom-sample").value is True
    assert [m.value for m in at.metric][2] == "626"
    assert "latest review date" in texts(at.markdown)
    # One sidebar status, for the data on screen (the page opener's and the page's own were both shown).
    assert [m.value for m in at.sidebar.markdown if m.value.startswith("**Dataset:**")] == ["**Dataset:** drugscom-sample"]
    # Every review by class, the positive rule marked between the neutral and the positive ones.
    chart = json.loads(at.get("plotly_chart")[-1].proto.spec)
    bars = chart["data"][0]
    assert bars["x"] == [2.5, 5.5, 8.5] and sum(bars["y"]) == 965 and bars["y"][2] == 626
    assert [t.split("<br>")[1] for t in chart["layout"]["xaxis"]["ticktext"]] == ["negative", "neutral", "positive"]
    rule = chart["layout"]["shapes"][0]
    assert rule["x0"] == 7.0 and "positive rule: rating ≥ 7 (626 of 965 reviews)" in chart["layout"]["annotations"][0]["text"]
    assert "neutral and negative ones stay as evidence" in texts(at.caption)
    assert "Premature Lab" in at.dataframe[0].value["as_scraped"].tolist()
    assert "`ibromyalgia`" in texts(at.markdown)
    at.checkbox(key="data_rule_on_drugscom-sample").uncheck().run()
    assert_clean(at)
    assert at.session_state["source"]["threshold"] is None and [m.value for m in at.metric][2] == "965"

    at.selectbox(key="data_builtin").set_value("ml-100k").run()
    assert_clean(at)
    assert at.session_state["source"]["name"] == "ml-100k"
    assert at.checkbox(key="data_rule_on_ml-100k").value is False
    at.checkbox(key="data_rule_on_ml-100k").check().run()
    assert_clean(at)
    assert at.session_state["source"]["threshold"] == 4.0 and [m.value for m in at.metric][2] == "55,375"
    chart = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert chart["data"][0]["x"] == [1, 2, 3, 4, 5] and sum(chart["data"][0]["y"]) == 100_000
    assert chart["layout"]["shapes"][0]["x0"] == 3.5 and "55,375 of 100,000 interactions" in chart["layout"]["annotations"][0]["text"]
    at.checkbox(key="data_rule_on_ml-100k").uncheck().run()
    assert [m.value for m in at.metric][2] == "100,000"
    # A data set that is not fetched offers a fetch button and stays inactive.
    at.selectbox(key="data_builtin").set_value("ml-1m").run()
    assert_clean(at)
    assert at.session_state["source"]["name"] == "ml-100k"
    assert at.button(key="data_fetch").label == "Fetch ml-1m"


def test_fetching_on_the_data_page_keeps_the_picker_labels_and_the_next_action_works(drugs_sample_dir, monkeypatch):
    """Issue 21 item 4: the browser sends back the label it showed. A label that changed when the fetch finished
    (" · fetched") came back as a raw label, and the next action (an upload) crashed with "unknown data set"."""
    from recsys_core import datasets

    real_fetch = datasets.fetch
    monkeypatch.setattr(datasets, "fetch", lambda name, progress=True: real_fetch(name, source=drugs_sample_dir, progress=False))
    at = app("app_pages/1_Data.py").run()
    assert_clean(at)
    at.selectbox(key="data_builtin").set_value("drugscom-sample").run()
    labels_before = list(at.selectbox(key="data_builtin").options)
    assert "(not fetched yet)" in texts(at.markdown)
    at.button(key="data_fetch").click().run()
    assert_clean(at)
    assert at.session_state["source"]["name"] == "drugscom-sample"
    assert list(at.selectbox(key="data_builtin").options) == labels_before, "a label the browser holds must still name its data set"
    assert "drugscom-sample is fetched and is the active data." in texts(at.success)
    at.file_uploader(key="data_upload").set_value(("plays.tsv", (USER_FILES / "plays.tsv").read_bytes(), "text/tab-separated-values"))
    at.run()
    assert_clean(at)
    assert at.selectbox(key="map_user").value == "user_id"


def test_upload_handling_functions(ml100k_home):
    from webapp import data_ui

    bad = (USER_FILES / "bad_rating.csv").read_bytes()
    upload, sniff = data_ui.accept_upload(bad, "bad_rating.csv")
    path = Path(upload.path)
    assert path.parent == uploads_dir() and path.name.startswith(upload.sha256[:16])
    assert sniff["guesses"]["user"] == "user" and sniff["guesses"]["rating"] == "rating"
    options = data_ui.options_from_form({"user": "user", "item": "item", "rating": "rating"})
    with pytest.raises(DataError) as error:
        data_ui.use_upload(upload.path, options, "bad", label="bad_rating.csv")
    assert "'four'" in error.value.message and "row 3 of bad_rating.csv" in error.value.message

    for content, name, words in (
        (b"", "empty.csv", "empty"),
        (b"user,item\n", "header_only.csv", "no rows"),
        (b"PK\x03\x04 not a table", "ratings.xlsx", "Excel"),
    ):
        with pytest.raises(DataError, match=words):
            data_ui.accept_upload(content, name)
    with pytest.raises(DataError, match="a rating threshold needs a rating column"):
        data_ui.options_from_form({"user": "user", "item": "item"}, threshold=4)

    good = (USER_FILES / "ratings_utf8.csv").read_bytes()
    upload, sniff = data_ui.accept_upload(good, "ratings_utf8.csv")
    assert data_ui.accept_upload(good, "ratings_utf8.csv")[0].path == upload.path, "the same content is stored once"
    columns = {role: sniff["guesses"][role] for role in data_ui.ROLES}
    source, data = data_ui.use_upload(upload.path, data_ui.options_from_form(columns), upload.stem)
    assert source.kind == "file" and source.name == "ratings_utf8"
    assert data.rating is not None and "Matrix, The (1999)" in set(data.item_titles())
    # Only the stored copies exist in the uploads folder, nothing elsewhere.
    assert {p.name for p in uploads_dir().iterdir()} == {Path(upload.path).name, path.name}


def test_use_upload_shows_the_reading_steps(monkeypatch):
    from webapp import data_ui

    shown = []

    class Bar:
        def progress(self, fraction, text=""):
            shown.append((fraction, text))

        def empty(self):
            shown.append("cleared")

    monkeypatch.setattr(data_ui.st, "progress", lambda fraction, text="": shown.append((fraction, text)) or Bar())
    upload, sniff = data_ui.accept_upload((USER_FILES / "plays.tsv").read_bytes(), "plays.tsv")
    options = data_ui.options_from_form({"user": "user_id", "item": "track", "weight": "plays"}, duplicates="count")
    data_ui.use_upload(upload.path, options, "plays", label="plays.tsv")
    texts_shown = [entry[1] for entry in shown if entry != "cleared"]
    assert texts_shown[0] == "Reading plays.tsv …" and "Reading plays.tsv …" in texts_shown[1:]
    assert any("weight = number of rows" in text for text in texts_shown) and shown[-1] == "cleared"


def test_data_page_upload_bad_then_good(ml100k_home):
    at = app("app_pages/1_Data.py").run()
    assert_clean(at)
    assert "200 MB" in texts(at.markdown)

    at.file_uploader(key="data_upload").set_value(("bad_rating.csv", (USER_FILES / "bad_rating.csv").read_bytes(), "text/csv"))
    at.run()
    assert_clean(at)
    assert at.selectbox(key="map_rating").value == "rating"
    at.button(key="data_use_upload").click().run()
    assert_clean(at)
    message = texts(at.error)
    assert "'four'" in message and "bad_rating.csv" in message and "row 3" in message
    assert at.session_state["source"]["kind"] == "builtin", "a bad file never becomes the active data"

    at.file_uploader(key="data_upload").set_value(("empty.csv", b"", "text/csv"))
    at.run()
    assert_clean(at)
    assert "empty" in texts(at.error)

    good = (USER_FILES / "plays.tsv").read_bytes()
    at.file_uploader(key="data_upload").set_value(("plays.tsv", good, "text/tab-separated-values"))
    at.run()
    assert_clean(at)
    assert at.selectbox(key="map_user").value == "user_id"
    assert at.selectbox(key="map_weight").value == "plays"
    assert at.radio(key="map_duplicates").options == [
        "keep the latest row",
        "keep the latest row, sum the weight column",
        "keep the latest row, weight = number of rows",
    ]
    # Summing without a weight column is refused with what to do instead.
    at.selectbox(key="map_weight").set_value("—")
    at.radio(key="map_duplicates").set_value("sum")
    at.button(key="data_use_upload").click().run()
    assert "summing repeated (user, item) rows needs a weight column" in texts(at.error)
    assert at.session_state["source"]["kind"] == "builtin"
    at.selectbox(key="map_weight").set_value("plays")
    at.button(key="data_use_upload").click().run()
    assert_clean(at)
    assert not at.error
    source = at.session_state["source"]
    assert source["kind"] == "file" and source["name"] == "plays" and source["options"]["duplicates"] == "sum"
    assert Path(source["path"]).parent == uploads_dir()
    assert "Active data: plays" in texts(at.header)
    # The caption at the top names the new data at once, and the file's rows are accounted for.
    assert "Active data: **plays**" in texts(at.caption)
    assert "plays is now the active data" in texts(at.success)
    account = next(frame.value for frame in at.dataframe if "rows read" in frame.value.columns).iloc[0]
    assert account["rows read"] == 6 and account["kept"] == 4
    assert account["duplicates merged"] == "2 merged (keep the latest row, sum the weight column 'plays')"


def test_data_page_drops_blank_ratings_on_request_and_the_form_shows_the_options_applied(ml100k_home):
    """Issue 21 item 6: blank ratings are refused with their count, or dropped and accounted for; the form of the
    active file shows the options it was read with, and another file starts from the defaults."""
    rows = ["user,item,stars"] + [f"{u},{i},{(u + i) % 5 + 1 if (u * 7 + i) % 9 else ''}" for u in range(1, 9) for i in range(1, 9)]
    export = ("\n".join(rows) + "\n").encode()
    blank = sum(1 for row in rows[1:] if row.endswith(","))
    at = app("app_pages/1_Data.py").run()
    at.file_uploader(key="data_upload").set_value(("export.csv", export, "text/csv")).run()
    assert_clean(at)
    assert at.selectbox(key="map_rating").value == "stars"
    assert at.checkbox(key="map_implicit").value is False and at.checkbox(key="map_drop_blank").value is False
    at.button(key="data_use_upload").click().run()
    assert f"and {blank - 1} more rows" in texts(at.error) and "Drop rows with a blank rating" in texts(at.error)
    assert at.session_state["source"]["kind"] == "builtin"

    at.checkbox(key="map_drop_blank").check()
    at.checkbox(key="map_implicit").check().run()
    at.number_input(key="map_threshold").set_value(3.0)
    at.button(key="data_use_upload").click().run()
    assert_clean(at)
    source = at.session_state["source"]
    assert source["kind"] == "file" and source["options"]["drop_blank_ratings"] and source["options"]["threshold"] == 3.0
    account = next(frame.value for frame in at.dataframe if "rows read" in frame.value.columns).iloc[0]
    assert account["rows read"] == 64 and account["dropped: blank stars"] == blank
    kept_ratings = [(u + i) % 5 + 1 for u in range(1, 9) for i in range(1, 9) if (u * 7 + i) % 9]
    assert account["dropped: below stars 3"] == sum(r < 3 for r in kept_ratings) and account["kept"] == sum(r >= 3 for r in kept_ratings)

    # Another file: the defaults, nothing ticked; the active file again (a new upload of it): the options in use.
    at.file_uploader(key="data_upload").set_value(("plays.tsv", (USER_FILES / "plays.tsv").read_bytes(), "text/tab-separated-values"))
    at.run()
    assert_clean(at)
    assert at.checkbox(key="map_implicit").value is False and at.checkbox(key="map_drop_blank").value is False
    assert at.checkbox(key="map_implicit").disabled, "plays.tsv has no rating column"
    at.file_uploader(key="data_upload").set_value(("export.csv", export, "text/csv")).run()
    assert_clean(at)
    assert at.checkbox(key="map_implicit").value is True and at.number_input(key="map_threshold").value == 3.0
    assert at.checkbox(key="map_drop_blank").value is True and at.text_input(key="map_name").value == "export"
    # Unsetting the rating column unticks both rules instead of showing them ticked and not applied.
    at.selectbox(key="map_rating").set_value("—").run()
    assert at.checkbox(key="map_implicit").value is False and at.checkbox(key="map_drop_blank").value is False


def test_data_page_real_drugs_tsv_through_session_state(ml100k_home):
    """The stored file can also be handed to the page through session state (no uploader).

    The real Drugs.com TSV is recognised (columns guessed, a note about the built-in reader); its rows
    without a condition are refused with the column, the row and the file name the user knows.
    """
    from webapp import data_ui

    upload, _ = data_ui.accept_upload(DRUGS_RAW.read_bytes(), DRUGS_RAW.name)
    at = app("app_pages/1_Data.py")
    at.session_state["upload"] = upload.to_json()
    at.run()
    assert_clean(at)
    assert "Drugs.com review file" in texts(at.info)
    assert at.selectbox(key="map_user").value == "condition"
    assert at.selectbox(key="map_item").value == "drugName"
    assert at.selectbox(key="map_rating").value == "rating"
    assert at.selectbox(key="map_weight").value == "usefulCount"
    at.checkbox(key="map_implicit").check().run()
    at.number_input(key="map_threshold").set_value(7.0)
    at.button(key="data_use_upload").click().run()
    assert_clean(at)
    message = texts(at.error)
    assert "'condition' is empty in row 10 of drugsComTrain_raw.tsv" in message, message
    assert at.session_state["source"]["kind"] == "builtin"

    # With the rows that lack a condition removed, the same file is accepted.
    frame = pd.read_csv(DRUGS_RAW, sep="\t", dtype=str, keep_default_na=False)
    clean = frame[frame["condition"].str.strip() != ""].to_csv(sep="\t", index=False).encode("utf-8")
    upload, _ = data_ui.accept_upload(clean, "drugs_clean.tsv")
    at.session_state["upload"] = upload.to_json()
    at.run()
    at.button(key="data_use_upload").click().run()
    assert_clean(at)
    assert not at.error, texts(at.error)
    source = at.session_state["source"]
    assert source["kind"] == "file" and source["name"] == "drugs_clean"
    assert source["options"]["weight_col"] == "usefulCount"
    assert source["options"]["threshold"] is None, "a new file starts with a fresh form"


# -- train page ---------------------------------------------------------------------------------------------------------------
def test_train_page_pop_on_ml100k(ml100k_home, finish_training):
    at = app("app_pages/2_Train.py").run()
    assert_clean(at)
    assert "Device:" in texts(at.markdown)
    assert at.multiselect(key="train_models").value == ["ease"]
    assert at.selectbox(key="train_protocol").value == "loo-sampled"

    # Ratings are only for models that predict them: the button is disabled with a reason.
    at.selectbox(key="train_protocol").set_value("ratings").run()
    assert_clean(at)
    assert "predict ratings" in texts(at.error) and at.button(key="train_start").disabled

    at.selectbox(key="train_protocol").set_value("loo-sampled")
    at.multiselect(key="train_models").set_value(["pop"]).run()
    expected = next(frame.value for frame in at.dataframe if "expected time" in frame.value.columns)
    assert expected["expected time"].tolist() == ["not known yet"]
    at.button(key="train_start").click().run()
    finish_training(at)
    assert_clean(at)
    runs = list_runs()
    assert [r.model.name for r in runs] == ["pop"]
    assert runs[0].loo_order == "time"
    run_id = runs[0].run_id
    assert at.session_state["run_id"] == run_id
    assert at.session_state["train_results"] == [run_id]
    assert at.selectbox(key="train_active_run").value == run_id
    assert "active run" in texts(at.markdown)
    table = next(frame.value for frame in at.dataframe if "95% low" in frame.value.columns)
    assert {"value", "95% low", "95% high"} <= set(table.columns) and "HR@10" in table.index
    # Before the next run: pop's time on this data, from the run just saved.
    expected = next(frame.value for frame in at.dataframe if "expected time" in frame.value.columns)
    assert expected["model"].tolist() == ["pop"] and _seconds_estimate(expected["expected time"].item())


def test_train_page_renames_and_deletes_runs_with_confirmation(ml100k_home):
    """Issue 21 item 10: rename a run (its name on every page), delete one after a confirmation; the active run is
    never deleted without saying so, and another run becomes active."""
    from recsys_core.runs import RunRecord, load_run, rename_run

    source = DataSource.builtin("ml-100k")
    pop = run_experiment(source, "pop", seed=0).run_id
    itemknn = run_experiment(source, "itemknn", seed=0).run_id
    at = app("app_pages/2_Train.py")
    at.session_state["run_id"] = itemknn
    at.run()
    assert_clean(at)

    at.selectbox(key="runs_manage").set_value(pop).run()
    at.text_input(key=f"runs_title_{pop}").input("  baseline   for the demo ").run()
    at.button(key="runs_rename").click().run()
    assert_clean(at)
    assert load_run(pop).info.title == "baseline for the demo"
    assert any(o.startswith("baseline for the demo (Popularity) · ml-100k") for o in at.selectbox(key="train_active_run").options)
    # run.json otherwise unchanged, and an empty name removes it.
    record = RunRecord.from_json(json.loads((Path(os.environ["RECSYS_HOME"]) / "runs" / pop / "run.json").read_text()))
    assert record.title == "baseline for the demo" and record.model.name == "pop"
    assert rename_run(pop, "") == "" and load_run(pop).info.title == ""
    with pytest.raises(RecsysError, match="at most 80 characters"):
        rename_run(pop, "x" * 81)

    # Deleting another run: one click asks, the second deletes.
    at.selectbox(key="runs_manage").set_value(pop).run()
    at.button(key="runs_delete").click().run()
    assert "removed for good" in texts(at.warning) and "active run" not in texts(at.warning)
    at.button(key="runs_delete_no").click().run()
    assert pop in [r.run_id for r in list_runs()] and not [b for b in at.button if b.key == "runs_delete_yes"]
    at.button(key="runs_delete").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert_clean(at)
    assert [r.run_id for r in list_runs()] == [itemknn] and at.session_state["run_id"] == itemknn

    # The active run: the confirmation says it is the active one; after it, no run of this data is active.
    assert at.selectbox(key="runs_manage").value == itemknn
    at.button(key="runs_delete").click().run()
    assert "is the active run" in texts(at.warning) and at.button(key="runs_delete_yes").label == "Delete the active run"
    at.button(key="runs_delete_yes").click().run()
    assert_clean(at)
    assert list_runs() == [] and "run_id" not in at.session_state
    assert "Deleted Item-kNN" in texts(at.success)


def test_train_page_on_drugscom_sample(drugs_home, finish_training):
    from webapp.train_ui import model_catalogue

    models = ["ease"] + (["neumf"] if "error" not in model_catalogue().get("neumf", {"error": 1}) else [])
    at = app("app_pages/2_Train.py")
    at.session_state["source"] = DataSource.builtin("drugscom-sample").to_json()
    at.run()
    assert_clean(at)
    assert "not medical advice" in texts(at.info)
    assert "Positives: reviews labelled positive (rating 7-10 of 10)" in texts(at.caption)
    at.multiselect(key="train_models").set_value(models).run()
    if "neumf" in models:
        at.number_input(key="train_neumf_epochs").set_value(2)
    # Review dates are not adoption times: hold out seeded random items instead of the latest.
    at.radio(key="train_loo_order").set_value("random")
    at.button(key="train_start").click().run()
    finish_training(at)
    assert_clean(at)
    runs = list_runs()
    assert sorted(r.model.name for r in runs) == sorted(models)
    assert all(r.loo_order == "random" for r in runs)
    assert all(r.dataset.name == "drugscom-sample" for r in runs)
    # No run was active before: the first one trained becomes active; later ones do not replace it.
    assert at.session_state["run_id"] == runs[-1].run_id
    # the page follows the default: refit on train + validation; 60 test conditions are too few to rank models
    assert all(r.refit.done for r in runs)
    assert "not meaningful" in texts(at.warning)
    if "neumf" in models:
        neumf = next(r for r in runs if r.model.name == "neumf")
        assert neumf.history.epochs_run == 2 and neumf.settings.epoch_budget == 2 and neumf.settings.pretrain_epochs is not None
        assert neumf.model.config["epochs"] == neumf.refit.epochs <= 2  # the saved model: refitted for the chosen epochs
        assert at.get("plotly_chart"), "the per-epoch curves are drawn"
    assert all(r.dataset.positive_rule.threshold == 7.0 for r in runs)

    home = app("app.py")
    home.session_state["source"] = DataSource.builtin("drugscom-sample").to_json()
    home.run()
    assert_clean(home)
    assert "score" not in home.dataframe[0].value.columns and "Recommend" in texts(home.caption)


def test_training_goes_on_across_pages_and_stops_only_on_cancel(ml100k_home, monkeypatch, finish_training):
    """Issue 21 item 3: training runs in the background. Opening another page (the same browser session) neither
    stops nor hides it: every page's sidebar shows its progress; only Cancel stops it, and nothing of it is saved."""
    import threading

    from recsys_core import experiment
    from webapp import train_jobs

    gate, real = threading.Event(), experiment.run_experiment

    def slow(*args, callback=None, cancel=None, **kwargs):  # an epoch event, then wait as a long training would
        from recsys_core.fit_context import TrainingEvent

        callback(TrainingEvent("epoch", epoch=3, epochs=20, loss=0.5, elapsed=30.0))
        while not gate.wait(0.05):
            if cancel.is_set():
                raise train_jobs.TrainingCancelled("training was cancelled")
        return real(*args, callback=callback, cancel=cancel, **kwargs)

    monkeypatch.setattr(experiment, "run_experiment", slow)
    at = app("app_pages/2_Train.py").run()
    at.multiselect(key="train_models").set_value(["pop"]).run()
    at.button(key="train_start").click().run()
    assert_clean(at)
    session = at.session_state["train_session_key"]
    job = train_jobs.job_for(session)
    assert job.running and at.button(key="train_start").disabled and at.button(key="train_cancel")
    assert "goes on while you open other pages" in texts(at.markdown)

    # Another page in the same session: the training is still running and its progress is in the sidebar.
    for page in ("app_pages/3_Recommend.py", "app_pages/1_Data.py", "app_pages/4_Compare.py"):
        other = app(page)
        other.session_state["train_session_key"] = session
        other.run()
        assert_clean(other)
        assert job.running, f"opening {page} stopped the training"
        assert "Training** on ml-100k" in texts(other.sidebar.markdown), page
    gate.set()
    finish_training(at)
    assert [r.model.name for r in list_runs()] == ["pop"] and at.session_state["train_results"] == [job.run_ids[0]]
    assert not [b for b in at.button if b.key == "train_cancel"] and not at.button(key="train_start").disabled

    # Cancel stops it: nothing saved, the page says so once.
    gate.clear()
    at.multiselect(key="train_models").set_value(["itemknn", "pop"]).run()
    at.button(key="train_start").click().run()
    at.button(key="train_cancel").click().run()
    warning = texts(at.warning)  # said by the run that finds the training ended: this one or the next
    finish_training(at)
    warning += texts(at.warning)
    assert "cancelled while itemknn was training" in warning and "nothing of it was saved" in warning
    assert [r.model.name for r in list_runs()] == ["pop"]
    at.run()
    assert "cancelled" not in texts(at.warning), "the notice is shown once"


def test_a_failed_model_is_reported_above_the_runs_and_the_saved_ones_are_listed(ml100k_home, monkeypatch, finish_training):
    """The runs list is drawn before training (so it stays live); the page reruns after training, so every run
    just saved is listed and each failure is shown once above it."""
    from recsys_core.errors import ModelError
    from webapp import train_jobs

    original = train_jobs.train_in_slot

    def train(job, **experiment):
        if experiment["model_name"] == "itemknn":
            raise ModelError("itemknn broke on purpose", "Pick another model.")
        return original(job, **experiment)

    monkeypatch.setattr(train_jobs, "train_in_slot", train)
    at = app("app_pages/2_Train.py").run()
    at.multiselect(key="train_models").set_value(["itemknn", "pop"]).run()
    at.button(key="train_start").click().run()
    finish_training(at)
    assert_clean(at)
    assert "itemknn broke on purpose" in texts(at.error) and "itemknn could not be trained" in texts(at.error)
    runs = list_runs()
    assert [r.model.name for r in runs] == ["pop"]
    assert "Runs on this data" in [h.value for h in at.header]
    assert at.selectbox(key="train_active_run").value == runs[0].run_id
    at.run()
    assert "itemknn broke on purpose" not in texts(at.error), "a failure is shown once"


# -- the frame ---------------------------------------------------------------------------------------------------------------
def test_saving_a_run_on_the_train_page_starts_its_umap_maps(ml100k_home, monkeypatch, finish_training):
    """The Embeddings page should find a new run's maps computing or done, not start them itself."""
    from webapp import map_jobs

    started = []
    monkeypatch.setattr(map_jobs, "start_map", lambda run, kind: started.append((run.run_id, kind)))
    monkeypatch.setenv("RECSYS_MAPS_ON_SAVE", "1")
    at = app("app_pages/2_Train.py").run()
    at.multiselect(key="train_models").set_value(["pop", "bpr"]).run()
    at.number_input(key="train_bpr_epochs").set_value(1)
    at.button(key="train_start").click().run()
    finish_training(at)
    assert_clean(at)
    by_model = {r.model.name: r.run_id for r in list_runs()}
    # BPR has item and user vectors; popularity has none, so nothing is started for it.
    assert started == [(by_model["bpr"], "items"), (by_model["bpr"], "users")]

    monkeypatch.setenv("RECSYS_MAPS_ON_SAVE", "0")  # the switch the test suite uses
    from recsys_core.runs import load_run

    assert map_jobs.start_maps_on_save(load_run(by_model["bpr"])) == []


def test_every_page_opens_with_the_frame_and_imports_modules_by_name():
    import ast
    import re

    # The project's own modules by their names (the usual st, np, pd and go stay).
    alias = re.compile(r"^\s*(from (recsys_core|webapp)\S* import \S+|import (recsys_core|webapp)\S*) as \w+", re.M)
    home_page = REPO / "app_pages" / "0_Home.py"
    pages = sorted((REPO / "app_pages").glob("*.py"))
    for path in pages:
        text = path.read_text()
        if path == home_page:  # Home fetches and fits before there is data to open: it sets its frame by hand
            assert "frame.set_page(" in text, "the Home page does not set its frame with webapp.frame.set_page"
        else:
            assert "frame.open_page(" in text, f"{path.name} does not open with webapp.frame.open_page"
        assert "set_page_config" not in text, f"{path.name} sets its page config itself"
        assert not alias.search(text), f"{path.name} imports a module under an alias"
    # app.py is only the frame and router: imports, then st.navigation over navigation's one list of pages.
    router = ast.parse((REPO / "app.py").read_text())
    statements = [node for node in router.body if not isinstance(node, (ast.Import, ast.ImportFrom, ast.Expr)) or (
        isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant))]  # fmt: skip
    assert [ast.unparse(node) for node in statements] == ["st.navigation(navigation.app_pages()).run()"]
    # One show_error for the whole app: no page or helper writes a RecsysError out by hand.
    for path in [*pages, *sorted((REPO / "webapp").glob("*.py"))]:
        text = path.read_text()
        assert "error.message +" not in text or path.name == "errors.py", f"{path.name} formats an error itself"
        assert "def show_error" not in text or path.name == "errors.py", f"{path.name} has its own show_error"


def test_a_page_without_its_data_shows_an_empty_state_with_a_link(monkeypatch):
    """ml-100k is not fetched in this data home: every data page says so and links to the Data page, no traceback."""
    for page in ("app_pages/2_Train.py", "app_pages/3_Recommend.py", "app_pages/4_Compare.py", "app_pages/5_Embeddings.py", "app_pages/6_Inside.py"):
        at = app(page).run()
        assert_clean(at)
        assert "is not fetched yet" in texts(at.error), page
        assert "Data page" in texts(at.markdown) or at.get("page_link"), page
    at = app("app_pages/1_Data.py").run()  # the Data page is where data is chosen: it opens without any
    assert_clean(at)
    assert at.selectbox(key="data_builtin").value == "ml-100k"


def test_pages_without_a_run_say_to_train_one(ml100k_home):
    for page in ("app_pages/3_Recommend.py", "app_pages/4_Compare.py", "app_pages/5_Embeddings.py", "app_pages/6_Inside.py"):
        at = app(page).run()
        assert_clean(at)
        assert "No saved run on ml-100k yet" in texts(at.info), page


# -- the time left ----------------------------------------------------------------------------------------------------------
class _FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _schedule(epochs: int, best: int, epoch_seconds: float, batches: int, test_seconds: tuple[float, ...], closed_form_seconds=None):
    """(seconds after the start, event) of a whole run as run_experiment reports it: split, selection (its best epoch
    found at ``best``), refit for the best epoch's count, the test passes; and when the run ends."""
    from recsys_core.fit_context import TrainingEvent as E

    t, out = 0.0, []
    out.append((t, E("start", phase="split", message="split")))
    if closed_form_seconds is not None:
        selection, refit = closed_form_seconds
        out.append((t, E("start", phase="selection")))
        t += selection
        out.append((t, E("end", phase="selection")))
        out.append((t, E("start", phase="refit")))
        t += refit
        out.append((t, E("end", phase="refit")))
    else:
        for phase, count in (("selection", epochs), ("refit", best)):
            out.append((t, E("start", phase=phase, epochs=count, total_epochs=count)))
            for epoch in range(1, count + 1):
                for batch in range(1, batches + 1):
                    t += epoch_seconds / batches
                    out.append((t, E("batch", phase=phase, epoch=epoch, epochs=count, batch=batch, batches=batches, total_epochs=count)))
                found = min(epoch, best) if phase == "selection" else None
                out.append((t, E("epoch", phase=phase, epoch=epoch, epochs=count, total_epochs=count, best_epoch=found)))
            out.append((t, E("end", phase=phase, epoch=count, epochs=count, total_epochs=count)))
    for index, seconds in enumerate(test_seconds, start=1):
        out.append((t, E("start", phase="test", message=f"protocol ({index} of {len(test_seconds)})")))
        t += seconds
    return out, t


@pytest.mark.parametrize(
    "schedule",
    [
        {"epochs": 20, "best": 14, "epoch_seconds": 90.0, "batches": 20, "test_seconds": (3.0, 12.0)},  # the demo's GMF
        {"epochs": 20, "best": 20, "epoch_seconds": 10.0, "batches": 5, "test_seconds": (0.5, 1.5)},  # still improving at the end
        {"epochs": 30, "best": 2, "epoch_seconds": 5.0, "batches": 4, "test_seconds": (0.3, 0.9)},  # best early, no early stop
        {"epochs": 0, "best": 0, "epoch_seconds": 0, "batches": 0, "test_seconds": (2.0, 6.0), "closed_form_seconds": (30.0, 12.0)},
    ],
    ids=["gmf-demo", "late-best", "early-best", "closed-form"],
)
def test_the_time_left_covers_every_phase_and_is_within_a_factor_of_two(schedule):
    """Issue 21 item 1: from the first estimate on, the time left counts the selection, the refit and the tests,
    and stays within 2x of the real time left (a fake clock plays the run's events at their times)."""
    from webapp.train_ui import TimeLeft

    events, end = _schedule(**schedule)
    clock = _FakeClock()
    start = clock.now
    time_left = TimeLeft(n_tests=len(schedule["test_seconds"]), clock=clock)
    ratios, phases = [], set()
    for at_seconds, event in events:
        clock.now = start + at_seconds
        time_left.update(event)
        estimate, real = time_left.seconds_left(), end - at_seconds
        if estimate is not None and real >= 2.0:
            ratios.append(estimate / real)
            phases.add(event.phase)
    assert ratios and 0.5 <= min(ratios) and max(ratios) <= 2.0, (min(ratios), max(ratios))
    assert "refit" in phases, "the estimate goes on through the refit"
    if schedule["test_seconds"][-1] >= 2.0:
        assert "test" in phases, "and through the tests"
    if schedule["epochs"]:
        assert "selection" in phases


def test_expected_time_before_a_run_from_the_recorded_speed_of_earlier_runs(ml100k):
    """Issue 21 item 1: before training, each chosen model's time on this data and device kind, from earlier runs."""
    from recsys_core.runs import RunRecord
    from webapp.train_ui import expected_seconds, expected_table

    def record(model, seconds, budget, device="cpu", content_hash=None, interactions=100_000, items=1682):
        return RunRecord.from_json(
            {
                "run_id": f"{model}-{seconds}", "model": model, "protocol": "loo-sampled", "fit_seconds": seconds, "device": device,
                "settings": {"epoch_budget": budget},
                "dataset": {"name": "x", "content_hash": content_hash or "other", "stats": {"interactions": interactions, "items": items}},
            }
        )  # fmt: skip

    here = ml100k.content_hash()
    records = [
        record("gmf", 100.0, 20, content_hash=here),
        record("gmf", 999.0, 20, content_hash="other", interactions=50_000),  # this data's own run comes first
        record("gmf", 5.0, 20, device="cuda:0", content_hash=here),  # another kind of device
        record("mlp", 30.0, 10, interactions=50_000),
        record("ease", 2.0, None, items=841),
    ]
    assert expected_seconds("gmf", ml100k, "cpu", records, 10) == (50.0, "1 earlier run on this data (cpu)")
    assert expected_seconds("gmf", ml100k, "gpu", records, None)[0] == 5.0
    assert expected_seconds("mlp", ml100k, "cpu", records, None) == (60.0, "1 earlier run on other data, scaled to this data's size (cpu)")
    assert expected_seconds("ease", ml100k, "cpu", records, None)[0] == 16.0  # twice the items: eight times the inversion
    assert expected_seconds("neumf", ml100k, "cpu", records, None) is None
    table = expected_table(["gmf", "neumf"], ml100k, "cpu", records, {"gmf": {"epochs": 10}})
    assert table["expected time"].tolist() == ["about 0:50", "not known yet"]


def test_train_page_measures_an_unknown_model_with_a_short_probe(ml100k_home, monkeypatch):
    """Issue 21 item 1: without an earlier run to go by, a button measures the chosen models here; nothing is saved."""
    from webapp import train_ui

    calls = []
    real = train_ui.probe_seconds

    def probe(name, data, protocol, overrides=None, device="auto", seconds=0.5):
        calls.append((name, protocol))
        return real(name, data, protocol, overrides, device="cpu", seconds=seconds)

    monkeypatch.setattr(train_ui, "probe_seconds", probe)
    at = app("app_pages/2_Train.py").run()
    at.multiselect(key="train_models").set_value(["pop"]).run()
    assert at.button(key="train_probe").label.startswith("Measure pop here")
    at.button(key="train_probe").click().run()
    assert_clean(at)
    expected = next(frame.value for frame in at.dataframe if "expected time" in frame.value.columns).iloc[0]
    assert calls == [("pop", "loo-sampled")] and _seconds_estimate(expected["expected time"])
    assert expected["from"].startswith("a 3-second probe on this data") and list_runs() == []
    assert not [b for b in at.button if b.key == "train_probe"], "nothing left to measure"


def test_the_probe_of_an_epoch_model_scales_its_steps_to_the_budget(ml100k):
    import math

    from webapp.train_ui import probe_seconds

    two = probe_seconds("bpr", ml100k, "loo-sampled", {"epochs": 2}, device="cpu", seconds=0.5)
    twenty = probe_seconds("bpr", ml100k, "loo-sampled", {"epochs": 20}, device="cpu", seconds=0.5)
    assert math.isfinite(two) and two > 0 and list_runs() == []
    assert 4 < twenty / two < 25, "ten times the epochs: about ten times the time"
