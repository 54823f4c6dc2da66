"""Beyond-accuracy metrics of a fitted model: what its top-10 lists look like, not only whether they hit.

Every number here comes from each test user's top-K over the **full catalogue**, with every item the
user is known to have (train + validation for leave-one-out, the given items for held-out users)
excluded, exactly the lists the full-ranking protocol ranks. From those lists:

* ``Coverage@K``  share of the catalogue in at least one list (a set metric);
* ``Gini@K``      inequality of how often each item is recommended (a set metric; 0 = even);
* ``Novelty@K``   mean self-information log2(|U| / k_i) of the recommended items (Zhou et al. 2010:
                  |U| users, k_i of them have item i), in bits;
* ``ILD@K``       intra-list diversity: mean pairwise genre Jaccard distance where items have genres,
                  else cosine distance of the model's item embeddings (absent when neither exists);
* ``ARP@K``       average number of interactions of the recommended items;
* ``LongTail@K``  share of recommended items outside the head (the most popular items that together
                  hold 20% of the interactions).

Popularity is counted on every interaction that is not a test target (train + validation), which is
what the model may know when it makes the lists; novelty's |U| and k_i count the users of that data. Per-user metrics get a bootstrap interval over users;
the set metrics get one too, from the same resampling of users (coverage of a resample of the users).
The run's own accuracy metric is also broken down by user activity (quintiles of history length).

Only the test part is read, and only once, after training: this module is called at the end of
:func:`recsys_core.experiment.run_experiment`, next to the accuracy evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import metrics as M
from .evaluation import (
    HEADLINE,
    EvaluationResult,
    _ModelScorer,
    _top_k,
    _writable_scores,
    bootstrap_intervals,
    time_ordered_histories,
)
from .run_record import short_run_name
from .splits import Split

if TYPE_CHECKING:
    from .run_record import RunRecord

DiversityBasis = Literal["genres", "item embeddings", "none"]
# The metric names, in display order; "@K" is appended.
METRIC_NAMES = ("Coverage", "Gini", "Novelty", "ILD", "ARP", "LongTail")
METRIC_LABELS = {
    "Coverage": "catalogue coverage",
    "Gini": "Gini index of recommendation counts",
    "Novelty": "novelty (bits)",
    "ILD": "intra-list diversity",
    "ARP": "average recommendation popularity",
    "LongTail": "long-tail share",
}
HEAD_SHARE = 0.2
#: The beyond-accuracy metrics plotted against accuracy (Compare page and report), in order.
TRADEOFF_AXES = ("Coverage@10", "Novelty@10")


@dataclass(frozen=True)
class BeyondAccuracy:
    """Beyond-accuracy metrics of one model on one part of a split, as stored in run.json ("beyond")."""

    k: int
    part: str
    n_users: int
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    diversity_basis: DiversityBasis
    activity_metric: str
    by_activity: list[dict] = field(default_factory=list)
    long_tail: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "k": self.k,
            "part": self.part,
            "n_users": self.n_users,
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "intervals": {k: [float(a), float(b)] for k, (a, b) in self.intervals.items()},
            "diversity_basis": self.diversity_basis,
            "activity_metric": self.activity_metric,
            "by_activity": self.by_activity,
            "long_tail": self.long_tail,
            "lists": "top-K over the full catalogue, known items excluded",
        }

    @classmethod
    def saved(cls, record: RunRecord) -> BeyondAccuracy | None:
        """A saved run's beyond-accuracy metrics (run.json's "beyond", as :meth:`to_json` wrote it); None where
        the run has none (a model that does not rank items, or a run saved before they existed)."""
        data = record.beyond or {}
        if not data.get("available"):
            return None
        return cls(
            k=data.get("k", 10),
            part=data.get("part", "test"),
            n_users=data.get("n_users", 0),
            metrics=dict(data.get("metrics", {})),
            intervals={name: (pair[0], pair[1]) for name, pair in data.get("intervals", {}).items()},
            diversity_basis=data.get("diversity_basis", ""),
            activity_metric=data.get("activity_metric", ""),
            by_activity=list(data.get("by_activity", [])),
            long_tail=dict(data.get("long_tail", {})),
        )


class TopKLists:
    """Each user's top-``k`` over the items they do not already have, gathered block by block from
    score blocks with each user's known items at −∞ (:func:`top_k_lists`, or the full-ranking test
    pass through ``Evaluator.evaluate(..., on_block=lists.add)``, so that every test user is scored
    once for both).

    Ties are broken as the evaluator breaks them in top-K lists, by a seeded item order, so a constant
    scorer gets random lists, not the first ``k`` item indices. A model that reads order (SVAE) gets
    each history in time order, as the evaluator gives it, never in item-index order.
    """

    def __init__(self, n_items: int, k: int = 10, seed: int = 0):
        self.k = k
        self.priority = np.random.default_rng([seed, 11]).permutation(n_items)
        self.users: list[np.ndarray] = []
        self.lists: list[np.ndarray] = []

    def add(self, users: np.ndarray, scores: np.ndarray) -> None:
        top = _top_k(scores, self.k, self.priority)
        self.users.append(np.asarray(users))
        # A user who has nearly every item gets a short list: mark the excluded positions with -1.
        self.lists.append(np.where(np.isfinite(np.take_along_axis(scores, top, axis=1)), top, -1))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The users, in the order their blocks came, and their lists (-1 where a list is short)."""
        if not self.lists:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.k), dtype=np.int64)
        return np.concatenate(self.users), np.concatenate(self.lists)


def top_k_lists(model: Any, split: Split, part: str = "test", k: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The users of ``part`` and each one's top-``k`` over all items they do not already have (see :class:`TopKLists`)."""
    history_part = split.history(part)
    history = history_part.to_csr()
    users = np.unique(split.part(part).user)
    adapter = _ModelScorer(model)
    sequences = time_ordered_histories(model, history_part, users)
    lists = TopKLists(split.n_items, k, seed)
    batch = max(1, min(2048, int(2e7 // max(1, split.n_items))))
    scores = None  # the score block, reused from one batch of users to the next
    for start in range(0, len(users), batch):
        batch_users = users[start : start + batch]
        rows = history[batch_users]
        ordered = sequences.rows(slice(start, start + batch)) if sequences is not None else None
        if split.kind == "heldout-users":
            model_scores = adapter.new_users(batch_users, rows, ordered)
        else:
            model_scores = adapter.known_users(batch_users, None, history, ordered)
        scores = _writable_scores(model_scores, reuse=scores)
        scores[np.repeat(np.arange(len(batch_users)), np.diff(rows.indptr)), rows.indices] = -np.inf
        lists.add(batch_users, scores)
    return lists.result() if len(users) else (users, np.zeros((0, k), dtype=np.int64))


def genre_matrix(item_info: pd.DataFrame | None, n_items: int) -> sp.csr_matrix | None:
    """0/1 item × genre matrix from the ``genres`` column ("|"-joined), or None when no item has a genre."""
    if item_info is None or "genres" not in item_info.columns or len(item_info) != n_items:
        return None
    genres = item_info["genres"].fillna("").astype(str).str.split("|")
    exploded = genres.explode().str.strip()
    exploded = exploded[exploded != ""]
    if exploded.empty:
        return None
    codes, names = pd.factorize(exploded)
    rows = np.asarray(exploded.index, dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, codes)), shape=(n_items, len(names)))
    matrix.data[:] = 1.0  # a genre listed twice counts once
    return matrix


def _bootstrap_set_metrics(top: np.ndarray, n_items: int, n_resamples: int, seed: int) -> dict[str, tuple[float, float]]:
    """Intervals of coverage and Gini over resamples of the users: each resample's counts are
    W @ R, with W its users' multiplicities and R the user × item incidence of the lists (sums of
    whole numbers, exact in any order).

    A resample holds only about 63% distinct users, so its coverage is biased low (and its Gini high);
    the percentile interval is therefore shifted by the estimated bias θ̂ − mean(θ*), which centres it
    on the observed value while keeping the bootstrap's spread.
    """
    n = len(top)
    if n == 0:
        return {}
    valid = top >= 0
    incidence = sp.csr_matrix((np.ones(int(valid.sum())), (np.repeat(np.arange(n), valid.sum(axis=1)), top[valid])), shape=(n, n_items))
    rng = np.random.default_rng([seed, 13])
    chunk = max(1, int(2e7 // max(n, n_items)))
    coverage, gini = [], []
    j = np.arange(1, n_items + 1)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        picks = rng.integers(0, n, size=(size, n))
        # Each resample's multiplicity of every user (one bincount), dense: a sparse W built from the
        # 20M picks of a chunk at ML-20M's users sorted them first, 12 of this function's 16 s there.
        weights = np.bincount((picks + (np.arange(size) * n)[:, None]).ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        counts = np.sort((incidence.T @ weights.T).T, axis=1)
        coverage.append((counts > 0).sum(axis=1) / n_items)
        totals = counts.sum(axis=1)
        gini.append(
            np.divide(((2 * j - n_items - 1)[None, :] * counts).sum(axis=1), n_items * totals, out=np.zeros(size), where=totals > 0)
        )

    def shifted_percentile(values: list[np.ndarray], observed: float) -> tuple[float, float]:
        joined = np.concatenate(values)
        bias = observed - joined.mean()
        return (float(np.percentile(joined, 2.5) + bias), float(np.percentile(joined, 97.5) + bias))

    return {
        "Coverage": shifted_percentile(coverage, M.item_coverage(top, n_items)),
        "Gini": shifted_percentile(gini, M.gini_index(top, n_items)),
    }


def _activity_values(evaluation: EvaluationResult | None) -> tuple[str, np.ndarray, np.ndarray] | None:
    """The run's own per-user accuracy (its headline where it has per-user values) and its users."""
    if evaluation is None or not len(evaluation.users):
        return None
    name = HEADLINE.get(evaluation.protocol)
    if name not in evaluation.per_user:
        name = "MAE" if "MAE" in evaluation.per_user else next(iter(evaluation.per_user), None)
    if name is None:
        return None
    return name, evaluation.users, evaluation.per_user[name]


def beyond_accuracy(
    model: Any,
    split: Split,
    evaluation: EvaluationResult | None = None,
    item_info: pd.DataFrame | None = None,
    part: str = "test",
    k: int = 10,
    seed: int = 0,
    n_resamples: int = 1000,
    lists: tuple[np.ndarray, np.ndarray] | None = None,
) -> BeyondAccuracy:
    """Beyond-accuracy metrics of ``model``'s top-``k`` lists for the users of ``part``.

    ``evaluation`` (the accuracy result on the same part) supplies the per-user accuracy broken down by
    activity quintile; ``item_info`` supplies genres for intra-list diversity. ``lists`` (users, top-k)
    are the lists already made in the full-ranking pass (:class:`TopKLists`); without them they are made here.
    """
    if lists is None:
        users, top = top_k_lists(model, split, part, k, seed)
    else:
        users, top = lists
        if top.shape[1] != k or not np.array_equal(users, np.unique(split.part(part).user)):
            raise ValueError(f"the lists given are not the top-{k} of every user of the {part} part, in order")
    n_items = split.n_items
    known = split.train_with_validation() if part == "test" else split.train
    counts = known.item_counts().astype(np.float64)
    tail = M.long_tail_items(counts, HEAD_SHARE)
    known_matrix = known.to_csr()  # duplicates merged: one entry per (user, item)
    degrees = np.bincount(known_matrix.indices, minlength=n_items)
    per_user = {
        "Novelty": M.novelty(top, degrees, int((np.diff(known_matrix.indptr) > 0).sum())),
        "ARP": M.average_recommendation_popularity(top, counts),
        "LongTail": M.long_tail_share(top, tail),
    }
    genres = genre_matrix(item_info, n_items)
    basis: DiversityBasis = "none"
    if genres is not None:
        per_user["ILD"] = M.intra_list_diversity(top, genres.toarray(), "jaccard")
        basis = "genres"
    else:
        embeddings = model.item_embeddings() if hasattr(model, "item_embeddings") else None
        if embeddings is not None and len(embeddings) == n_items:
            per_user["ILD"] = M.intra_list_diversity(top, embeddings, "cosine")
            basis = "item embeddings"
    metrics = {f"Coverage@{k}": M.item_coverage(top, n_items), f"Gini@{k}": M.gini_index(top, n_items)}
    intervals = {f"{name}@{k}": interval for name, interval in _bootstrap_set_metrics(top, n_items, n_resamples, seed).items()}
    per_user_intervals = bootstrap_intervals(per_user, n_resamples, seed=seed)
    for name in METRIC_NAMES:
        if name in per_user:
            metrics[f"{name}@{k}"] = float(per_user[name].mean()) if len(users) else float("nan")
            intervals[f"{name}@{k}"] = per_user_intervals[name]
    metrics = {f"{name}@{k}": metrics[f"{name}@{k}"] for name in METRIC_NAMES if f"{name}@{k}" in metrics}

    activity = _activity_values(evaluation)
    by_activity: list[dict] = []
    activity_metric = ""
    if activity is not None:
        activity_metric, units, values = activity
        lengths = np.diff(split.history(part).to_csr().indptr)[units]
        by_activity = M.accuracy_by_activity(values, lengths, 5)
    return BeyondAccuracy(
        k=k,
        part=part,
        n_users=int(len(users)),
        metrics=metrics,
        intervals=intervals,
        diversity_basis=basis,
        activity_metric=activity_metric,
        by_activity=by_activity,
        long_tail={"head_share": HEAD_SHARE, "head_items": int((~tail).sum()), "tail_items": int(tail.sum())},
    )


def beyond_accuracy_record(
    model: Any, split: Split, evaluation: EvaluationResult, item_info: pd.DataFrame | None, seed: int = 0, lists: TopKLists | None = None
) -> dict:
    """run.json's "beyond" entry: the metrics on the test part, or why there are none. ``lists``: the
    top-10 lists gathered in the full-ranking test pass (see :func:`shared_lists`), if any."""
    if not getattr(model, "ranks_items", True):
        return {"available": False, "reason": f"{model.name} does not rank items"}
    made = lists.result() if lists is not None and lists.lists else None
    return {"available": True, **beyond_accuracy(model, split, evaluation, item_info, "test", 10, seed, lists=made).to_json()}


def shared_lists(model: Any, split: Split, seed: int = 0) -> TopKLists | None:
    """The collector of top-10 lists to hand to the full-ranking test pass, where its blocks are the
    ones :func:`top_k_lists` would score: leave-one-out, a ranking model that does not read order
    (the evaluator passes ordered histories to those, :func:`top_k_lists` does not). None otherwise."""
    if split.kind != "leave-one-out" or not getattr(model, "ranks_items", True) or getattr(model, "uses_timestamps", False):
        return None
    return TopKLists(split.n_items, 10, seed)


# ---------------------------------------------------------------------------------- the trade-off chart
def tradeoff_table(records: Sequence[RunRecord], protocol: str) -> pd.DataFrame:
    """One row per run with both an accuracy result on ``protocol`` and beyond-accuracy metrics:
    the headline accuracy and each beyond metric with its 95% interval bounds."""
    headline = HEADLINE[protocol]
    rows = []
    for record in records:
        test, beyond = record.test.get(protocol), BeyondAccuracy.saved(record)
        value = None if test is None else test.scores.get(headline)
        if value is None or beyond is None:
            continue
        lo, hi = test.scores.interval(headline) or (value, value)
        row = {"run": short_run_name(record), "run_id": record.run_id, headline: value, f"{headline} lo": lo, f"{headline} hi": hi}
        for name, metric in beyond.metrics.items():
            row[name] = metric
            row[f"{name} lo"], row[f"{name} hi"] = beyond.intervals.get(name, (metric, metric))
        rows.append(row)
    return pd.DataFrame(rows)


LABEL_POSITIONS = ("top center", "bottom center", "middle right", "middle left")


def label_positions(x: np.ndarray, y: np.ndarray, near: float = 0.08) -> list[str]:
    """Where each point's label goes so that close points' labels do not overlap: points within ``near`` of each
    other (as a share of each axis' span) take turns above, below, right and left of their marker."""
    n = len(x)
    span_x = float(np.ptp(x)) if n else 0.0
    span_y = float(np.ptp(y)) if n else 0.0
    sx = (x - x.min()) / span_x if span_x > 0 else np.zeros(n)
    sy = (y - y.min()) / span_y if span_y > 0 else np.zeros(n)
    positions: list[str] = []
    for i in range(n):
        taken = {positions[j] for j in range(i) if abs(sx[i] - sx[j]) < near * 2 and abs(sy[i] - sy[j]) < near}
        positions.append(next((p for p in LABEL_POSITIONS if p not in taken), LABEL_POSITIONS[i % len(LABEL_POSITIONS)]))
    return positions


def tradeoff_figure(table: pd.DataFrame, accuracy: str, other: str):
    """Scatter of ``accuracy`` (y) against ``other`` (x), one labelled point per run, with both 95% intervals."""
    import plotly.graph_objects as go

    from .safe_text import plotly_text

    name = other.split("@")[0]
    figure = go.Figure(
        go.Scatter(
            x=table[other],
            y=table[accuracy],
            mode="markers+text",
            text=plotly_text(table["run"]),
            textposition=label_positions(table[other].to_numpy(dtype=float), table[accuracy].to_numpy(dtype=float)),
            cliponaxis=False,  # labels of points at the edge stay readable
            marker={"size": 10, "color": "#4C78A8"},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": table[f"{other} hi"] - table[other],
                "arrayminus": table[other] - table[f"{other} lo"],
            },
            error_y={
                "type": "data",
                "symmetric": False,
                "array": table[f"{accuracy} hi"] - table[accuracy],
                "arrayminus": table[accuracy] - table[f"{accuracy} lo"],
            },
            hovertemplate=f"%{{text}}<br>{other} %{{x:.4f}}<br>{accuracy} %{{y:.4f}}<extra></extra>",
        )
    )
    figure.update_layout(
        height=360,
        margin={"l": 40, "r": 60, "t": 40, "b": 10},
        title=f"{accuracy} vs {METRIC_LABELS.get(name, name)}",
        xaxis_title=f"{other} (95% CI)",
        yaxis_title=f"{accuracy} (95% CI)",
    )
    return figure


def activity_table(records: Sequence[RunRecord]) -> pd.DataFrame:
    """Each run's accuracy in each quintile of user activity (history length), one column per quintile."""
    rows = []
    for record in records:
        beyond = BeyondAccuracy.saved(record)
        if beyond is None or not beyond.by_activity:
            continue
        row = {"run": short_run_name(record), "metric": beyond.activity_metric}
        for group in beyond.by_activity:
            row[f"Q{group['group']} ({group['min_length']}–{group['max_length']})"] = group["mean"]
        rows.append(row)
    return pd.DataFrame(rows)


def beyond_metrics_table(records: Sequence[RunRecord]) -> pd.DataFrame:
    """Every beyond-accuracy metric of each run with its interval, for the table under the charts."""
    rows = []
    for record in records:
        beyond = BeyondAccuracy.saved(record)
        if beyond is None:
            continue
        row = {"run": short_run_name(record)}
        for name, value in beyond.metrics.items():
            lo, hi = beyond.intervals.get(name, (value, value))
            row[name] = value
            row[f"{name} 95% CI"] = f"{lo:.3f} – {hi:.3f}"
        row["ILD by"] = beyond.diversity_basis
        rows.append(row)
    return pd.DataFrame(rows)
