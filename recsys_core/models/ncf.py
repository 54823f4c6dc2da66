"""Neural collaborative filtering (He et al., WWW 2017): GMF, MLP and NeuMF.

* GMF:   ŷ_ui = σ(hᵀ(p_u ⊙ q_i) + b)
* MLP:   ŷ_ui = σ(hᵀ ReLU-tower([p_u; q_i]) + b), tower ``layers`` (the first entry is the
         concatenated embedding, so each embedding has ``layers[0] / 2`` entries)
* NeuMF: ŷ_ui = σ(hᵀ[p^G_u ⊙ q^G_i ; ReLU-tower([p^M_u; q^M_i])] + b), with separate GMF and MLP
         embeddings; by default initialised from a trained GMF and MLP, h = [α h_GMF ; (1 − α) h_MLP],
         then fine-tuned with plain SGD (``pretrain=False``: trained from scratch with Adam).

All three are trained pointwise with the log loss on every training positive (label 1) and
``n_negatives`` unseen items per positive (label 0), drawn afresh every epoch, shuffled together.

One network class (:class:`NCFNetwork`) holds an optional GMF part and an optional MLP part, so
the three models share their code. The MLP's first layer acts on [p_u; q_i], so it splits into a
user half and an item half: the item half (plus bias) is the item side of the score, computed once
for every item when scoring all of them or folding in a new user.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..fit_context import FitContext, FitStage
from ..limits import EMBEDDING_SIZE_RANGE, LAYER_WIDTH_RANGE, LEARNING_RATE_RANGE, N_NEGATIVES_RANGE
from ..tuning import LEARNING_RATE_SPACE, N_NEGATIVES_SPACE, Param
from .base import TrainingConfig, bounded
from .mf import EmbeddingNetwork, EmbeddingRecommender, normal_init
from .optimizers import embedding_optimizer


class GMFPart(nn.Module):
    """User and item embeddings whose element-wise product is the GMF vector."""

    def __init__(self, n_users: int, n_items: int, size: int):
        super().__init__()
        self.user = nn.Embedding(n_users, size)
        self.item = nn.Embedding(n_items, size)
        normal_init(self.user)
        normal_init(self.item)
        self.user_size = self.feature_size = self.width = size

    def features(self, items: torch.Tensor | None) -> torch.Tensor:
        return self.item.weight if items is None else self.item(items)

    def vector(self, u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """p_u ⊙ q_i for every pair: (B, C, size)."""
        return u.unsqueeze(-2) * f

    def contribution(self, u: torch.Tensor, f: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """hᵀ(p_u ⊙ q_i) as (B, C), as a matrix product when the items are shared by every row."""
        if f.dim() == 2:
            return (u * h) @ f.T
        return torch.einsum("bd,bcd->bc", u * h, f)


class MLPPart(nn.Module):
    """Concatenated user and item embeddings through a ReLU tower ``layers[0] → layers[1] → … → layers[-1]``."""

    def __init__(self, n_users: int, n_items: int, layers: tuple[int, ...]):
        super().__init__()
        self.half = layers[0] // 2
        self.user = nn.Embedding(n_users, self.half)
        self.item = nn.Embedding(n_items, self.half)
        normal_init(self.user)
        normal_init(self.item)
        self.tower = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:], strict=False))
        for layer in self.tower:  # Keras Dense defaults of the official code: Glorot uniform, zero bias
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.user_size = self.half
        self.feature_size = layers[1]
        self.width = layers[-1]

    def features(self, items: torch.Tensor | None) -> torch.Tensor:
        """The item half of the first layer plus its bias: W_q q_i + b₁."""
        q = self.item.weight if items is None else self.item(items)
        first = self.tower[0]
        return F.linear(q, first.weight[:, self.half :], first.bias)

    def vector(self, u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """The tower's last vector for every pair: (B, C, layers[-1])."""
        x = torch.relu(F.linear(u, self.tower[0].weight[:, : self.half]).unsqueeze(-2) + f)
        for layer in self.tower[1:]:
            x = torch.relu(layer(x))
        return x

    def contribution(self, u: torch.Tensor, f: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.vector(u, f) @ h


class NCFNetwork(EmbeddingNetwork):
    """GMF (``gmf_size`` > 0), MLP (``layers`` given) or both (NeuMF) into one linear output.

    The output layer acts on [GMF vector; MLP vector]; user vectors, item features and output
    weights are laid out in that same order, GMF first.
    """

    def __init__(self, n_users: int, n_items: int, gmf_size: int = 0, layers: tuple[int, ...] = ()):
        super().__init__()
        self.gmf = GMFPart(n_users, n_items, gmf_size) if gmf_size else None
        self.mlp = MLPPart(n_users, n_items, tuple(layers)) if layers else None
        parts = [p for p in (self.gmf, self.mlp) if p is not None]
        self.output = nn.Linear(sum(p.width for p in parts), 1)
        # The official code's prediction layer: LeCun uniform, zero bias.
        bound = float(np.sqrt(3.0 / self.output.in_features))
        nn.init.uniform_(self.output.weight, -bound, bound)
        nn.init.zeros_(self.output.bias)
        self.pair_width = sum(p.feature_size for p in parts)
        self._layout = []
        u0 = f0 = h0 = 0
        for part in parts:
            self._layout.append((part, slice(u0, u0 + part.user_size), slice(f0, f0 + part.feature_size), slice(h0, h0 + part.width)))
            u0, f0, h0 = u0 + part.user_size, f0 + part.feature_size, h0 + part.width

    def _parts(self):
        return [entry[0] for entry in self._layout]

    def user_vectors(self, users):
        return torch.cat([p.user(users) for p in self._parts()], dim=-1)

    def item_features(self, items=None):
        return torch.cat([p.features(items) for p in self._parts()], dim=-1)

    def combine(self, u, f):
        h = self.output.weight[0]
        out = None
        for part, us, fs, hs in self._layout:
            term = part.contribution(u[..., us], f[..., fs], h[hs])
            out = term if out is None else out + term
        return out + self.output.bias[0]

    def last_vector(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The vector the output layer reads, for ``users`` (B,) × ``items`` (B, C): (B, C, width)."""
        u, f = self.user_vectors(users), self.item_features(items)
        return torch.cat([part.vector(u[..., us], f[..., fs]) for part, us, fs, _ in self._layout], dim=-1)

    def pair_logits(self, users: torch.Tensor, items: torch.Tensor, squares: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Training path: logits of (users[b], items[b]) pairs, shape (B,), and, when ``squares``,
        ‖p_u‖² + ‖q_i‖² over every part's embedding rows (the per-example L2), from one lookup.

        The same function as ``forward`` for one candidate per user, written for that case: the MLP
        tower reads [p_u; q_i] as one matrix product and GMF is an element-wise product, where the
        general (B, C, …) path would make batched matrix products of one row each."""
        h = self.output.weight[0]
        logits = self.output.bias[0]
        penalty = None
        for part, _, _, hs in self._layout:
            p, q = part.user(users), part.item(items)
            if isinstance(part, GMFPart):
                vector = p * q
            else:
                vector = torch.cat([p, q], dim=-1)
                for layer in part.tower:
                    vector = torch.relu(layer(vector))
            logits = logits + vector @ h[hs]
            if squares:
                term = p.float().pow(2).sum(-1) + q.float().pow(2).sum(-1)
                penalty = term if penalty is None else penalty + term
        return logits, penalty

    def user_table(self):
        return torch.cat([p.user.weight for p in self._parts()], dim=1)

    def item_table(self):
        return torch.cat([p.item.weight for p in self._parts()], dim=1)

    @torch.no_grad()
    def load_pretrained(self, gmf: NCFNetwork, mlp: NCFNetwork, alpha: float) -> None:
        """He et al.'s NeuMF initialisation: both parts copied, h = [α h_GMF ; (1 − α) h_MLP], b = α b_GMF + (1 − α) b_MLP."""
        self.gmf.load_state_dict(gmf.gmf.state_dict())
        self.mlp.load_state_dict(mlp.mlp.state_dict())
        self.output.weight.copy_(torch.cat([alpha * gmf.output.weight, (1 - alpha) * mlp.output.weight], dim=1))
        self.output.bias.copy_(alpha * gmf.output.bias + (1 - alpha) * mlp.output.bias)


# ---------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class NCFConfig(TrainingConfig):
    n_negatives: int = bounded(4, N_NEGATIVES_RANGE)
    """Unseen items sampled per training positive (label 0), afresh every epoch."""
    epochs: int = 20
    """Maximum passes over the training positives and their negatives."""
    learning_rate: float = 1e-3
    """Adam step size."""
    batch_size: int = 256
    """Training examples (positives and negatives, shuffled together) per Adam step."""
    weight_decay: float = 0.0
    """L2 penalty λ: on the embedding rows each example uses (in its loss) and on the tower and output weights (the optimiser's decay). The paper uses none."""
    patience: int = 3
    """Epochs without a better validation NDCG@10 before training stops (0: never stop early)."""


def _check_layers(layers: tuple[int, ...]) -> None:
    if len(layers) < 2 or layers[0] % 2 or min(layers) < 1:
        raise ModelError(
            f"layers={list(layers)} is not a valid MLP tower",
            "Give at least two positive sizes, the first even (it is the two embeddings concatenated), e.g. 64,32,16,8.",
        )


@dataclass(frozen=True)
class GMFConfig(NCFConfig):
    learning_rate: float = 2e-3
    """Adam step size (with the batch, chosen on MovieLens 100K's validation split)."""
    batch_size: int = 1024
    """Training examples (positives and negatives, shuffled together) per Adam step; 1,024 trains an epoch about 3× faster than 256 on the CPU."""
    embedding_size: int = bounded(32, EMBEDDING_SIZE_RANGE)
    """Length of the user and item embeddings (the predictive factors)."""


@dataclass(frozen=True)
class MLPConfig(NCFConfig):
    learning_rate: float = 1e-2
    """Adam step size (with the batch, chosen on MovieLens 100K's validation split: 1e-2 at 4,096 scored as 5e-3 at 1,024 did)."""
    batch_size: int = 4096
    """Training examples (positives and negatives, shuffled together) per Adam step; 4,096 trains an epoch in half the time of 1,024 on the CPU."""
    layers: tuple[int, ...] = bounded((64, 32, 16, 8), LAYER_WIDTH_RANGE)
    """Tower sizes: the first is the concatenated user and item embeddings (each half of it), the last the predictive factors."""


@dataclass(frozen=True)
class NeuMFConfig(NCFConfig):
    learning_rate: float = 3e-3
    """Adam step size (of the pretrained GMF and MLP too)."""
    batch_size: int = 4096
    """Training examples (positives and negatives, shuffled together) per step (of the pretrained GMF and MLP too); on MovieLens 100K's validation split 4,096 scored as 1,024 did (NDCG@10 0.4257 against 0.4221) in half the time per epoch."""
    embedding_size: int = bounded(32, EMBEDDING_SIZE_RANGE)
    """Length of the GMF part's user and item embeddings."""
    layers: tuple[int, ...] = bounded((64, 32, 16, 8), LAYER_WIDTH_RANGE)
    """MLP part's tower sizes: the first is its concatenated embeddings, the last its predictive factors."""
    pretrain: bool = True
    """Initialise from a GMF and an MLP trained first (with these settings and early stopping), then fine-tune."""
    pretrain_epochs: tuple[int, ...] | None = None
    """With pretrain: (GMF, MLP) epochs to pretrain for, without early stopping. None: up to ``epochs`` each, stopped early on validation (a refit on train + validation passes the epochs that selection chose)."""
    alpha: float = bounded(0.5, (0.0, 1.0))
    """With pretrain: weight of the GMF output weights against (1 − alpha) for the MLP's."""
    finetune_learning_rate: float = bounded(1e-3, LEARNING_RATE_RANGE)
    """With pretrain: step size of the plain SGD that fine-tunes the combined model (He et al.: Adam's moments are not carried over)."""


# ---------------------------------------------------------------------------- models

#: NeuMF's stages with pretraining, as progress events name them.
PRETRAIN_STAGES = ("pretraining GMF", "pretraining MLP")
FINETUNE_STAGE = "fine-tuning"


#: MLP tower widths a search tries (MLP and NeuMF).
_TOWERS = ((32, 16, 8), (64, 32, 16, 8), (128, 64, 32, 16))


class NCFRecommender(EmbeddingRecommender):
    """Shared wrapper: the pointwise log-loss epoch and the matching fold-in loss."""

    labelled_example_bytes = 20

    def _make_network(self) -> NCFNetwork:
        raise NotImplementedError

    def pair_loss(self, positive, negative):
        """Log loss of one positive (label 1) and its k negatives (label 0), summed per positive."""
        return F.softplus(-positive).sum(-1) + F.softplus(negative).sum(-1)

    def train_epoch(self, context, epoch):
        negatives = self._sample_negatives(context.rng)
        n_pos = len(self._pos_users)
        users = self._tensor(np.concatenate([self._pos_users, np.repeat(self._pos_users, negatives.shape[1])]))
        items = self._tensor(np.concatenate([self._pos_items, negatives.ravel()]))
        labels = torch.zeros(len(users), device=self.device)
        labels[:n_pos] = 1.0
        net, lam = self.network, self.config.weight_decay

        def batch_loss(index):
            logits, squares = net.pair_logits(users[index], items[index], squares=bool(lam))
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels[index])
            if lam:
                loss = loss + lam * squares.mean()
            return loss

        return self._run_epoch(context, len(users), batch_loss)


class GMF(NCFRecommender):
    """Generalised matrix factorisation: σ(hᵀ(p_u ⊙ q_i) + b)."""

    name = "gmf"
    title = "GMF"
    Config = GMFConfig
    description = "Generalised matrix factorisation: a learned weighting of the element-wise product (He et al. 2017)."
    search_space = {"embedding_size": Param("categorical", choices=(8, 16, 32, 64)), "learning_rate": LEARNING_RATE_SPACE, "n_negatives": N_NEGATIVES_SPACE}

    def _make_network(self):
        return NCFNetwork(self.n_users, self.n_items, gmf_size=self.config.embedding_size)


class MLP(NCFRecommender):
    """Concatenated user and item embeddings through a ReLU tower into σ(hᵀ · + b)."""

    name = "mlp"
    title = "MLP"
    Config = MLPConfig
    description = "User and item embeddings concatenated through a ReLU tower (He et al. 2017)."
    search_space = {
        "layers": Param("categorical", choices=_TOWERS, doc="tower widths"),
        "learning_rate": LEARNING_RATE_SPACE,
        "n_negatives": N_NEGATIVES_SPACE,
    }

    def _make_network(self):
        _check_layers(self.config.layers)
        return NCFNetwork(self.n_users, self.n_items, layers=self.config.layers)


class NeuMF(NCFRecommender):
    """GMF and MLP with separate embeddings, their last vectors concatenated into one output layer."""

    name = "neumf"
    title = "NeuMF"
    Config = NeuMFConfig
    description = "Neural matrix factorisation: GMF and an MLP tower side by side (He et al. 2017)."
    search_space = {
        "embedding_size": Param("categorical", choices=(8, 16, 32, 64), doc="GMF factors"),
        "layers": Param("categorical", choices=_TOWERS, doc="MLP tower widths"),
        "learning_rate": LEARNING_RATE_SPACE,
        "n_negatives": N_NEGATIVES_SPACE,
    }

    def _make_network(self):
        _check_layers(self.config.layers)
        return NCFNetwork(self.n_users, self.n_items, gmf_size=self.config.embedding_size, layers=self.config.layers)

    def derived_settings(self) -> dict:
        return {"pretrain_epochs": tuple(self.meta["pretrain_epochs"])} if "pretrain_epochs" in self.meta else {}

    def fit_stages(self, epochs: int) -> tuple[FitStage, ...]:
        if not self.config.pretrain:
            return super().fit_stages(epochs)
        gmf, mlp = self._fixed_pretrain_epochs() or (epochs, epochs)
        return (FitStage(PRETRAIN_STAGES[0], gmf), FitStage(PRETRAIN_STAGES[1], mlp), FitStage(FINETUNE_STAGE, epochs))

    def _fixed_pretrain_epochs(self) -> tuple[int, int] | None:
        fixed = tuple(self.config.pretrain_epochs) if self.config.pretrain_epochs is not None else None
        if fixed is not None and (len(fixed) != 2 or min(fixed) < 1):
            raise ModelError(f"pretrain_epochs={list(fixed)} must be two positive epoch counts (GMF, MLP)", "For example --set pretrain_epochs=8,12.")
        return fixed  # type: ignore[return-value]

    def _prepare(self, context, train):
        super()._prepare(context, train)
        if self.config.pretrain:
            self._pretrain(context, train)

    def _pretrain(self, context: FitContext, train) -> None:
        """Train a GMF and an MLP with the same settings (nested fits through the context: same device,
        validation and early stopping), copy them in with α-mixed output weights, and fine-tune the
        whole with plain SGD."""
        c = self.config
        shared = {k: getattr(c, k) for k in ("n_negatives", "epochs", "learning_rate", "batch_size", "weight_decay", "patience")}
        seed = int(context.rng.integers(2**31 - 1))  # drawn from the fit's generator: deterministic for its seed
        parts = {"gmf": GMF(embedding_size=c.embedding_size, **shared), "mlp": MLP(layers=c.layers, **shared)}
        report = {}
        fixed = self._fixed_pretrain_epochs()
        for index, (key, sub) in enumerate(parts.items()):
            # Fixed epochs (a refit) train exactly that long; otherwise early stopping on validation.
            history = context.fit_nested(
                sub, train, stage=PRETRAIN_STAGES[index], seed=seed, epochs=fixed[index] if fixed else None, validate=fixed is None
            )
            report[key] = {"best_epoch": history.best_epoch, "epochs_run": history.epochs_run, "validation": history.validation}
        self.network.load_pretrained(parts["gmf"].network, parts["mlp"].network, c.alpha)
        self.meta["pretrain_epochs"] = [int(r["best_epoch"] or r["epochs_run"]) for r in report.values()]
        self.meta["pretrained"] = report
        # Fine-tuning with plain SGD, as in the paper: the sub-models' Adam moments are not carried
        # over. On ml-100k validation SGD at 1e-3 or 0.1 and Adam at 1e-4 all stay within 0.001
        # NDCG@10 of the α-mixed start, so the mix itself is most of what pretraining brings.
        self.optimizer = embedding_optimizer(self.network, "sgd", c.finetune_learning_rate, c.weight_decay)
