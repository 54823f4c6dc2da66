"""CDAE (Wu et al., WSDM 2016): a one-hidden-layer denoising autoencoder over a user's implicit row
plus a per-user input node, trained with the log loss (over the whole row, or over sampled zeros).
Ranks items. Inputs are binary: any stored value counts as 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..errors import ModelError
from ..fit_context import FitContext
from ..interactions import Interactions
from ..limits import DROPOUT_RANGE, LAYER_WIDTH_RANGE, N_NEGATIVES_RANGE, ModelMemory, autoencoder_memory, config_width
from ..sampling import positive_keys, sample_train_negatives
from ..tuning import LEARNING_RATE_SPACE, WEIGHT_DECAY_SPACE, Param
from .base import TorchRecommender, TrainingConfig, bounded, index_tensor
from .device_csr import DeviceCSR


@dataclass(frozen=True)
class CDAEConfig(TrainingConfig):
    hidden: int = bounded(200, LAYER_WIDTH_RANGE)
    """Hidden units (the paper tried 50–200)."""
    corruption: float = bounded(0.5, DROPOUT_RANGE)
    """Dropout probability on the input row; kept entries are scaled by 1/(1 − p) (the paper's q)."""
    activation: str = "sigmoid"
    """Hidden activation: "sigmoid", "tanh", "relu" or "identity". The output is a sigmoid with the log loss."""
    n_negatives: int = bounded(0, N_NEGATIVES_RANGE)
    """0: the log loss over the whole row (every zero a negative). k > 0: k sampled zeros per positive (the paper's sampling)."""
    epochs: int = 100
    """Maximum passes over the users."""
    learning_rate: float = 3e-3
    """Adam step size."""
    batch_size: int = 64
    """Users per gradient step."""
    weight_decay: float = 1e-5
    """L2 penalty added by the optimiser (Adam) to every weight, the user nodes included."""
    patience: int = 10
    """Epochs without a better validation NDCG@10 before training stops (0: never stop early)."""


_ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda x: x}


class CDAENetwork(nn.Module):
    """z = h(W ỹ + V_u + b), logits = W′ z + b′, with ỹ the row after dropout corruption."""

    def __init__(self, n_users: int, n_items: int, hidden: int, corruption: float, activation: str):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ModelError(f"unknown activation {activation!r}", "Use " + ", ".join(_ACTIVATIONS) + ".")
        self.corrupt = nn.Dropout(corruption)
        self.encoder = nn.Linear(n_items, hidden)
        self.user_node = nn.Embedding(n_users, hidden)
        self.decoder = nn.Linear(hidden, n_items)
        self.activation = _ACTIVATIONS[activation]
        nn.init.xavier_uniform_(self.encoder.weight)
        nn.init.xavier_uniform_(self.decoder.weight)
        nn.init.zeros_(self.encoder.bias)
        nn.init.zeros_(self.decoder.bias)
        nn.init.normal_(self.user_node.weight, std=0.01)

    def encode(self, rows: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        pre = self.encoder(self.corrupt(rows))
        if users is not None:
            pre = pre + self.user_node(users)
        return self.activation(pre)

    def forward(self, rows: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        """Logits over every item; ``users`` None means the user node is unknown (zero)."""
        return self.decoder(self.encode(rows, users))


class CDAE(TorchRecommender):
    """Collaborative denoising autoencoder. Scores are the output logits (monotone in the predicted
    probability, without the sigmoid's float32 ties). Known users are scored from the history rows the
    evaluator passes plus their user node; a new user's node is unknown and taken as zero (the
    average of a zero-mean prior), so fold-in reads the history alone. Inputs are binary: any stored
    value counts as 1.
    """

    name = "cdae"
    title = "CDAE"
    Config = CDAEConfig
    description = "Collaborative denoising autoencoder: a user's row plus a user node, log loss (implicit)."
    config: CDAEConfig
    search_space = {
        "hidden": Param("categorical", choices=(50, 100, 200, 400), doc="hidden units"),
        "corruption": Param("float", 0.0, 0.8, doc="share of input items dropped"),
        "learning_rate": LEARNING_RATE_SPACE,
        "weight_decay": WEIGHT_DECAY_SPACE,
    }

    @classmethod
    def model_memory(cls, n_users: int, n_items: int, n_interactions: int, config: CDAEConfig | None) -> ModelMemory:
        """:func:`~recsys_core.limits.autoencoder_memory` of a user's row over the items, and its per-user input
        node: a users × hidden table with Adam's moments."""
        memory = autoencoder_memory(n_users, n_items, config)
        return dataclasses.replace(memory, bytes=memory.bytes + 4 * 4 * n_users * config_width(config))

    def _make_network(self) -> nn.Module:
        cfg = self.config
        if not 0 <= cfg.corruption < 1:
            raise ModelError(f"corruption must lie in [0, 1), not {cfg.corruption}")
        return CDAENetwork(self.n_users, self.n_items, cfg.hidden, cfg.corruption, cfg.activation)

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        super()._prepare(context, train)
        self.train_users = torch.from_numpy(np.flatnonzero(np.diff(self.known.indptr) > 0)).to(self.device)
        self._device_known = DeviceCSR.from_scipy(self.known, self.device)  # built once: every batch is gathered on the device
        self._keys = positive_keys(self.known) if self.config.n_negatives > 0 else None

    def _rows(self, rows: sp.csr_matrix) -> torch.Tensor:
        return DeviceCSR.from_scipy(rows, self.device).dense(binary=True)

    def _batch_loss(self, user_index: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        x = self._device_known.dense_rows(user_index, binary=True)
        with self.autocast():
            if self.config.n_negatives == 0:
                logits = self.network(x, user_index).float()
                return nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(user_index)
            # the negatives are drawn on the host from the fit's generator (the same draws as ever)
            users = user_index.cpu().numpy()
            hidden = self.network.encode(x, user_index)
            return self._sampled_loss(hidden, users, self.known[users], rng)

    def train_epoch(self, context: FitContext, epoch: int) -> dict[str, float]:
        total = 0.0
        for batch in context.device_batches(len(self.train_users), self.config.batch_size):
            user_index = self.train_users[batch]
            total += self.train_step(self._batch_loss, user_index, context.rng) * len(user_index)
        return {"loss": total / max(1, len(self.train_users))}

    def _sampled_loss(self, hidden: torch.Tensor, users: np.ndarray, rows: sp.csr_matrix, rng: np.random.Generator) -> torch.Tensor:
        """Log loss on every positive of the batch and ``n_negatives`` sampled zeros per positive."""
        k = self.config.n_negatives
        counts = np.diff(rows.indptr)
        row_of = np.repeat(np.arange(len(users)), counts)
        negatives = sample_train_negatives(self.known, users[row_of], k, rng, keys=self._keys).ravel()
        which = np.concatenate([row_of, np.repeat(row_of, k)])
        items = np.concatenate([rows.indices.astype(np.int64), negatives])
        labels = torch.cat([torch.ones(len(row_of)), torch.zeros(len(negatives))]).to(self.device)
        which_t, items_t = torch.as_tensor(which, device=self.device), torch.as_tensor(items, device=self.device)
        decoder = self.network.decoder
        logits = (hidden[which_t] * decoder.weight[items_t]).sum(-1) + decoder.bias[items_t]
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), labels, reduction="sum") / len(users)

    def _score_known(self, users, rows):
        with self.autocast():
            return self.network(self._rows(rows), index_tensor(users, self.device)).float()

    def _score_new(self, rows):
        with self.autocast():
            return self.network(self._rows(rows), None).float()

    def item_embeddings(self):
        """Each item's output weights W′_i (the space of the hidden codes)."""
        return self.network.decoder.weight.detach().float().cpu().numpy()

    def user_embeddings(self):
        """Each user's input node V_u."""
        return self.network.user_node.weight.detach().float().cpu().numpy()
