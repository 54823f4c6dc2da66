"""The Recommend, Compare and Embeddings pages, driven with Streamlit's AppTest on ml-100k and drugscom-sample.

One data home is filled once for the module (both data sets fetched from the shared copies, a few
quick runs); every test points RECSYS_HOME at it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from recsys_core import explain as ex
from recsys_core.drugs import MEDICAL_NOTE
from recsys_core.experiment import DataSource, run_experiment
from recsys_core.runs import RunRecord, load_run
from webapp import compare_ui, embeddings_ui, map_jobs

REPO = Path(__file__).resolve().parents[1]
ML = DataSource.builtin("ml-100k")
DRUGS = DataSource.builtin("drugscom-sample")


@pytest.fixture(scope="module")
def app_home(temporary_data_home, ml100k_dir, drugs_sample_dir):
    from recsys_core.datasets import fetch

    with temporary_data_home("app-home") as home:
        fetch("ml-100k", source=ml100k_dir)
        fetch("drugscom-sample", source=drugs_sample_dir)
        runs = {}
        ml, drugs = ML.load(), DRUGS.load()

        def fit(key, data, source, model, protocol="loo-sampled", **kwargs):
            runs[key] = run_experiment(data, model, protocol, seed=0, device="cpu", source=source, **kwargs).run_id

        fit("ml/pop", ml, ML, "pop")
        fit("ml/itemknn", ml, ML, "itemknn")
        fit("ml/ease", ml, ML, "ease", overrides={"l2": 500.0})
        fit("ml/pop-heldout", ml, ML, "pop", "heldout-users")
        fit("drugs/itemknn", drugs, DRUGS, "itemknn")
        fit("drugs/ease", drugs, DRUGS, "ease", overrides={"l2": 50.0})
        fit("drugs/neumf", drugs, DRUGS, "neumf", epochs=1)
    # Streamlit's caches live as long as the process: data loaded by other test modules (from other
    # data homes) must not stand in for ours, nor ours for theirs.
    st.cache_resource.clear()
    st.cache_data.clear()
    yield home, runs
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(autouse=True)
def _use_app_home(_isolated_home, app_home, monkeypatch):
    monkeypatch.setenv("RECSYS_HOME", str(app_home[0]))


@pytest.fixture
def runs(app_home):
    return app_home[1]


def page(name: str, source: DataSource, run_id: str | None = None, timeout: float = 240) -> AppTest:
    at = AppTest.from_file(str(REPO / "app_pages" / name), default_timeout=timeout)
    at.session_state["source"] = source.to_json()
    if run_id is not None:
        at.session_state["run_id"] = run_id
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


# ================================================================================== Recommend
def test_recommend_for_a_movielens_user(runs):
    at = ok(page("3_Recommend.py", ML, runs["ml/ease"]))
    assert at.selectbox(key="rec_run").value == runs["ml/ease"]
    assert "Positives: every interaction counts as positive." in texts(at.caption)  # beside the run's test metric
    run = load_run(runs["ml/ease"])
    user = run.users.index(196)
    ok(at.selectbox(key="rec_user").set_value(user).run())
    assert "age **49**" in texts(at.markdown) and "writer" in texts(at.markdown)

    recs, history = at.dataframe[0].value, at.dataframe[1].value
    expected = run.recommend(196, k=10)
    assert list(recs["title"]) == list(expected["title"])
    assert {"score", "genres", "year", "because"} <= set(recs.columns)
    assert recs["because"].str.startswith("Because you liked").all()
    assert not recs["seen"].any()
    assert len(history) == 39 and {"title", "genres", "rating", "date"} <= set(history.columns)
    assert at.get("download_button")[0].key == "rec_download"

    ok(at.toggle(key="rec_include_seen").set_value(True).run())
    recs = at.dataframe[0].value
    with_seen = run.recommend(196, k=10, exclude_seen=False)
    assert list(recs["title"]) == list(with_seen["title"])
    seen = set(run.model.known[user].indices)
    assert list(recs["seen"]) == [i in seen for i in with_seen["item_index"]]

    ok(at.number_input(key="rec_k").set_value(20).run())
    assert len(at.dataframe[0].value) == 20

    ok(at.selectbox(key="rec_run").set_value(runs["ml/itemknn"]).run())
    assert at.session_state["run_id"] == runs["ml/itemknn"]
    knn = load_run(runs["ml/itemknn"]).recommend(196, k=20, exclude_seen=False)
    assert list(at.dataframe[0].value["title"]) == list(knn["title"])


def test_recommend_for_your_own_profile(runs):
    at = ok(page("3_Recommend.py", ML, runs["ml/ease"]))
    ok(at.radio(key="rec_mode").set_value("Your own profile").run())
    assert "Pick at least one" in texts(at.info)
    run = load_run(runs["ml/ease"])
    picked = [run.items.index(50), run.items.index(181), run.items.index(172)]  # Star Wars, Return of the Jedi, Empire
    ok(at.multiselect(key="rec_profile_items").set_value(picked).run())
    recs = at.dataframe[0].value
    items, _ = run.model.recommend_for_history(np.array(picked), k=10)
    assert list(recs["title"]) == list(run.item_titles()[items])
    assert not set(recs["title"]) & set(run.item_titles()[picked])
    assert recs["because"].str.startswith("Because you picked").any()


def test_recommend_drugs_for_a_condition_with_evidence(runs):
    at = ok(page("3_Recommend.py", DRUGS, runs["drugs/ease"]))
    assert texts(at.warning).count(MEDICAL_NOTE) == 1
    reviews = DRUGS.all_reviews()
    assert len(reviews) > len(DRUGS.load())  # neutral and negative reviews are evidence, not positives
    condition = reviews.users.index("Depression")
    ok(at.selectbox(key="rec_condition").set_value(condition).run())
    assert "Positive rule of this run: reviews labelled positive" in texts(at.caption)
    reviewed, new = at.dataframe[0].value, at.dataframe[1].value
    reviewed_items = set(reviews.item[reviews.user == condition])
    assert len(reviewed) == len(reviewed_items)
    assert reviewed["reviews"].sum() == int((reviews.user == condition).sum())  # every review, whatever its rating
    assert {"strength", "model_rank", "positive", "neutral", "negative", "mean_rating", "best_positive"} <= set(reviewed.columns)
    assert "score" not in reviewed.columns and "score" not in new.columns
    assert reviewed["strength"].is_monotonic_decreasing
    titles = reviews.item_titles()
    assert 0 < len(new) <= 10 and not set(new["name"]) & {titles[i] for i in reviewed_items}
    assert new["provenance"].str.startswith("used for ").all()
    assert {"similarity", "weighted"} <= set(new.columns) and new["weighted"].is_monotonic_decreasing
    assert "Part 1 · Drugs reviewed for Depression" in texts(at.subheader)
    assert "Part 2 · Not yet reviewed for Depression" in texts(at.subheader)
    assert "bins" in texts(at.caption)  # the sample's ratings are bins: the mean rating says so
    assert at.session_state["drug_last_condition"] == "Depression"  # Home opens on it next

    # part 1 in the evidence order: Birth Control's best-supported drug (Mirena, 7 of 8 positive) first
    ok(at.selectbox(key="rec_condition").set_value(reviews.users.index("Birth Control")).run())
    ok(at.radio(key="rec_order").set_value("evidence").run())
    reviewed = at.dataframe[0].value
    assert reviewed["name"].iloc[0] == "Mirena" and reviewed["positive_share_low"].is_monotonic_decreasing
    assert not at.dataframe[1].value["name"].str.contains("Accutane|Sotret|Tazorac", case=False).any()

    ok(at.radio(key="rec_mode").set_value("A drug (reverse: which conditions)").run())
    ok(at.selectbox(key="rec_drug").set_value(reviews.items.index("Etonogestrel")).run())
    conditions, elsewhere = at.dataframe[0].value, at.dataframe[1].value
    assert conditions["name"].iloc[0] == "Birth Control" and conditions["model_rank"].str.contains("drugs for this condition").all()
    assert 0 < len(elsewhere) <= 10 and elsewhere["provenance"].str.contains("Birth Control").all()
    assert texts(at.warning).count(MEDICAL_NOTE) == 1

    ok(at.radio(key="rec_mode").set_value("Drugs like one drug").run())
    ok(at.selectbox(key="rec_similar_drug").set_value(reviews.items.index("Etonogestrel")).run())
    similar = at.dataframe[0].value
    assert len(similar) == 10 and "Etonogestrel" not in set(similar["name"])
    assert similar["shared_conditions"].str.contains("Birth Control").any()

    ok(at.radio(key="rec_mode").set_value("A new condition (your own list of drugs)").run())
    drug = reviews.items.index("Sertraline")
    ok(at.multiselect(key="rec_profile_items").set_value([drug, reviews.items.index("Bupropion")]).run())
    mine, suggested = at.dataframe[0].value, at.dataframe[1].value
    assert set(mine["name"]) == {"Sertraline", "Bupropion"} and "score" not in mine.columns  # evidence and flags, no raw score
    assert {"strength", "reviews", "positive", "negative", "status"} <= set(mine.columns)
    assert 0 < len(suggested) <= 10 and {"similarity", "provenance", "status"} <= set(suggested.columns)
    assert not set(suggested["name"]) & {"Sertraline", "Bupropion"}


def test_recommend_drugs_fold_in_with_an_embedding_model(runs):
    at = ok(page("3_Recommend.py", DRUGS, runs["drugs/neumf"]))
    data = DRUGS.load()
    ok(at.radio(key="rec_mode").set_value("A new condition (your own list of drugs)").run())
    picked = [data.items.index("Sertraline"), data.items.index("Bupropion")]
    ok(at.multiselect(key="rec_profile_items").set_value(picked).run())
    mine, suggested = at.dataframe[0].value, at.dataframe[1].value
    assert set(mine["name"]) == {"Sertraline", "Bupropion"}
    assert len(suggested) and not set(suggested["name"]) & {"Sertraline", "Bupropion"}


# ================================================================================== Compare
def test_compare_leaderboard_paired_test_and_lists(runs):
    at = ok(page("4_Compare.py", ML))
    board = at.dataframe[0].value
    loo = {runs["ml/pop"], runs["ml/itemknn"], runs["ml/ease"]}
    assert set(board["run_id"]) == loo
    assert "refitted on train + validation" in texts(at.caption) and "not meaningful" not in texts(at.warning)
    assert list(board["run_id"])[0] == runs["ml/ease"]  # best HR@10 first
    # The one best-run rule, stated where the best run is named: the page and the sidebar agree.
    from recsys_core.best import best_run

    best = best_run([_record(r) for r in loo])
    assert f"**Best run: {compare_ui.short_name(best)}.**" in texts(at.markdown) and "never the sampled HR@10" in texts(at.markdown)
    assert "full ranking" in compare_ui.short_name(best)
    assert "Best run:" in texts(at.sidebar.caption)
    # Which model to demo: every run with its measures side by side, and one named with the reason.
    assert "Which model should I demo?" in [h.value for h in at.header]
    demo = next(frame.value for frame in at.dataframe if "ms per user's top 10" in frame.value.columns)
    assert (
        len(demo) == 3 and (demo["ms per user's top 10"] > 0).all() and demo["coverage of the catalogue (95% CI)"].str.endswith("%)").all()
    )
    assert any(t.startswith("Demo ") and "ms per user" in t for t in (s.value for s in at.success))
    assert {"HR@10", "HR@10 95% CI", "NDCG@10", "Coverage@10 (full ranking)", "fit seconds"} <= set(board.columns)
    assert {"Recall@10", "Precision@10", "MAP@10", "MAP@10 95% CI"} <= set(board.columns)
    assert "Precision@10 is HR@10 / 10" in texts(at.caption)
    record = json.loads((Path(os.environ["RECSYS_HOME"]) / "runs" / runs["ml/ease"] / "run.json").read_text())
    lo, hi = record["test"]["loo-sampled"]["intervals"]["HR@10"]
    assert board.loc[board["run_id"] == runs["ml/ease"], "HR@10 95% CI"].item() == f"{lo:.3f} – {hi:.3f}"

    ok(at.selectbox(key="cmp_a").set_value(runs["ml/ease"]).run())
    ok(at.selectbox(key="cmp_b").set_value(runs["ml/pop"]).run())
    verdict = texts(at.success)
    assert "difference of +" in verdict and "ease" in verdict.split("is better")[0].rsplit("**", 1)[-1].lower()
    ok(at.selectbox(key="cmp_metric").set_value("NDCG@10").run())
    assert "NDCG@10" in texts(at.success)

    ok(at.selectbox(key="cmp_user").set_value(load_run(runs["ml/ease"]).users.index(1)).run())
    left, right = at.dataframe[1].value, at.dataframe[2].value
    assert len(left) == len(right) == 10
    common = len(set(left["title"]) & set(right["title"]))
    assert f"**Overlap:** {common} of 10" in texts(at.markdown)

    both = at.dataframe[3].value
    assert {"HR@10 sampled", "HR@10 full", "rank sampled", "rank full"} <= set(both.columns) and len(both) == 3
    assert (both["HR@10 sampled"] > both["HR@10 full"]).all()
    assert "Krichene" in texts(at.markdown)

    ok(at.radio(key="cmp_protocol").set_value("loo-full").run())
    assert "Coverage@10" in at.dataframe[0].value.columns

    labels = at.selectbox(key="cmp_split").options
    assert len(labels) == 2 and any("held-out users split" in label for label in labels)
    ok(at.selectbox(key="cmp_split").set_value(compare_ui.split_key(_record(runs["ml/pop-heldout"]))).run())
    board = at.dataframe[0].value
    assert list(board["run_id"]) == [runs["ml/pop-heldout"]] and "Recall@20" in board.columns
    assert "Train a second run" in texts(at.info)


def test_compare_on_drugs(runs):
    at = ok(page("4_Compare.py", DRUGS))
    assert len(at.dataframe[0].value) == 3
    assert "Positives: reviews labelled positive (rating 7-10 of 10)" in texts(at.caption)
    assert "not meaningful" in texts(at.warning)  # 60 test conditions: HR@10 intervals wider than 0.1
    ok(at.selectbox(key="cmp_a").set_value(runs["drugs/ease"]).run())
    ok(at.selectbox(key="cmp_b").set_value(runs["drugs/neumf"]).run())
    assert "test users both runs were evaluated on" in texts(at.success) + texts(at.info)


def _record(run_id: str) -> RunRecord:
    return RunRecord.from_json(json.loads((Path(os.environ["RECSYS_HOME"]) / "runs" / run_id / "run.json").read_text()))


# ================================================================================== Embeddings
def wait_for_umap(at: AppTest, run_id: str, kind: str) -> AppTest:
    """The page showed the PCA preview and started UMAP in the background: wait for it, then rerun."""
    assert "PCA preview" in at.get("plotly_chart")[0].proto.spec, "the preview is on screen and says so"
    assert any("PCA preview" in p.proto.text for p in at.get("progress")), "the page says UMAP is computing"
    job = map_jobs.job_for(load_run(run_id).path, kind)
    assert job is not None, "the page started the UMAP map in the background"
    assert job.finished.wait(400) and job.error is None, job.error
    assert (Path(os.environ["RECSYS_HOME"]) / "runs" / run_id / f"map-{kind}.npz").exists()
    ok(at.run())
    assert "UMAP" in at.get("plotly_chart")[0].proto.spec and "PCA preview" not in at.get("plotly_chart")[0].proto.spec
    assert "On screen: the **UMAP** map" in texts(at.caption)
    return at


def test_embeddings_item_map_is_computed_once_then_explored(runs):
    run_id = runs["ml/ease"]
    folder = Path(os.environ["RECSYS_HOME"]) / "runs" / run_id
    at = ok(page("5_Embeddings.py", ML, run_id, timeout=400))
    wait_for_umap(at, run_id, "items")
    assert (folder / "map-items.npz").exists()
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    spec = charts[0].proto.spec
    assert "scattergl" in spec and "Star Wars (1977)" in spec
    # The axes are fitted to the points (no equal scale leaving most of the frame empty).
    layout = json.loads(spec)["layout"]
    assert "scaleanchor" not in layout["yaxis"] and len(layout["xaxis"]["range"]) == 2 and len(layout["yaxis"]["range"]) == 2

    for option in at.selectbox(key="emb_colour").options:
        ok(at.selectbox(key="emb_colour").set_value(option).run())
    run = load_run(run_id)
    ok(at.selectbox(key="emb_user").set_value(run.users.index(196)).run())
    assert "top 10 recommended" in at.get("plotly_chart")[0].proto.spec
    item = run.items.index(50)
    ok(at.selectbox(key="emb_item").set_value(item).run())
    neighbours = at.dataframe[0].value
    expected, _ = run.model.similar_items(np.array([item]), k=10)
    assert list(neighbours["title"]) == list(run.item_titles()[expected[0]])
    assert "Star Wars (1977)" in texts(at.markdown)
    # The clicked item and its neighbours are marked on the map itself.
    import base64

    def decoded(values) -> list[int]:  # plotly sends arrays as base64 ("bdata") with their dtype
        if isinstance(values, dict):
            return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).astype(int).tolist()
        return [int(v) for v in np.asarray(values).ravel()]

    traces = {t["name"]: t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}
    assert sorted(decoded(traces["nearest 10 to Star Wars (1977)"]["customdata"])) == sorted(expected[0].tolist())
    assert decoded(traces["Star Wars (1977)"]["customdata"]) == [item]

    ok(at.radio(key="emb_kind").set_value("users").run())
    assert "no user embeddings" in texts(at.info)

    ok(at.selectbox(key="emb_run").set_value(runs["ml/pop"]).run())
    assert "no user embeddings" in texts(at.info)
    ok(at.radio(key="emb_kind").set_value("items").run())
    assert "pop model has no item embeddings" in texts(at.info)


def test_embeddings_on_drugs_items_and_users(runs):
    run_id = runs["drugs/neumf"]
    at = ok(page("5_Embeddings.py", DRUGS, run_id, timeout=400))
    wait_for_umap(at, run_id, "items")
    assert MEDICAL_NOTE in texts(at.info)
    assert at.selectbox(key="emb_colour").value == "Condition it is most reviewed for"
    assert "Depression" in at.get("plotly_chart")[0].proto.spec
    ok(at.radio(key="emb_kind").set_value("users").run())
    wait_for_umap(at, run_id, "users")
    folder = Path(os.environ["RECSYS_HOME"]) / "runs" / run_id
    assert (folder / "map-users.npz").exists() and (folder / "map-items.npz").exists()
    for option in at.selectbox(key="emb_colour").options:
        ok(at.selectbox(key="emb_colour").set_value(option).run())
    data = DRUGS.load()
    ok(at.selectbox(key="emb_selected_user").set_value(data.users.index("Depression")).run())
    assert len(at.dataframe[0].value) == 10


# ================================================================================== helpers without Streamlit
def test_map_figure_uses_webgl_categories_and_overlays():
    coords = np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32)
    info = pd.DataFrame({"genres": ["Drama|War"] * 10 + ["Comedy"] * 10 + [None] * 10, "year": [1990.0] * 29 + [np.nan]})
    counts = np.arange(30)
    hover = embeddings_ui.hover_texts(np.array([f"T{i}" for i in range(30)], dtype=object), info, counts)
    assert hover[0] == "<b>T0</b><br>Drama, War<br>0 interactions"
    colour = embeddings_ui.colouring("Genre (first listed)", info, counts)
    figure = embeddings_ui.map_figure(coords, hover, colour, [{"name": "history", "index": [1, 2]}])
    names = [t.name for t in figure.data]
    assert names == ["Drama (10)", "Comedy (10)", "unknown (10)", "history"]
    assert all(t.type == "scattergl" for t in figure.data)
    assert sorted(np.concatenate([t.customdata for t in figure.data[:3]]).tolist()) == list(range(30))
    year = embeddings_ui.map_figure(coords, hover, embeddings_ui.colouring("Year", info, counts))
    assert [t.name for t in year.data] == ["unknown (1)", "Year"]
    assert embeddings_ui.selected_index({"selection": {"points": [{"customdata": 7}]}}) == 7
    assert embeddings_ui.selected_index({"selection": {"points": [{"customdata": [4]}]}}) == 4
    assert embeddings_ui.selected_index({"selection": {"points": []}}) is None
    assert embeddings_ui.selected_index(None) is None


def test_paired_sentence_and_reversals():
    result = {
        "metric": "HR@10", "n_users": 100, "mean_a": 0.5, "mean_b": 0.4, "difference": 0.1, "interval": (0.05, 0.15),
        "test": "exact McNemar", "p_value": 0.001, "p_value_mcnemar": 0.001, "a_better": 20, "b_better": 10, "ties": 70,
    }  # fmt: skip
    text, verdict = compare_ui.paired_sentence(result, "A", "B")
    assert verdict == "a" and "**A is better**" in text and "McNemar test on the 30 users" in text and "p = 0.001" in text
    text, verdict = compare_ui.paired_sentence({**result, "interval": (-0.01, 0.2), "p_value": 0.2}, "A", "B")
    assert verdict == "none" and "not significant" in text
    continuous = {**result, "metric": "MAE", "test": "paired t-test", "p_value_t": 0.001, "p_value_wilcoxon": 0.2}
    text, verdict = compare_ui.paired_sentence(continuous, "A", "B")
    assert verdict == "b" and "Paired t-test p = 0.001" in text and "does not confirm" in text  # lower error is better
    table = pd.DataFrame({"run": ["x", "y"], "HR@10 sampled": [0.6, 0.5], "HR@10 full": [0.10, 0.12]})
    assert compare_ui.reversals(table) == ["y beats x on the full ranking but loses to it on the sampled metric."]
    assert compare_ui.overlap([1, 2, 3], [3, 4]) == (1, 0.25)


def test_explanations_on_the_page_match_the_core(runs):
    run = load_run(runs["ml/itemknn"])
    data = ML.load()
    user = run.users.index(196)
    items, _, _ = ex.rank_items(run.model, user, k=5, seen=run.seen)
    history, ratings = ex.user_item_ratings(data, user)
    out = ex.explain(run.model, history, items, run.item_titles(), ratings, 5.0)
    at = ok(page("3_Recommend.py", ML, runs["ml/itemknn"]))
    ok(at.selectbox(key="rec_user").set_value(user).run())
    ok(at.number_input(key="rec_k").set_value(5).run())
    assert list(at.dataframe[0].value["because"]) == list(out["because"])


def test_embeddings_reruns_do_not_take_the_vectors_again(runs, monkeypatch):
    """A click on the map or another colour reruns the page: the run's vectors (a VAE encodes every user for them) are
    taken once per run and kind, not on every rerun."""
    from recsys_core import embedding_map

    run_id = runs["ml/ease"]
    at = ok(page("5_Embeddings.py", ML, run_id, timeout=400))
    if "PCA preview" in at.get("plotly_chart")[0].proto.spec:
        wait_for_umap(at, run_id, "items")
    taken = []
    real = embedding_map.embeddings
    monkeypatch.setattr(embedding_map, "embeddings", lambda model, kind: taken.append(kind) or real(model, kind))
    for option in at.selectbox(key="emb_colour").options[:3]:
        ok(at.selectbox(key="emb_colour").set_value(option).run())
    assert len(taken) <= 1, taken
