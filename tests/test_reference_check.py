"""benchmarks/reference_check.py runs on a tiny fixture, so the independent cross-check cannot rot."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from benchmarks.reference_check import check_candidates, check_model, check_split, metrics_from_ranks, reference_split
from recsys_core.evaluation import Evaluator
from recsys_core.interactions import Interactions
from recsys_core.splits import leave_one_out


def tiny_with_ties(seed: int = 0) -> Interactions:
    """40 users × 12 of 150 items; times on a coarse grid, so many interactions share a time."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(40), 12)
    items = np.concatenate([rng.choice(150, 12, replace=False) for _ in range(40)])
    frame = pd.DataFrame({"user": users, "item": items, "timestamp": rng.integers(0, 4, len(users))})
    frame = pd.concat([frame, frame.iloc[:5].assign(timestamp=9)])  # repeated pairs: the latest counts
    return Interactions.from_frame(frame, "user", "item", timestamp_col="timestamp", name="tiny-ties")


@pytest.mark.parametrize("model_name", ["pop", "ease"])
def test_reference_agrees_with_the_project_on_a_tiny_fixture(model_name):
    row = check_model(tiny_with_ties(), model_name, seed=3)
    assert row["users"] == 40 and row["refit"] is True
    assert row["HR@10 project"] == row["HR@10 reference"] and float(row["max metric difference"]) <= 1e-6
    if model_name == "pop":
        assert row["users with ties"] > 0  # the tie rule is exercised


def test_reference_catches_a_wrong_split_and_bad_candidates():
    data = tiny_with_ties()
    reference = reference_split(data.user, data.item, data.timestamp, data.items.ids, seed=0)
    check_split(reference, leave_one_out(data, seed=0))
    with pytest.raises(AssertionError, match="differs from the definition"):
        check_split(reference, leave_one_out(data, seed=1))  # other same-time tie-breaking
    split = leave_one_out(data, seed=0)
    swapped = dataclasses.replace(split, validation=split.test, test=split.validation)
    with pytest.raises(AssertionError):
        check_split(reference, swapped)
    evaluator = Evaluator(split, "test", "loo-sampled", seed=0)
    candidates = evaluator.candidates.copy()
    check_candidates(candidates, evaluator.users, reference, data.n_items)
    candidates[0, 1] = reference.train[1][reference.train[0] == evaluator.users[0]][0]  # a training positive
    with pytest.raises(AssertionError, match="positive"):
        check_candidates(candidates, evaluator.users, reference, data.n_items)


def test_reference_metrics_from_their_definition():
    metrics = metrics_from_ranks(np.array([0, 4, 9, 10, 30]))
    assert metrics["HR@10"] == pytest.approx(3 / 5) and metrics["HR@5"] == pytest.approx(2 / 5)
    assert metrics["NDCG@10"] == pytest.approx((1 + 1 / np.log2(6) + 1 / np.log2(11)) / 5)
    assert metrics["MRR"] == pytest.approx((1 + 1 / 5 + 1 / 10 + 1 / 11 + 1 / 31) / 5)
