"""Leak-free evaluation protocols over any scorer.

Protocols
---------
``loo-sampled``  He et al. 2017: each user's held-out item ranked among 99 sampled negatives
                 (no repeats, fixed by a seed; for the test part never a positive of that user in any
                 part of the split; for validation never one of train or validation, since the test
                 part is not read before the one test pass: see ``Split.known_positives``).
``loo-full``     the held-out item ranked among every item the user has not interacted with.
``heldout-users`` Liang et al. 2018: held-out users' given items are folded in, the rest predicted.
``ratings``      RMSE and MAE of predicted explicit ratings.

Ties never favour the held-out item, and cost no random draw per score: the held-out item's rank
is the number of strictly better candidates plus a uniformly random share of those tied with it
(one seeded draw per user, so a constant scorer gets chance-level HR), and distinct scores keep
their order exactly. Top-K lists (coverage, held-out-user metrics) break exact ties by one seeded
random order of the items, computed once per evaluator. Full ranking runs in bounded blocks of
users, so memory stays flat as users grow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import metrics as M
from .checks import check_negatives
from .errors import ModelError
from .protocols import DEFAULT_PROTOCOL, LOWER_IS_BETTER, PROTOCOL_NAMES, PROTOCOLS, get_protocol
from .sampling import positive_keys, sample_eval_negatives
from .sequences import ORDER_DESCRIPTIONS, Sequences
from .splits import Split

#: protocol name -> its headline metric (read from :data:`recsys_core.protocols.PROTOCOLS`).
HEADLINE = {name: protocol.headline for name, protocol in PROTOCOLS.items()}
# Which metrics are better when lower (early stopping, the "not meaningful" rule): protocols.LOWER_IS_BETTER, imported above.
# Dataset-level metrics have no per-user values and hence no bootstrap interval.
SET_METRICS_PREFIX = "Coverage@"
# A headline interval wider than this (in the metric's own units, for the ranking protocols whose
# metrics lie in [0, 1]) means the test set is too small to tell models apart: a difference of a
# few points between two leaderboard rows is well inside either row's uncertainty.
NOT_MEANINGFUL_WIDTH = 0.1
#: Leave-one-out tests also report Recall, Precision and MAP at this K, per user with one held-out item (the same
#: functions as for held-out users): Recall@K = HR@K (the one item found or not), Precision@K = HR@K / K (one
#: relevant item among K), MAP@K = 1 / rank when the item is in the top K, else 0 (MRR cut at K).
LOO_LIST_K = 10

Scorer = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


@dataclass
class EvaluationResult:
    protocol: str
    part: str
    users: np.ndarray
    per_user: dict[str, np.ndarray]
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    info: dict = field(default_factory=dict)

    def headline(self) -> tuple[str, float]:
        name = HEADLINE[self.protocol]
        return name, self.metrics[name]

    @property
    def headline_interval_width(self) -> float | None:
        """Width of the headline metric's 95% interval, or None where it has none."""
        interval = self.intervals.get(HEADLINE[self.protocol])
        if interval is None or not np.all(np.isfinite(interval)):
            return None
        return float(interval[1] - interval[0])

    @property
    def differences_meaningful(self) -> bool:
        """False when the headline's 95% interval is wider than ``NOT_MEANINGFUL_WIDTH``."""
        return self.meaning_note is None

    @property
    def meaning_note(self) -> str | None:
        """The sentence every output shows when differences are not meaningful, else None."""
        return not_meaningful_note(self.protocol, self.intervals.get(HEADLINE[self.protocol]), len(np.unique(self.users)))

    def to_json(self, per_user: bool = False) -> dict:
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "part": self.part,
            "n_users": int(len(self.users)),
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "intervals": {k: [float(a), float(b)] for k, (a, b) in self.intervals.items()},
            "info": self.info,
            "differences_meaningful": self.differences_meaningful,
        }
        if per_user:
            out["users"] = self.users.tolist()
            out["per_user"] = {k: v.tolist() for k, v in self.per_user.items()}
        return out

    @classmethod
    def from_json(cls, data: dict) -> EvaluationResult:
        return cls(
            protocol=data["protocol"],
            part=data["part"],
            users=np.asarray(data.get("users", []), dtype=np.int64),
            per_user={k: np.asarray(v, dtype=np.float64) for k, v in data.get("per_user", {}).items()},
            metrics=dict(data["metrics"]),
            intervals={k: (v[0], v[1]) for k, v in data.get("intervals", {}).items()},
            info=data.get("info", {}),
        )

    def summary(self) -> str:
        parts = []
        for name, value in self.metrics.items():
            if name in self.intervals:
                lo, hi = self.intervals[name]
                parts.append(f"{name} {value:.4f} [{lo:.4f}, {hi:.4f}]")
            else:
                parts.append(f"{name} {value:.4f}")
        return "; ".join(parts)


def not_meaningful_note(protocol: str, interval: Any, n_users: int | None) -> str | None:
    """The one rule for "differences between models are not meaningful here": the headline
    metric's 95% interval is wider than ``NOT_MEANINGFUL_WIDTH``. It is for the ranking protocols
    (metrics in [0, 1]); RMSE has its own scale and is never flagged. Returns the sentence to show,
    or None."""
    name = HEADLINE[protocol]
    if name in LOWER_IS_BETTER or interval is None or not np.all(np.isfinite(interval)):
        return None
    width = float(interval[1] - interval[0])
    if width <= NOT_MEANINGFUL_WIDTH:
        return None
    users = f" with {n_users} test users" if n_users else ""
    return (
        f"The 95% interval of {name} is {width:.3f} wide (more than {NOT_MEANINGFUL_WIDTH}){users}: "
        "differences between models on this data are not meaningful."
    )


def saved_meaning_note(test: dict) -> str | None:
    """:func:`not_meaningful_note` for a saved result (``EvaluationResult.to_json()``, as in run.json)."""
    interval = test.get("intervals", {}).get(HEADLINE.get(test.get("protocol"), ""))
    return not_meaningful_note(test["protocol"], interval, test.get("n_users")) if test.get("protocol") in HEADLINE else None


def bootstrap_interval(values: np.ndarray, n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampled in chunks to bound memory."""
    return bootstrap_intervals({"values": values}, n_resamples, seed, level)["values"]


def bootstrap_intervals(
    columns: dict[str, np.ndarray], n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """:func:`bootstrap_interval` of each column (per-unit values of equal length, e.g. one per user).

    Every column's interval is exactly the one :func:`bootstrap_interval` gives it alone (same seed,
    same resamples); the resampled indices are drawn once for all columns rather than once per column,
    which was most of a full evaluation's intervals at ML-20M's 138k users.
    """
    columns = {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"bootstrap_intervals needs columns of one length, not {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    if n == 0:
        return {name: (float("nan"), float("nan")) for name in columns}
    # A 0/1 column (hit rates) is resampled as booleans and counted: its float sum is a whole number,
    # exact in any order, so count / n is bit for bit the float mean, at an eighth of the memory traffic.
    flags = {name: values.astype(bool) if ((values == 0) | (values == 1)).all() else None for name, values in columns.items()}
    rng = np.random.default_rng(seed)
    chunk = max(1, int(2e7 // n))
    means: dict[str, list[np.ndarray]] = {name: [] for name in columns}
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        picks = rng.integers(0, n, size=(size, n))
        for name, values in columns.items():
            binary = flags[name]
            means[name].append(np.count_nonzero(binary[picks], axis=1) / n if binary is not None else values[picks].mean(axis=1))
    tail = (1 - level) / 2 * 100
    out = {}
    for name, parts in means.items():
        joined = np.concatenate(parts)
        out[name] = (float(np.percentile(joined, tail)), float(np.percentile(joined, 100 - tail)))
    return out


def _writable_scores(scores: Any, reuse: np.ndarray | None = None) -> np.ndarray:
    """A private float copy of a score block (models may hand out cached or broadcast arrays), NaN → −∞.

    The dtype the model produced is kept: converting float64 to float32 could tie distinct scores. The
    copy is row-major: a broadcast row (popularity's scores) copied in its own stride order came out
    column-major, and every per-user pass over it after (ranks, top-K) ran several times slower.
    ``reuse``, a block an earlier call returned that is no longer needed, is written over when it is
    large enough: a full-ranking block (2e7 scores) is past the size the allocator keeps, so a fresh
    one per block of users cost the kernel's page faults over all of it each time.
    """
    scores = np.asarray(scores)
    dtype = np.result_type(scores.dtype, np.float32)
    root = reuse.base if reuse is not None and reuse.base is not None else reuse
    if (
        isinstance(root, np.ndarray) and root.dtype == dtype and root.ndim == 2 and scores.ndim == 2 and root.flags.c_contiguous
        and root.shape[1] == scores.shape[1] and root.shape[0] >= scores.shape[0]
    ):  # fmt: skip
        block = root[: scores.shape[0]]
        np.copyto(block, scores)
    else:
        block = np.array(scores, dtype=dtype, copy=True, order="C")
    if block.size and np.isnan(block.min()):  # one read pass finds a NaN; the mask is made only then
        np.copyto(block, -np.inf, where=np.isnan(block))
    return block


def _ranks_with_random_ties(scores: np.ndarray, target: np.ndarray, uniform: np.ndarray, excluded: np.ndarray | int = 0) -> np.ndarray:
    """0-based rank of each row's target among the other candidates of ``scores``, ties broken at random.

    A tie broken uniformly at random puts the target at a uniform position among the ``e`` candidates
    with its exact score, so its rank is ``g + floor(u · (e + 1))`` with ``g`` the strictly better
    candidates and one uniform ``u`` per user: exactly random tie-breaking, without a random draw per
    cell (drawing float64 noise over every users × items cell was 75% of a full-ranking evaluation).
    Cells excluded from ranking (the user's history, the target's own cell) hold −∞; ``excluded``
    counts them per row, so a −∞ (or NaN) target ties only with the real candidates scored −∞ and
    never gets a flattering rank.
    """
    better = (scores > target[:, None]).sum(axis=1)
    level = (scores == target[:, None]).sum(axis=1)
    level = level - np.where(target == -np.inf, excluded, 0)
    return better + np.floor(uniform * (level + 1)).astype(np.int64)


def _top_k(scores: np.ndarray, k: int, priority: np.ndarray | None = None) -> np.ndarray:
    """Indices of each row's ``k`` best scores, best first.

    Exact ties: with ``priority`` (a seeded permutation of the columns, computed once per evaluator)
    the columns are first put in that order, and ``np.argpartition`` then picks which of the items
    tied at the cut make the list; a stable sort of the picked scores keeps tied items in the order
    the partition returned them. So the choice among tied items is fixed by the seed and the scores,
    and does not follow item index, but it is the partition's choice: not necessarily the tied items
    that come first in ``priority``. Without ``priority`` it is the partition's choice over item index.

    A row whose ``k + 1`` best scores are all distinct has one answer whatever the tie rule; it is found
    by a partial sort (``torch.topk``: several times faster than ``np.argpartition``, which slows badly
    on the many ties of a popularity scorer). Only the rows with a tie among their ``k + 1`` best go
    through the partition described above, so every list is exactly what that partition gives.
    ``scores`` hold no NaN (:func:`_writable_scores` makes them −∞).
    """
    import torch

    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    if k == 0 or n_rows == 0:
        return np.zeros((n_rows, k), dtype=np.int64)
    wide = min(n_cols, k + 1)
    values, top = (t.numpy() for t in torch.topk(torch.from_numpy(np.ascontiguousarray(scores)), wide, dim=1, sorted=True))
    top = np.ascontiguousarray(top[:, :k])
    tied = (values[:, 1:] >= values[:, :-1]).any(axis=1) if wide > 1 else np.zeros(n_rows, dtype=bool)
    rows = np.flatnonzero(tied)
    if len(rows):
        top[rows] = _top_k_partition(scores[rows], k, priority)
    return top


def _top_k_partition(scores: np.ndarray, k: int, priority: np.ndarray | None) -> np.ndarray:
    """:func:`_top_k` by a partition of each row visited in ``priority`` order (the rows with ties)."""
    if priority is not None:
        scores = scores[:, priority]
    # Partition for the k largest directly (negating the block first would cost one more pass over it).
    part = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, scores.shape[1] - k :]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    return priority[top] if priority is not None else top


def time_ordered_histories(scorer: Any, history: Any, users: np.ndarray) -> Sequences | None:
    """``users``' histories (row b: ``users[b]``) in time order, for a model that reads order
    (``uses_timestamps``); None for every other scorer or for data without timestamps. Everything that
    scores users for evaluation (the evaluator, the beyond-accuracy lists) passes these to the model."""
    if not _ModelScorer(scorer).reads_order or history.timestamp is None:
        return None
    return Sequences.from_interactions(history, users)


class _ModelScorer:
    """Adapter giving the evaluator one calling convention for models and plain functions."""

    def __init__(self, scorer: Any):
        self.scorer = scorer
        self.is_model = hasattr(scorer, "score") and hasattr(scorer, "score_histories")
        self.reads_order = self.is_model and bool(getattr(scorer, "uses_timestamps", False))

    def known_users(self, users, items, history: sp.csr_matrix, sequences: Sequences | None = None):
        if self.is_model:
            return self.scorer.score(users, items, history=history, sequences=sequences)
        return np.asarray(self.scorer(users, items))

    def new_users(self, users, history_rows: sp.csr_matrix, sequences: Sequences | None = None):
        if self.is_model:
            return self.scorer.score_histories(history_rows, sequences=sequences)
        return np.asarray(self.scorer(users, None))

    def ratings(self, users, items):
        if self.is_model:
            return self.scorer.predict_ratings(users, items)
        return np.asarray(self.scorer(users, items[:, None]))[:, 0]


class Evaluator:
    """One protocol on one part of a split, with its candidates fixed at construction.

    Every model evaluated by the same Evaluator (or one built with the same split, part,
    protocol and seed) is ranked on the same sampled negatives and the same tie-breaking noise.
    """

    def __init__(
        self,
        split: Split,
        part: str = "test",
        protocol: str = DEFAULT_PROTOCOL,
        ks: tuple[int, ...] = (5, 10, 20),
        n_negatives: int = 99,
        seed: int = 0,
        batch_size: int | None = None,
        n_resamples: int = 1000,
    ):
        if protocol not in PROTOCOLS:
            raise ModelError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOL_NAMES)}")
        spec = get_protocol(protocol)
        if spec.split_kind != split.kind:
            raise ModelError(f"protocol {protocol!r} needs a {spec.split_kind} split, not a {split.kind} split")
        self.split, self.part, self.protocol, self.spec = split, part, protocol, spec
        self.ks, self.n_negatives, self.seed, self.n_resamples = tuple(ks), n_negatives, seed, n_resamples
        self.batch_size = batch_size or max(1, min(2048, int(2e7 // max(1, split.n_items))))
        targets = split.part(part)
        self.targets = targets
        self.history_interactions = split.history(part)
        self.history = self.history_interactions.to_csr()
        self._sequences: Sequences | None = None
        if spec.leave_one_out:
            order = np.argsort(targets.user, kind="stable")
            self.users = targets.user[order]
            self.target_items = targets.item[order]
        elif spec.split_kind == "heldout-users":
            self.users = np.unique(targets.user)
            self.target_matrix = targets.to_csr()
        else:
            self.users = targets.user
        self.candidates = None
        if spec.sampled_negatives is not None:
            positives = split.known_positives(part)
            rng = np.random.default_rng([seed, 1 if part == "validation" else 2])
            keys = positive_keys(positives)  # one lookup for the sampler and the check
            negatives = sample_eval_negatives(positives, self.users, n_negatives, rng, keys=keys)
            check_negatives(positives, self.users, negatives, keys=keys)
            self.candidates = np.concatenate([self.target_items[:, None], negatives], axis=1)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, 7])

    def _ordered_histories(self, adapter: _ModelScorer) -> Sequences | None:
        """Each evaluated user's history in time order (row b: ``self.users[b]``), for the models
        that read order; built once. None for the other models or data without timestamps, even after
        an order-reading model was evaluated here (an Evaluator may rank several models)."""
        if not adapter.reads_order:
            return None
        if self._sequences is None:
            self._sequences = time_ordered_histories(adapter.scorer, self.history_interactions, self.users)
        return self._sequences

    @staticmethod
    def _order_info(sequences: Sequences | None) -> dict:
        if sequences is None:
            return {}
        return {"history_order": f"sequence models read each user's history in {ORDER_DESCRIPTIONS[sequences.order]}"}

    def _item_priority(self) -> np.ndarray:
        """The seeded item order that breaks exact ties inside top-K lists (see :func:`_top_k`)."""
        return np.random.default_rng([self.seed, 8]).permutation(self.split.n_items)

    def evaluate(self, scorer: Any, on_block: Callable[[np.ndarray, np.ndarray], None] | None = None) -> EvaluationResult:
        """Score and rank every user of this part; ``scorer`` is a model or ``f(users, items)``.

        ``on_block(users, scores)`` (full-ranking leave-one-out) is handed each block of users' scores
        over every item, their history at −∞, to read before the next block overwrites it: the
        beyond-accuracy lists are made from the same pass (see :class:`recsys_core.beyond.TopKLists`).
        """
        adapter = _ModelScorer(scorer)
        if self.spec.split_kind == "ratio":
            return self._evaluate_ratings(adapter)
        if self.spec.split_kind == "heldout-users":
            return self._evaluate_heldout(adapter)
        return self._evaluate_loo(adapter, on_block)

    def _finish(self, per_user: dict[str, np.ndarray], set_metrics: dict[str, float], info: dict) -> EvaluationResult:
        means = {name: float(values.mean()) if len(values) else float("nan") for name, values in per_user.items()}
        intervals = bootstrap_intervals(per_user, self.n_resamples, seed=self.seed)
        means.update(set_metrics)
        info = {"n_negatives": self.n_negatives if self.spec.sampled_negatives is not None else None, "seed": self.seed, **info}
        info["ties"] = "target rank: uniform position among tied candidates (seeded, one draw per user); top-K lists: a seeded item order"
        return EvaluationResult(self.protocol, self.part, self.users, per_user, means, intervals, info)

    def _evaluate_loo(self, adapter: _ModelScorer, on_block: Callable[[np.ndarray, np.ndarray], None] | None = None) -> EvaluationResult:
        uniform = self._rng().random(len(self.users))  # one tie-breaking draw per user
        priority = self._item_priority()
        max_k = max(self.ks)
        ranks = np.empty(len(self.users), dtype=np.int64)
        top_lists = []
        # Bounded blocks of users: memory stays flat however many users there are.
        sequences = self._ordered_histories(adapter)
        block = None  # the full-ranking score block, reused from one batch of users to the next
        for start in range(0, len(self.users), self.batch_size):
            sl = slice(start, start + self.batch_size)
            users = self.users[sl]
            ordered = sequences.rows(sl) if sequences is not None else None
            if self.spec.sampled_negatives is not None:
                scores = _writable_scores(adapter.known_users(users, self.candidates[sl], self.history, ordered))
                ranks[sl] = _ranks_with_random_ties(scores[:, 1:], scores[:, 0], uniform[sl])
            else:
                scores = block = _writable_scores(adapter.known_users(users, None, self.history, ordered), reuse=block)
                rows = self.history[users]
                scores[np.repeat(np.arange(len(users)), np.diff(rows.indptr)), rows.indices] = -np.inf
                target_cells = (np.arange(len(users)), self.target_items[sl])
                target = scores[target_cells].copy()
                scores[target_cells] = -np.inf  # the target is not its own competitor
                ranks[sl] = _ranks_with_random_ties(scores, target, uniform[sl], excluded=np.diff(rows.indptr) + 1)
                scores[target_cells] = target
                top_lists.append(_top_k(scores, max_k, priority))
                if on_block is not None:
                    on_block(users, scores)
        per_user: dict[str, np.ndarray] = {}
        for k in self.ks:
            hits = M.hits_from_ranks(ranks, k)
            per_user[f"HR@{k}"] = M.hit_rate_at_k(hits, k)
            per_user[f"NDCG@{k}"] = M.ndcg_at_k(hits, np.ones(len(ranks)), k)
        per_user["MRR"] = 1.0 / (ranks + 1)
        if LOO_LIST_K in self.ks:
            # The list metrics of the held-out-users protocol, for one held-out item per user (see LOO_LIST_K).
            hits = M.hits_from_ranks(ranks, LOO_LIST_K)
            one = np.ones(len(ranks))
            per_user[f"Recall@{LOO_LIST_K}"] = M.recall_at_k(hits, one, LOO_LIST_K)
            per_user[f"Precision@{LOO_LIST_K}"] = M.precision_at_k(hits, LOO_LIST_K)
            per_user[f"MAP@{LOO_LIST_K}"] = M.average_precision_at_k(hits, one, LOO_LIST_K)
        set_metrics = {}
        if top_lists:
            tops = np.concatenate(top_lists)
            for k in self.ks:
                set_metrics[f"Coverage@{k}"] = M.item_coverage(tops[:, :k], self.split.n_items)
        info = {
            "candidates": "target + sampled negatives" if self.spec.sampled_negatives is not None else "all items not in the user's history"
        }
        result = self._finish(per_user, set_metrics, {**info, **self._order_info(sequences)})
        result.per_user["rank"] = ranks.astype(np.float64)
        return result

    def _evaluate_heldout(self, adapter: _ModelScorer) -> EvaluationResult:
        priority = self._item_priority()
        ks = sorted(set(self.ks) | {20, 50, 100})
        max_k = min(max(ks), self.split.n_items)
        per_user: dict[str, list] = {}
        top_lists = []
        sequences = self._ordered_histories(adapter)
        for start in range(0, len(self.users), self.batch_size):
            users = self.users[start : start + self.batch_size]
            given = self.history[users]
            ordered = sequences.rows(slice(start, start + self.batch_size)) if sequences is not None else None
            scores = _writable_scores(adapter.new_users(users, given, ordered))
            scores[np.repeat(np.arange(len(users)), np.diff(given.indptr)), given.indices] = -np.inf
            top = _top_k(scores, max_k, priority)
            targets = self.target_matrix[users]
            hits = np.asarray(targets[np.arange(len(users))[:, None], top].todense()) > 0
            n_relevant = np.diff(targets.indptr)
            values = {}
            for k in ks:
                values[f"Recall@{k}"] = M.recall_at_k(hits, n_relevant, k)
                values[f"NDCG@{k}"] = M.ndcg_at_k(hits, n_relevant, k)
            values["Precision@10"] = M.precision_at_k(hits, 10)
            values["MAP@10"] = M.average_precision_at_k(hits, n_relevant, 10)
            values["MRR"] = M.reciprocal_rank(hits)
            for name, v in values.items():
                per_user.setdefault(name, []).append(v)
            top_lists.append(top[:, :20])
        merged = {name: np.concatenate(v) for name, v in per_user.items()}
        coverage = {"Coverage@20": M.item_coverage(np.concatenate(top_lists), self.split.n_items)}
        info = {"candidates": "all items not among the user's given items", "given": self.split.info.get("given")}
        return self._finish(merged, coverage, {**info, **self._order_info(sequences)})

    def _evaluate_ratings(self, adapter: _ModelScorer) -> EvaluationResult:
        if self.targets.rating is None:
            raise ModelError("the ratings protocol needs explicit ratings")
        predicted = np.concatenate(
            [
                np.asarray(adapter.ratings(self.targets.user[s : s + 65536], self.targets.item[s : s + 65536]), dtype=np.float64)
                for s in range(0, len(self.targets), 65536)
            ]
        )
        actual = self.targets.rating.astype(np.float64)
        squared = (predicted - actual) ** 2
        absolute = np.abs(predicted - actual)
        lo, hi = bootstrap_interval(squared, self.n_resamples, seed=self.seed)
        result = EvaluationResult(
            self.protocol,
            self.part,
            self.users,
            {"squared_error": squared, "MAE": absolute},
            {"RMSE": float(np.sqrt(squared.mean())), "MAE": float(absolute.mean())},
            {"RMSE": (float(np.sqrt(lo)), float(np.sqrt(hi))), "MAE": bootstrap_interval(absolute, self.n_resamples, seed=self.seed)},
            {"n_ratings": int(len(actual)), "seed": self.seed},
        )
        return result


def evaluate(scorer: Any, split: Split, protocol: str = DEFAULT_PROTOCOL, part: str = "test", **kwargs) -> EvaluationResult:
    """One-shot evaluation; build an :class:`Evaluator` once to rank several models on the same candidates."""
    return Evaluator(split, part=part, protocol=protocol, **kwargs).evaluate(scorer)
