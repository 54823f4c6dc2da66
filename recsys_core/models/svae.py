"""SVAE (Sachdeva et al., WSDM 2019): a sequential variational autoencoder for collaborative filtering.

A user's items, ordered by time, go through an item embedding and a GRU. At every step t the GRU
state h_t is encoded (tanh layer) into a Gaussian q(z_t | h_t), z_t is sampled with the
reparameterisation trick and decoded (tanh layer, then a linear layer) into logits over all items.
Training maximises, at every step, the multinomial log-likelihood of the user's next ``next_k``
items (the official notebook's ``next_k`` loss, k = 4) minus β·KL(q(z_t | h_t) ‖ N(0, I)), with β
annealed linearly up to a cap as in Mult-VAE. Scores for a user are the logits of the last step
(the mean of q, no sampling, at test time).

Item order matters. Every caller that has the order passes it as a
:class:`~recsys_core.sequences.Sequences` (the Evaluator: each user's history in time order; fold-in
and the Recommend page's own profile: the order the items were added), and the model scores the last
step of that sequence (``_score_sequences``). Without one, it falls back on what it knows:

* known users: the training sequence it stores (ordered by timestamp, ties in row order), restricted
  to the items of the history row passed in; items of the row that are not in the stored sequence
  are appended at the end (in the row's index order). Under leave-one-out that is the validation
  item at test time, which is indeed later in time than every training item.
* new users given only a CSR row: the order of the row's stored indices. ``history_row(item_ids)``
  keeps ``item_ids`` in the order given (a repeated item counts at its last position); a history
  matrix built elsewhere has its items in index order, so pass ``sequences`` with it.

Sequences longer than ``max_length`` are cut to their latest ``max_length`` items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..fit_context import FitContext
from ..interactions import Interactions
from ..limits import (
    ANNEAL_STEPS_RANGE,
    BETA_CAP_RANGE,
    DROPOUT_RANGE,
    EMBEDDING_SIZE_RANGE,
    LAYER_WIDTH_RANGE,
    ModelMemory,
    config_batch,
    embedding_memory,
)
from ..sequences import Sequences
from ..tuning import LEARNING_RATE_SPACE, Param
from .base import TorchRecommender, TrainingConfig, bounded
from .device_csr import DeviceCSR
from .vae import anneal_steps, gaussian_kl, kl_weight


@dataclass(frozen=True)
class SVAEConfig(TrainingConfig):
    embedding_size: int = bounded(256, EMBEDDING_SIZE_RANGE)
    """Size of the item embeddings fed to the GRU (the notebook's item_embed_size)."""
    rnn_size: int = bounded(200, LAYER_WIDTH_RANGE)
    """GRU state size."""
    hidden_size: int = bounded(150, LAYER_WIDTH_RANGE)
    """Size of the tanh layer before the latent (encoder) and after it (decoder)."""
    latent_size: int = bounded(64, LAYER_WIDTH_RANGE)
    """Size of each step's latent z_t."""
    next_k: int = bounded(4, (1, 100))
    """Each step predicts the user's next k items (the notebook's next_k loss)."""
    max_length: int = bounded(50, (1, 10_000))
    """Longest sequence read: a longer history is cut to its latest items (on MovieLens 100K's validation split 50 scored as 100 did, NDCG@10 0.4715 against 0.4733, in 30% less time; 200 was no better and cost 40% more)."""
    dropout: float = bounded(0.0, DROPOUT_RANGE)
    """Dropout on the item embeddings during training."""
    beta_cap: float = bounded(0.2, BETA_CAP_RANGE)
    """Largest weight β of the KL term."""
    total_anneal_steps: int | None = bounded(None, ANNEAL_STEPS_RANGE)
    """Gradient updates over which β would rise linearly from 0 to 1; it stops at ``beta_cap`` (0: β = ``beta_cap`` throughout). None: epochs × updates per epoch ÷ beta_cap (β reaches the cap at the last epoch)."""
    epochs: int = 40
    """Maximum passes over the training users."""
    batch_size: int = 128
    """Users (whole sequences) per gradient step (the notebook feeds one user at a time)."""
    learning_rate: float = 6e-3
    """Adam step size (chosen on MovieLens 100K's validation split; 1e-3 to 3e-3 were slower and no better)."""
    weight_decay: float = 0.0
    """L2 penalty added by the optimiser."""
    patience: int = 5
    """Epochs without a better validation NDCG@10 before training stops (0: never stop early)."""


class SVAENetwork(nn.Module):
    """Item embedding → GRU → per step: tanh encoder → (μ, log σ²) → z → tanh decoder → item logits.

    Index ``n_items`` is padding (a zero embedding)."""

    def __init__(self, n_items: int, embedding_size: int, rnn_size: int, hidden_size: int, latent_size: int, dropout: float):
        super().__init__()
        self.n_items = n_items
        self.latent_size = latent_size
        self.item_embedding = nn.Embedding(n_items + 1, embedding_size, padding_idx=n_items)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(embedding_size, rnn_size, batch_first=True)
        self.encoder = nn.Linear(rnn_size, hidden_size)
        self.latent = nn.Linear(hidden_size, 2 * latent_size)
        self.decoder_hidden = nn.Linear(latent_size, hidden_size)
        self.decoder_out = nn.Linear(hidden_size, n_items)
        for layer in (self.encoder, self.latent, self.decoder_hidden, self.decoder_out):
            nn.init.xavier_normal_(layer.weight)

    def states(self, sequences: torch.Tensor) -> torch.Tensor:
        """GRU outputs (batch × length × rnn_size) of right-padded item sequences."""
        out, _ = self.gru(self.dropout(self.item_embedding(sequences)))
        return out

    def posterior(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z_t | h_t)."""
        out = self.latent(torch.tanh(self.encoder(states)))
        return out[..., : self.latent_size], out[..., self.latent_size :]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder_out(torch.tanh(self.decoder_hidden(z)))

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits over items for GRU states, with the mean and log-variance of q; z is sampled in
        training mode and is the mean in eval mode."""
        mu, logvar = self.posterior(states)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar


def pad_sequences(items: np.ndarray, starts: np.ndarray, lengths: np.ndarray, max_length: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded (batch × L) matrix of the latest ``max_length`` items of each sequence.

    Sequence b is ``items[starts[b] : starts[b] + lengths[b]]``. Returns the matrix (``pad`` after
    each sequence's end) and the kept lengths; L is the longest kept length (at least 1)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    kept = np.minimum(lengths, max_length)
    first = np.asarray(starts, dtype=np.int64) + lengths - kept
    width = max(1, int(kept.max())) if len(kept) else 1
    position = np.arange(width)
    index = first[:, None] + position[None, :]
    inside = position[None, :] < kept[:, None]
    if len(items) == 0:
        return np.full(index.shape, pad, dtype=np.int64), kept
    padded = np.where(inside, items[np.minimum(index, len(items) - 1)], pad)
    return padded.astype(np.int64), kept


def next_k_targets(sequences: torch.Tensor, k: int, pad: int) -> torch.Tensor:
    """(batch × L × k): for each step t the items at t+1 … t+k (``pad`` past the sequence's end)."""
    width = sequences.shape[1]
    extended = F.pad(sequences, (0, k), value=pad)
    return torch.stack([extended[:, j : j + width] for j in range(1, k + 1)], dim=-1)


def next_items_nll(logits: torch.Tensor, targets: torch.Tensor, pad: int) -> torch.Tensor:
    """Per step: ``-(1/|T|) Σ_{i ∈ T} log softmax(logits)_i`` over the step's valid targets T
    (the multinomial likelihood of the next items, normalised by their number as in the notebook)."""
    valid = targets != pad
    log_p = F.log_softmax(logits.float(), dim=-1).gather(1, targets.clamp(max=logits.shape[1] - 1))
    return -(log_p * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1)


class SVAE(TorchRecommender):
    """GRU over the time-ordered history with a VAE latent per step, trained to predict the next items."""

    name = "svae"
    title = "SVAE"
    Config = SVAEConfig
    uses_timestamps = True
    description = "Sequential VAE: a GRU over time-ordered items, a latent per step, predicts the next items (Sachdeva et al. 2019)."
    search_space = {
        "latent_size": Param("categorical", choices=(32, 64, 128), doc="latent dimensions"),
        "dropout": Param("float", 0.0, 0.5, doc="dropout on the GRU input"),
        "learning_rate": LEARNING_RATE_SPACE,
    }

    @classmethod
    def model_memory(cls, n_users: int, n_items: int, n_interactions: int, config: SVAEConfig | None) -> ModelMemory:
        """:func:`~recsys_core.limits.embedding_memory` and its softmax over every item at each position of
        each sequence of a batch (× 6): batches group similar lengths, so one batch can be ``max_length``
        long throughout."""
        batch = config_batch(config)
        length = int(getattr(config, "max_length", 100) or 100)
        return ModelMemory(
            embedding_memory(n_users, n_items, config).bytes + 6 * 4 * batch * length * n_items,
            f"SVAE's softmax over {n_items:,} items at each of {length} positions of {batch} sequences per batch",
            "lower max_length or batch_size, or keep fewer items (k-core)",
        )

    # ------------------------------------------------------------------ building and data
    def _build(self) -> None:
        super()._build()
        # Training sequences: user u's items in time order are items[indptr[u] : indptr[u + 1]].
        self.sequence_items = np.zeros(0, dtype=np.int64)
        self.sequence_indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        self._device_sequences: DeviceCSR | None = None

    def _make_network(self) -> nn.Module:
        c = self.config
        return SVAENetwork(self.n_items, c.embedding_size, c.rnn_size, c.hidden_size, c.latent_size, c.dropout)

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        super()._prepare(context, train)
        self.sequence_items, self.sequence_indptr = self.time_ordered(train)
        self._device_sequences = None  # gathered on the device from these, copied there on first use
        lengths = np.diff(self.sequence_indptr)
        self._train_users = np.flatnonzero(lengths >= 2)  # a step needs a next item to predict
        self.update_count = 0
        per_epoch = -(-len(self._train_users) // self.config.batch_size)
        c = self.config
        self.meta["total_anneal_steps"] = anneal_steps(c.total_anneal_steps, c.epochs, per_epoch, c.beta_cap)

    @staticmethod
    def time_ordered(train: Interactions) -> tuple[np.ndarray, np.ndarray]:
        """Each user's distinct items ordered by timestamp (ties: data row order), as CSR-style
        ``(items, indptr)``; a repeated (user, item) counts at its latest time."""
        sequences = Sequences.from_interactions(train)
        return sequences.items, sequences.indptr

    # ------------------------------------------------------------------ training
    def derived_settings(self) -> dict:
        return {"total_anneal_steps": int(self.meta["total_anneal_steps"])} if "total_anneal_steps" in self.meta else {}

    def beta(self) -> float:
        return kl_weight(self.update_count, self.meta["total_anneal_steps"], self.config.beta_cap)

    def _stored_sequences(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The users' training sequences, right-padded (latest ``max_length`` items), and their
        lengths, gathered on the device from the stored sequences (copied there once)."""
        if self._device_sequences is None:
            self._device_sequences = DeviceCSR.from_arrays(self.sequence_indptr, self.sequence_items, self.n_items, self.device)
        return self._device_sequences.padded_rows(users, self.config.max_length, self.n_items)

    def loss(self, sequences: torch.Tensor, lengths: torch.Tensor, beta: float) -> torch.Tensor:
        """Mean over the steps that have a next item of: next-k multinomial NLL + β·KL."""
        pad = self.n_items
        targets = next_k_targets(sequences, self.config.next_k, pad)
        has_next = torch.arange(sequences.shape[1], device=self.device)[None, :] < torch.as_tensor(lengths - 1, device=self.device)[:, None]
        with self.autocast():
            states = self.network.states(sequences)[has_next]
            logits, mu, logvar = self.network(states)
        nll = next_items_nll(logits, targets[has_next], pad)
        return (nll + beta * gaussian_kl(mu.float(), logvar.float())).mean()

    def train_epoch(self, context: FitContext, epoch: int) -> dict[str, float]:
        """One pass over the training users in batches of similar length (little padding for the
        GRU): users are sorted by their length times a random factor in [0.9, 1.1], cut into
        batches, and the batches visited in random order."""
        size = self.config.batch_size
        lengths = np.minimum(np.diff(self.sequence_indptr)[self._train_users], self.config.max_length)
        order = np.argsort(lengths * context.rng.uniform(0.9, 1.1, len(lengths)), kind="stable")
        users = torch.from_numpy(self._train_users[order]).to(self.device)  # moved once per epoch; batches are slices
        total, count, beta = 0.0, 0, 0.0
        for (b,) in context.batches(-(-len(order) // size), 1):
            batch = users[b * size : (b + 1) * size]
            if not len(batch):
                continue
            sequences, kept = self._stored_sequences(batch)
            beta = self.beta()
            total += self.train_step(self.loss, sequences, kept, beta) * len(batch)
            self.update_count += 1
            count += len(batch)
        return {"loss": total / max(1, count), "beta": beta}

    # ------------------------------------------------------------------ scoring
    def _batch_size_for_scoring(self) -> int:
        return min(512, super()._batch_size_for_scoring())

    def _last_step(self, sequences: np.ndarray | torch.Tensor, lengths: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and posterior mean of each sequence's last step (eval mode: z is the mean)."""
        padded = torch.as_tensor(sequences, device=self.device)
        last = torch.as_tensor(lengths, device=self.device).clamp_min(1) - 1
        with self.autocast():
            states = self.network.states(padded)[torch.arange(len(lengths), device=self.device), last]
            logits, mu, _ = self.network(states)
        return logits.float(), mu.float()

    def _known_sequences(self, users: np.ndarray, rows: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Each user's stored training order restricted to the items of ``rows``, then the row's
        other items appended (later in time under leave-one-out: the validation item at test time)."""
        n_items = np.int64(self.n_items)
        starts = self.sequence_indptr[users]
        lengths = self.sequence_indptr[users + 1] - starts
        owner = np.repeat(np.arange(len(users)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        stored = self.sequence_items[np.repeat(starts, lengths) + offsets]
        row_owner = np.repeat(np.arange(len(users)), np.diff(rows.indptr))
        stored_keys = owner * n_items + stored
        row_keys = row_owner * n_items + rows.indices
        keep = np.isin(stored_keys, row_keys)
        extra = ~np.isin(row_keys, stored_keys)
        all_owner = np.concatenate([owner[keep], row_owner[extra]])
        all_items = np.concatenate([stored[keep], rows.indices[extra].astype(np.int64)])
        order = np.argsort(all_owner, kind="stable")  # stored order first, appended items after
        counts = np.bincount(all_owner, minlength=len(users))
        return pad_sequences(all_items[order], np.cumsum(counts) - counts, counts, self.config.max_length, self.n_items)

    def _score_known(self, users, rows):
        return self._last_step(*self._known_sequences(users, rows))[0]

    def _score_sequences(self, sequences):
        starts = sequences.indptr[:-1]
        return self._last_step(*pad_sequences(sequences.items, starts, sequences.lengths, self.config.max_length, self.n_items))[0]

    def _score_new(self, rows):
        rows = sp.csr_matrix(rows)
        lengths = np.diff(rows.indptr)
        sequences = pad_sequences(rows.indices.astype(np.int64), rows.indptr[:-1], lengths, self.config.max_length, self.n_items)
        return self._last_step(*sequences)[0]

    def history_row(self, item_ids: np.ndarray, weights: np.ndarray | None = None) -> sp.csr_matrix:
        """A one-row history that keeps ``item_ids`` in the order given (a repeated item at its last
        position): fold-in reads the row's stored index order as the time order."""
        canonical = super().history_row(item_ids, weights)  # checks the range, sums repeated weights
        item_ids = np.atleast_1d(np.asarray(item_ids, dtype=np.int64))
        unique, first_reversed = np.unique(item_ids[::-1], return_index=True)
        order = np.argsort(len(item_ids) - 1 - first_reversed, kind="stable")
        data = canonical[0, unique].toarray().ravel() if len(unique) else np.zeros(0, dtype=np.float32)
        return sp.csr_matrix((data[order], unique[order], np.array([0, len(unique)])), shape=(1, self.n_items))

    # ------------------------------------------------------------------ embeddings and state
    @torch.no_grad()
    def user_embeddings(self) -> np.ndarray:
        """Mean of q(z | h) at the last step of each training user's sequence."""
        self._eval_mode()
        out = []
        step = self._batch_size_for_scoring()
        for start in range(0, self.n_users, step):
            users = torch.arange(start, min(self.n_users, start + step), device=self.device)
            out.append(self._last_step(*self._stored_sequences(users))[1].cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.latent_size), dtype=np.float32)

    def item_embeddings(self) -> np.ndarray:
        """The GRU's input embedding of each item (the padding row left out)."""
        return self.network.item_embedding.weight[: self.n_items].detach().float().cpu().numpy()

    def _state(self) -> dict[str, torch.Tensor]:
        state = super()._state()
        state["sequence.items"] = torch.as_tensor(self.sequence_items)
        state["sequence.indptr"] = torch.as_tensor(self.sequence_indptr)
        return state

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        super()._load_state(tensors)
        self.sequence_items = tensors["sequence.items"].cpu().numpy().astype(np.int64)
        self.sequence_indptr = tensors["sequence.indptr"].cpu().numpy().astype(np.int64)
        self._device_sequences = None
