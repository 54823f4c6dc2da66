"""Issue 7 part 2: sequence models see sequences.

Histories reach a model that reads order (``uses_timestamps``) as :class:`Sequences` in time order
from the Evaluator (leave-one-out and heldout-users) and in the order given from fold-in; the
heldout-users split gives the chronologically first 80% of each held-out user's items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_contract import bare_context, checkerboard

from recsys_core.evaluation import Evaluator
from recsys_core.interactions import Interactions
from recsys_core.models import create_model
from recsys_core.models.base import ModelConfig, Recommender
from recsys_core.sequences import Sequences
from recsys_core.splits import heldout_users, leave_one_out
from recsys_core.trainer import fit_model

SMALL_SVAE = {"embedding_size": 16, "rnn_size": 16, "hidden_size": 16, "latent_size": 8, "batch_size": 8, "learning_rate": 2e-2}


class OrderSpy(Recommender):
    """Reads order and records every ordered history it is given; scoring without one is an error."""

    name = "order-spy"
    Config = ModelConfig
    uses_timestamps = True

    def _prepare(self, train, rng):
        self.seen: list[Sequences] = []

    def _score_known(self, users, rows):
        raise AssertionError("an order-reading model was scored without its ordered histories")

    def _score_new(self, rows):
        raise AssertionError("an order-reading model was folded in without its ordered histories")

    def _score_sequences(self, sequences):
        self.seen.append(sequences)
        return np.zeros((sequences.n_rows, self.n_items), dtype=np.float32)


def fitted_spy(train: Interactions) -> OrderSpy:
    spy = OrderSpy()
    spy.begin_fit(bare_context(), train)
    return spy


def time_ordered_lists(parts: list[Interactions], users: np.ndarray) -> list[list[int]]:
    """Each user's items sorted by timestamp, computed with pandas (independent of Sequences)."""
    frame = pd.concat([pd.DataFrame({"user": p.user, "item": p.item, "t": p.timestamp}) for p in parts])
    lists = frame.sort_values(["user", "t"], kind="stable").groupby("user")["item"].apply(list)
    return [lists.get(u, []) for u in users]


def recorded(spy: OrderSpy) -> list[list[int]]:
    return [seq.row(b).tolist() for seq in spy.seen for b in range(seq.n_rows)]


def test_sequences_from_interactions_orders_by_time_and_keeps_repeats_at_latest():
    frame = pd.DataFrame({"user": [0, 0, 0, 0, 1, 1, 0], "item": [10, 11, 12, 13, 11, 12, 11], "timestamp": [5, 1, 3, 3, 2, 1, 9]})
    data = Interactions.from_frame(frame, "user", "item", timestamp_col="timestamp")
    sequences = Sequences.from_interactions(data)
    ids = np.asarray(data.items.ids)
    assert sequences.order == "time"
    assert ids[sequences.row(0)].tolist() == [12, 13, 10, 11] and ids[sequences.row(1)].tolist() == [12, 11]
    picked = sequences.rows(np.array([1, 0, 1]))
    assert [ids[picked.row(b)].tolist() for b in range(3)] == [[12, 11], [12, 13, 10, 11], [12, 11]]
    assert picked.to_csr(data.n_items).sum() == 8
    by_hand = Sequences.from_item_lists([[6, 2, 8, 2], []])
    assert by_hand.order == "as-added" and by_hand.row(0).tolist() == [6, 8, 2] and by_hand.row(1).tolist() == []


@pytest.mark.parametrize("protocol", ["loo-full", "loo-sampled"])
def test_evaluator_passes_time_ordered_histories_under_leave_one_out(protocol):
    data = checkerboard(n=24) if protocol == "loo-full" else _wide()
    split = leave_one_out(data, seed=0)
    for part, parts in (("validation", [split.train]), ("test", [split.train, split.validation])):
        kwargs = {"n_negatives": 5} if protocol == "loo-sampled" else {}
        evaluator = Evaluator(split, part, protocol, **kwargs)
        spy = fitted_spy(split.train)
        result = evaluator.evaluate(spy)
        expected = time_ordered_lists(parts, evaluator.users)
        assert recorded(spy) == expected
        # the data's item index order is not its time order, so the check has teeth
        assert any(seq != sorted(seq) for seq in expected)
        assert "time order" in result.info["history_order"]


def _wide() -> Interactions:
    """200 items, random times: enough unseen items for sampled negatives."""
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(30), 12)
    items = np.concatenate([rng.choice(200, 12, replace=False) for _ in range(30)])
    frame = pd.DataFrame({"user": users, "item": items, "timestamp": rng.permutation(len(users))})
    return Interactions.from_frame(frame, "user", "item", timestamp_col="timestamp", name="wide")


def test_heldout_users_gives_the_chronological_first_80_percent_in_time_order():
    data = _wide()
    split = heldout_users(data, seed=0)
    assert split.info["temporal"] and "chronological first 80%" in split.info["given"]
    for given, targets in ((split.validation_given, split.validation), (split.test_given, split.test)):
        last_given = pd.Series(given.timestamp).groupby(given.user).max()
        first_target = pd.Series(targets.timestamp).groupby(targets.user).min()
        assert (last_given < first_target.reindex(last_given.index)).all()
        assert np.all(np.bincount(targets.user, minlength=data.n_users)[np.unique(given.user)] == 2)  # 12 items: 10 given, 2 predicted
    evaluator = Evaluator(split, "test", "heldout-users")
    spy = fitted_spy(split.train)
    result = evaluator.evaluate(spy)
    assert recorded(spy) == time_ordered_lists([split.test_given], evaluator.users)
    assert "chronological" in result.info["given"] and "time order" in result.info["history_order"]


def test_models_that_ignore_order_are_scored_as_before():
    data = checkerboard()
    split = leave_one_out(data, seed=0)
    model = fit_model(create_model("ease"), split.train, device="cpu")
    result = Evaluator(split, "test", "loo-full").evaluate(model)
    assert "history_order" not in result.info


def test_fold_in_passes_the_order_the_items_were_added():
    spy = fitted_spy(checkerboard())
    spy.fold_in(np.array([6, 2, 8, 2]))
    spy.recommend_for_history(np.array([9, 1, 5]), k=3)
    assert [seq.order for seq in spy.seen] == ["as-added", "as-added"]
    assert recorded(spy) == [[6, 8, 2], [9, 1, 5]]


@pytest.fixture(scope="module")
def svae_model():
    return fit_model(create_model("svae", **SMALL_SVAE, epochs=15), checkerboard(), device="cpu", seed=0)


def test_reversing_a_history_changes_svae_scores(svae_model):
    model = svae_model
    history = [0, 2, 4, 6, 8, 10, 12]
    rows = Sequences.from_item_lists([history, history[::-1]]).to_csr(model.n_items)
    assert (rows[0] != rows[1]).nnz == 0  # as CSR rows the two histories are identical
    scores = model.score_histories(rows, sequences=Sequences.from_item_lists([history, history[::-1]]))
    assert not np.allclose(scores[0], scores[1])
    np.testing.assert_allclose(scores[0], model.fold_in(history), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores[1], model.fold_in(history[::-1]), rtol=1e-5, atol=1e-6)
    # known users too: the ordered history passed replaces the stored one
    users = np.array([4, 4])
    known = model.score(users, history=model.known, sequences=Sequences.from_item_lists([history, history[::-1]]))
    np.testing.assert_allclose(known, scores, rtol=1e-5, atol=1e-6)


def test_svae_scored_by_the_evaluator_reads_time_order(svae_model):
    data = checkerboard()
    split = leave_one_out(data, seed=0)
    result = Evaluator(split, "test", "loo-full").evaluate(svae_model)
    assert "time order" in result.info["history_order"]


def test_recommend_page_reads_a_hand_built_profile_in_the_order_added(ml100k_dir):
    """The Recommend page's own-profile mode passes the picked items in the order they were added
    to an order-reading model, and says so."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from recsys_core.datasets import fetch
    from recsys_core.experiment import DataSource, run_experiment
    from recsys_core.runs import load_run
    from tests.conftest import REPO

    fetch("ml-100k", source=ml100k_dir, progress=False)
    source = DataSource.builtin("ml-100k")
    small = {**SMALL_SVAE, "max_length": 30, "batch_size": 128}
    run_id = run_experiment(source, "svae", device="cpu", epochs=1, overrides=small, refit=False).run_id
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = AppTest.from_file(str(REPO / "app_pages" / "3_Recommend.py"), default_timeout=240)
        at.session_state["source"] = source.to_json()
        at.session_state["run_id"] = run_id
        at.run()
        at.radio(key="rec_mode").set_value("Your own profile").run()
        run = load_run(run_id)
        picked = [run.items.index(181), run.items.index(50), run.items.index(172)]
        at.multiselect(key="rec_profile_items").set_value(picked).run()
        assert not at.exception and not at.error
        assert "in the order you added them" in "\n".join(str(c.value) for c in at.caption)
        shown = list(at.dataframe[0].value["title"])
        items, _ = run.model.recommend_for_history(np.array(picked), k=len(shown))
        assert shown == list(run.item_titles()[items])
        assert not np.allclose(run.model.fold_in(picked), run.model.fold_in(picked[::-1]))  # the order reaches the model
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
