"""Embedding models and BPR matrix factorisation (Rendle et al., UAI 2009).

:class:`EmbeddingRecommender` is the machinery every user-embedding × item-embedding model here
shares (BPR below, GMF / MLP / NeuMF in :mod:`.ncf`): training positives as index arrays, one
optimiser loop over a shuffled epoch, candidate and full-item scoring, embeddings for the app,
and fold-in. Its network splits a score into a user side and an item side::

    score(u, i) = combine(user_vectors(u), item_features(i))

so the item side can be computed once and frozen. Fold-in for a user never seen in training
fits a fresh user vector against that frozen item side for a few Adam steps, with the model's own
loss (history items as positives, sampled negatives), for a whole batch of new users at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..fit_context import FitContext
from ..interactions import Interactions
from ..limits import EMBEDDING_SIZE_RANGE, N_NEGATIVES_RANGE, ModelMemory, embedding_memory
from ..sampling import positive_keys, sample_train_negatives
from ..tuning import LEARNING_RATE_SPACE, N_NEGATIVES_SPACE, WEIGHT_DECAY_SPACE, Param
from .base import TorchRecommender, TrainingConfig, bounded
from .optimizers import Optimizers, embedding_optimizer, prefers_sparse_gradients, use_sparse_gradients

# Elements of the largest (users × items × width) activation built at once while scoring.
_SCORING_BUDGET = 2**23


def normal_init(embedding: nn.Embedding, std: float = 0.01) -> None:
    """N(0, std²) initialisation of an embedding table (He et al. 2017 use std 0.01)."""
    nn.init.normal_(embedding.weight, mean=0.0, std=std)


class EmbeddingNetwork(nn.Module):
    """A network whose scores are ``combine(user_vectors(users), item_features(items))``.

    ``combine(u, f)`` takes user vectors ``u`` of shape (B, D) and item features that are either
    shared by every row, (C, F), or one set per row, (B, C, F); it returns (B, C) logits.
    ``pair_width`` is the widest activation made per (user, item) pair (at least the item features),
    so that callers can bound memory when scoring many pairs at once.
    """

    pair_width: int = 1

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def item_features(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Item side of the score for ``items`` (any shape), or for every item when None."""
        raise NotImplementedError

    def combine(self, u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits of shape (B, C) for ``users`` (B,) and candidate ``items`` (B, C)."""
        return self.combine(self.user_vectors(users), self.item_features(items))

    def user_table(self) -> torch.Tensor:
        raise NotImplementedError

    def item_table(self) -> torch.Tensor:
        raise NotImplementedError


class EmbeddingRecommender(TorchRecommender):
    """Shared wrapper of the embedding models; subclasses give the network, the epoch and ``pair_loss``."""

    network: EmbeddingNetwork
    wide_steps = False  # lookups and element-wise products: a second thread saved nothing (recsys_core.device)
    # Fold-in settings, chosen on ml-100k validation by folding in the training users themselves:
    # 30 steps at 0.03 score as well as the trained vectors do (more steps overfit the history).
    fold_in_steps: ClassVar[int] = 30
    """Adam steps when fitting the vector of a user never seen in training."""
    fold_in_learning_rate: ClassVar[float] = 0.03
    fold_in_l2: ClassVar[float] = 0.0
    """L2 penalty on a folded-in user vector (per row, added to its mean loss)."""
    labelled_example_bytes: ClassVar[int] = 0
    """Bytes of an epoch's training arrays per labelled example (user, item, label) of a pointwise model;
    0 for BPR, which trains on (positive, negatives) pairs."""

    @classmethod
    def model_memory(cls, n_users: int, n_items: int, n_interactions: int, config: TrainingConfig | None) -> ModelMemory:
        """:func:`~recsys_core.limits.embedding_memory` and an epoch's training arrays: the positives'
        indices, ``n_negatives`` int64 negatives per positive with the sampler's temporaries (~40 bytes
        each) and, for the pointwise NCF models, every example's user, item and label. BPR at synthetic
        ML-20M shape: 2.9 GiB measured."""
        memory = embedding_memory(n_users, n_items, config)
        k = int(getattr(config, "n_negatives", 4) or 0)
        arrays = n_interactions * (16 + 40 * k + cls.labelled_example_bytes * (1 + k))
        return dataclasses.replace(memory, bytes=memory.bytes + arrays)

    # ------------------------------------------------------------------ training
    def _build(self) -> None:
        super()._build()
        from ..distributed import sparse_gradients_supported

        # Large tables: only the rows a batch touches get a gradient and an update; small tables
        # take dense gradients, which are cheaper there (see .optimizers).
        use_sparse_gradients(self.network, sparse_gradients_supported() and prefers_sparse_gradients(self.n_users, self.n_items))

    def make_optimizer(self) -> Optimizers:
        # Lazy Adam on the embedding rows a batch uses; the L2 on those rows is in each model's loss.
        return embedding_optimizer(self.network, "adam", self.config.learning_rate, self.config.weight_decay)

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        super()._prepare(context, train)
        coo = self.known.tocoo()
        self._pos_users = coo.row.astype(np.int64)
        self._pos_items = coo.col.astype(np.int64)
        self._keys = positive_keys(self.known)

    def _sample_negatives(self, rng: np.random.Generator) -> np.ndarray:
        """``n_negatives`` fresh uniform negatives for every training positive, shape (n_positives, k)."""
        return sample_train_negatives(self.known, self._pos_users, self.config.n_negatives, rng, keys=self._keys)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def _run_epoch(self, context: FitContext, n: int, batch_loss: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        """One shuffled pass over ``n`` examples; ``batch_loss(index)`` returns the mean loss of a batch."""
        total, seen = 0.0, 0
        for index in context.device_batches(n, self.config.batch_size):  # the epoch's permutation moved once
            total += self.train_step(self._autocast_loss, batch_loss, index) * len(index)
            seen += len(index)
        return {"loss": total / max(1, seen)}

    def _autocast_loss(self, batch_loss: Callable[[torch.Tensor], torch.Tensor], index: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return batch_loss(index).float()

    def pair_loss(self, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        """Loss of each positive logit (N, 1) against its negatives' logits (N, k), shape (N,)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ scoring
    def _chunk_rows(self, n_columns: int) -> int:
        return max(1, _SCORING_BUDGET // max(1, n_columns * self.network.pair_width))

    def _score_vectors(self, u: torch.Tensor) -> torch.Tensor:
        """Scores of user vectors ``u`` (B, D) over every item, in chunks of rows that fit the budget."""
        features = self.network.item_features(None)
        step = self._chunk_rows(self.n_items)
        with self.autocast():
            return torch.cat([self.network.combine(u[s : s + step], features).float() for s in range(0, len(u), step)])

    def _score_known(self, users, rows):
        return self._score_vectors(self.network.user_vectors(self._tensor(users)))

    def _score_pairs(self, users, items, rows):
        users_t, items_t = self._tensor(users), self._tensor(np.ascontiguousarray(items))
        step = self._chunk_rows(items.shape[1])
        with self.autocast():
            return torch.cat([self.network(users_t[s : s + step], items_t[s : s + step]).float() for s in range(0, len(users), step)])

    def user_embeddings(self):
        return self.network.user_table().detach().float().cpu().numpy()

    def item_embeddings(self):
        return self.network.item_table().detach().float().cpu().numpy()

    # ------------------------------------------------------------------ fold-in
    def _score_new(self, rows: sp.csr_matrix) -> torch.Tensor:
        return self._score_vectors(self.fold_in_vectors(rows))

    def _mean_user_vector(self) -> torch.Tensor:
        """Mean vector of the users seen in training: where every new user starts (and stays if empty)."""
        active = np.flatnonzero(np.diff(self.known.indptr) > 0)
        if len(active) == 0:
            active = np.arange(self.n_users)
        return self.network.user_vectors(self._tensor(active)).float().mean(dim=0)

    def fold_in_vectors(self, rows: sp.csr_matrix) -> torch.Tensor:
        """User vectors for new users with history ``rows`` (B × n_items), fitted against the frozen item side.

        All rows are fitted together: positives are the (row, item) entries, each paired with
        ``n_negatives`` items the row has not seen, fresh every step from a fixed seed (so the same
        history always folds in to the same vector). Each row's loss is its mean over its
        positives, so light and heavy users move at the same pace.
        """
        rows = sp.csr_matrix(rows, dtype=np.float32)
        rows.eliminate_zeros()
        rows.sort_indices()
        counts = np.diff(rows.indptr)
        k = self.config.n_negatives
        with torch.no_grad():
            start = self._mean_user_vector()
        out = start.expand(rows.shape[0], -1).clone()
        # Rows in chunks whose (positives × (1 + k) × width) activations fit the memory budget.
        per_pair = (1 + k) * max(self.network.pair_width, out.shape[1])
        limit = max(1, _SCORING_BUDGET // per_pair)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]]) // limit  # budget chunk of each row's first positive
        cuts = np.concatenate([[0], np.flatnonzero(np.diff(first)) + 1, [rows.shape[0]]])
        rng = np.random.default_rng(0)
        with torch.no_grad():
            features = self.network.item_features(None).float()
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            chunk = rows[lo:hi]
            if chunk.nnz == 0:
                continue
            with torch.enable_grad():
                out[lo:hi] = self._fit_user_vectors(chunk, start, features, rng)
        return out

    def _fit_user_vectors(self, rows: sp.csr_matrix, start: torch.Tensor, features: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        counts = np.diff(rows.indptr)
        row_of = np.repeat(np.arange(rows.shape[0]), counts)
        keys = positive_keys(rows)
        row_t = self._tensor(row_of)
        weight = self._tensor(1.0 / counts[row_of]).float()
        positive = features[self._tensor(rows.indices.astype(np.int64))].unsqueeze(1)
        u = start.expand(rows.shape[0], -1).clone().requires_grad_(True)
        optimizer = torch.optim.Adam([u], lr=self.fold_in_learning_rate)
        for _ in range(self.fold_in_steps):
            negatives = sample_train_negatives(rows, row_of, self.config.n_negatives, rng, keys=keys)
            per_pair = u[row_t]
            pos = self.network.combine(per_pair, positive)
            neg = self.network.combine(per_pair, features[self._tensor(negatives)])
            loss = (self.pair_loss(pos, neg) * weight).sum()
            if self.fold_in_l2:
                loss = loss + self.fold_in_l2 * u.pow(2).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=[u])
            optimizer.step()
        return u.detach()


# ---------------------------------------------------------------------------- BPR


@dataclass(frozen=True)
class BPRConfig(TrainingConfig):
    embedding_size: int = bounded(64, EMBEDDING_SIZE_RANGE)
    """Length of each user and item vector (the number of latent factors)."""
    use_bias: bool = True
    """Learn an item bias added to the dot product (a user bias would cancel in the BPR difference)."""
    n_negatives: int = bounded(4, N_NEGATIVES_RANGE)
    """Unseen items sampled per training positive, afresh every epoch; each forms one BPR triple."""
    epochs: int = 20
    """Maximum passes over the training positives."""
    learning_rate: float = 1e-2
    """Adam step size (with the batch, chosen on MovieLens 100K's validation split: 1e-2 at 1,024 matched 5e-3 at 256)."""
    batch_size: int = 1024
    """Training positives (each with its negatives) per Adam step; on the CPU a step of 1,024 costs about 3× one of 256, for 4× the work."""
    weight_decay: float = 3e-3
    """L2 penalty λ on the user and item vectors (and item biases) used in each triple, as in Rendle et al.; Adam itself does not decay."""
    patience: int = 3
    """Epochs without a better validation NDCG@10 before training stops (0: never stop early)."""


class BPRNetwork(EmbeddingNetwork):
    """x_ui = p_u · q_i + b_i."""

    def __init__(self, n_users: int, n_items: int, embedding_size: int, use_bias: bool):
        super().__init__()
        self.user = nn.Embedding(n_users, embedding_size)
        self.item = nn.Embedding(n_items, embedding_size)
        self.bias = nn.Embedding(n_items, 1) if use_bias else None
        normal_init(self.user)
        normal_init(self.item)
        if self.bias is not None:
            nn.init.zeros_(self.bias.weight)
        self.pair_width = embedding_size + int(use_bias)

    def user_vectors(self, users):
        return self.user(users)

    def item_features(self, items=None):
        q = self.item.weight if items is None else self.item(items)
        if self.bias is None:
            return q
        b = self.bias.weight if items is None else self.bias(items)
        return torch.cat([q, b], dim=-1)

    def combine(self, u, f):
        d = u.shape[-1]
        q = f[..., :d]
        if f.dim() == 2:
            scores = u @ q.T
        else:
            scores = torch.einsum("bd,bcd->bc", u, q)
        if self.bias is not None:
            scores = scores + f[..., d]
        return scores

    def user_table(self):
        return self.user.weight

    def item_table(self):
        return self.item.weight

    def triples(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x_ui (B,), x_uj (B, k) and each triple's squared parameters (B,) for training, from one
        lookup of every row: ‖p_u‖² + ‖q_i‖² + b_i² + the mean over j of ‖q_j‖² + b_j².

        Written as element-wise products and sums, not through ``combine``: with one positive and a
        few negatives per row a batched matrix product is several times slower on the CPU."""
        u, q_i, q_j = self.user(users).float(), self.item(positives).float(), self.item(negatives).float()
        x_ui = (u * q_i).sum(-1)
        x_uj = (u.unsqueeze(1) * q_j).sum(-1)
        squares = u.pow(2).sum(-1) + q_i.pow(2).sum(-1) + q_j.pow(2).sum(-1).mean(-1)
        if self.bias is not None:
            b_i, b_j = self.bias(positives).squeeze(-1).float(), self.bias(negatives).squeeze(-1).float()
            x_ui, x_uj = x_ui + b_i, x_uj + b_j
            squares = squares + b_i.pow(2) + b_j.pow(2).mean(-1)
        return x_ui, x_uj, squares


class BPR(EmbeddingRecommender):
    """Matrix factorisation trained with Bayesian personalised ranking: for each positive (u, i) and
    sampled unseen item j, maximise log σ(x_ui − x_uj) − λ(‖p_u‖² + ‖q_i‖² + ‖q_j‖² + b_i² + b_j²)."""

    name = "bpr"
    title = "BPR"
    Config = BPRConfig
    description = "Matrix factorisation with the pairwise BPR loss (Rendle et al. 2009)."
    search_space = {
        "embedding_size": Param("categorical", choices=(16, 32, 64, 128), doc="factors per user and item"),
        "learning_rate": LEARNING_RATE_SPACE,
        "weight_decay": WEIGHT_DECAY_SPACE,
        "n_negatives": N_NEGATIVES_SPACE,
    }

    @property
    def fold_in_l2(self) -> float:  # type: ignore[override]
        return self.config.weight_decay

    def _make_network(self) -> BPRNetwork:
        return BPRNetwork(self.n_users, self.n_items, self.config.embedding_size, self.config.use_bias)

    def pair_loss(self, positive, negative):
        return F.softplus(negative - positive).mean(dim=-1)  # −log σ(x_ui − x_uj), averaged over the k negatives

    def train_epoch(self, context, epoch):
        negatives = self._tensor(self._sample_negatives(context.rng))
        users, items = self._tensor(self._pos_users), self._tensor(self._pos_items)
        net, lam = self.network, self.config.weight_decay

        def batch_loss(index):
            x_ui, x_uj, squares = net.triples(users[index], items[index], negatives[index])
            # −log σ(x_ui − x_uj), one mean over every triple: pair_loss's value in exact arithmetic, but
            # pair_loss(...).mean() (a mean of per-positive means) sums in another order and changes seeded fits.
            loss = F.softplus(x_uj - x_ui.unsqueeze(1)).mean()
            if lam:
                loss = loss + lam * squares.mean()
            return loss

        return self._run_epoch(context, len(self._pos_users), batch_loss)
