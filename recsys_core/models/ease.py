"""EASE (Steck, WWW 2019): an item-item linear model with a zero diagonal, fitted in closed form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ModelError
from ..interactions import Interactions
from .base import ModelConfig, Recommender, csr_rows_to_dense


@dataclass(frozen=True)
class EASEConfig(ModelConfig):
    l2: float | None = None
    """L2 penalty λ. None: chosen on the validation split from ``l2_grid`` (500 without validation)."""
    l2_grid: tuple[float, ...] = (50.0, 100.0, 200.0, 350.0, 500.0, 750.0, 1000.0, 2000.0)
    """Candidates for λ when ``l2`` is None."""


class EASE(Recommender):
    """B = I − P·diag(1/diag(P)) with P = (XᵀX + λI)⁻¹, so diag(B) = 0; scores are X_u B."""

    name = "ease"
    Config = EASEConfig
    description = "Embarrassingly shallow autoencoder: closed-form item-item weights."
    max_items = 40_000  # XᵀX is dense: 40k items is 6.4 GB in float32

    def _build(self) -> None:
        if self.n_items > self.max_items:
            raise ModelError(
                f"EASE inverts a dense {self.n_items} × {self.n_items} matrix, too large for memory",
                f"Filter the data to at most {self.max_items} items (a k-core filter helps) or choose another model.",
            )
        self.weights = torch.zeros((self.n_items, self.n_items), dtype=torch.float32, device=self.device)

    def _prepare(self, train: Interactions, rng: np.random.Generator) -> None:
        gram = self.known.T @ self.known
        self._gram = torch.as_tensor(gram.toarray(), dtype=torch.float64, device=self.device)
        self._eigen = None
        chosen = self.config.l2 if self.config.l2 is not None else 500.0
        self._set_l2(chosen)

    def _solve(self, l2: float) -> torch.Tensor:
        if self._eigen is None:
            self._eigen = torch.linalg.eigh(self._gram)
        values, vectors = self._eigen
        precision = (vectors / (values + l2)) @ vectors.T
        weights = -precision / torch.diagonal(precision)[None, :]
        weights.fill_diagonal_(0.0)
        return weights.float()

    def _set_l2(self, l2: float) -> None:
        self.weights = self._solve(l2)
        self.meta["l2"] = float(l2)

    def tune(self, evaluator) -> dict | None:
        """Pick λ from the grid by validation NDCG@10 (one eigendecomposition serves every λ)."""
        if self.config.l2 is not None or evaluator is None:
            return None
        metric = "NDCG@100" if evaluator.protocol == "heldout-users" else "NDCG@10"
        scores = {}
        for l2 in self.config.l2_grid:
            self._set_l2(l2)
            scores[l2] = evaluator.evaluate(self).metrics[metric]
        best = max(scores, key=scores.get)
        self._set_l2(best)
        self._gram = self._eigen = None
        return {"chosen": {"l2": best}, "grid": {str(k): v for k, v in scores.items()}, "metric": metric}

    def _score_known(self, users, rows):
        return self._score_new(rows)

    def _score_new(self, rows):
        return csr_rows_to_dense(rows, self.device) @ self.weights

    def item_embeddings(self):
        """Rows of B: item i's weights onto every item (used for maps and explanations)."""
        return self.weights.cpu().numpy()

    def item_similarity(self, items):
        return self.weights[torch.as_tensor(np.atleast_1d(items))].cpu().numpy()

    def _state(self):
        return {"weights": self.weights}

    def _load_state(self, tensors):
        self.weights = tensors["weights"].to(self.device)
