"""Autoencoders over explicit ratings: AutoRec and DeepRec (CDAE, the implicit one, is in ``cdae.py``).

* :class:`AutoRec`  I-AutoRec (Sedhain et al., WWW 2015): one sigmoid hidden layer over an item's
  rating vector (one input per user), identity decoder, squared error on observed ratings only
  plus λ/2 (‖W‖² + ‖V‖²). Predicts explicit ratings.
* :class:`DeepRec`  Kuchaiev & Ginsburg 2017: a deep SELU autoencoder over a user's rating vector,
  heavy dropout on the code, masked MSE and dense re-feeding. Predicts explicit ratings.

The two rating models keep the training rating matrix (users × items, mean of duplicate ratings)
as part of their saved tensors, because a rating autoencoder reads ratings, not the binary rows the
evaluator passes as history. For a known user, the items of the history that have a training rating
use it; items of the history without one (at test time under leave-one-out: the validation item)
are filled with the user's mean training rating. Both models rank by the predicted rating
(unclipped, so that ratings above the scale's top still order items); ``predict_ratings`` clips to
the observed rating range, and a user or item with no training rating gets the global mean.

Fold-in (a user never seen in training) reads the history's values as ratings. A history whose
values are all exactly 1 (``fold_in(items)`` without ``weights``, or a binary row) carries no
ratings, so each of its items counts as the top of the observed scale (``meta["high_rating"]``):
"the user liked these". To fold in real ratings that are all 1, pass them on a scale where that is
not ambiguous (or mix in one other rating).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..errors import ModelError
from ..fit_context import FitContext
from ..interactions import Interactions
from ..limits import DROPOUT_RANGE, LAYER_WIDTH_RANGE, ModelMemory, autoencoder_memory
from ..tuning import LEARNING_RATE_SPACE, WEIGHT_DECAY_SPACE, Param
from .base import TorchRecommender, TrainingConfig, bounded, index_tensor
from .device_csr import DeviceCSR

# ---------------------------------------------------------------------------------------------
# shared by the two rating models


def masked_squared_error(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors over the entries where ``mask`` is 1; unobserved entries add nothing
    (neither to the value nor to the gradient)."""
    mask = mask.to(predicted.dtype)
    return (((predicted - target) * mask) ** 2).sum()


def _mean_rating_matrix(train: Interactions) -> sp.csr_matrix:
    """Users × items ratings; a pair rated several times keeps the mean of its ratings."""
    sums = train.to_csr("rating")
    counts = sp.csr_matrix((np.ones(len(train), dtype=np.float32), (train.user, train.item)), shape=train.shape)
    counts.sum_duplicates()
    counts.sort_indices()
    out = sums.copy()
    out.data = (sums.data / counts.data).astype(np.float32)  # same pattern, same (sorted) order
    return out


class _RatingModel:
    """Mixin for the rating autoencoders: the training ratings, their statistics and fallbacks."""

    predicts_ratings: ClassVar[bool] = True
    ratings: sp.csr_matrix
    meta: dict
    n_users: int
    n_items: int
    device: torch.device

    def _empty_ratings(self) -> None:
        self._set_ratings(sp.csr_matrix((self.n_users, self.n_items), dtype=np.float32))

    def _keep_ratings(self, train: Interactions) -> None:
        if train.rating is None:
            raise ModelError(
                f"{self.name} predicts explicit ratings, and this data set has no rating column",  # type: ignore[attr-defined]
                "Choose a data set with ratings, or a ranking model such as cdae, multdae or ease for implicit data.",
            )
        ratings = _mean_rating_matrix(train)
        values = ratings.data.astype(np.float64)
        self.meta.update(
            global_mean=float(values.mean()),
            rating_min=float(values.min()),
            rating_max=float(values.max()),
            high_rating=float(values.max()),
        )
        self._set_ratings(ratings)

    def _set_ratings(self, ratings: sp.csr_matrix) -> None:
        ratings = sp.csr_matrix(ratings, dtype=np.float32)
        ratings.sort_indices()
        self.ratings = ratings
        self._device_ratings = DeviceCSR.from_scipy(ratings, self.device)  # training batches are gathered on the device
        counts = np.diff(ratings.indptr)
        sums = np.asarray(ratings.sum(axis=1)).ravel()
        mean = self.meta.get("global_mean", 0.0)
        self.user_mean = np.where(counts > 0, sums / np.maximum(counts, 1), mean).astype(np.float32)
        self.user_has_ratings = counts > 0
        self.item_has_ratings = np.bincount(ratings.indices, minlength=self.n_items) > 0
        self._unrated_items = torch.as_tensor(~self.item_has_ratings, device=self.device)

    def _ratings_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "ratings.indptr": torch.as_tensor(self.ratings.indptr.astype(np.int64)),
            "ratings.indices": torch.as_tensor(self.ratings.indices.astype(np.int64)),
            "ratings.data": torch.as_tensor(self.ratings.data.astype(np.float32)),
        }

    def _load_ratings(self, tensors: dict[str, torch.Tensor]) -> None:
        if "ratings.indptr" not in tensors:
            return  # the trainer restoring its best epoch: the ratings have not changed
        matrix = sp.csr_matrix(
            (tensors["ratings.data"].numpy(), tensors["ratings.indices"].numpy(), tensors["ratings.indptr"].numpy()),
            shape=(self.n_users, self.n_items),
        )
        self._set_ratings(matrix)

    def _history_ratings(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        """Fold-in rows as ratings: rows whose values are all exactly 1 mean "liked" → ``high_rating``."""
        rows = sp.csr_matrix(rows, dtype=np.float32, copy=True)
        counts = np.diff(rows.indptr)
        not_one = np.bincount(
            np.repeat(np.arange(rows.shape[0]), counts), weights=(rows.data != 1.0).astype(np.float64), minlength=rows.shape[0]
        )
        binary_row = not_one == 0
        rows.data = np.where(np.repeat(binary_row, counts), np.float32(self.meta["high_rating"]), rows.data).astype(np.float32)
        return rows

    def _known_input(self, users: np.ndarray, rows: sp.csr_matrix) -> torch.Tensor:
        """Dense rating input of known users over the pattern of ``rows``: training ratings where they
        exist, the user's mean training rating for history items without one."""
        wanted = DeviceCSR.from_scipy(rows, self.device).dense(binary=True) > 0
        user_index = index_tensor(users, self.device)
        has = self._device_ratings.dense_rows(user_index, binary=True) > 0
        values = self._device_ratings.dense_rows(user_index)
        fill = torch.as_tensor(self.user_mean[users], device=self.device)[:, None]
        return torch.where(wanted, torch.where(has, values, fill), torch.zeros((), device=self.device))

    def _fallback(self, scores: torch.Tensor, users: np.ndarray | None) -> torch.Tensor:
        """Global mean for items (columns) without training ratings and known users without any."""
        mean = float(self.meta.get("global_mean", 0.0))
        scores = scores.masked_fill(self._unrated_items[None, :], mean)
        if users is not None and not self.user_has_ratings[users].all():
            no_ratings = torch.as_tensor(~self.user_has_ratings[users], device=scores.device)
            scores = scores.masked_fill(no_ratings[:, None], mean)
        return scores

    def _clip_ratings(self, predicted: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        mean = float(self.meta["global_mean"])
        predicted = np.where(self.user_has_ratings[users] & self.item_has_ratings[items], predicted, mean)
        return np.clip(predicted, self.meta["rating_min"], self.meta["rating_max"]).astype(np.float32)

    def _check_pairs(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()  # type: ignore[attr-defined]
        users = self._check_users(users)  # type: ignore[attr-defined]
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        if users.shape != items.shape:
            raise ModelError(f"predict_ratings needs as many items as users, got {len(users)} users and {len(items)} items")
        if len(items) and (items.min() < 0 or items.max() >= self.n_items):
            raise ModelError(f"item index out of range: this model knows {self.n_items} items")
        return users, items

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The network plus the training ratings (the trainer's per-epoch snapshots skip the ratings)."""
        tensors = super().state_tensors()  # type: ignore[misc]
        tensors.update(self._ratings_tensors())
        return tensors


# ---------------------------------------------------------------------------------------------
# AutoRec


@dataclass(frozen=True)
class AutoRecConfig(TrainingConfig):
    hidden: int = bounded(500, LAYER_WIDTH_RANGE)
    """Hidden units (the paper's k; 500 was its best)."""
    epochs: int = 200
    """Maximum passes over the items."""
    learning_rate: float = 3e-3
    """Adam step size (the paper used L-BFGS / Rprop on full batches)."""
    batch_size: int = 256
    """Items (rating vectors over users) per gradient step."""
    weight_decay: float = 100.0
    """The paper's λ: the objective adds λ/2 (‖W‖² + ‖V‖²) to the sum of squared errors over observed ratings."""
    patience: int = 10
    """Epochs without a better validation score (RMSE under the ratings protocol) before training stops (0: never)."""


class AutoRecNetwork(nn.Module):
    """h(r) = W·sigmoid(V r + μ) + b over an item's rating vector r (one entry per user)."""

    def __init__(self, n_inputs: int, hidden: int):
        super().__init__()
        self.encoder = nn.Linear(n_inputs, hidden)  # V, μ
        self.decoder = nn.Linear(hidden, n_inputs)  # W, b: row u of W is user u's decoder row

    def encode(self, ratings: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(ratings))

    def forward(self, ratings: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(ratings))

    def penalty(self) -> torch.Tensor:
        return self.encoder.weight.pow(2).sum() + self.decoder.weight.pow(2).sum()


class AutoRec(_RatingModel, TorchRecommender):
    """I-AutoRec: the rating of user u for item i is output u of the autoencoder fed item i's
    training ratings, ``W[u]·h_i + b[u]`` with the item code ``h_i = sigmoid(V r_i + μ)``.

    Scoring users computes every item's code once (items × hidden) and multiplies by the requested
    users' decoder rows. A known user's prediction for an item does not read that user's history row
    (the item's input is the other users' ratings of it); the user is the decoder row learned in
    training. Fold-in: a new user's decoder row w (and bias b̄ = mean of the users' biases) is fitted
    by ridge regression on the codes of the history's items, min Σ (r_i − b̄ − w·h_i)² + λ/2 ‖w‖²,
    in closed form (the same λ as training).
    """

    name = "autorec"
    title = "AutoRec"
    Config = AutoRecConfig
    description = "I-AutoRec: item-based autoencoder over rating vectors (explicit ratings)."
    config: AutoRecConfig
    search_space = {
        "hidden": Param("categorical", choices=(100, 300, 500)),
        "learning_rate": LEARNING_RATE_SPACE,
        "weight_decay": Param("float", 1e-2, 1e3, log=True),
    }

    @classmethod
    def model_memory(cls, n_users: int, n_items: int, n_interactions: int, config: AutoRecConfig | None) -> ModelMemory:
        """I-AutoRec encodes items as rows over the users: :func:`~recsys_core.limits.autoencoder_memory` of those rows."""
        return autoencoder_memory(n_users, n_items, config, rows_over_users=True)

    def _make_network(self) -> nn.Module:
        return AutoRecNetwork(self.n_users, self.config.hidden)

    def _build(self) -> None:
        super()._build()
        self._empty_ratings()
        self._codes: torch.Tensor | None = None

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        self._keep_ratings(train)
        self.train_items = torch.from_numpy(np.flatnonzero(self.item_has_ratings)).to(self.device)
        super()._prepare(context, train)

    def make_optimizer(self) -> torch.optim.Optimizer:
        # λ/2 ‖θ‖² is in the loss (on the weights only, as the paper writes it), not Adam's decay.
        return torch.optim.Adam(self.network.parameters(), lr=self.config.learning_rate)

    def _batch_loss(self, target: torch.Tensor, mask: torch.Tensor, share: float) -> torch.Tensor:
        """The batch's part of the paper's objective, Σ_items ‖(r − h(r)) ⊙ mask‖² + λ/2 ‖θ‖², whose
        epoch sum is the whole (``share``: the batch's fraction of the items)."""
        with self.autocast():
            output = self.network(target)
        return masked_squared_error(output.float(), target, mask) + self.config.weight_decay / 2 * self.network.penalty() * share

    def train_epoch(self, context: FitContext, epoch: int) -> dict[str, float]:
        self._codes = None
        total, n_items = 0.0, len(self.train_items)
        for batch in context.device_batches(n_items, self.config.batch_size):
            items = self.train_items[batch]
            target = self._device_by_item.dense_rows(items)
            mask = self._device_by_item.dense_rows(items, binary=True)
            total += self.train_step(self._batch_loss, target, mask, len(items) / n_items)
        self._codes = None
        return {"loss": total / max(1, self.ratings.nnz)}

    # ---- scoring
    def _set_ratings(self, ratings: sp.csr_matrix) -> None:
        super()._set_ratings(ratings)
        self.by_item = self.ratings.T.tocsr()  # items × users: the autoencoder's inputs
        self.by_item.sort_indices()
        self._device_by_item = DeviceCSR.from_scipy(self.by_item, self.device)
        self._codes = None

    def _item_codes(self) -> torch.Tensor:
        """Every item's hidden code from its training ratings (cached until the weights change)."""
        if self._codes is None:
            by_item = self._device_by_item
            step = max(1, int(2**24 // max(1, self.n_users)))
            codes = []
            with self.autocast():
                for start in range(0, self.n_items, step):
                    items = torch.arange(start, min(self.n_items, start + step), device=self.device)
                    codes.append(self.network.encode(by_item.dense_rows(items)).float())
            self._codes = torch.cat(codes) if codes else torch.zeros((0, self.config.hidden), device=self.device)
        return self._codes

    def _decoder_rows(self, users: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        index = index_tensor(users, self.device)
        return self.network.decoder.weight[index].float(), self.network.decoder.bias[index].float()

    def _score_known(self, users, rows):
        weight, bias = self._decoder_rows(users)
        return self._fallback(weight @ self._item_codes().T + bias[:, None], users)

    def _score_pairs(self, users, items, rows):
        weight, bias = self._decoder_rows(users)
        index = index_tensor(items, self.device)
        codes = self._item_codes()[index]  # users × candidates × hidden
        scores = torch.einsum("uch,uh->uc", codes, weight) + bias[:, None]
        mean = float(self.meta.get("global_mean", 0.0))
        scores = scores.masked_fill(self._unrated_items[index], mean)
        if not self.user_has_ratings[users].all():
            scores = scores.masked_fill(torch.as_tensor(~self.user_has_ratings[users], device=self.device)[:, None], mean)
        return scores

    def _score_new(self, rows):
        rows = self._history_ratings(rows)
        codes = self._item_codes()
        bias = float(self.network.decoder.bias.float().mean())
        out = []
        hidden = codes.shape[1]
        longest = int(np.diff(rows.indptr).max()) if rows.shape[0] else 0
        size = max(1, min(longest, hidden))
        step = max(1, int(2**24 // (size * size + size * hidden)))
        for start in range(0, rows.shape[0], step):
            chunk = rows[start : start + step]
            weight = self._ridge_rows(chunk, codes, bias)
            out.append(weight @ codes.T + bias)
        scores = torch.cat(out) if out else torch.zeros((0, self.n_items), device=self.device)
        return self._fallback(scores, None)

    def _ridge_rows(self, rows: sp.csr_matrix, codes: torch.Tensor, bias: float) -> torch.Tensor:
        """Closed-form ridge decoder rows, one per history row, solved as a batch of small systems
        (the dual L × L form when a history is shorter than the hidden layer)."""
        n, hidden = rows.shape[0], codes.shape[1]
        counts = np.diff(rows.indptr)
        longest = int(counts.max()) if n else 0
        if longest == 0:
            return torch.zeros((n, hidden), device=self.device)
        row_of = np.repeat(np.arange(n), counts)
        position = np.arange(rows.nnz) - rows.indptr[row_of]
        row_t = torch.as_tensor(row_of, device=self.device)
        pos_t = torch.as_tensor(position, device=self.device)
        padded = torch.zeros((n, longest, hidden), device=self.device)
        padded[row_t, pos_t] = codes[index_tensor(rows.indices, self.device)]
        target = torch.zeros((n, longest), device=self.device)
        target[row_t, pos_t] = torch.as_tensor(rows.data, device=self.device) - bias
        ridge = max(self.config.weight_decay / 2, 1e-6)
        if longest < hidden:
            gram = padded @ padded.transpose(1, 2) + ridge * torch.eye(longest, device=self.device)
            alpha = torch.linalg.solve(gram, target.unsqueeze(-1))
            return (padded.transpose(1, 2) @ alpha).squeeze(-1)
        gram = padded.transpose(1, 2) @ padded + ridge * torch.eye(hidden, device=self.device)
        return torch.linalg.solve(gram, (padded.transpose(1, 2) @ target.unsqueeze(-1))).squeeze(-1)

    @torch.no_grad()
    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings for (user, item) pairs, clipped to the observed scale."""
        users, items = self._check_pairs(users, items)
        self._eval_mode()
        codes = self._item_codes()
        out = np.empty(len(users), dtype=np.float32)
        for start in range(0, len(users), 65536):
            u, i = users[start : start + 65536], items[start : start + 65536]
            weight, bias = self._decoder_rows(u)
            values = (weight * codes[index_tensor(i, self.device)]).sum(-1) + bias
            out[start : start + len(u)] = values.cpu().numpy()
        return self._clip_ratings(out, users, items)

    # ---- embeddings and state
    @torch.no_grad()
    def item_embeddings(self):
        """Each item's hidden code (from its training ratings)."""
        self._eval_mode()
        return self._item_codes().cpu().numpy()

    def user_embeddings(self):
        """Each user's decoder row W[u]."""
        return self.network.decoder.weight.detach().float().cpu().numpy()

    def _load_state(self, tensors):
        super()._load_state(tensors)
        self._load_ratings(tensors)
        self._codes = None


# ---------------------------------------------------------------------------------------------
# DeepRec


@dataclass(frozen=True)
class DeepRecConfig(TrainingConfig):
    layers: tuple[int, ...] = bounded((256, 256, 512), LAYER_WIDTH_RANGE)
    """Encoder layer sizes; the last is the code. The decoder mirrors them back to the items (the paper: 512, 512, 1024)."""
    dropout: float = bounded(0.8, DROPOUT_RANGE)
    """Dropout on the code layer (the paper's 0.8)."""
    dense_refeeding: bool = True
    """After each step, feed the model's own dense output back as a new example (a second forward and backward pass)."""
    optimizer: str = "adam"
    """Optimiser: adam, or sgd (momentum 0.9, as in the paper)."""
    epochs: int = 100
    """Maximum passes over the users."""
    learning_rate: float = 3e-4
    """Step size of the optimiser (the paper: 1e-3 with SGD)."""
    batch_size: int = 64
    """Users (rating vectors over items) per gradient step."""
    weight_decay: float = 1e-3
    """L2 penalty added by the optimiser."""
    patience: int = 10
    """Epochs without a better validation score (RMSE under the ratings protocol) before training stops (0: never)."""


class DeepRecNetwork(nn.Module):
    """Encoder n_items → layers (SELU), dropout on the code, mirrored SELU decoder, linear output."""

    def __init__(self, n_items: int, layers: tuple[int, ...], dropout: float):
        super().__init__()
        sizes = [n_items, *layers]
        encoder: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            encoder += [nn.Linear(a, b), nn.SELU()]
        self.encoder = nn.Sequential(*encoder)
        self.dropout = nn.Dropout(dropout)
        back = sizes[::-1]
        decoder: list[nn.Module] = []
        for index, (a, b) in enumerate(zip(back[:-1], back[1:])):
            decoder.append(nn.Linear(a, b))
            if index < len(back) - 2:
                decoder.append(nn.SELU())
        self.decoder = nn.Sequential(*decoder)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def encode(self, ratings: torch.Tensor) -> torch.Tensor:
        return self.encoder(ratings)

    def forward(self, ratings: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.dropout(self.encode(ratings)))


class DeepRec(_RatingModel, TorchRecommender):
    """A user's rating vector in, every item's predicted rating out.

    Each batch takes two steps (the paper's dense re-feeding): the masked MSE of f(x) on the observed
    ratings of x, then f(x) itself (dense, detached) is fed back and f(f(x)) is fitted to it on every
    entry. Known users are scored from their training ratings over the evaluator's history pattern
    (see the module notes); new users from their history values as ratings.
    """

    name = "deeprec"
    title = "DeepRec"
    Config = DeepRecConfig
    description = "Deep autoencoder over a user's ratings with SELU, dropout and dense re-feeding (explicit ratings)."
    config: DeepRecConfig
    search_space = {"dropout": Param("float", 0.0, 0.9), "learning_rate": LEARNING_RATE_SPACE, "weight_decay": WEIGHT_DECAY_SPACE}

    @classmethod
    def model_memory(cls, n_users: int, n_items: int, n_interactions: int, config: DeepRecConfig | None) -> ModelMemory:
        """:func:`~recsys_core.limits.autoencoder_memory` of a user's row over the items."""
        return autoencoder_memory(n_users, n_items, config)

    def _make_network(self) -> nn.Module:
        if not self.config.layers:
            raise ModelError("deeprec needs at least one layer size")
        if not 0 <= self.config.dropout < 1:
            raise ModelError(f"dropout must lie in [0, 1), not {self.config.dropout}")
        return DeepRecNetwork(self.n_items, tuple(self.config.layers), self.config.dropout)

    def _build(self) -> None:
        super()._build()
        self._empty_ratings()

    def make_optimizer(self) -> torch.optim.Optimizer:
        params, cfg = self.network.parameters(), self.config
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=cfg.learning_rate, momentum=0.9, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        raise ModelError(f"unknown optimizer {cfg.optimizer!r}", "Use adam or sgd.")

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        self._keep_ratings(train)
        self.train_users = torch.from_numpy(np.flatnonzero(self.user_has_ratings)).to(self.device)
        super()._prepare(context, train)

    def _masked_loss(self, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked mean squared error over the observed ratings; the output is kept for re-feeding."""
        with self.autocast():
            output = self.network(target).float()
        self._last_output = output.detach()
        return masked_squared_error(output, target, mask) / mask.sum().clamp_min(1.0)

    def _refeed_loss(self, dense: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            again = self.network(dense).float()
        return ((again - dense) ** 2).mean()

    def train_epoch(self, context: FitContext, epoch: int) -> dict[str, float]:
        total, refed = 0.0, 0.0
        for batch in context.device_batches(len(self.train_users), self.config.batch_size):
            users = self.train_users[batch]
            target = self._device_ratings.dense_rows(users)
            mask = self._device_ratings.dense_rows(users, binary=True)
            total += self.train_step(self._masked_loss, target, mask) * len(users)
            if self.config.dense_refeeding:
                # Kuchaiev & Ginsburg's dense re-feeding: the output, treated as a fully rated
                # input, should map to itself (a second step, on the updated network).
                refed += self.train_step(self._refeed_loss, self._last_output) * len(users)
        n = max(1, len(self.train_users))
        stats = {"loss": total / n}
        if self.config.dense_refeeding:
            stats["refeed_loss"] = refed / n
        return stats

    def _forward(self, ratings: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.network(ratings).float()

    def _score_known(self, users, rows):
        return self._fallback(self._forward(self._known_input(users, rows)), users)

    def _score_new(self, rows):
        return self._fallback(self._forward(DeviceCSR.from_scipy(self._history_ratings(rows), self.device).dense()), None)

    @torch.no_grad()
    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings for (user, item) pairs from each user's training ratings, clipped to the scale."""
        users, items = self._check_pairs(users, items)
        self._eval_mode()
        unique, inverse = np.unique(users, return_inverse=True)
        out = np.empty(len(users), dtype=np.float32)
        step = self._batch_size_for_scoring()
        for start in range(0, len(unique), step):
            chunk = unique[start : start + step]
            dense = self._forward(self._device_ratings.dense_rows(index_tensor(chunk, self.device))).cpu().numpy()
            pick = np.flatnonzero((inverse >= start) & (inverse < start + len(chunk)))
            out[pick] = dense[inverse[pick] - start, items[pick]]
        return self._clip_ratings(out, users, items)

    def item_embeddings(self):
        """Each item's row of the output layer (the decoder's last weights)."""
        return self.network.decoder[-1].weight.detach().float().cpu().numpy()

    @torch.no_grad()
    def user_embeddings(self):
        """Each user's code (the encoder's output on their training ratings)."""
        self._eval_mode()
        step = self._batch_size_for_scoring()
        out = []
        for start in range(0, self.n_users, step):
            rows = self._device_ratings.dense_rows(torch.arange(start, min(self.n_users, start + step), device=self.device))
            with self.autocast():
                out.append(self.network.encode(rows).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.layers[-1]), dtype=np.float32)

    def _load_state(self, tensors):
        super()._load_state(tensors)
        self._load_ratings(tensors)
