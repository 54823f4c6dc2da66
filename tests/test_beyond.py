"""Beyond-accuracy metrics worked out by hand, and their place in a saved run."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from recsys_core import metrics as M


def test_gini_of_recommendation_counts_by_hand():
    # 4 items; lists [0,1],[0,1],[0,2] → counts c = (3, 2, 1, 0), sorted (0, 1, 2, 3), Σc = 6, n = 4.
    # G = Σ (2j − n − 1) c_(j) / (n Σc) = (−3·0 − 1·1 + 1·2 + 3·3) / (4·6) = 10 / 24.
    top = np.array([[0, 1], [0, 1], [0, 2]])
    assert M.gini_index(top, 4) == pytest.approx(10 / 24)
    # Every item equally often → 0; one item in every list of one item → (n − 1)/n.
    assert M.gini_index(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)
    assert M.gini_index(np.array([[2], [2], [2]]), 4) == pytest.approx(3 / 4)
    assert M.recommendation_counts(top, 4).tolist() == [3, 2, 1, 0]


def test_novelty_is_zhou_et_al_self_information():
    # Zhou et al. 2010: log2(|U| / k_i). 16 users; item degrees 8, 4, 2, 1, 0 → 1, 2, 3, 4 bits; the
    # item nobody has counts as k = 1: log2(16) = 4 bits.
    degrees = np.array([8, 4, 2, 1, 0])
    top = np.array([[0, 1], [2, 4], [0, -1]])
    np.testing.assert_allclose(M.novelty(top, degrees, 16), [(1 + 2) / 2, (3 + 4) / 2, 1.0])


def test_average_recommendation_popularity_and_long_tail():
    counts = np.array([50, 30, 10, 5, 5])  # 100 interactions
    top = np.array([[0, 1], [3, 4], [1, 2]])
    np.testing.assert_allclose(M.average_recommendation_popularity(top, counts), [40.0, 5.0, 20.0])
    # Head: the fewest most popular items holding ≥ 20% of interactions → item 0 alone (50%).
    tail = M.long_tail_items(counts, 0.2)
    assert tail.tolist() == [False, True, True, True, True]
    # With a 60% head, items 0 and 1 (50 + 30 = 80 ≥ 60) are the head.
    assert M.long_tail_items(counts, 0.6).tolist() == [False, False, True, True, True]
    np.testing.assert_allclose(M.long_tail_share(top, tail), [0.5, 1.0, 1.0])


def test_intra_list_diversity_by_genre_jaccard():
    genres = np.array(
        [
            [1, 1, 0],  # item 0: A, B
            [1, 0, 0],  # item 1: A
            [0, 0, 1],  # item 2: C
            [0, 0, 0],  # item 3: none
        ]
    )
    # List [0, 1, 2]: d(0,1) = 1 − 1/2, d(0,2) = 1 − 0/3, d(1,2) = 1 → mean (0.5 + 1 + 1) / 3.
    # List [1, 1]: identical → 0. List [3, 3, -1]: two genre-less items count as identical → 0.
    top = np.array([[0, 1, 2], [1, 1, -1], [3, 3, -1]])
    np.testing.assert_allclose(M.intra_list_diversity(top, genres, "jaccard"), [2.5 / 3, 0.0, 0.0])


def test_intra_list_diversity_by_embedding_cosine():
    vectors = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    # d(0,1) = 1 − 0, d(0,2) = 1 − 1/√2, d(1,2) = 1 − 1/√2.
    expected = (1 + 2 * (1 - 1 / math.sqrt(2))) / 3
    np.testing.assert_allclose(M.intra_list_diversity(np.array([[0, 1, 2], [0, -1, -1]]), vectors, "cosine"), [expected, 0.0])
    with pytest.raises(ValueError):
        M.intra_list_diversity(np.array([[0, 1]]), vectors, "euclid")


def test_accuracy_by_activity_quintiles():
    # Ten users with history lengths 1..10 (shuffled): quintiles are pairs of lengths (1,2), (3,4), ...
    lengths = np.array([5, 1, 9, 2, 10, 3, 7, 4, 8, 6])
    hits = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 0], dtype=float)
    groups = M.accuracy_by_activity(hits, lengths, 5)
    assert [(g["min_length"], g["max_length"], g["users"]) for g in groups] == [(1, 2, 2), (3, 4, 2), (5, 6, 2), (7, 8, 2), (9, 10, 2)]
    # lengths 1,2 → hits 0,0; 3,4 → 1,1; 5,6 → 1,0; 7,8 → 0,0; 9,10 → 1,1
    assert [g["mean"] for g in groups] == [0.0, 1.0, 0.5, 0.0, 1.0]
    assert M.activity_groups(np.array([3, 3, 3, 3, 3]), 5).tolist() == [0, 1, 2, 3, 4]


def test_beyond_accuracy_of_popularity_by_hand(ml100k):
    """Popularity recommends the same most popular unseen items to everyone: check the record against
    the lists built independently from item counts."""
    from recsys_core.beyond import beyond_accuracy, top_k_lists
    from recsys_core.evaluation import Evaluator
    from recsys_core.models import create_model
    from recsys_core.splits import make_split
    from recsys_core.trainer import fit_model

    split = make_split(ml100k, "loo-full", seed=0)
    model = fit_model(create_model("pop"), split.train, device="cpu")
    users, top = top_k_lists(model, split, "test", 10)
    assert len(users) == ml100k.n_users and top.shape == (ml100k.n_users, 10)
    history = split.history("test").to_csr()
    assert not np.asarray(history[users[:, None], top].todense()).any(), "a known item was recommended"
    evaluation = Evaluator(split, "test", "loo-full").evaluate(model)
    result = beyond_accuracy(model, split, evaluation, ml100k.item_info, n_resamples=200)
    assert result.metrics["Coverage@10"] == pytest.approx(evaluation.metrics["Coverage@10"])
    counts = split.train_with_validation().item_counts()
    assert result.metrics["ARP@10"] == pytest.approx(counts[top].mean())
    assert result.diversity_basis == "genres"
    assert [g["group"] for g in result.by_activity] == [1, 2, 3, 4, 5]
    assert sum(g["users"] for g in result.by_activity) == len(evaluation.users)
    for name, value in result.metrics.items():
        lo, hi = result.intervals[name]
        assert lo <= value <= hi, name


def test_run_records_beyond_accuracy(ml100k):
    from recsys_core.experiment import run_experiment
    from recsys_core.runs import load_run

    result = run_experiment(ml100k, "ease", protocol="loo-sampled", device="cpu", overrides={"l2": 500.0})
    beyond = load_run(result.run_id).record["beyond"]
    assert beyond["available"] and beyond["k"] == 10 and beyond["n_users"] == ml100k.n_users
    assert set(beyond["metrics"]) == {"Coverage@10", "Gini@10", "Novelty@10", "ILD@10", "ARP@10", "LongTail@10"}
    # The beyond lists are the full-ranking lists the loo-full evaluation covers.
    assert beyond["metrics"]["Coverage@10"] == pytest.approx(result.evaluations["loo-full"].metrics["Coverage@10"])
    assert beyond["activity_metric"] == "HR@10"


def test_compare_page_shows_the_tradeoff(ml100k_dir, tmp_path, monkeypatch):
    """Two runs on one split: the Compare page plots accuracy against coverage and novelty with intervals."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from recsys_core.datasets import fetch
    from recsys_core.experiment import DataSource, run_experiment
    from recsys_core.runs import RunRecord
    from webapp import beyond_ui

    fetch("ml-100k", source=ml100k_dir)
    source = DataSource.builtin("ml-100k")
    data = source.load()
    ids = [
        run_experiment(data, m, "loo-sampled", device="cpu", source=source, **kw).run_id
        for m, kw in (("pop", {}), ("ease", {"overrides": {"l2": 500.0}}))
    ]
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app_pages" / "4_Compare.py"), default_timeout=180)
    at.session_state["source"] = source.to_json()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert "Beyond accuracy" in [h.value for h in at.header]
    charts = [c for c in at.get("plotly_chart")]
    specs = [json.loads(c.proto.spec) for c in charts]
    titles = [s["layout"].get("title", {}).get("text", "") for s in specs]
    assert "HR@10 vs catalogue coverage" in titles and "HR@10 vs novelty (bits)" in titles
    scatter = specs[titles.index("HR@10 vs catalogue coverage")]["data"][0]
    assert len(scatter["text"]) == 2 and "error_x" in scatter and "error_y" in scatter
    table = at.dataframe[-2].value
    assert {"Coverage@10", "Novelty@10", "Gini@10", "ILD@10", "LongTail@10"} <= set(table.columns) and len(table) == 2
    records = [RunRecord.from_json(json.loads((Path(os.environ["RECSYS_HOME"]) / "runs" / i / "run.json").read_text())) for i in ids]
    frame = beyond_ui.tradeoff_table(records, "loo-sampled")
    # Popularity recommends far fewer distinct items than EASE.
    assert frame.set_index("run_id").loc[ids[0], "Coverage@10"] < frame.set_index("run_id").loc[ids[1], "Coverage@10"]
    # The report of these runs, built on request and offered for download.
    at.button(key="cmp_report_build").click().run()
    assert not at.exception, [e.message for e in at.exception]
    built = at.session_state["cmp_report"]
    assert set(built[0][0]) == set(ids) and b"4. Beyond accuracy" in built[1]


class _NextToLastItem:
    """An order-reading stub: it recommends the items whose raw ids are nearest the user's latest item's
    (no two items score the same). Given no sequence it can only take the last item in index order."""

    uses_timestamps = True
    ranks_items = True
    name = "next-to-last"

    def __init__(self, items):
        self.number = items.ids.astype(str).astype(np.int64)

    def _from_last(self, last: np.ndarray) -> np.ndarray:
        gap = self.number[None, :] - self.number[last][:, None]
        return -(np.abs(gap) + 0.5 * (gap < 0)).astype(np.float64)

    def _last(self, rows, sequences) -> np.ndarray:
        if sequences is not None:
            return sequences.items[sequences.indptr[1:] - 1]
        return rows.indices[rows.indptr[1:] - 1]

    def score(self, users, items=None, history=None, sequences=None):
        return self._from_last(self._last(history[users], sequences))

    def score_histories(self, rows, sequences=None):
        return self._from_last(self._last(rows, sequences))


@pytest.mark.parametrize("protocol", ["loo-full", "heldout-users"])
def test_beyond_lists_read_histories_in_time_order_whatever_the_id_encoding(ml100k, protocol):
    """Re-encoding the item ids (as text: "10" sorts before "2") moves every index but no time: an
    order-reading model's beyond-accuracy lists, in raw ids, must not change."""
    from recsys_core.beyond import top_k_lists
    from recsys_core.interactions import Interactions
    from recsys_core.splits import make_split

    frame = ml100k.to_frame()
    as_text = Interactions.from_frame(frame.assign(item=frame["item"].astype(str)), timestamp_col="timestamp")
    lists = {}
    for name, data in (("numbers", ml100k), ("text", as_text)):
        split = make_split(data, protocol, seed=0)
        users, top = top_k_lists(_NextToLastItem(data.items), split, "test", 10)
        assert (top >= 0).all()
        raw_users = data.users.ids[users].tolist()
        lists[name] = dict(zip(raw_users, data.items.ids[top].astype(str).tolist()))
    assert lists["numbers"] == lists["text"]


def test_lists_from_the_full_ranking_pass_are_the_lists_made_alone(ml100k):
    """The top-10 lists gathered from the loo-full test pass's score blocks are exactly the lists
    top_k_lists makes by scoring every test user again, so the record does not change."""
    from recsys_core.beyond import beyond_accuracy, shared_lists, top_k_lists
    from recsys_core.evaluation import Evaluator
    from recsys_core.models import create_model
    from recsys_core.splits import make_split
    from recsys_core.trainer import fit_model

    split = make_split(ml100k, "loo-full", seed=0)
    for name in ("pop", "itemknn"):
        model = fit_model(create_model(name), split.train, device="cpu")
        lists = shared_lists(model, split, seed=0)
        evaluation = Evaluator(split, "test", "loo-full").evaluate(model, on_block=lists.add)
        users, top = top_k_lists(model, split, "test", 10, seed=0)
        shared_users, shared_top = lists.result()
        assert np.array_equal(users, shared_users) and np.array_equal(top, shared_top)
        alone = beyond_accuracy(model, split, evaluation, ml100k.item_info, n_resamples=100)
        shared = beyond_accuracy(model, split, evaluation, ml100k.item_info, n_resamples=100, lists=lists.result())
        assert alone.to_json() == shared.to_json()
    with pytest.raises(ValueError):
        beyond_accuracy(model, split, evaluation, lists=(users[1:], top[1:]))


def test_labels_of_close_points_take_turns_and_lone_points_sit_on_top():
    from recsys_core.beyond import label_positions

    # GMF and Mult-VAE almost on top of each other, EASE far away.
    x, y = np.array([0.30, 0.305, 0.9]), np.array([0.120, 0.121, 0.30])
    positions = label_positions(x, y)
    assert positions[0] != positions[1] and positions[2] == "top center"
    assert label_positions(np.array([0.5]), np.array([0.5])) == ["top center"]


def test_the_leaderboard_chart_leaves_room_for_its_numbers_and_names():
    from recsys_core.comparison import leaderboard_figure
    from recsys_core.runs import RunRecord

    record = RunRecord.from_json(
        {
            "run_id": "r",
            "model": "ease",
            "dataset": {"name": "d"},
            "protocol": "loo-sampled",
            "test": {"loo-sampled": {"metrics": {"HR@10": 0.5}}},
        }
    )
    figure = leaderboard_figure(["EASE · ml-100k · 09:21 · HR@10 0.134, full ranking"], [0.5], [record], "loo-sampled")
    assert figure.layout.margin.l >= 60 and figure.layout.yaxis.automargin and figure.layout.xaxis.automargin
    assert figure.layout.yaxis.tickformat == ".2f" and figure.layout.xaxis.tickangle == -20
