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


# ---------------------------------------------------------------------------------------------------
# Beyond accuracy. ``top_items`` is a ``(n_users, K)`` array of item indices, each user's top-K in rank
# order (-1 pads a list shorter than K); ``item_counts`` holds each item's number of interactions in
# the data the model learned from. Set metrics return one number; the others one value per user.
# ---------------------------------------------------------------------------------------------------


def recommendation_counts(top_items: np.ndarray, n_items: int) -> np.ndarray:
    """c_i: how many users' lists contain item i (0 for items never recommended)."""
    top_items = np.asarray(top_items)
    return np.bincount(top_items[top_items >= 0].ravel(), minlength=n_items)


def gini_index(top_items: np.ndarray, n_items: int) -> float:
    """Gini index of the recommendation counts over the whole catalogue.

    G = Σ_{j=1..n} (2j − n − 1) · c_(j) / (n · Σ_j c_j), with c_(1) ≤ … ≤ c_(n) the counts of all n items
    sorted ascending. 0: every item is recommended equally often; (n − 1)/n: one item fills every list.
    """
    counts = np.sort(recommendation_counts(top_items, n_items)).astype(np.float64)
    total = counts.sum()
    if n_items == 0 or total == 0:
        return 0.0
    j = np.arange(1, n_items + 1)
    return float(((2 * j - n_items - 1) * counts).sum() / (n_items * total))


def novelty(top_items: np.ndarray, item_degrees: np.ndarray, n_users: int) -> np.ndarray:
    """Mean self-information of each user's recommended items, as Zhou et al. (PNAS 2010) define it.

    novelty(u) = (1/|L_u|) Σ_{i ∈ L_u} log2(|U| / k_i), with k_i the item's degree (how many users
    have it) and |U| the number of users, both counted on the same data: the share of users who know
    the item, in bits. An item no user has counts as k_i = 1 (finite: the most novel possible,
    log2 |U|). Recommending an item that 1 user in 8 has adds 3 bits.
    """
    degrees = np.asarray(item_degrees, dtype=np.float64)
    information = np.log2(max(int(n_users), 1) / np.maximum(degrees, 1.0))
    return _mean_over_list(top_items, information)


def average_recommendation_popularity(top_items: np.ndarray, item_counts: np.ndarray) -> np.ndarray:
    """ARP (Abdollahpouri et al. 2019): ARP(u) = (1/|L_u|) Σ_{i ∈ L_u} n_i, the mean number of
    interactions of the items recommended to u."""
    return _mean_over_list(top_items, np.asarray(item_counts, dtype=np.float64))


def long_tail_items(item_counts: np.ndarray, head_share: float = 0.2) -> np.ndarray:
    """Boolean mask of the long tail: every item outside the head.

    The head is the smallest set of most popular items whose interactions add up to at least
    ``head_share`` (20%) of all interactions (ties in count broken by item index); the rest is the tail.
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    order = np.lexsort((np.arange(len(counts)), -counts))
    cumulative = np.cumsum(counts[order])
    n_head = int(np.searchsorted(cumulative, head_share * counts.sum(), side="left")) + 1 if counts.sum() > 0 else 0
    tail = np.ones(len(counts), dtype=bool)
    tail[order[:n_head]] = False
    return tail


def long_tail_share(top_items: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """Share of each user's list that lies in the long tail: |L_u ∩ T| / |L_u| (``tail`` from :func:`long_tail_items`)."""
    return _mean_over_list(top_items, np.asarray(tail, dtype=np.float64))


def intra_list_diversity(top_items: np.ndarray, features: np.ndarray, distance: str = "cosine") -> np.ndarray:
    """Mean pairwise distance between the items of each user's list (Ziegler et al. 2005).

    ILD(u) = 2 / (|L_u| (|L_u| − 1)) Σ_{i < j ∈ L_u} d(i, j), where ``features`` has one row per item:
    ``distance="jaccard"``: rows are 0/1 genre indicators and d = 1 − |G_i ∩ G_j| / |G_i ∪ G_j| (two items
    without genres count as identical, d = 0); ``distance="cosine"``: rows are item embeddings and
    d = 1 − cos(e_i, e_j) (a zero vector is at distance 1 from everything). Lists with fewer than two
    items have ILD 0.
    """
    top_items = np.asarray(top_items)
    # Only the gathered rows are cast: a wide feature matrix (EASE's n_items × n_items) is never copied whole.
    features = np.asarray(features)
    out = np.zeros(len(top_items))
    # Chunks of users bound memory at about 2e7 numbers, whatever the feature width.
    step = max(1, int(2e7 // max(1, top_items.shape[1] * features.shape[1])))
    for start in range(0, len(top_items), step):
        items = top_items[start : start + step]
        valid = items >= 0
        block = features[np.where(valid, items, 0)].astype(np.float64) * valid[:, :, None]
        if distance == "jaccard":
            block = (block > 0).astype(np.float64)
            inter = np.einsum("ukd,uld->ukl", block, block)
            sizes = block.sum(axis=2)
            union = sizes[:, :, None] + sizes[:, None, :] - inter
            dist = 1.0 - np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
        elif distance == "cosine":
            norms = np.linalg.norm(block, axis=2, keepdims=True)
            unit = np.divide(block, norms, out=np.zeros_like(block), where=norms > 0)
            dist = 1.0 - np.einsum("ukd,uld->ukl", unit, unit)
        else:
            raise ValueError(f"distance must be 'jaccard' or 'cosine', not {distance!r}")
        pair = valid[:, :, None] & valid[:, None, :]
        upper = np.triu(np.ones(pair.shape[1:], dtype=bool), k=1)
        pair &= upper[None]
        n_pairs = pair.sum(axis=(1, 2))
        total = (dist * pair).sum(axis=(1, 2))
        out[start : start + step] = np.divide(total, n_pairs, out=np.zeros_like(total), where=n_pairs > 0)
    return out


def activity_groups(history_lengths: np.ndarray, n_groups: int = 5) -> np.ndarray:
    """Group (0 = least active … n_groups − 1 = most active) of each user by history length.

    Users are sorted by history length (ties by their position) and cut into ``n_groups`` groups of
    equal size: user at sorted position r goes to group ⌊r · n_groups / n⌋. Equal sizes keep each
    group's mean equally precise even where many users share a length.
    """
    lengths = np.asarray(history_lengths)
    order = np.argsort(lengths, kind="stable")
    groups = np.empty(len(lengths), dtype=np.int64)
    groups[order] = np.arange(len(lengths)) * n_groups // max(1, len(lengths))
    return groups


def accuracy_by_activity(values: np.ndarray, history_lengths: np.ndarray, n_groups: int = 5) -> list[dict]:
    """Mean of a per-user accuracy ``values`` within each activity group (quintiles by default).

    One entry per group: ``group`` (1 = least active), ``users``, ``min_length``/``max_length`` of the
    histories in it and ``mean`` = (1/|Q_g|) Σ_{u ∈ Q_g} value(u).
    """
    values = np.asarray(values, dtype=np.float64)
    lengths = np.asarray(history_lengths)
    groups = activity_groups(lengths, n_groups)
    sizes = np.bincount(groups, minlength=n_groups)
    sums = np.bincount(groups, weights=values, minlength=n_groups)
    out = []
    for g in range(n_groups):
        if sizes[g] == 0:
            continue
        members = lengths[groups == g]
        out.append({"group": g + 1, "users": int(sizes[g]), "min_length": int(members.min()), "max_length": int(members.max()), "mean": float(sums[g] / sizes[g])})
    return out


def _mean_over_list(top_items: np.ndarray, item_values: np.ndarray) -> np.ndarray:
    """(1/|L_u|) Σ_{i ∈ L_u} v_i per user, skipping -1 padding (0 for an empty list)."""
    top_items = np.asarray(top_items)
    valid = top_items >= 0
    gathered = np.where(valid, item_values[np.where(valid, top_items, 0)], 0.0)
    n = valid.sum(axis=1)
    return np.divide(gathered.sum(axis=1), n, out=np.zeros(len(top_items)), where=n > 0)
