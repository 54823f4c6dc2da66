"""Metrics on arrays worked out by hand."""

import math

import numpy as np
import pytest

from recsys_core import metrics as M


def test_hits_from_ranks():
    hits = M.hits_from_ranks(np.array([0, 2, 5]), k=3)
    assert hits.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]


def test_hit_rate_and_ndcg_for_one_target():
    hits = M.hits_from_ranks(np.array([0, 1, 9, 10]), k=10)
    assert M.hit_rate_at_k(hits, 10).tolist() == [1, 1, 1, 0]
    ndcg = M.ndcg_at_k(hits, np.ones(4), 10)
    np.testing.assert_allclose(ndcg, [1.0, 1 / math.log2(3), 1 / math.log2(11), 0.0])


def test_recall_divides_by_min_k_and_relevant():
    hits = np.array([[1, 0, 1, 0, 0], [1, 1, 0, 0, 0]])
    # user 0 has 10 relevant items: 2 found in top 5 → 2 / min(5, 10)
    # user 1 has 2 relevant items: both found → 2 / min(5, 2) = 1
    np.testing.assert_allclose(M.recall_at_k(hits, np.array([10, 2]), 5), [0.4, 1.0])
    np.testing.assert_allclose(M.recall_at_k(hits, np.array([10, 2]), 2), [0.5, 1.0])


def test_precision():
    hits = np.array([[1, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_allclose(M.precision_at_k(hits, 4), [0.5, 0.0])
    np.testing.assert_allclose(M.precision_at_k(hits, 2), [0.5, 0.0])


def test_ndcg_with_several_relevant_items():
    hits = np.array([[0, 1, 1]])
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)  # two relevant items, ideal at ranks 1 and 2
    np.testing.assert_allclose(M.ndcg_at_k(hits, np.array([2]), 3), [dcg / idcg])
    # a third relevant item outside the list raises the ideal
    idcg3 = idcg + 1 / math.log2(4)
    np.testing.assert_allclose(M.ndcg_at_k(hits, np.array([3]), 3), [dcg / idcg3])


def test_mrr_and_map():
    hits = np.array([[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_allclose(M.reciprocal_rank(hits), [0.5, 0.0, 1.0])
    # user 0: precision@2 = 1/2, precision@4 = 2/4; 3 relevant → (0.5 + 0.5) / min(4, 3)
    np.testing.assert_allclose(M.average_precision_at_k(hits, np.array([3, 1, 1]), 4), [1.0 / 3, 0.0, 1.0])


def test_coverage_rmse_mae():
    assert M.item_coverage(np.array([[0, 1], [1, 2]]), 10) == pytest.approx(0.3)
    assert M.rmse(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])) == pytest.approx(math.sqrt(4 / 3))
    assert M.mae(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 5.0])) == pytest.approx(1.0)


def test_zero_relevant_gives_zero_not_nan():
    hits = np.zeros((1, 3))
    assert M.recall_at_k(hits, np.array([0]), 3)[0] == 0
    assert M.ndcg_at_k(hits, np.array([0]), 3)[0] == 0
