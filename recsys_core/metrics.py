"""Ranking and rating metrics as pure functions of numpy arrays.

Ranking metrics take ``hits``: a ``(n_users, K)`` 0/1 array marking which of each user's top-K
recommended items are relevant, in rank order, and ``n_relevant``: how many relevant items each
user has in total. They return one value per user; averaging is the caller's choice.
"""

from __future__ import annotations

import numpy as np


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def hits_from_ranks(ranks: np.ndarray, k: int) -> np.ndarray:
    """One relevant item per user at 0-based ``ranks`` → the ``(n_users, k)`` hits array."""
    ranks = np.asarray(ranks)
    return (np.arange(k)[None, :] == ranks[:, None]).astype(np.float64)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """1 if any relevant item is in the top k, else 0 (HR@K of He et al. 2017)."""
    return (np.asarray(hits)[:, :k].sum(axis=1) > 0).astype(np.float64)


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(hits)[:, :k].sum(axis=1) / k


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Relevant items in the top k divided by min(k, number relevant), as Liang et al. 2018."""
    denominator = np.minimum(k, np.asarray(n_relevant, dtype=np.float64))
    found = np.asarray(hits)[:, :k].sum(axis=1)
    return np.divide(found, denominator, out=np.zeros_like(found, dtype=np.float64), where=denominator > 0)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """DCG of the top k over the ideal DCG of min(k, number relevant) hits, with 1/log2(rank + 2)."""
    hits = np.asarray(hits, dtype=np.float64)[:, :k]
    discounts = _discounts(k)
    dcg = hits @ discounts[: hits.shape[1]]
    ideal_cumulative = np.concatenate([[0.0], np.cumsum(discounts)])
    idcg = ideal_cumulative[np.minimum(k, np.asarray(n_relevant, dtype=np.int64))]
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def reciprocal_rank(hits: np.ndarray) -> np.ndarray:
    """1 / (1-based rank of the first relevant item) within the given list, 0 if none."""
    hits = np.asarray(hits) > 0
    first = np.argmax(hits, axis=1)
    found = hits.any(axis=1)
    return np.where(found, 1.0 / (first + 1), 0.0)


def average_precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Sum over relevant positions i ≤ k of precision@i, divided by min(k, number relevant)."""
    hits = np.asarray(hits, dtype=np.float64)[:, :k]
    precision_at_i = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    denominator = np.minimum(k, np.asarray(n_relevant, dtype=np.float64))
    total = (precision_at_i * hits).sum(axis=1)
    return np.divide(total, denominator, out=np.zeros_like(total), where=denominator > 0)


def item_coverage(top_items: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one user's top-K list."""
    top_items = np.asarray(top_items)
    return float(np.unique(top_items[top_items >= 0]).size / n_items) if n_items else 0.0


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean(diff**2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64))))
