"""Honest baselines: popularity and cosine item-kNN (Sarwar et al. 2001)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..fit_context import FitContext
from ..interactions import Interactions
from ..limits import SCORE_BLOCK_FLOATS, ModelMemory
from ..tuning import Param
from .base import ModelConfig, Recommender, bounded


@dataclass(frozen=True)
class PopularityConfig(ModelConfig):
    pass


class Popularity(Recommender):
    """Scores every item by how many training users interacted with it, the same for everyone."""

    name = "pop"
    title = "Popularity"
    Config = PopularityConfig
    description = "Most popular items in training; the floor every model must beat."

    def _build(self) -> None:
        self.popularity = np.zeros(self.n_items, dtype=np.float32)

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        self.popularity = np.asarray(self.known.sum(axis=0), dtype=np.float32).ravel()

    # Row-major copies, not broadcast views: ``score`` joins the batches' blocks, and broadcast views
    # came out column-major, so the evaluator's row-major copy of each block was a transpose (at
    # ML-20M shape 85 ms a block of 747 users against 45 ms for the tile and a plain copy).
    def _score_known(self, users, rows):
        return np.tile(self.popularity, (len(users), 1))

    def _score_new(self, rows):
        return np.tile(self.popularity, (rows.shape[0], 1))

    def _score_pairs(self, users, items, rows):
        return self.popularity[items]

    def _state(self):
        return {"popularity": torch.as_tensor(self.popularity)}

    def _load_state(self, tensors):
        self.popularity = tensors["popularity"].numpy().astype(np.float32)


@dataclass(frozen=True)
class ItemKNNConfig(ModelConfig):
    neighbours: int = bounded(50, (1, 10_000))
    """Most similar items kept per item (the neighbourhood size)."""
    shrinkage: float = bounded(10.0, (0.0, 1e6))
    """Added to the cosine denominator so that pairs seen together rarely count for less."""


class ItemKNN(Recommender):
    """Cosine item-kNN: s(i, j) = x_i·x_j / (‖x_i‖‖x_j‖ + shrinkage). A user's score for a
    candidate j is the sum of s(i, j) over the items i of their history that are among j's
    ``neighbours`` most similar items (Sarwar et al. 2001's item-based prediction).

    ``similarity[i, j]`` holds s(i, j) when i is one of j's neighbours, so scoring is one sparse
    product ``history @ similarity``."""

    name = "itemknn"
    title = "Item-kNN"
    Config = ItemKNNConfig
    description = "Item-item cosine neighbourhoods with shrinkage."
    search_space = {
        "neighbours": Param("int", 10, 500, log=True, doc="neighbours kept per item"),
        "shrinkage": Param("float", 0.0, 200.0, doc="added to the cosine's denominator; damps rare co-occurrence"),
    }

    @classmethod
    def model_memory(cls, n_users: int, n_items: int, n_interactions: int, config: ItemKNNConfig | None) -> ModelMemory:
        """A float32 similarity block and its argpartition (~5 × the score block) and at most ``neighbours``
        entries per item."""
        neighbours = int(getattr(config, "neighbours", 50) or 50)
        return ModelMemory(
            5 * 4 * min(SCORE_BLOCK_FLOATS, n_items * n_items) + 16 * n_items * min(neighbours, n_items),
            "item-kNN's similarity blocks",
            "lower neighbours, or keep fewer items (k-core)",
        )

    def item_item_weights(self, items: np.ndarray) -> np.ndarray:
        """The shrunk cosine s(i, j) among ``items``, kept only where i is among j's nearest neighbours."""
        items = np.asarray(items, dtype=np.int64)
        return np.asarray(self.similarity[items][:, items].todense(), dtype=np.float32)

    def _build(self) -> None:
        self.similarity = sp.csr_matrix((self.n_items, self.n_items), dtype=np.float32)

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        x = self.known.tocsc().astype(np.float32)
        xt = x.T.tocsr()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0))).ravel()
        k = min(self.config.neighbours, self.n_items - 1)
        rows, cols, vals = [], [], []
        block = max(1, int(2**24 // max(1, self.n_items)))
        for start in range(0, self.n_items, block):
            stop = min(self.n_items, start + block)
            co = np.asarray((xt[start:stop] @ x).todense(), dtype=np.float32)
            sim = co / (norms[start:stop, None] * norms[None, :] + self.config.shrinkage + 1e-12)
            sim[np.arange(stop - start), np.arange(start, stop)] = 0.0
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((stop - start, 0), dtype=np.int64)
            top_vals = np.take_along_axis(sim, top, axis=1)
            keep = top_vals > 0
            rows.append(np.repeat(np.arange(start, stop), k)[keep.ravel()])
            cols.append(top.ravel()[keep.ravel()])
            vals.append(top_vals.ravel()[keep.ravel()])
        # Row j of the blocks holds j's neighbours; transpose so that column j does.
        self.similarity = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(cols), np.concatenate(rows))), shape=(self.n_items, self.n_items), dtype=np.float32
        )

    def _score_known(self, users, rows):
        return np.asarray((rows.astype(np.float32) @ self.similarity).todense())

    def _score_new(self, rows):
        return self._score_known(None, rows)

    def item_similarity(self, items):
        """Similarity of each of ``items`` to its own neighbours (zero outside the neighbourhood)."""
        return np.asarray(self.similarity[:, np.atleast_1d(items)].T.todense())

    def _state(self):
        s = self.similarity
        return {
            "similarity.indptr": torch.as_tensor(s.indptr.astype(np.int64)),
            "similarity.indices": torch.as_tensor(s.indices.astype(np.int64)),
            "similarity.data": torch.as_tensor(s.data.astype(np.float32)),
        }

    def _load_state(self, tensors):
        self.similarity = sp.csr_matrix(
            (tensors["similarity.data"].numpy(), tensors["similarity.indices"].numpy(), tensors["similarity.indptr"].numpy()),
            shape=(self.n_items, self.n_items),
        )
