"""A look inside a fitted model: the data behind the Inside page's views (no Streamlit here).

Which view fits which model, its class says (``Recommender.offers``; the numbers come from its
``item_item_weights`` and ``latent_codes``):

* ``item-weights`` (EASE, item-kNN): the learned item-item weights among a set of items (the most
  popular by default) as a matrix, and the strongest pairs. EASE's B[i, j] is what item i in a history
  adds to item j's score (not symmetric; the diagonal is forced to 0); item-kNN's s(i, j) is the
  shrunk cosine, kept only where i is among j's nearest neighbours.
* ``embedding-norms`` (every model with item vectors, e.g. BPR, NeuMF, the autoencoders): each item
  vector's length against the item's popularity. Many factor models give popular items longer vectors,
  which lifts them for every user: a popularity bias made visible.
* ``latent`` (Mult-VAE, Mult-DAE): the mean of q(z | x) of a user's history (the DAE's code), and how
  it moves as items are added one at a time to a profile built by hand, drawn in the plane of the two
  principal components of every training user's code.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import ModelError

InsideView = Literal["item-weights", "embedding-norms", "latent"]

#: One line per view: what to look for.
EXPLANATIONS: dict[InsideView, str] = {
    "item-weights": (
        "Each cell is how much having the row item in a history raises the column item's score; look for blocks of related "
        "items ({related}) and for negative weights, which EASE uses to avoid recommending near-duplicates."
    ),
    "embedding-norms": (
        "Each point is an item: a longer vector scores higher for most users, so a rising cloud means the model "
        "boosts popular items for everyone (popularity bias); a flat cloud means popularity is not baked into the vectors."
    ),
    "latent": (
        "The user's code is where the encoder puts their history; watch the path as items are added: items of one kind "
        "pull the code in one direction, and the first few items move it most."
    ),
}
#: What "related items" look like, by the kind of item (the heatmap's explanation says it in the data's terms).
RELATED_ITEMS = {
    "item": "sequels, films of one genre",
    "movie": "sequels, films of one genre",
    "drug": "drugs reviewed for the same conditions, such as the birth-control pills or the antidepressants",
}


def explanation(view: InsideView, items_kind: str = "item") -> str:
    """The view's explanation, in the terms of the data (movies or drugs)."""
    text = EXPLANATIONS[view]
    return text.format(related=RELATED_ITEMS.get(items_kind, "items that are often chosen together")) if "{related}" in text else text


#: Items with at most this many training interactions barely move from their initial vectors.
FEW_INTERACTIONS = 1


def norm_popularity_note(correlation: float, table: pd.DataFrame) -> str:
    """What the length-popularity correlation means here, in words: popularity bias for a positive one; for a
    negative one, that the longest vectors belong to items training barely saw (their length is their random
    start, not a preference)."""
    if not np.isfinite(correlation):
        return "Lengths or popularity are all equal: there is no relation to read."
    longest = table.sort_values("norm", ascending=False).head(10)
    barely = int((longest["interactions"] <= FEW_INTERACTIONS).sum())
    if correlation >= 0.3:
        return (
            "Longer vectors go with more popular items: the model lifts popular items for every user (popularity bias), "
            "one reason its lists lean towards the blockbusters."
        )
    if correlation <= -0.3:
        return (
            f"Longer vectors go with *less* popular items ({barely} of the 10 longest have at most {FEW_INTERACTIONS} "
            "training interaction). This is not a preference for rare items: an item seen once or never gets almost no "
            "gradient updates, so it keeps most of its random starting vector, while the vectors of items seen often are "
            "reshaped by training. The length of a rarely seen item's vector is left over from its start, not learned."
        )
    return "Length and popularity are only weakly related: popularity is not baked into the vectors' lengths."


def views_for(model: Any) -> list[InsideView]:
    """The views that apply to ``model`` (possibly none, e.g. popularity): the ones its class implements
    (``Recommender.offers``: ``item_item_weights``, ``latent_codes``), and its item vectors' norms."""
    views: list[InsideView] = []
    if model.offers("item_item_weights"):
        views.append("item-weights")
    elif model.item_embeddings() is not None:
        views.append("embedding-norms")
    if model.offers("latent_codes"):
        views.append("latent")
    return views


def most_popular_items(model: Any, n: int = 30) -> np.ndarray:
    """The ``n`` items with the most interactions the model knows (ties by index)."""
    counts = np.asarray(model.known.sum(axis=0)).ravel()
    return np.lexsort((np.arange(len(counts)), -counts))[: min(n, len(counts))]


def item_weights(model: Any, items: np.ndarray) -> np.ndarray:
    """The learned weights among ``items``: entry [a, b] is the weight of items[a] on items[b]'s score
    (the model's ``item_item_weights``; a ModelError naming the models that have them otherwise)."""
    return model.item_item_weights(np.asarray(items, dtype=np.int64))


def strongest_pairs(weights: np.ndarray, items: np.ndarray, titles: np.ndarray, n: int = 10) -> pd.DataFrame:
    """The ``n`` pairs of distinct items with the strongest weight in either direction, strongest first.

    Each pair appears once, oriented along its stronger direction ("from" → "to"); "reverse weight" is
    the other direction (equal for item-kNN's symmetric cosine, different for EASE).
    """
    weights = np.asarray(weights, dtype=np.float64)
    items = np.asarray(items)
    size = len(items)
    magnitude = np.maximum(np.abs(weights), np.abs(weights.T))
    magnitude[np.tril_indices(size)] = -1.0  # each unordered pair once, never an item with itself
    flat = np.argsort(-magnitude, axis=None, kind="stable")[: min(n, size * (size - 1) // 2)]
    rows, columns = np.unravel_index(flat, weights.shape)
    keep = magnitude[rows, columns] > 0
    rows, columns = rows[keep], columns[keep]
    forward = np.abs(weights[rows, columns]) >= np.abs(weights[columns, rows])
    source, target = np.where(forward, rows, columns), np.where(forward, columns, rows)
    return pd.DataFrame(
        {
            "from": titles[items[source]],
            "to": titles[items[target]],
            "weight": weights[source, target],
            "reverse weight": weights[target, source],
        }
    )


def embedding_norms(model: Any) -> pd.DataFrame:
    """Per item: the length of its vector and its number of known interactions."""
    vectors = model.item_embeddings()
    if vectors is None:
        raise ModelError(f"{model.name} has no item vectors", "Choose a run of an embedding model (BPR, NeuMF, an autoencoder).")
    vectors = np.asarray(vectors, dtype=np.float64)
    counts = np.asarray(model.known.sum(axis=0)).ravel()
    return pd.DataFrame(
        {"item_index": np.arange(len(vectors)), "norm": np.linalg.norm(vectors, axis=1), "interactions": counts[: len(vectors)]}
    )


def norm_popularity_correlation(table: pd.DataFrame) -> float:
    """Spearman's rank correlation of vector length and popularity (NaN when either is constant)."""
    from scipy import stats

    if table["norm"].nunique() < 2 or table["interactions"].nunique() < 2:
        return float("nan")
    return float(stats.spearmanr(table["norm"], table["interactions"]).statistic)


def latent_mean(model: Any, user: int) -> np.ndarray:
    """The mean of q(z | x_u) for a known user's history (the DAE's code)."""
    return model.latent_codes(model.known[[int(user)]])[0]


def latent_path(model: Any, items: list[int]) -> np.ndarray:
    """Codes of a hand-built profile after each added item: row t is the code of ``items[: t + 1]``."""
    import scipy.sparse as sp

    model.require("latent_codes")
    items = np.asarray(items, dtype=np.int64)
    if not len(items):
        return np.zeros((0, model.network.latent_size), dtype=np.float32)
    steps = len(items)
    # Row t holds the first t + 1 items: a lower-triangular pattern, all steps encoded in one batch.
    rows, columns = np.tril_indices(steps)
    prefixes = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, items[columns])), shape=(steps, model.n_items))
    prefixes.sum_duplicates()
    prefixes.data[:] = 1.0
    return model.latent_codes(prefixes)


def latent_plane(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plane of the two principal components of every training user's code.

    Returns (mean, components (2 × d), the users' coordinates); project a code c as (c − mean) @ components.T.
    """
    model.require("latent_codes")
    codes = np.asarray(model.user_embeddings(), dtype=np.float64)
    mean = codes.mean(axis=0)
    _, _, vt = np.linalg.svd(codes - mean, full_matrices=False)
    components = vt[:2]
    return mean, components, (codes - mean) @ components.T
