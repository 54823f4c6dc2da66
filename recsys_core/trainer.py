"""The one training loop: device, seeding, epochs, validation, early stopping, progress, cancellation."""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from .errors import ModelError, TrainingCancelled
from .evaluation import LOWER_IS_BETTER, Evaluator
from .interactions import Interactions
from .models.base import Recommender, device_description, resolve_device
from .splits import Split

TrainingPhase = Literal["selection", "refit"]


@dataclass
class TrainingEvent:
    """What a callback receives: ``kind`` is "start", "batch", "epoch" or "end"."""

    kind: str
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    best_epoch: int | None = None
    message: str = ""
    phase: TrainingPhase = "selection"
    """"selection": training with validation; "refit": the chosen configuration retrained on train + validation."""

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1]."""
        if self.kind == "end":
            return 1.0
        if not self.epochs:
            return 0.0
        within = self.batch / self.batches if self.batches else (1.0 if self.kind == "epoch" else 0.0)
        return min(1.0, ((self.epoch - 1) + within) / self.epochs) if self.epoch else 0.0


@dataclass
class TrainingHistory:
    device: str = "cpu"
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    fit_seconds: float = 0.0
    validation: dict[str, float] = field(default_factory=dict)
    tuning: dict | None = None

    @property
    def epochs_run(self) -> int:
        """Training epochs run (0 for closed-form models, whose single record is epoch 0)."""
        return sum(1 for record in self.epochs if record["epoch"] > 0)

    def to_json(self) -> dict:
        return {
            "device": self.device,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "fit_seconds": self.fit_seconds,
            "epochs_run": self.epochs_run,
            "validation": self.validation,
            "tuning": self.tuning,
        }


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Fits any :class:`Recommender`.

    Args:
        device: "auto" (CUDA when available), "cpu" or "cuda".
        seed: seeds numpy, torch and the model's generator; runs on the CPU are deterministic.
        validation_metric: chooses the best epoch (default NDCG@10; RMSE for rating models).
        epochs: overrides the model config's ``epochs`` when given.
        patience: overrides the model config's ``patience`` when given (0: never stop early).
        mixed_precision: bf16 autocast on CUDA.
        cancel: a callable returning True (or a ``threading.Event``) to stop at the next batch.
        progress: show a tqdm bar on the terminal.
    """

    def __init__(
        self,
        device: str = "auto",
        seed: int = 0,
        validation_metric: str | None = None,
        epochs: int | None = None,
        patience: int | None = None,
        mixed_precision: bool = True,
        cancel: Callable[[], bool] | Any = None,
        progress: bool = False,
    ):
        self.device = resolve_device(device)
        self.seed = seed
        self.validation_metric = validation_metric
        self.epochs = epochs
        self.patience = patience
        self.mixed_precision = mixed_precision
        self.cancel = cancel
        self.progress = progress

    def _cancelled(self) -> bool:
        if self.cancel is None:
            return False
        if hasattr(self.cancel, "is_set"):
            return self.cancel.is_set()
        return bool(self.cancel())

    def _validation_evaluator(self, model: Recommender, validation: Any) -> Evaluator | None:
        if validation is None or isinstance(validation, Evaluator):
            return validation
        if isinstance(validation, Split):
            protocol = {"leave-one-out": "loo-sampled", "heldout-users": "heldout-users", "ratio": "ratings"}[validation.kind]
            if protocol == "ratings" and not model.predicts_ratings:
                return None
            # The run's seed, like the test pass: validation candidates must not be fixed whatever the seed.
            return Evaluator(validation, "validation", protocol, ks=(10,) if protocol == "loo-sampled" else (10, 20, 50, 100), seed=self.seed)
        raise ModelError(f"validation must be a Split or an Evaluator, not {type(validation).__name__}")

    def fit(self, model: Recommender, train: Interactions, validation: Any = None, callback: Callable[[TrainingEvent], None] | None = None) -> TrainingHistory:
        seed_everything(self.seed)
        rng = np.random.default_rng(self.seed)
        model.device = self.device
        model.mixed_precision = self.mixed_precision
        evaluator = self._validation_evaluator(model, validation)
        metric = self.validation_metric or ("RMSE" if evaluator is not None and evaluator.protocol == "ratings" else "NDCG@10")
        if evaluator is not None and evaluator.protocol == "heldout-users" and metric == "NDCG@10":
            metric = "NDCG@100"
        lower_better = metric in LOWER_IS_BETTER
        history = TrainingHistory(device=device_description(self.device))
        emit = callback or (lambda event: None)
        started = time.perf_counter()
        epochs = self.epochs if self.epochs is not None else getattr(model.config, "epochs", 0)
        if self.epochs is not None and getattr(model.config, "epochs", None) not in (None, self.epochs):
            # One source for the epoch budget: what depends on it inside the model (KL annealing,
            # NeuMF's pretraining) reads config.epochs, so an override must land there too.
            model.config = dataclasses.replace(model.config, epochs=self.epochs)
        patience = self.patience if self.patience is not None else getattr(model.config, "patience", 0)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=max(1, epochs) if model.iterative else 1, desc=f"{model.name}", unit="epoch", leave=False)

        current_epoch = 0

        def on_batch(batch: int, batches: int) -> None:
            if self._cancelled():
                raise TrainingCancelled("training was cancelled")
            emit(TrainingEvent("batch", epoch=current_epoch, epochs=epochs, batch=batch, batches=batches, elapsed=time.perf_counter() - started))

        model.on_batch = on_batch
        model.validation_evaluator = evaluator  # lets a model pretrain sub-models with the same validation
        emit(TrainingEvent("start", epochs=epochs, message=f"{model.name} on {history.device}"))
        try:
            model.prepare(train, rng)
            if not model.iterative:
                if evaluator is not None:
                    tuned = model.tune(evaluator)
                    if tuned:
                        history.tuning = tuned
                    history.validation = evaluator.evaluate(model).metrics
                history.epochs.append({"epoch": 0, "seconds": time.perf_counter() - started, **history.validation})
                if bar:
                    bar.update(1)
            else:
                best_value, best_state, bad_epochs = None, None, 0
                for epoch in range(1, epochs + 1):
                    current_epoch = epoch
                    if self._cancelled():
                        raise TrainingCancelled("training was cancelled")
                    epoch_start = time.perf_counter()
                    if hasattr(model, "network"):
                        model.network.train()
                    stats = model.train_epoch(epoch, rng)
                    record = {"epoch": epoch, "seconds": time.perf_counter() - epoch_start, **{k: float(v) for k, v in stats.items()}}
                    if evaluator is not None:
                        result = evaluator.evaluate(model)
                        record.update(result.metrics)
                        value = result.metrics[metric]
                        improved = best_value is None or (value < best_value if lower_better else value > best_value)
                        if improved:
                            best_value, bad_epochs, history.best_epoch = value, 0, epoch
                            best_state = copy.deepcopy({k: v.detach().clone() for k, v in model._state().items()})
                            history.validation = dict(result.metrics)
                        else:
                            bad_epochs += 1
                    history.epochs.append(record)
                    if bar:
                        bar.update(1)
                        bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k in ("loss", metric)})
                    emit(
                        TrainingEvent(
                            "epoch",
                            epoch=epoch,
                            epochs=epochs,
                            loss=record.get("loss"),
                            metrics={k: v for k, v in record.items() if k not in ("epoch", "seconds")},
                            elapsed=time.perf_counter() - started,
                            best_epoch=history.best_epoch,
                        )
                    )
                    if evaluator is not None and patience and bad_epochs >= patience:
                        history.stopped_early = True
                        break
                if best_state is not None:
                    model._load_state(best_state)
        finally:
            model.on_batch = None
            if bar:
                bar.close()
        history.fit_seconds = time.perf_counter() - started
        model.training_history = history
        emit(TrainingEvent("end", epoch=history.epochs_run, epochs=epochs, elapsed=history.fit_seconds, best_epoch=history.best_epoch, metrics=history.validation))
        return history
