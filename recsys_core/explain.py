"""Why an item is recommended, and what the data says about it (no Streamlit here).

* :func:`explain` — "because you liked X and Y": for each recommended item, the items of the
  user's history that pushed it up most, by the model's own item-item weights
  (:meth:`~recsys_core.models.base.Recommender.item_similarity`: cosine of item embeddings for
  NCF/BPR/VAE decoders, item-kNN's neighbourhoods, co-occurrence otherwise; EASE's B exactly as it
  scores), weighted by the user's rating where known. One matrix slice for the whole top-K.
* :func:`pair_evidence` / :func:`item_evidence` — for review data (Drugs.com): per (condition,
  drug) pair and per drug, the number of reviews, the mean rating, the useful votes and the most
  useful review, trimmed. Computed for every pair at once with a pandas groupby; the caller caches.
* :func:`conditions_for_item` — reverse mode: the users (medical conditions) an item ranks highest
  for, with the evidence of each pair.
* :func:`item_rank_counts`, :func:`rank_text`, :func:`rank_strength` — a score as a reader can take
  it: "ranked 3rd of 470 drugs", "tied 5th-9th of 470" where scores are equal, and a 0-100 strength
  (the mid-rank percentile), never a raw logit whose scale differs between users and models.
* :class:`HistoryIndex` / :func:`user_history` — one user's interactions as a table, without a scan
  of the whole data set per request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .interactions import Interactions

SNIPPET_CHARS = 280
"""Longest review snippet shown as evidence (cut at a word boundary)."""


# ---------------------------------------------------------------------------------- histories
@dataclass(frozen=True)
class HistoryIndex:
    """Interaction rows grouped by user (newest first where there are timestamps).

    ``rows(u)`` is a slice of one sorted array, so looking up a user costs nothing; build it once
    per data set and cache it.
    """

    order: np.ndarray
    indptr: np.ndarray

    @classmethod
    def build(cls, data: Interactions) -> HistoryIndex:
        keys = (data.user,) if data.timestamp is None else (-np.asarray(data.timestamp, dtype=np.float64), data.user)
        order = np.lexsort(keys)  # the last key sorts first: by user, then newest first
        indptr = np.concatenate([[0], np.cumsum(np.bincount(data.user, minlength=data.n_users))])
        return cls(order, indptr)

    def rows(self, user: int) -> np.ndarray:
        return self.order[self.indptr[user] : self.indptr[user + 1]]


def _dates(timestamps: np.ndarray) -> pd.Series:
    values = np.asarray(timestamps, dtype=np.float64)
    unit = "ms" if len(values) and np.nanmedian(np.abs(values)) > 1e11 else "s"
    return pd.Series(pd.to_datetime(values, unit=unit, errors="coerce"))


def user_history(data: Interactions, user: int, index: HistoryIndex | None = None) -> pd.DataFrame:
    """One user's interactions: item, title, genres, year, rating, date (newest first)."""
    rows = (index or HistoryIndex.build(data)).rows(user)
    items = data.item[rows]
    table = pd.DataFrame({"item": data.items.ids[items], "title": data.item_titles()[items]})
    if data.item_info is not None:
        for column in ("genres", "year"):
            if column in data.item_info.columns:
                table[column] = data.item_info[column].to_numpy()[items]
    if data.rating is not None:
        table["rating"] = np.asarray(data.rating)[rows]
    if data.timestamp is not None:
        table["date"] = _dates(np.asarray(data.timestamp)[rows]).dt.date.to_numpy()
    table["item_index"] = items
    return table


USER_FACTS = ("age", "gender", "occupation")


def user_facts(data: Interactions, user: int) -> list[tuple[str, str]]:
    """What the data's user table says of a user: (column, value) for age, gender and occupation where known."""
    info = data.user_info
    if info is None:
        return []
    facts = []
    for column in USER_FACTS:
        if column in info.columns:
            value = info[column].iloc[user]
            if not pd.isna(value) and str(value) != "":
                facts.append((column, str(value)))
    return facts


def user_labels(data: Interactions) -> list[str]:
    """A one-line label per user for pickers: id, then age, gender and occupation where known, then activity."""
    ids = pd.Series(data.users.ids).astype(str)
    parts = []
    info = data.user_info
    if info is not None:
        for column in USER_FACTS:
            if column in info.columns:
                parts.append(info[column].astype(object).where(info[column].notna(), "").astype(str).str.replace("<NA>", "", regex=False))
    counts = pd.Series(data.user_counts())
    noun = "reviews" if data.users.kind == "condition" else "ratings" if data.rating is not None else "interactions"
    described = None
    for part in parts:
        described = part if described is None else described.str.cat(part, sep=", ")
    label = ids
    if described is not None:
        described = described.str.strip(", ").str.replace(r"(, )+", ", ", regex=True)
        label = label.where(described == "", ids + " · " + described)
    return (label + " · " + counts.astype(str) + f" {noun}").tolist()


INTERNAL_COLUMNS = ("item_index", "because_items", "because_weights")
"""Columns of :func:`recommendations_with_reasons` that are indices for code, not for a reader or a download."""


def user_item_ratings(data: Interactions, user: int, index: HistoryIndex | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The distinct items of a user's history and the user's mean rating of each (None without ratings)."""
    rows = (index or HistoryIndex.build(data)).rows(user)
    items, inverse = np.unique(data.item[rows], return_inverse=True)
    if data.rating is None:
        return items, None
    sums = np.bincount(inverse, weights=np.asarray(data.rating, dtype=np.float64)[rows], minlength=len(items))
    return items, sums / np.bincount(inverse, minlength=len(items))


# ---------------------------------------------------------------------------------- explanations
def contributions(model, history_items: np.ndarray, rec_items: np.ndarray) -> np.ndarray:
    """How much each history item supports each recommended item: shape (len(rec), len(history)).

    For item-item linear models the entry is exactly the history item's share of the score
    (EASE: ``B[h, r]``; item-kNN: ``s(h, r)`` when h is among r's neighbours); for embedding models
    the cosine of the two items' vectors; otherwise their co-occurrence cosine.
    """
    history_items = np.asarray(history_items, dtype=np.int64)
    rec_items = np.asarray(rec_items, dtype=np.int64)
    if len(history_items) == 0 or len(rec_items) == 0:
        return np.zeros((len(rec_items), len(history_items)), dtype=np.float32)
    weights = getattr(model, "weights", None)
    if weights is not None and tuple(getattr(weights, "shape", ())) == (model.n_items, model.n_items):
        # EASE scores x_u · B: item h adds B[h, r] to item r (B is not symmetric, so pick this side).
        import torch

        rows, columns = (torch.as_tensor(np.array(a, dtype=np.int64, copy=True), device=weights.device) for a in (history_items, rec_items))
        block = weights[rows][:, columns]
        return block.T.detach().float().cpu().numpy()
    return np.asarray(model.item_similarity(rec_items), dtype=np.float32)[:, history_items]


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def because_text(names: list[str], template: str = "Because you liked {items}") -> str:
    """``["A", "B", "C"]`` → "Because you liked A, B and C"."""
    return template.format(items=_join([str(n) for n in names]))


def explain(
    model,
    history_items: np.ndarray,
    rec_items: np.ndarray,
    titles: np.ndarray,
    ratings: np.ndarray | None = None,
    max_rating: float | None = None,
    n: int = 2,
    template: str = "Because you liked {items}",
    fallback: str = "No single item of the history stands out: the model ranks it high overall",
) -> pd.DataFrame:
    """For each recommended item, the ``n`` history items that support it most, and a sentence.

    ``ratings`` (aligned with ``history_items``) scale each history item's support by
    rating / ``max_rating`` (default: the highest of ``ratings``), so a film rated 5 explains more
    than one rated 1. Returns one row per recommended item: ``item_index``, ``because_items``
    (history item indices, strongest first), ``because_weights`` and ``because`` (the sentence).
    """
    history_items = np.asarray(history_items, dtype=np.int64)
    rec_items = np.asarray(rec_items, dtype=np.int64)
    out = pd.DataFrame({"item_index": rec_items})
    if getattr(model, "name", "") == "pop":
        # Popularity ignores the history: saying "because you liked X" would be untrue.
        out["because_items"] = [[] for _ in rec_items]
        out["because_weights"] = [[] for _ in rec_items]
        out["because"] = "One of the most popular items overall (this model does not personalise)"
        return out
    support = contributions(model, history_items, rec_items).astype(np.float64)
    if ratings is not None and len(history_items):
        ratings = np.asarray(ratings, dtype=np.float64)
        top = max_rating if max_rating is not None else float(np.nanmax(ratings)) if len(ratings) else 1.0
        support = support * np.nan_to_num(ratings / max(top, 1e-12), nan=1.0)[None, :]
    # A recommended item never explains itself (it can be in the history when seen items are shown).
    support[rec_items[:, None] == history_items[None, :]] = 0.0
    n = max(1, min(n, support.shape[1])) if support.shape[1] else 0
    order = np.argsort(-support, axis=1, kind="stable")[:, :n]
    best = np.take_along_axis(support, order, axis=1)
    chosen, weights, texts = [], [], []
    for row_items, row_weights in zip(order, best):  # K rows of n entries: tiny
        keep = row_weights > 0
        items = history_items[row_items[keep]]
        chosen.append(items.tolist())
        weights.append(row_weights[keep].round(6).tolist())
        texts.append(because_text(list(titles[items]), template) if len(items) else fallback)
    out["because_items"] = chosen
    out["because_weights"] = weights
    out["because"] = texts
    return out


# ---------------------------------------------------------------------------------- ranking tables
def item_table(run, items: np.ndarray, scores: np.ndarray, popularity: np.ndarray | None = None) -> pd.DataFrame:
    """rank, item, title, score (+ genres, year, top_condition, popularity where known), item_index."""
    items = np.asarray(items, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    keep = np.isfinite(scores)
    items, scores = items[keep], scores[keep]
    table = pd.DataFrame(
        {"rank": np.arange(1, len(items) + 1), "item": run.items.ids[items], "title": run.item_titles()[items], "score": scores}
    )
    info = run.item_info
    if info is not None:
        for column in ("genres", "year", "top_condition"):
            if column in info.columns:
                table[column] = info[column].to_numpy()[items]
    if popularity is not None:
        table["popularity"] = np.asarray(popularity)[items]
    table["item_index"] = items
    return table


def rank_items(model, user: int, k: int = 10, include_seen: bool = False, seen=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``k`` item indices, scores and a seen flag for one known user.

    ``seen`` (users × items; a saved run's :attr:`~recsys_core.runs.Run.seen`) is the history the user
    is scored from and whose items are excluded; default: what the model was fitted on."""
    history = model.known if seen is None else seen
    items, scores = model.recommend(np.array([user]), k=k, exclude_seen=not include_seen, history=history)
    items, scores = items[0], scores[0]
    return items, scores, np.isin(items, history[user].indices)


def rank_seen_items(model, user: int, seen=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The items a user already has, by the model's score: indices, scores and their rank among all items."""
    history = model.known if seen is None else seen
    scores = model.score(np.array([user]), history=history)[0].astype(np.float64)
    seen = history[user].indices
    if len(seen) == 0:
        return seen.astype(np.int64), np.zeros(0), np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores[seen], kind="stable")
    seen = seen[order].astype(np.int64)
    ranks = np.searchsorted(np.sort(-scores), -scores[seen], side="left") + 1
    return seen, scores[seen], ranks


PROFILE_TEMPLATE = "Because you picked {items}"


def recommendations_with_reasons(
    run,
    data: Interactions,
    *,
    user: int | None = None,
    profile: np.ndarray | list[int] | None = None,
    k: int = 10,
    include_seen: bool = False,
    popularity: np.ndarray | None = None,
    index: HistoryIndex | None = None,
    template: str = PROFILE_TEMPLATE,
) -> pd.DataFrame:
    """A saved run's top-``k`` with the reasons behind each item, for a known user or a hand-built profile.

    Exactly one of ``user`` (an index of ``data``: scored from everything the user has seen, those
    items excluded unless ``include_seen``, each row flagged ``seen``; the reasons weigh the history
    by the user's ratings) or ``profile`` (item indices: folded in as a new user, the reasons name
    the picked items through ``template``) is given. Returns :func:`item_table`'s columns plus
    ``because`` (the sentence), ``because_items`` and ``because_weights`` (history items behind it,
    strongest first) and, for a user, ``seen``.
    """
    if (user is None) == (profile is None):
        raise ValueError("give either a user or a profile")
    titles = run.item_titles()
    if profile is not None:
        picked = np.asarray(profile, dtype=np.int64)
        items, scores = run.model.recommend_for_history(picked, k=k)
        table = item_table(run, items, scores, popularity)
        reasons = explain(run.model, picked, table["item_index"].to_numpy(), titles, template=template)
    else:
        items, scores, seen = rank_items(run.model, int(user), k=k, include_seen=include_seen, seen=run.seen)
        table = item_table(run, items, scores, popularity)
        table["seen"] = seen[np.isfinite(scores)]
        history_items, ratings = user_item_ratings(data, int(user), index)
        top = float(np.max(data.rating)) if data.rating is not None and len(data) else None
        reasons = explain(run.model, history_items, table["item_index"].to_numpy(), titles, ratings, top)
    for column in ("because", "because_items", "because_weights"):
        table[column] = reasons[column].to_numpy()
    return table


# ---------------------------------------------------------------------------------- ranks for readers
def item_rank_counts(scores: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``scores`` (users × all items) and each of that row's ``items``: the item's
    first rank (1 + the number of items scored strictly higher) and how many items share its score
    (1 when none ties). NaN scores count as the lowest."""
    scores = np.nan_to_num(np.atleast_2d(np.asarray(scores, dtype=np.float64)), nan=-np.inf)
    items = np.atleast_2d(np.asarray(items, dtype=np.int64))
    values = np.take_along_axis(scores, items, axis=1)
    first = np.empty(items.shape, dtype=np.int64)
    tied = np.empty(items.shape, dtype=np.int64)
    n = scores.shape[1]
    for row in range(scores.shape[0]):  # a handful of users: one sort each
        ordered = np.sort(scores[row])
        above = np.searchsorted(ordered, values[row], side="right")
        first[row] = n - above + 1
        tied[row] = above - np.searchsorted(ordered, values[row], side="left")
    return first, tied


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def rank_text(first: int, tied: int, total: int, noun: str = "items") -> str:
    """ "ranked 3rd of 470 drugs", or "tied 5th-9th of 470 drugs" when five items share the score."""
    first, tied = int(first), int(tied)
    if tied <= 1:
        return f"ranked {_ordinal(first)} of {total:,} {noun}"
    return f"tied {_ordinal(first)}–{_ordinal(first + tied - 1)} of {total:,} {noun}"


def rank_strength(first: np.ndarray, tied: np.ndarray, total: int) -> np.ndarray:
    """0-100 from a rank: 100 for a lone first place, 0 for a lone last, tied items share their mid-rank."""
    middle = np.asarray(first, dtype=np.float64) + (np.asarray(tied, dtype=np.float64) - 1) / 2
    return np.rint(100 * (total - middle) / max(total - 1, 1)).astype(np.int64)


# ---------------------------------------------------------------------------------- evidence
def trim(texts: pd.Series, limit: int = SNIPPET_CHARS) -> pd.Series:
    """Cut texts longer than ``limit`` at the last word boundary and add an ellipsis."""
    texts = texts.fillna("").astype(str).str.strip().str.replace(r"\s+", " ", regex=True)
    long = texts.str.len() > limit
    cut = texts[long].str.slice(0, limit).str.replace(r"\s+\S*$", "", regex=True).str.rstrip(" ,;:.-") + "…"
    return texts.mask(long, cut)


def _evidence_frame(data: Interactions) -> pd.DataFrame:
    frame = pd.DataFrame({"user": data.user, "item": data.item})
    frame["rating"] = np.asarray(data.rating, dtype=np.float64) if data.rating is not None else np.nan
    useful = data.extra.get("useful", data.weight)
    frame["useful"] = np.asarray(useful, dtype=np.float64) if useful is not None else 0.0
    if data.timestamp is not None:
        frame["timestamp"] = np.asarray(data.timestamp, dtype=np.float64)
    if "review" in data.extra:
        frame["review"] = pd.Series(data.extra["review"], dtype=object)
    return frame


def pair_evidence(data: Interactions, snippet_chars: int = SNIPPET_CHARS) -> pd.DataFrame:
    """Per (user, item) pair, every pair at once: ``reviews``, ``mean_rating``, ``useful`` (votes),
    and where there is review text the most useful review (``snippet``, trimmed), its votes and
    rating. Sorted by user then item (use :func:`evidence_for_user` to slice one user)."""
    frame = _evidence_frame(data)
    grouped = frame.groupby(["user", "item"], sort=True)
    out = grouped.agg(reviews=("item", "size"), mean_rating=("rating", "mean"), useful=("useful", "sum"))
    if "review" in frame.columns:
        sort = ["useful", "timestamp"] if "timestamp" in frame.columns else ["useful"]
        best = frame.sort_values(sort, ascending=False, kind="stable").drop_duplicates(["user", "item"]).set_index(["user", "item"])
        best = best.reindex(out.index)
        out["snippet"] = trim(best["review"], snippet_chars).to_numpy()
        out["snippet_useful"] = best["useful"].to_numpy()
        out["snippet_rating"] = best["rating"].to_numpy()
    out["useful"] = out["useful"].astype(np.int64)
    return out.reset_index()


def item_evidence(data: Interactions) -> pd.DataFrame:
    """Per item over all users, indexed by item index: ``reviews``, ``mean_rating``, ``useful``, ``users``."""
    frame = _evidence_frame(data)
    out = frame.groupby("item", sort=True).agg(
        reviews=("item", "size"), mean_rating=("rating", "mean"), useful=("useful", "sum"), users=("user", "nunique")
    )
    out = out.reindex(np.arange(data.n_items)).fillna({"reviews": 0, "useful": 0, "users": 0})
    return out.astype({"reviews": np.int64, "useful": np.int64, "users": np.int64})


def evidence_for_user(pairs: pd.DataFrame, user: int) -> pd.DataFrame:
    """The rows of :func:`pair_evidence` for one user (a slice of the sorted table)."""
    users = pairs["user"].to_numpy()
    start, stop = np.searchsorted(users, user, side="left"), np.searchsorted(users, user, side="right")
    return pairs.iloc[start:stop]


def evidence_for(pairs: pd.DataFrame, user: int, items: np.ndarray) -> pd.DataFrame:
    """Evidence of (user, item) for each of ``items``, in their order; 0 reviews where none."""
    mine = evidence_for_user(pairs, user).set_index("item")
    out = mine.reindex(np.asarray(items, dtype=np.int64)).drop(columns="user")
    out["reviews"] = out["reviews"].fillna(0).astype(np.int64)
    out["useful"] = out["useful"].fillna(0).astype(np.int64)
    return out.reset_index(names="item_index")


# ---------------------------------------------------------------------------------- reverse mode
def conditions_for_item(run, raw_item, k: int = 10, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The users (medical conditions) for which ``raw_item`` ranks highest, with each pair's evidence.

    Ranked by the item's rank among all items within each user's scores (scores are not comparable
    across users), via :meth:`Run.rank_users_for_item`.
    """
    table = run.rank_users_for_item(raw_item, k=k)
    if pairs is None or table.empty:
        return table
    item = run.items.index(raw_item)
    users = run.users.indices(table[run.users.kind].tolist())
    mine = pairs[pairs["item"].to_numpy() == item].set_index("user")
    evidence = mine.reindex(users).drop(columns="item")
    evidence["reviews"] = evidence["reviews"].fillna(0).astype(np.int64)
    evidence["useful"] = evidence["useful"].fillna(0).astype(np.int64)
    return pd.concat([table.reset_index(drop=True), evidence.reset_index(drop=True)], axis=1)
