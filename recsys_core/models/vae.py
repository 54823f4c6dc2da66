"""Mult-VAE and Mult-DAE (Liang et al., WWW 2018): autoencoders over a user's click vector with a
multinomial likelihood.

Both read a user's whole history row ``x_u`` (L2-normalised, then dropout on the input), encode it
through tanh layers and decode logits over every item; the loss is the multinomial log-likelihood
``-Σ_i x_ui log softmax(f(x_u))_i``. Mult-VAE's code is a Gaussian ``q(z | x_u)`` sampled with the
reparameterisation trick and a KL term weighted by β, which rises linearly with the number of
updates up to a cap (0.2 in the paper's notebook); Mult-DAE has a deterministic code and an L2
penalty on its weights instead.

Scoring is fold-in: the encoder reads whatever history row is given (the mean of ``q`` for the VAE,
no dropout), so known users (their training history, or train + validation at test time) and new
users are scored the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..fit_context import FitContext
from ..interactions import Interactions
from ..limits import ANNEAL_STEPS_RANGE, BETA_CAP_RANGE, DROPOUT_RANGE, LAYER_WIDTH_RANGE, ModelMemory, autoencoder_memory
from ..tuning import LEARNING_RATE_SPACE, Param
from .base import TorchRecommender, TrainingConfig, bounded
from .device_csr import DeviceCSR


def kl_weight(update: int, total_anneal_steps: int, cap: float) -> float:
    """β for the ``update``-th gradient step (0-based): ``min(cap, update / total_anneal_steps)``.

    As in the official notebooks (Liang et al.; Sachdeva et al.): β starts at 0, grows by
    ``1 / total_anneal_steps`` per update and stays at ``cap`` once reached; ``total_anneal_steps``
    0 means β = cap from the first update.
    """
    if total_anneal_steps <= 0:
        return float(cap)
    return float(min(cap, update / total_anneal_steps))


def anneal_steps(configured: int | None, epochs: int, updates_per_epoch: int, cap: float) -> int:
    """``total_anneal_steps`` to use: the configured number, or (None) ``epochs × updates_per_epoch ÷ cap``
    so that β reaches its cap at the last epoch, whatever the size of the data (on ML-20M with the
    notebook's batch 500 and 200 epochs that is about its 200000)."""
    if configured is not None:
        return int(configured)
    return int(round(epochs * updates_per_epoch / cap)) if cap > 0 else 0


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, I)) per row, summed over the latent dimensions."""
    return 0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0).sum(dim=-1)


def multinomial_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``-Σ_i x_i log softmax(logits)_i`` per row (the paper's multinomial log-likelihood, negated)."""
    return -(F.log_softmax(logits.float(), dim=-1) * x).sum(dim=-1)


@dataclass(frozen=True)
class MultAutoencoderConfig(TrainingConfig):
    """Settings Mult-VAE and Mult-DAE share: the paper's, except the learning rate and the DAE's weight
    decay, chosen on MovieLens 100K's validation split (leave-one-out, NDCG@10)."""

    layers: tuple[int, ...] = bounded((200,), LAYER_WIDTH_RANGE)
    """Encoder layer sizes from the input side, the last being the code; the decoder mirrors them."""
    dropout: float = bounded(0.5, DROPOUT_RANGE)
    """Share of the (L2-normalised) input history dropped during training."""
    epochs: int = 200
    """Maximum passes over the training users (the paper trains 200 epochs and keeps the best by validation)."""
    batch_size: int = 500
    """Users per gradient step."""
    learning_rate: float = 3e-3
    """Adam step size. The paper's 1e-3 needs most of the 200 epochs on small data (2 updates per epoch on MovieLens 100K); 3e-3 reached as good a validation NDCG@10 in a third of the epochs."""
    patience: int = 20
    """Epochs without a better validation NDCG@10 before training stops (0: never stop early)."""


@dataclass(frozen=True)
class MultDAEConfig(MultAutoencoderConfig):
    layers: tuple[int, ...] = (200,)
    """Encoder layer sizes from the input side; the decoder mirrors them (I-200-I in the paper)."""
    weight_decay: float = 0.001
    """L2 penalty on the weight matrices (not biases), as Adam's decay. The notebook's λ = 0.01 on ML-20M is 0.02 here (its loss adds λ‖W‖², whose gradient is 2λW); on MovieLens 100K that cost validation NDCG@10 0.432 → 0.406, while 0–0.005 were alike."""


@dataclass(frozen=True)
class MultVAEConfig(MultAutoencoderConfig):
    layers: tuple[int, ...] = (600, 200)
    """Encoder layer sizes from the input side, the last being the latent size; the decoder mirrors them (I-600-200-600-I in the paper)."""
    weight_decay: float = 0.0
    """L2 penalty on the weight matrices (the paper's VAE uses none: the KL term regularises)."""
    beta_cap: float = bounded(0.2, BETA_CAP_RANGE)
    """Largest weight β of the KL term."""
    total_anneal_steps: int | None = bounded(None, ANNEAL_STEPS_RANGE)
    """Gradient updates over which β would rise linearly from 0 to 1; it stops at ``beta_cap`` (0: β = ``beta_cap`` throughout). None: epochs × updates per epoch ÷ beta_cap, so β reaches the cap at the last epoch (about the notebook's 200000 on ML-20M; 2000 on MovieLens 100K)."""


class MultAutoencoderNetwork(nn.Module):
    """I → layers → (latent) → mirrored layers → I, tanh between layers.

    ``variational``: the last encoder layer outputs mean and log-variance of q(z | x) (no
    activation) and z is sampled in training mode, the mean used in eval mode. Otherwise the code
    is the last encoder layer after its tanh (Mult-DAE)."""

    def __init__(self, n_items: int, layers: tuple[int, ...], dropout: float, variational: bool):
        super().__init__()
        if not layers:
            raise ValueError("layers must name at least the code size")
        self.variational = variational
        self.latent_size = layers[-1]
        encoder_sizes = [n_items, *layers]
        if variational:
            encoder_sizes[-1] = 2 * layers[-1]
        decoder_sizes = [*reversed(layers), n_items]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(encoder_sizes[:-1], encoder_sizes[1:]))
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(decoder_sizes[:-1], decoder_sizes[1:]))
        self.dropout = nn.Dropout(dropout)
        for layer in (*self.encoder, *self.decoder):  # the notebook: Xavier weights, N(0, 0.001²) biases
            nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=0.001)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mean and log-variance of q(z | x) (log-variance None for the DAE); dropout only in training."""
        h = self.dropout(F.normalize(x, p=2, dim=1))
        last = len(self.encoder) - 1
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i < last or not self.variational:
                h = torch.tanh(h)
        if not self.variational:
            return h, None
        return h[:, : self.latent_size], h[:, self.latent_size :]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        last = len(self.decoder) - 1
        for i, layer in enumerate(self.decoder):
            z = layer(z)
            if i < last:
                z = torch.tanh(z)
        return z

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Logits over items, plus the mean and log-variance of q (log-variance None for the DAE)."""
        mu, logvar = self.encode(x)
        z = mu
        if logvar is not None and self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


class _MultAutoencoder(TorchRecommender):
    """What Mult-VAE and Mult-DAE share: data, training step, fold-in scoring, embeddings."""

    variational: ClassVar[bool] = False

    @classmethod
    def model_memory(cls, n_users: int, n_items: int, n_interactions: int, config: MultAutoencoderConfig | None) -> ModelMemory:
        """:func:`~recsys_core.limits.autoencoder_memory` of a user's row over the items."""
        return autoencoder_memory(n_users, n_items, config)

    def latent_codes(self, rows: sp.csr_matrix) -> np.ndarray:
        """The mean of q(z | x) of each history row (the DAE's code)."""
        self._eval_mode()
        with torch.no_grad():
            mean, _ = self.network.encode(DeviceCSR.from_scipy(rows, self.device).dense())
        return mean.float().cpu().numpy()

    def _make_network(self) -> nn.Module:
        return MultAutoencoderNetwork(self.n_items, tuple(self.config.layers), self.config.dropout, self.variational)

    def make_optimizer(self) -> torch.optim.Optimizer:
        weights = [p for n, p in self.network.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in self.network.named_parameters() if not n.endswith("weight")]
        groups = [{"params": weights, "weight_decay": self.config.weight_decay}, {"params": biases, "weight_decay": 0.0}]
        return torch.optim.Adam(groups, lr=self.config.learning_rate)

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        super()._prepare(context, train)
        self._train_users = torch.from_numpy(np.flatnonzero(np.diff(self.known.indptr) > 0)).to(self.device)  # users with a history
        self._device_known = DeviceCSR.from_scipy(self.known, self.device)  # built once: every batch is gathered on the device
        self.update_count = 0
        if self.variational:
            per_epoch = -(-len(self._train_users) // self.config.batch_size)
            c = self.config
            self.meta["total_anneal_steps"] = anneal_steps(c.total_anneal_steps, c.epochs, per_epoch, c.beta_cap)

    def derived_settings(self) -> dict:
        return {"total_anneal_steps": int(self.meta["total_anneal_steps"])} if self.variational and "total_anneal_steps" in self.meta else {}

    def beta(self) -> float:
        """KL weight of the next update (0 for the DAE)."""
        if not self.variational:
            return 0.0
        return kl_weight(self.update_count, self.meta["total_anneal_steps"], self.config.beta_cap)

    def loss(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        """Mean over the batch of the multinomial NLL plus β·KL (the negative β-ELBO)."""
        with self.autocast():
            logits, mu, logvar = self.network(x)
        loss = multinomial_nll(logits, x)
        if logvar is not None:
            loss = loss + beta * gaussian_kl(mu.float(), logvar.float())
        return loss.mean()

    def train_epoch(self, context: FitContext, epoch: int) -> dict[str, float]:
        total, count, beta = 0.0, 0, 0.0
        for batch in context.device_batches(len(self._train_users), self.config.batch_size):
            if not len(batch):
                continue
            x = self._device_known.dense_rows(self._train_users[batch])
            beta = self.beta()
            total += self.train_step(self.loss, x, beta) * len(batch)
            self.update_count += 1
            count += len(batch)
        stats = {"loss": total / max(1, count)}
        if self.variational:
            stats["beta"] = beta
        return stats

    def _score_known(self, users, rows):
        return self._score_new(rows)

    def _score_new(self, rows):
        with self.autocast():
            logits, _, _ = self.network(DeviceCSR.from_scipy(rows, self.device).dense())
        return logits.float()

    @torch.no_grad()
    def user_embeddings(self) -> np.ndarray:
        """The code of each training user's history: the mean of q(z | x_u) (the DAE's tanh code)."""
        self._eval_mode()
        step = self._batch_size_for_scoring()
        known = DeviceCSR.from_scipy(self.known, self.device)
        out = []
        for start in range(0, self.n_users, step):
            with self.autocast():
                mu, _ = self.network.encode(known.dense_rows(torch.arange(start, min(self.n_users, start + step), device=self.device)))
            out.append(mu.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.layers[-1]), dtype=np.float32)

    def item_embeddings(self) -> np.ndarray:
        """Rows of the decoder's output layer: item i's logit is the last hidden layer · row i + bias i."""
        return self.network.decoder[-1].weight.detach().float().cpu().numpy()


#: The search space's dimensions Mult-VAE and Mult-DAE share.
_DROPOUT_SPACE = Param("float", 0.0, 0.8, doc="input dropout")
_WEIGHT_DECAY_SPACE = Param("float", 1e-7, 1e-2, log=True, doc="L2 penalty")


class MultVAE(_MultAutoencoder):
    """Mult-VAE^PR: variational autoencoder with a multinomial likelihood and a β-annealed KL term."""

    name = "multvae"
    title = "Mult-VAE"
    Config = MultVAEConfig
    description = "Variational autoencoder over a user's history, multinomial likelihood, annealed KL (Liang et al. 2018)."
    variational = True
    search_space = {
        "dropout": _DROPOUT_SPACE,
        "beta_cap": Param("float", 0.05, 1.0, log=True, doc="largest KL weight β after annealing"),
        "learning_rate": LEARNING_RATE_SPACE,
        "weight_decay": _WEIGHT_DECAY_SPACE,
    }


class MultDAE(_MultAutoencoder):
    """Mult-DAE: denoising autoencoder (input dropout) with a multinomial likelihood and L2 weight decay."""

    name = "multdae"
    title = "Mult-DAE"
    Config = MultDAEConfig
    description = "Denoising autoencoder over a user's history with a multinomial likelihood (Liang et al. 2018)."
    variational = False
    search_space = {"dropout": _DROPOUT_SPACE, "learning_rate": LEARNING_RATE_SPACE, "weight_decay": _WEIGHT_DECAY_SPACE}
