"""The one interface every recommender implements.

A model implements a few hooks and inherits everything a user calls:

* ``_build()``                   create networks / arrays from ``n_users``, ``n_items``, ``config``
                                 and ``self.meta`` (called on fit and on load, so no training data).
* ``_prepare(context, train)``   keep what training needs; closed-form models fit here.
* ``train_epoch(context, epoch)`` one pass over the data for iterative models; returns ``{"loss": ...}``.
* ``_score_known(users, rows)``  scores of known users over all items; ``rows`` is their history.
* ``_score_new(rows)``           fold-in: scores for users never seen in training, from their history.
* ``_score_sequences(sequences)`` models that read order (``uses_timestamps``): scores from ordered
                                 histories (:class:`~recsys_core.sequences.Sequences`), which
                                 ``score``, ``score_histories`` and ``fold_in`` pass when given.
* ``_state()`` / ``_load_state`` tensors that fully describe the fitted model (default: the network).
* ``item_item_weights(items)`` / ``latent_codes(rows)``  optional views for the Inside page
                                 (:mod:`recsys_core.inside`), for models that learn item-item weights
                                 or a latent code; ``offers(view)`` tells which a class implements.

What the tools need to know about a model before any fit is declared once, by the model too:

* ``title``                      its display name ("Mult-VAE"), read without importing the model by
                                 :func:`recsys_core.models.model_title`;
* ``Config``                     its frozen settings, each field with its default, its documentation
                                 (the string under it) and its range (:func:`bounded`, read by
                                 :func:`recsys_core.limits.setting_bounds` for the config check and the
                                 app's widgets);
* ``search_space``               what a tuning study samples, in order (:mod:`recsys_core.tuning`);
* ``model_memory(...)``          the bytes it adds to a fit of a given shape
                                 (:func:`recsys_core.limits.estimate_memory` adds data and scoring).

Adding a model is its module, its line in the registry (:mod:`recsys_core.models`) and its test class
on the shared contract (``tests/model_contract.py``).

``recommend``, ``similar_items``, ``fold_in``, persistence and batching are written once here, on
top of those hooks, and so is a gradient model's step, ``train_step(loss_of, *inputs)`` (through
``DistributedDataParallel`` under torchrun), which every ``train_epoch`` calls once per batch.
The training loop itself lives in :class:`recsys_core.trainer.Trainer`, which hands each hook a
:class:`~recsys_core.fit_context.FitContext` (device, seeded generator, mixed precision, batch
callback, validation evaluator, nested fits); this package never imports the trainer, so a model
can be built, loaded and scored without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from ..device import autocast, resolve_device
from ..errors import ModelError
from ..fit_context import FitContext, FitStage
from ..interactions import Interactions
from ..limits import BATCH_SIZE_RANGE, EPOCHS_RANGE, LEARNING_RATE_RANGE, PATIENCE_RANGE, WEIGHT_DECAY_RANGE, ModelMemory
from ..sequences import Sequences
from .device_csr import DeviceCSR

if TYPE_CHECKING:
    from ..tuning import Param


@dataclass(frozen=True)
class ModelConfig:
    """Base of every model's frozen config. Iterative models use :class:`TrainingConfig`.

    Every config, however it is made (defaults, ``--set``, the app's form, a saved ``run.json``), is
    checked on creation against its field types and the bounds each field declares (:func:`bounded`,
    read by :func:`recsys_core.limits.setting_bounds`), so no path can build a model from an
    out-of-range value.
    """

    def __post_init__(self) -> None:
        from ..limits import check_config

        check_config(self)

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> ModelConfig:
        """A config from saved JSON (untrusted): unknown keys are ignored, values checked like any other."""
        if not isinstance(data, dict):
            raise ModelError(f"a saved {cls.__name__} must be a JSON object, not {type(data).__name__}")
        names = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in data.items():
            if key not in names:
                continue  # a field removed in a later version must not break loading old runs
            values[key] = tuple(value) if isinstance(value, list) else value
        try:
            return cls(**values)
        except TypeError as exc:  # e.g. a list of lists where numbers belong
            raise ModelError(f"the saved settings of {cls.__name__} are not valid: {exc}") from None

    def with_overrides(self, overrides: dict[str, Any]) -> ModelConfig:
        """A copy with ``overrides`` applied; strings (from ``--set key=value``) are parsed by field type."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        parsed = {}
        for key, value in overrides.items():
            if key not in fields:
                raise ModelError(
                    f"{type(self).__name__} has no setting {key!r}",
                    "Settings: " + ", ".join(sorted(fields)),
                )
            parsed[key] = _parse_setting(key, value, getattr(self, key))
        return dataclasses.replace(self, **parsed)


def _parse_setting(key: str, value: Any, current: Any) -> Any:
    if not isinstance(value, str):
        return tuple(value) if isinstance(value, list) else value
    text = value.strip()
    try:
        if isinstance(current, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, tuple):
            items = [t for t in text.replace("[", "").replace("]", "").replace(",", " ").split() if t]
            kind = type(current[0]) if current else int
            return tuple(kind(t) for t in items)
        if current is None:
            if text.lower() == "none":
                return None
            if "," in text:  # an optional tuple setting, e.g. pretrain_epochs=8,12
                return tuple(int(t) for t in text.replace("[", "").replace("]", "").split(",") if t.strip())
            for kind in (int, float):
                try:
                    return kind(text)
                except ValueError:
                    pass
            return text
    except ValueError:
        raise ModelError(f"setting {key}={value!r} is not a valid {type(current).__name__}") from None
    return text


def bounded(default: Any, bounds: tuple[float, float]) -> Any:
    """A config field with its default and its documented inclusive range (for a tuple, of each entry).

    The range belongs to the field: a subclass that redeclares the field only to change its default keeps
    it (:func:`recsys_core.limits.setting_bounds` looks up the nearest declaration with bounds). Ranges
    several models share are named in :mod:`recsys_core.limits` (``EPOCHS_RANGE``, ``LAYER_WIDTH_RANGE``...).
    """
    return dataclasses.field(default=default, metadata={"bounds": bounds})


@dataclass(frozen=True)
class TrainingConfig(ModelConfig):
    """Settings shared by models trained by gradient descent."""

    epochs: int = bounded(20, EPOCHS_RANGE)
    """Maximum passes over the training data."""
    learning_rate: float = bounded(1e-3, LEARNING_RATE_RANGE)
    """Step size of the optimiser."""
    batch_size: int = bounded(256, BATCH_SIZE_RANGE)
    """Training examples (or users, for autoencoders) per gradient step."""
    weight_decay: float = bounded(0.0, WEIGHT_DECAY_RANGE)
    """L2 penalty added by the optimiser."""
    patience: int = bounded(5, PATIENCE_RANGE)
    """Epochs without a better validation NDCG@10 before training stops (0: never stop early)."""


def _offered_by(view: str) -> str:
    """The hint of a model that lacks ``view``: the models that have it, by title."""
    from . import MODEL_NAMES, model_class

    return "Choose a run of " + " or ".join(model_class(name).title for name in MODEL_NAMES if model_class(name).offers(view)) + "."


def csr_rows_to_dense(rows: sp.csr_matrix, device: torch.device, dtype=torch.float32) -> torch.Tensor:
    """Densify one batch of sparse rows (scored histories) on ``device``: only the stored entries
    are copied there (:class:`~recsys_core.models.device_csr.DeviceCSR`). Training batches are
    gathered from a :class:`DeviceCSR` built once per fit instead."""
    return DeviceCSR.from_scipy(rows, device).dense().to(dtype)


def index_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """An int64 index tensor (copied: evaluator arrays are read-only views)."""
    return torch.from_numpy(np.array(array, dtype=np.int64)).to(device)


def _joined(blocks: list[np.ndarray]) -> np.ndarray:
    """The score blocks of the batches as one array; a single block (small data: every user in one
    batch) as it is, not copied again (each hook's block is a fresh array)."""
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


class Recommender:
    """Base class of every model; see the module docstring for the hooks."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    """How the app and reports name the model ("Mult-VAE"); :func:`recsys_core.models.model_title` reads
    it without importing the model, so write it as a plain string in the class body."""
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    search_space: ClassVar[dict[str, Param]] = {}
    """What a tuning study samples (:class:`recsys_core.tuning.Param` per config field), in the order its
    trials suggest them (a seeded study depends on it); empty: the model is not tuned."""
    iterative: ClassVar[bool] = False
    """True when the trainer must call ``train_epoch``; False for closed-form models."""
    uses_timestamps: ClassVar[bool] = False
    predicts_ratings: ClassVar[bool] = False
    ranks_items: ClassVar[bool] = True
    description: ClassVar[str] = ""
    wide_steps: ClassVar[bool] = True
    """Whether the fit's work is wide (matrix products over every item, a closed-form solve), so that
    more than one CPU thread pays; models of lookups and element-wise products train on one."""

    def __init__(self, config: ModelConfig | None = None, **overrides: Any):
        config = config if config is not None else self.Config()
        if not isinstance(config, self.Config):
            raise ModelError(f"{type(self).__name__} needs a {self.Config.__name__}, not {type(config).__name__}")
        self.config = config.with_overrides(overrides) if overrides else config
        self.device = torch.device("cpu")
        self.mixed_precision = False
        self.n_users = 0
        self.n_items = 0
        self.known: sp.csr_matrix | None = None
        self.meta: dict[str, Any] = {}
        self.fitted = False

    # ------------------------------------------------------------------ facts before a fit
    @classmethod
    def model_memory(cls, n_users: int, n_items: int, n_interactions: int, config: ModelConfig | None) -> ModelMemory:
        """Peak bytes the model itself adds to a fit on data of this shape (``config`` None: a width and batch
        of 256), for :func:`recsys_core.limits.estimate_memory`, which adds the data and the score blocks.
        The default is a count per item (popularity)."""
        return ModelMemory(8 * n_items)

    # ------------------------------------------------------------------ fitting
    def fit_stages(self, epochs: int) -> tuple[FitStage, ...]:
        """The stages of a fit with this epoch budget, for progress; one unless the model trains
        sub-models first (NeuMF's pretraining)."""
        return (FitStage("training", epochs),)

    def begin_fit(self, context: FitContext, train: Interactions) -> None:
        """Called by the trainer before the first epoch (the whole fit for closed-form models): the
        model takes its device and precision from ``context`` and prepares from ``train``."""
        if self.uses_timestamps and train.timestamp is None:
            raise ModelError(f"{self.name} orders each user's items by time, and this data set has no timestamps")
        self.device = context.device
        self.mixed_precision = context.mixed_precision  # scoring after the fit keeps the fit's precision
        self.n_users, self.n_items = train.shape
        self.known = train.to_csr()
        self._build()
        self._prepare(context, train)
        self.fitted = True

    def _build(self) -> None:
        """Create networks or arrays from sizes, config and ``self.meta``."""

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        """Keep the training data in the form ``train_epoch`` needs, or fit in closed form."""

    def tune(self, evaluator: Any) -> dict | None:
        """Closed-form models may choose settings on the validation evaluator.

        Returns None, or ``{"chosen": {setting: value}, ...}`` with whatever else explains the choice;
        a refit on train + validation reuses ``chosen``."""
        return None

    def derived_settings(self) -> dict[str, Any]:
        """Settings the fit derived from the config, the epoch budget and the data (e.g. the KL
        anneal steps), keyed by config field. The run records them, and a refit on train +
        validation passes them back as settings so it trains the configuration validation chose."""
        return {}

    def train_epoch(self, context: FitContext, epoch: int) -> dict[str, float]:
        raise ModelError(f"{self.name} is fitted in closed form and has no training epochs")

    def autocast(self):
        """bf16 autocast on CUDA when the fit enabled mixed precision; a no-op on the CPU."""
        return autocast(self.device, self.mixed_precision)

    # ------------------------------------------------------------------ scoring hooks
    def _score_known(self, users: np.ndarray, rows: sp.csr_matrix) -> torch.Tensor | np.ndarray:
        raise NotImplementedError

    def _score_new(self, rows: sp.csr_matrix) -> torch.Tensor | np.ndarray:
        """Default fold-in for models whose scores are a function of the history alone."""
        raise ModelError(f"{self.name} cannot score users it was not trained on")

    def _score_sequences(self, sequences: Sequences) -> torch.Tensor | np.ndarray:
        """Scores over all items from ordered histories; models with ``uses_timestamps`` implement it."""
        raise NotImplementedError

    def _score_pairs(self, users: np.ndarray, items: np.ndarray, rows: sp.csr_matrix) -> torch.Tensor | np.ndarray | None:
        """Optional fast path scoring only ``items`` (shape ``(len(users), c)``); None = use full rows."""
        return None

    # ------------------------------------------------------------------ public scoring
    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ModelError(f"{self.name} is not fitted yet", "Call fit() or load a saved run first.")

    def _check_users(self, users: np.ndarray) -> np.ndarray:
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        if len(users) and (users.min() < 0 or users.max() >= self.n_users):
            bad = int(users[(users < 0) | (users >= self.n_users)][0])
            raise ModelError(f"user index {bad} is out of range: this model knows {self.n_users} users", "Use fold_in() for a new user.")
        return users

    def _batch_size_for_scoring(self) -> int:
        return max(1, min(4096, int(2**24 // max(1, self.n_items))))

    @staticmethod
    def _to_numpy(scores: torch.Tensor | np.ndarray) -> np.ndarray:
        if isinstance(scores, torch.Tensor):
            return scores.detach().float().cpu().numpy()
        return np.asarray(scores, dtype=np.float32)

    def _reads_sequences(self, sequences: Sequences | None, n_rows: int) -> bool:
        """True when this model reads order and ``sequences`` (one per scored row) was given."""
        if sequences is None or not self.uses_timestamps:
            return False
        if sequences.n_rows != n_rows:
            raise ModelError(f"{sequences.n_rows} ordered histories were given for {n_rows} users: one per user is needed")
        return True

    @torch.no_grad()
    def score(
        self, users: np.ndarray, items: np.ndarray | None = None, history: sp.csr_matrix | None = None, sequences: Sequences | None = None
    ) -> np.ndarray:
        """Scores of ``users`` (indices) for ``items``: None → every item, 1-D → the same items for
        each user, 2-D → one candidate row per user. ``history`` (users × items) replaces the training
        interactions as what each user is known to have interacted with (e.g. train + validation).
        ``sequences`` (one row per user) is that history in order; models that read order
        (``uses_timestamps``) score from it, the others ignore it."""
        self._check_fitted()
        users = self._check_users(users)
        history = self.known if history is None else history
        ordered = self._reads_sequences(sequences, len(users))
        if items is not None:
            items = np.asarray(items, dtype=np.int64)
            if items.ndim == 1:
                items = np.broadcast_to(items, (len(users), len(items)))
        out = []
        step = self._batch_size_for_scoring()
        self._eval_mode()
        for start in range(0, len(users), step):
            batch = users[start : start + step]
            rows = history[batch]
            if ordered:
                full = self._to_numpy(self._score_sequences(sequences.rows(slice(start, start + step))))
                out.append(full if items is None else np.take_along_axis(full, items[start : start + step], axis=1))
                continue
            if items is None:
                out.append(self._to_numpy(self._score_known(batch, rows)))
                continue
            candidates = items[start : start + step]
            direct = self._score_pairs(batch, candidates, rows)
            if direct is not None:
                out.append(self._to_numpy(direct))
            else:
                full = self._to_numpy(self._score_known(batch, rows))
                out.append(np.take_along_axis(full, candidates, axis=1))
        if not out:
            return np.zeros((0, self.n_items if items is None else items.shape[1]), dtype=np.float32)
        return _joined(out)

    @torch.no_grad()
    def score_histories(self, rows: sp.csr_matrix, items: np.ndarray | None = None, sequences: Sequences | None = None) -> np.ndarray:
        """Fold-in: scores for new users described only by their history rows (users × n_items).
        ``sequences`` gives the same histories in order (one per row) to the models that read order."""
        self._check_fitted()
        rows = sp.csr_matrix(rows)
        if rows.shape[1] != self.n_items:
            raise ModelError(f"history rows have {rows.shape[1]} columns but the model knows {self.n_items} items")
        ordered = self._reads_sequences(sequences, rows.shape[0])
        self._eval_mode()
        step = self._batch_size_for_scoring()
        if ordered:
            out = [self._to_numpy(self._score_sequences(sequences.rows(slice(s, s + step)))) for s in range(0, rows.shape[0], step)]
        else:
            out = [self._to_numpy(self._score_new(rows[s : s + step])) for s in range(0, rows.shape[0], step)]
        scores = _joined(out) if out else np.zeros((0, self.n_items), dtype=np.float32)
        return scores if items is None else scores[:, np.asarray(items)]

    def history_row(self, item_ids: np.ndarray, weights: np.ndarray | None = None) -> sp.csr_matrix:
        item_ids = np.atleast_1d(np.asarray(item_ids, dtype=np.int64))
        if len(item_ids) and (item_ids.min() < 0 or item_ids.max() >= self.n_items):
            raise ModelError(f"item index out of range: this model knows {self.n_items} items")
        values = np.ones(len(item_ids), dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
        row = sp.csr_matrix((values, (np.zeros(len(item_ids), dtype=np.int64), item_ids)), shape=(1, self.n_items))
        row.sum_duplicates()
        return row

    def fold_in(self, item_ids: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Scores over every item for a new user who interacted with ``item_ids``; a model that reads
        order reads them in the order given (``"as-added"``)."""
        row = self.history_row(item_ids, weights)
        return self.score_histories(row, sequences=Sequences.from_item_lists([item_ids], "as-added"))[0]

    @staticmethod
    def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, scores.shape[1])
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        return top, np.take_along_axis(scores, top, axis=1)

    def _exclude(self, scores: np.ndarray, rows: sp.csr_matrix) -> np.ndarray:
        scores = scores.astype(np.float32, copy=True)
        scores[np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)), rows.indices] = -np.inf
        return scores

    def recommend(
        self, users: np.ndarray | int, k: int = 10, exclude_seen: bool = True, history: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores per user, never a seen item when ``exclude_seen``."""
        users = self._check_users(users)
        history = self.known if history is None else history
        scores = self.score(users, history=history)
        if exclude_seen:
            scores = self._exclude(scores, history[users])
        return self._top_k(scores, k)

    def recommend_for_history(self, item_ids: np.ndarray, k: int = 10, exclude_seen: bool = True, weights=None):
        """Top-``k`` for a new user with this history (fold-in); order-reading models read ``item_ids`` in the order given."""
        row = self.history_row(item_ids, weights)
        scores = self.score_histories(row, sequences=Sequences.from_item_lists([item_ids], "as-added"))
        if exclude_seen:
            scores = self._exclude(scores, row)
        items, values = self._top_k(scores, k)
        return items[0], values[0]

    # ------------------------------------------------------------------ embeddings and similarity
    def user_embeddings(self) -> np.ndarray | None:
        """One vector per known user, or None where the model has none."""
        return None

    def item_embeddings(self) -> np.ndarray | None:
        """One vector per item, or None where the model has none."""
        return None

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Similarity of ``items`` to every item: cosine of item embeddings when the model has them,
        else cosine of co-occurrence in the training interactions."""
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        vectors = self.item_embeddings()
        if vectors is not None:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            return vectors[items] @ vectors.T
        known = self.known.tocsc().astype(np.float32)
        norms = np.sqrt(np.asarray(known.multiply(known).sum(axis=0))).ravel()
        co = np.asarray((known[:, items].T @ known).todense())
        return co / np.maximum(norms[items, None] * norms[None, :], 1e-12)

    def similar_items(self, items: np.ndarray | int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar other items to each of ``items``."""
        self._check_fitted()
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        sims = self.item_similarity(items).astype(np.float32)
        sims[np.arange(len(items)), items] = -np.inf
        return self._top_k(sims, k)

    # ------------------------------------------------------------------ inside views (recsys_core.inside)
    @classmethod
    def offers(cls, view: str) -> bool:
        """Whether this model implements the optional view ``view`` (``"item_item_weights"``, ``"latent_codes"``)."""
        return getattr(cls, view) is not getattr(Recommender, view)

    def require(self, view: str) -> None:
        """A ModelError naming the models that have ``view`` unless this one implements it."""
        if not self.offers(view):
            what = {"item_item_weights": "item-item weights", "latent_codes": "latent code to show"}[view]
            raise ModelError(f"{self.name} has no {what}", _offered_by(view))

    def item_item_weights(self, items: np.ndarray) -> np.ndarray:
        """The learned item-item weights among ``items``: entry [a, b] is the weight of items[a] on items[b]'s
        score (float32). Only models that learn such weights implement it (:meth:`offers`)."""
        self.require("item_item_weights")
        raise NotImplementedError  # unreachable: a model that offers the view overrides this method

    def latent_codes(self, rows: sp.csr_matrix) -> np.ndarray:
        """The latent code of each history row (users × n_items): the mean of q(z | x), a DAE's code
        (float32, one row each). Only models with such a code implement it (:meth:`offers`)."""
        self.require("latent_codes")
        raise NotImplementedError  # unreachable: a model that offers the view overrides this method

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise ModelError(f"{self.name} ranks items and does not predict explicit ratings", "Use autorec or deeprec for the ratings protocol.")

    # ------------------------------------------------------------------ persistence
    def _eval_mode(self) -> None:
        network = getattr(self, "network", None)
        if isinstance(network, torch.nn.Module):
            network.eval()

    def _state(self) -> dict[str, torch.Tensor]:
        network = getattr(self, "network", None)
        if isinstance(network, torch.nn.Module):
            return {f"network.{k}": v for k, v in network.state_dict().items()}
        return {}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        network = getattr(self, "network", None)
        if isinstance(network, torch.nn.Module):
            state = {k[len("network.") :]: v for k, v in tensors.items() if k.startswith("network.")}
            network.load_state_dict(state)
            network.to(self.device)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything needed to score again: the model's tensors plus the known interactions."""
        self._check_fitted()
        tensors = {k: v.detach().cpu().contiguous() for k, v in self._state().items()}
        tensors["known.indptr"] = torch.as_tensor(self.known.indptr.astype(np.int64))
        tensors["known.indices"] = torch.as_tensor(self.known.indices.astype(np.int64))
        return tensors

    def metadata(self) -> dict:
        return {"model": self.name, "config": self.config.to_json(), "n_users": self.n_users, "n_items": self.n_items, "meta": self.meta}

    @classmethod
    def from_state(cls, metadata: dict, tensors: dict[str, torch.Tensor], device: str | torch.device = "cpu") -> Recommender:
        model = cls(cls.Config.from_json(metadata["config"]))
        model.device = resolve_device(device)
        model.n_users, model.n_items = int(metadata["n_users"]), int(metadata["n_items"])
        model.meta = dict(metadata.get("meta", {}))
        indptr = tensors["known.indptr"].numpy()
        indices = tensors["known.indices"].numpy()
        model.known = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(model.n_users, model.n_items))
        model._build()
        model._load_state({k: v for k, v in tensors.items() if not k.startswith("known.")})
        model.fitted = True
        return model


class LossModule(torch.nn.Module):
    """A network with a training step's loss as its ``forward``: ``module(loss_of, *inputs)`` returns
    ``loss_of(*inputs)``, which may call any of the network's methods. This is what
    ``DistributedDataParallel`` wraps under torchrun, since it averages gradients only for work
    done inside the ``forward`` of the module it wraps."""

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network

    def forward(self, loss_of: Callable[..., torch.Tensor], *inputs: Any) -> torch.Tensor:
        return loss_of(*inputs)


class TorchRecommender(Recommender):
    """A recommender whose parameters live in ``self.network`` (a ``torch.nn.Module``)."""

    iterative = True
    Config: ClassVar[type[ModelConfig]] = TrainingConfig
    network: torch.nn.Module

    def _build(self) -> None:
        self.network = self._make_network().to(self.device)

    def _make_network(self) -> torch.nn.Module:
        raise NotImplementedError

    def train_step(self, loss_of: Callable[..., torch.Tensor], *inputs: Any) -> float:
        """One step of ``self.optimizer`` on ``loss_of(*inputs)``; returns the loss as a float.

        The loss is computed through ``self.step_module``, a :class:`LossModule` around the network:
        as it is in one process, wrapped in ``DistributedDataParallel`` under torchrun, whose backward
        pass then averages the gradients over the ranks.
        """
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.step_module(loss_of, *inputs)
        try:
            loss.backward()
        except RuntimeError as error:
            from ..distributed import current, rank_failed

            if current() is None:
                raise
            raise rank_failed(error) from None
        self.optimizer.step()
        return float(loss.detach())

    def make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.network.parameters(), lr=self.config.learning_rate, weight_decay=self.config.weight_decay)

    def _prepare(self, context: FitContext, train: Interactions) -> None:
        from ..distributed import data_parallel

        if context.compile_network:
            self.network.compile()  # in place: the same parameters and state_dict keys, a compiled forward
        self.optimizer = self.make_optimizer()
        self.step_module = data_parallel(LossModule(self.network))
