"""Explanations ("because you liked X and Y"), drug evidence and reverse mode."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core import explain as ex
from recsys_core.interactions import Interactions
from recsys_core.models import create_model
from recsys_core.trainer import fit_model


@pytest.fixture(scope="module")
def small():
    """Two taste groups: users 0-5 like items 0-3, users 6-11 like items 4-7; ratings 1-5."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(12):
        group = range(0, 4) if user < 6 else range(4, 8)
        for item in group:
            if rng.random() < 0.8:
                rows.append((user, item, float(rng.integers(1, 6)), 1_000_000 + 10 * len(rows)))
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    info = pd.DataFrame(
        {"title": [f"Film {i}" for i in range(8)], "genres": ["Drama"] * 8, "year": [1990 + i for i in range(8)]}, index=range(8)
    )
    return Interactions.from_frame(frame, "user", "item", "rating", "timestamp", item_info=info, name="small")


def _fit(name, data, **overrides):
    return fit_model(create_model(name, **overrides), data, device="cpu", seed=0)


@pytest.mark.parametrize("name, overrides", [("ease", {"l2": 1.0}), ("itemknn", {"neighbours": 5, "shrinkage": 0.0})])
def test_contributions_add_up_to_the_score_of_linear_item_models(small, name, overrides):
    """For EASE and item-kNN the support of each history item is exactly its share of the score."""
    model = _fit(name, small, **overrides)
    for user in (0, 7):
        history = model.known[user].indices
        recommended = np.arange(small.n_items)
        support = ex.contributions(model, history, recommended)
        assert support.shape == (small.n_items, len(history))
        np.testing.assert_allclose(support.sum(axis=1), model.score(np.array([user]))[0], rtol=1e-4, atol=1e-5)


def test_explain_names_the_history_items_that_support_a_recommendation(small):
    model = _fit("ease", small, l2=1.0)
    titles = small.item_titles()
    history = np.array([0, 1, 4])
    out = ex.explain(model, history, np.array([2, 5]), titles, n=1)
    assert list(out["item_index"]) == [2, 5]
    # Item 2 belongs to the first taste group, item 5 to the second: each is explained by its own group.
    assert out["because_items"][0][0] in (0, 1)
    assert out["because_items"][1] == [4]
    assert out["because"][1] == "Because you liked Film 4"


def test_ratings_weight_the_explanation(small):
    model = _fit("ease", small, l2=1.0)
    titles = small.item_titles()
    history = np.array([0, 1])
    support = ex.contributions(model, history, np.array([2]))[0]
    weak, strong = (0, 1) if support[0] < support[1] else (1, 0)
    ratings = np.zeros(2)
    ratings[weak], ratings[strong] = 5.0, 1.0  # the user loved the weaker link and disliked the stronger one
    out = ex.explain(model, history, np.array([2]), titles, ratings=ratings, max_rating=5.0, n=1)
    expected = history[weak] if support[weak] * 5 > support[strong] * 1 else history[strong]
    assert out["because_items"][0] == [expected]
    weights = out["because_weights"][0]
    assert weights[0] == pytest.approx(max(support[weak] * 5 / 5, support[strong] * 1 / 5), rel=1e-4)


def test_an_item_never_explains_itself_and_unrelated_items_get_the_fallback(small):
    model = _fit("itemknn", small, neighbours=3, shrinkage=0.0)
    titles = small.item_titles()
    out = ex.explain(model, np.array([0, 1]), np.array([0, 6]), titles, fallback="nothing")
    assert 0 not in out["because_items"][0]
    assert out["because"][1] == "nothing"  # item 6 has no neighbour among 0 and 1


def test_popularity_is_not_explained_by_the_history(small):
    model = _fit("pop", small)
    out = ex.explain(model, np.array([0, 1]), np.array([2, 3]), small.item_titles())
    assert all(items == [] for items in out["because_items"])
    assert out["because"].str.contains("popular").all()


def test_because_text_joins_names():
    assert ex.because_text(["A"]) == "Because you liked A"
    assert ex.because_text(["A", "B"]) == "Because you liked A and B"
    assert ex.because_text(["A", "B", "C"], "Close to {items}") == "Close to A, B and C"


def test_history_index_and_user_history(small):
    index = ex.HistoryIndex.build(small)
    for user in range(small.n_users):
        rows = index.rows(user)
        assert sorted(rows) == sorted(np.flatnonzero(small.user == user))
        assert np.all(np.diff(small.timestamp[rows]) <= 0)  # newest first
    table = ex.user_history(small, 3, index)
    assert list(table.columns) == ["item", "title", "genres", "year", "rating", "date", "item_index"]
    assert len(table) == len(index.rows(3))
    items, ratings = ex.user_item_ratings(small, 3, index)
    assert set(items) == set(table["item_index"])
    assert ratings is not None and len(ratings) == len(items)


def test_user_item_ratings_averages_repeated_pairs():
    frame = pd.DataFrame({"u": ["a", "a", "a", "b"], "i": ["x", "x", "y", "x"], "r": [2.0, 4.0, 5.0, 1.0]})
    data = Interactions.from_frame(frame, "u", "i", "r")
    items, ratings = ex.user_item_ratings(data, data.users.index("a"))
    assert dict(zip(data.items.ids[items], ratings)) == {"x": 3.0, "y": 5.0}


def test_rank_items_and_seen_items(small):
    model = _fit("ease", small, l2=1.0)
    items, scores, seen = ex.rank_items(model, 0, k=8, include_seen=True)
    assert seen.any() and np.all(np.diff(scores) <= 0)
    items, scores, seen = ex.rank_items(model, 0, k=3, include_seen=False)
    assert not seen.any()
    seen_items, seen_scores, ranks = ex.rank_seen_items(model, 0)
    assert set(seen_items) == set(model.known[0].indices)
    full = model.score(np.array([0]))[0]
    for item, rank in zip(seen_items, ranks):
        assert rank == 1 + int((full > full[item]).sum())


def test_trim_cuts_at_a_word_boundary():
    texts = pd.Series(["short", "word " * 100, None])
    out = ex.trim(texts, 30)
    assert out[0] == "short"
    assert out[1].endswith("…") and len(out[1]) <= 31 and not out[1][:-1].endswith(" ")
    assert out[1][:-1].split() == ["word"] * len(out[1][:-1].split())
    assert out[2] == ""


def test_pair_evidence_matches_a_direct_count(drugs_sample):
    data = drugs_sample
    pairs = ex.pair_evidence(data)
    frame = data.to_frame(raw_ids=False)
    assert len(pairs) == len(frame.groupby(["user", "item"]))
    assert pairs["reviews"].sum() == len(data)
    assert pairs["user"].is_monotonic_increasing
    busiest = pairs.sort_values("reviews", ascending=False).iloc[0]
    rows = frame[(frame["user"] == busiest["user"]) & (frame["item"] == busiest["item"])]
    assert busiest["reviews"] == len(rows) > 1
    assert busiest["mean_rating"] == pytest.approx(rows["rating"].mean())
    assert busiest["useful"] == rows["useful"].sum()
    best = rows.sort_values("useful", ascending=False).iloc[0]
    assert busiest["snippet_useful"] == best["useful"]
    expected = " ".join(str(best["review"]).split())
    snippet = busiest["snippet"]
    assert expected.startswith(snippet.rstrip("…").rstrip()) and len(snippet) <= ex.SNIPPET_CHARS + 1

    overall = ex.item_evidence(data)
    assert len(overall) == data.n_items and overall["reviews"].sum() == len(data)
    assert overall["users"].max() >= 2


def test_evidence_for_a_condition_fills_unreviewed_drugs(drugs_sample):
    data = drugs_sample
    pairs = ex.pair_evidence(data)
    condition = int(np.argmax(data.user_counts()))
    mine = ex.evidence_for_user(pairs, condition)
    assert (mine["user"] == condition).all() and len(mine) == len(np.unique(data.item[data.user == condition]))
    unreviewed = np.setdiff1d(np.arange(data.n_items), mine["item"])[:2]
    out = ex.evidence_for(pairs, condition, np.concatenate([mine["item"].to_numpy()[:2], unreviewed]))
    assert list(out["reviews"][:2]) == list(mine["reviews"][:2])
    assert list(out["reviews"][2:]) == [0, 0] and out["snippet"][2:].isna().all()


def test_conditions_for_a_drug_with_evidence(drugs_sample):
    from recsys_core.experiment import run_experiment
    from recsys_core.runs import load_run

    result = run_experiment(drugs_sample, "ease", "loo-sampled", seed=0, device="cpu", overrides={"l2": 50.0})
    run = load_run(result.run_id)
    pairs = ex.pair_evidence(drugs_sample)
    drug = drugs_sample.items.ids[int(np.argmax(drugs_sample.item_counts()))]
    table = ex.conditions_for_item(run, drug, k=8, pairs=pairs)
    assert len(table) == 8 and list(table["rank"]) == list(range(1, 9))
    assert {"condition", "model_rank", "strength", "reviews", "mean_rating", "useful"} <= set(table.columns)
    assert (table["already_seen"] == (table["reviews"] > 0)).all()
    assert np.all(np.diff(table["rank_first"]) >= 0)  # best rank first, ties shown as ties
    assert table["model_rank"].str.contains("of 470 drugs").all()


# ---------------------------------------------------------------------------------- the Recommend page's table
def _run_of(model, data, seen=None):
    from pathlib import Path

    from recsys_core.runs import Run

    return Run("test-run", Path("."), {}, model, data.users, data.items, data.item_info, data.user_info, seen_saved=seen)


def test_recommendations_with_reasons_for_a_user_scores_from_and_excludes_every_seen_item(small):
    # The model knows only the first half of each user's items; the run has seen them all.
    half = small.subset(np.arange(len(small)) % 2 == 0)
    model = _fit("ease", half, l2=1.0)
    run = _run_of(model, small, seen=small.to_csr())
    table = ex.recommendations_with_reasons(run, small, user=0, k=5, popularity=small.item_counts())
    seen = set(small.item[small.user == 0])
    assert not seen & set(table["item_index"]) and not table["seen"].any()
    expected_items, expected_scores = model.recommend(np.array([0]), k=5, history=small.to_csr())
    finite = np.isfinite(expected_scores[0])
    assert table["item_index"].tolist() == expected_items[0][finite].tolist()
    np.testing.assert_allclose(table["score"], expected_scores[0][finite])
    history, ratings = ex.user_item_ratings(small, 0)
    reasons = ex.explain(model, history, table["item_index"].to_numpy(), small.item_titles(), ratings, float(small.rating.max()))
    assert table["because"].tolist() == reasons["because"].tolist()
    assert table["because_items"].tolist() == reasons["because_items"].tolist()
    assert {"rank", "item", "title", "score", "genres", "year", "popularity", "seen"} <= set(table.columns)
    np.testing.assert_array_equal(table["popularity"], small.item_counts()[table["item_index"]])

    shown = ex.recommendations_with_reasons(run, small, user=0, k=8, include_seen=True)
    assert shown["seen"].tolist() == [i in seen for i in shown["item_index"]] and shown["seen"].any()


def test_recommendations_with_reasons_for_a_profile_names_the_picked_items(small):
    model = _fit("itemknn", small, neighbours=5, shrinkage=0.0)
    run = _run_of(model, small)
    table = ex.recommendations_with_reasons(run, small, profile=[0, 1], k=4, template="Close to {items}, which you picked")
    items, scores = model.recommend_for_history(np.array([0, 1]), k=4)
    assert table["item_index"].tolist() == items[np.isfinite(scores)].tolist()
    assert not {0, 1} & set(table["item_index"]) and "seen" not in table.columns
    supported = table[table["because_items"].map(len) > 0]
    assert len(supported) and supported["because"].str.startswith("Close to Film ").all()
    with pytest.raises(ValueError, match="either a user or a profile"):
        ex.recommendations_with_reasons(run, small, user=0, profile=[1])
