"""iALS: matrix factorisation of implicit feedback by alternating least squares (Hu, Koren & Volinsky,
ICDM 2008), trained by the ``implicit`` library (its conjugate-gradient solver, CUDA when its build
has it).

For users u and items i with factors x_u and y_i, iALS minimises

    Σ_{u,i} c_ui (p_ui − x_uᵀ y_i)² + λ (Σ_u ‖x_u‖² + Σ_i ‖y_i‖²)

over *every* (user, item) cell: p_ui = 1 where u interacted with i and 0 elsewhere, with confidence
c_ui = α · r_ui for an interaction (r_ui its value, 1 for implicit feedback) and 1 for every other
cell (``implicit``'s convention). Each half-step solves for all user factors with the item factors
fixed, then the other way round. Rendle, Krichene, Zhang & Koren (RecSys 2022) show that a tuned iALS
is a strong baseline on item recommendation.

One epoch of the trainer is one ALS sweep (users, then items): ``implicit`` resumes from the factors it
holds, so the trainer validates after every sweep and keeps the best (early stopping), like any other
iterative model here. The factors are saved as tensors (``user_factors``, ``item_factors``); a user
never seen in training is folded in by the same least-squares solve against the item factors
(``implicit``'s ``recalculate_user``), so a hand-built profile scores exactly as a trained user would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import ModelError
from ..fit_context import FitContext
from ..interactions import Interactions
from ..limits import EPOCHS_RANGE, PATIENCE_RANGE, ModelMemory, config_width
from ..tuning import Param
from .base import ModelConfig, Recommender, bounded


@dataclass(frozen=True)
class IALSConfig(ModelConfig):
    # Defaults chosen on ml-100k's validation split (loo-sampled, seed 0) over factors 32-128,
    # regularisation 1-100 and α 1-20: 32 factors, λ 10, α 1 had the best validation NDCG@10.
    factors: int = bounded(32, (1, 4096))
    """Length of each user and item vector (the latent factors)."""
    regularization: float = bounded(10.0, (0.0, 1e6))
    """L2 penalty λ on every user and item vector."""
    alpha: float = bounded(1.0, (1e-3, 1e4))
    """Confidence of an observed interaction: c = alpha × its value (unobserved cells weigh 1)."""
    epochs: int = bounded(30, EPOCHS_RANGE)
    """Maximum ALS sweeps (users, then items)."""
    patience: int = bounded(3, PATIENCE_RANGE)
    """Sweeps without a better validation NDCG@10 before training stops (0: never stop early)."""


def _implicit_als(config: IALSConfig, device: torch.device, threads: int, random_state):
    """An ``implicit`` AlternatingLeastSquares doing one sweep per ``fit``; on CUDA when asked for and
    the installed ``implicit`` was built with it (the PyPI wheels are CPU-only)."""
    from threadpoolctl import threadpool_limits

    try:
        import implicit.als
        import implicit.gpu
    except ImportError as error:  # pragma: no cover - a pinned requirement
        raise ModelError("ials needs the implicit library", "pip install -r requirements.txt") from error
    with threadpool_limits(1, "blas"):  # implicit warns at construction when BLAS would thread under its own threads
        return implicit.als.AlternatingLeastSquares(
            factors=config.factors,
            regularization=config.regularization,
            alpha=config.alpha,
            iterations=1,
            num_threads=threads,
            random_state=random_state,
            use_gpu=device.type == "cuda" and implicit.gpu.HAS_CUDA,
        )


def _to_numpy(factors) -> np.ndarray:
    """Factors from ``implicit`` (numpy on the CPU, its own matrix type on CUDA) as float32 numpy."""
    if hasattr(factors, "to_numpy"):
        factors = factors.to_numpy()
    return np.ascontiguousarray(factors, dtype=np.float32)


class IALS(Recommender):
    """Implicit ALS (weighted matrix factorisation over every user-item cell), trained by ``implicit``."""

    name = "ials"
    title = "iALS"
    Config = IALSConfig
    iterative = True
    description = "Implicit alternating least squares (Hu et al. 2008), trained by the implicit library."
    search_space = {
        "factors": Param("categorical", choices=(16, 32, 64, 128, 256), doc="factors per user and item"),
        "regularization": Param("float", 1e-2, 1e3, log=True, doc="λ on every vector; log scale (Rendle et al. 2022 tune it over decades)"),
        "alpha": Param("float", 0.1, 100.0, log=True, doc="confidence of an observed interaction; log scale"),
    }

    @classmethod
    def model_memory(cls, n_users: int, n_items: int, n_interactions: int, config: IALSConfig | None) -> ModelMemory:
        """implicit's ALS: user and item factors (a copy of each as tensors, and its CG work), the confidence
        matrix in CSR and its transpose, and each half-step's factors × factors Gram matrix."""
        width = config_width(config)
        return ModelMemory(
            3 * 4 * (n_users + n_items) * width + 2 * 12 * n_interactions + 8 * width * width,
            f"iALS factors of {n_users:,} users and {n_items:,} items (width {width}) and its confidence matrix",
            "lower factors, or keep fewer users and items (k-core)",
        )

    def _build(self) -> None:
        self.user_factors = torch.zeros(self.n_users, self.config.factors)
        self.item_factors = torch.zeros(self.n_items, self.config.factors)

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        # The model's own history, with each interaction's weight as r_ui (1 for implicit feedback).
        self._confidence = sp.csr_matrix(self.known, dtype=np.float32)
        # The fit's seeded generator starts the factors, so a seeded fit is reproducible.
        self._solver = _implicit_als(
            self.config, context.device, torch.get_num_threads(), np.random.default_rng(context.rng.integers(2**63))
        )

    def train_epoch(self, context: FitContext, epoch: int) -> dict[str, float]:
        from threadpoolctl import threadpool_limits

        self._solver.num_threads = torch.get_num_threads()  # the trainer's choice for this epoch
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work; BLAS threads under them oversubscribe
            self._solver.fit(self._confidence, show_progress=False)
        self.user_factors = torch.from_numpy(_to_numpy(self._solver.user_factors))
        self.item_factors = torch.from_numpy(_to_numpy(self._solver.item_factors))
        context.on_batch(1, 1)  # progress, and cancellation between sweeps
        return {"loss": self._loss()}

    def _loss(self) -> float:
        """The objective above per observed interaction, as ``implicit`` computes it (CPU factors)."""
        from implicit.cpu._als import calculate_loss

        solver = self._solver
        return float(
            calculate_loss(
                self.config.alpha * self._confidence,
                self.user_factors.numpy(),
                self.item_factors.numpy(),
                solver.regularization,
                num_threads=solver.num_threads,
            )
        )

    # ------------------------------------------------------------------ scoring
    def _score_known(self, users: np.ndarray, rows: sp.csr_matrix) -> torch.Tensor:
        return self.user_factors[torch.as_tensor(users)] @ self.item_factors.T

    def _score_pairs(self, users: np.ndarray, items: np.ndarray, rows: sp.csr_matrix) -> torch.Tensor:
        user = self.user_factors[torch.as_tensor(users)]
        return torch.einsum("bf,bcf->bc", user, self.item_factors[torch.as_tensor(np.ascontiguousarray(items))])

    def fold_in_vectors(self, rows: sp.csr_matrix) -> np.ndarray:
        """Factors of new users with history ``rows``: the exact least-squares solve of a user half-step."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        solver = _implicit_als(self.config, torch.device("cpu"), torch.get_num_threads(), None)
        solver.item_factors = self.item_factors.numpy()
        solver.user_factors = self.user_factors.numpy()
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            vectors = solver.recalculate_user(np.arange(rows.shape[0]), rows)
        return np.asarray(vectors, dtype=np.float32).reshape(rows.shape[0], -1)

    def _score_new(self, rows: sp.csr_matrix) -> torch.Tensor:
        return torch.from_numpy(self.fold_in_vectors(rows)) @ self.item_factors.T

    def user_embeddings(self) -> np.ndarray:
        return self.user_factors.numpy().copy()

    def item_embeddings(self) -> np.ndarray:
        return self.item_factors.numpy().copy()

    # ------------------------------------------------------------------ state
    def _state(self) -> dict[str, torch.Tensor]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.user_factors = tensors["user_factors"].detach().float().cpu().contiguous()
        self.item_factors = tensors["item_factors"].detach().float().cpu().contiguous()
