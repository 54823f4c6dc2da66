"""EASE (Steck, WWW 2019): an item-item linear model with a zero diagonal, fitted in closed form.

B = I − P·diag(1/diag(P)) with P = (XᵀX + λI)⁻¹. The fit is dominated by one dense n × n matrix, so
memory is what decides whether EASE can run, and it is spent carefully:

* the Gram matrix XᵀX is built in float32, in column blocks of sparse products (never a sparse
  n × n product with int indices, nor a float64 copy);
* each λ is one in-place LAPACK Cholesky factorisation and inverse of a float32 copy of the Gram
  matrix (``spotrf`` + ``spotri``), which then becomes B in place. The Gram matrix is kept only
  while λ is being chosen, so the peak is two n × n float32 matrices when tuning, one with a fixed λ.

:func:`ease_memory_bytes` states that peak; a fit whose estimate exceeds the memory available
refuses with the estimate and the largest item cap that would fit. ``item_cap`` (a user's choice)
keeps only the most popular items in the model; the others are never recommended (score −∞), and
the cap is recorded in the model's metadata (``meta["item_cap"]``, saved in the run's model.json).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import ModelError
from ..fit_context import FitContext
from ..interactions import Interactions
from ..limits import ModelMemory, available_memory, ease_memory_bytes
from ..protocols import get_protocol
from ..tuning import Param
from .base import ModelConfig, Recommender, bounded, csr_rows_to_dense

# The memory estimate lives with the others in limits.py (checked against the measured peak in tests).
_GRAM_BLOCK_BYTES = 32 * 2**20


def _gram_float32(x: sp.csr_matrix) -> np.ndarray:
    """XᵀX as a dense float32 array, one block of columns at a time (bounded temporaries)."""
    n = x.shape[1]
    # a block's sparse product holds up to n × block entries of 12 bytes (value, index, and its dense copy)
    block = max(1, _GRAM_BLOCK_BYTES // (16 * max(1, n)))
    xt = x.T.tocsr().astype(np.float32)
    xc = x.tocsc().astype(np.float32)
    gram = np.empty((n, n), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(n, start + block)
        gram[:, start:stop] = (xt @ xc[:, start:stop]).toarray()
    return gram


def _solve_in_place(matrix: np.ndarray) -> np.ndarray:
    """B from A = XᵀX + λI, overwriting A: Cholesky, inverse, symmetrise, scale, zero diagonal."""
    from scipy.linalg import lapack

    # LAPACK is column-major; A is symmetric, so its row-major buffer read as Fortran order is the same
    # matrix, and working on ``matrix.T`` (a Fortran-contiguous view) lets LAPACK overwrite it in place.
    fortran = matrix.T
    factor, info = lapack.spotrf(fortran, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise ModelError("EASE's matrix XᵀX + λI is not positive definite in float32", "Use a larger l2 (λ).")
    inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelError("EASE could not invert XᵀX + λI", "Use a larger l2 (λ).")
    p = inverse.T  # the upper triangle of the Fortran result is the lower triangle of this view
    n = p.shape[0]
    # Mirror the lower triangle into the upper one, a block of rows at a time (no n × n index arrays).
    step = 1024
    for start in range(0, n, step):
        stop = min(n, start + step)
        p[start:stop, stop:] = p[stop:, start:stop].T
        square = p[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        square[upper] = square.T[upper]
    diagonal = np.diagonal(p).copy()
    p /= -diagonal[None, :]
    np.fill_diagonal(p, 0.0)
    return p


#: The range of λ and of each candidate in its grid.
L2_RANGE = (1e-6, 1e9)


@dataclass(frozen=True)
class EASEConfig(ModelConfig):
    l2: float | None = bounded(None, L2_RANGE)
    """L2 penalty λ. None: chosen on the validation split from ``l2_grid`` (500 without validation)."""
    l2_grid: tuple[float, ...] = bounded((50.0, 100.0, 200.0, 350.0, 500.0, 750.0, 1000.0, 2000.0), L2_RANGE)
    """Candidates for λ when ``l2`` is None."""
    item_cap: int | None = None
    """Model only the most popular ``item_cap`` items (the rest are never recommended); None: all items."""


class EASE(Recommender):
    """B = I − P·diag(1/diag(P)) with P = (XᵀX + λI)⁻¹, so diag(B) = 0; scores are X_u B."""

    name = "ease"
    title = "EASE"
    Config = EASEConfig
    description = "Embarrassingly shallow autoencoder: closed-form item-item weights."
    search_space = {"l2": Param("float", 1.0, 1e4, log=True, doc="λ of EASE; log scale (Steck 2019 uses 100s to 1000s)")}

    @classmethod
    def model_memory(cls, n_users: int, n_items: int, n_interactions: int, config: EASEConfig | None) -> ModelMemory:
        """:func:`~recsys_core.limits.ease_memory_bytes`: float32 n × n matrices (two while λ is chosen on
        validation, one with a fixed ``l2``), of at most ``item_cap`` items."""
        cap = getattr(config, "item_cap", None)
        kept = n_items if cap is None else min(int(cap), n_items)
        return ModelMemory(
            ease_memory_bytes(kept, tuning=getattr(config, "l2", None) is None),
            f"EASE's dense {kept:,} × {kept:,} float32 item-item matrices",
            "set item_cap (EASE on the most popular items), keep fewer items (k-core) or choose itemknn or multvae",
        )

    def item_item_weights(self, items: np.ndarray) -> np.ndarray:
        """B[i, j] among ``items``: what item i in a history adds to item j's score (not symmetric; the
        diagonal is forced to 0)."""
        index = torch.as_tensor(np.asarray(items, dtype=np.int64), device=self.weights.device)
        return self.weights[index][:, index].float().cpu().numpy()

    def _build(self) -> None:
        # Sized on fit or load (a placeholder here: an n × n zero matrix would cost as much as the fit).
        self.weights = torch.zeros((0, 0), dtype=torch.float32)
        kept = self.meta.get("kept_items")
        self.kept = None if kept is None else np.asarray(kept, dtype=np.int64)

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        cap = self.config.item_cap
        if cap is not None and cap < 1:
            raise ModelError(f"item_cap must be at least 1, not {cap}")
        n = self.n_items if cap is None else min(cap, self.n_items)
        tuning = self.config.l2 is None
        needed, available = ease_memory_bytes(n, tuning), available_memory()
        if needed > available:
            fits = int(np.sqrt(max(0, available - ease_memory_bytes(0, tuning)) / (4 * (2 if tuning else 1))))
            raise ModelError(
                f"EASE on {n:,} items needs about {needed / 2**30:.1f} GiB ({'two' if tuning else 'one'} {n:,} × {n:,} float32 "
                f"matrices{' while λ is chosen' if tuning else ''}), and {available / 2**30:.1f} GiB is available",
                f"Set item_cap to at most {fits:,} (the most popular items; e.g. --set item_cap={fits}), fix l2 to halve the need, "
                "or choose another model.",
            )
        known = self.known
        if cap is not None and cap < self.n_items:
            popularity = np.asarray(known.sum(axis=0)).ravel()
            self.kept = np.sort(np.argsort(-popularity, kind="stable")[:cap])
            known = known[:, self.kept]
            self.meta["item_cap"] = int(cap)
            self.meta["kept_items"] = self.kept.tolist()
        else:
            self.kept = None
            self.meta.pop("item_cap", None)
            self.meta.pop("kept_items", None)
        self.meta["memory_estimate_bytes"] = int(needed)
        gram = _gram_float32(known)
        self._gram = gram if tuning else None
        chosen = self.config.l2 if self.config.l2 is not None else 500.0
        self._set_l2(chosen, gram if not tuning else None)

    def _solve(self, l2: float, work: np.ndarray | None = None) -> torch.Tensor:
        matrix = work if work is not None else self._gram.copy()
        matrix[np.diag_indices_from(matrix)] += np.float32(l2)
        return torch.from_numpy(_solve_in_place(matrix))

    def _set_l2(self, l2: float, work: np.ndarray | None = None) -> None:
        self.weights = torch.zeros((0, 0))  # free the previous B before the next solve
        self.weights = self._solve(l2, work).to(self.device)
        self.meta["l2"] = float(l2)

    def tune(self, evaluator) -> dict | None:
        """Pick λ from the grid by validation NDCG@10: one in-place Cholesky solve per λ, then the best again."""
        if self.config.l2 is not None or evaluator is None:
            self._gram = None
            return None
        metric = get_protocol(evaluator.protocol).validation_metric
        scores = {}
        for l2 in self.config.l2_grid:
            self._set_l2(l2)
            scores[l2] = evaluator.evaluate(self).metrics[metric]
        best = max(scores, key=scores.get)
        gram, self._gram = self._gram, None
        self.weights = torch.zeros((0, 0))
        self._set_l2(best, gram)  # the last solve may overwrite the Gram matrix: it is not needed again
        return {"chosen": {"l2": best}, "grid": {str(k): v for k, v in scores.items()}, "metric": metric}

    def _score_known(self, users, rows):
        return self._score_new(rows)

    def _score_new(self, rows):
        if self.kept is None:
            return csr_rows_to_dense(rows, self.device) @ self.weights
        kept = torch.as_tensor(self.kept, device=self.device)
        scores = torch.full((rows.shape[0], self.n_items), -torch.inf, device=self.device)
        scores[:, kept] = csr_rows_to_dense(rows[:, self.kept], self.device) @ self.weights
        return scores

    def _full_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows of B over every item (zero for items outside the cap)."""
        if self.kept is None:
            return self.weights[torch.as_tensor(rows)].cpu().numpy()
        position = np.full(self.n_items, -1, dtype=np.int64)
        position[self.kept] = np.arange(len(self.kept))
        out = np.zeros((len(rows), self.n_items), dtype=np.float32)
        inside = position[rows] >= 0
        out[np.ix_(inside, self.kept)] = self.weights[torch.as_tensor(position[rows][inside])].cpu().numpy()
        return out

    def item_embeddings(self):
        """Rows of B: item i's weights onto every item (used for maps and explanations)."""
        return self._full_rows(np.arange(self.n_items))

    def item_similarity(self, items):
        return self._full_rows(np.atleast_1d(np.asarray(items, dtype=np.int64)))

    def _state(self):
        return {"weights": self.weights}

    def _load_state(self, tensors):
        self.weights = tensors["weights"].to(self.device)
