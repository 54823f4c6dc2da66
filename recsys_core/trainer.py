"""The one training loop: device, seeding, epochs, validation, early stopping, progress, cancellation.

:meth:`Trainer.fit` seeds everything, builds the model's :class:`~recsys_core.fit_context.FitContext`
and hands the model to one of two paths: :meth:`Trainer._fit_closed_form` (one fit, settings chosen on
validation by the model's ``tune``) or :meth:`Trainer._fit_epochs` (the epoch loop, with an
:class:`EarlyStopping` that keeps the best epoch's state). It returns the
:class:`~recsys_core.fit_context.TrainingHistory`; the model keeps nothing of the loop.

A model with stages (NeuMF: pretraining GMF, pretraining MLP, fine-tuning) trains its sub-models
through ``context.fit_nested``: a nested Trainer on the same device and validation, whose batches are
reported as this fit's progress under the stage's name.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .device import choose_threads, device_description, resolve_device, thread_limit
from .errors import ModelError, TrainingCancelled
from .evaluation import Evaluator
from .fit_context import EventKind, FitContext, FitStage, TrainingEvent, TrainingHistory, TrainingPhase
from .interactions import Interactions
from .models.base import Recommender
from .protocols import LOWER_IS_BETTER, get_protocol, validation_protocol_for
from .splits import Split

__all__ = ["EarlyStopping", "Trainer", "TrainingEvent", "TrainingHistory", "TrainingPhase", "fit_model", "seed_everything"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class EarlyStopping:
    """Tracks the best validation epoch and says when to stop.

    ``lower_is_better`` comes from the metric (RMSE: lower; ranking metrics: higher). The best
    epoch's tensors are copied so the model can be put back to them when the loop ends.
    ``patience`` 0 never stops early."""

    metric: str
    patience: int
    lower_is_better: bool
    best_value: float | None = None
    best_epoch: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0

    @classmethod
    def for_metric(cls, metric: str, patience: int) -> EarlyStopping:
        return cls(metric, patience, metric in LOWER_IS_BETTER)

    def update(self, epoch: int, metrics: dict[str, float], model: Recommender) -> bool:
        """Record one epoch's validation ``metrics``; True when it is the best so far."""
        value = metrics[self.metric]
        improved = self.best_value is None or (value < self.best_value if self.lower_is_better else value > self.best_value)
        if improved:
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = copy.deepcopy({k: v.detach().clone() for k, v in model._state().items()})
            self.best_metrics = dict(metrics)
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return bool(self.patience) and self.bad_epochs >= self.patience

    def restore_best(self, model: Recommender) -> None:
        if self.best_state is not None:
            model._load_state(self.best_state)


@dataclass
class _Progress:
    """Turns the loop's moments into :class:`TrainingEvent`s placed within the fit's stages."""

    emit: Callable[[TrainingEvent], None]
    started: float
    stages: tuple[FitStage, ...]
    stage: str
    epoch: int = 0

    def event(self, kind: EventKind, **values: Any) -> TrainingEvent:
        names = [s.name for s in self.stages]
        index = names.index(self.stage) if self.stage in names else len(names) - 1
        stage = self.stages[index]
        return TrainingEvent(
            kind,
            epochs=stage.epochs,
            elapsed=time.perf_counter() - self.started,
            stage=stage.name,
            stage_index=index,
            stage_count=len(self.stages),
            stage_offset=sum(s.epochs for s in self.stages[:index]),
            total_epochs=sum(s.epochs for s in self.stages),
            **values,
        )


class Trainer:
    """Fits any :class:`Recommender`.

    Args:
        device: "auto" (CUDA when available), "cpu" or "cuda".
        seed: seeds numpy, torch and the fit's generator; runs on the CPU are deterministic.
        validation_metric: chooses the best epoch (default NDCG@10; RMSE for rating models).
        epochs: overrides the model config's ``epochs`` when given.
        patience: overrides the model config's ``patience`` when given (0: never stop early).
        mixed_precision: bf16 autocast on CUDA.
        compile_network: compile each network's ``forward`` with ``torch.compile`` (inductor) before
            training: a first step slower by the compile time (tens of seconds), faster steps after,
            mostly on GPUs. The weights and the saved run are the same as without it.
        cancel: a callable returning True (or a ``threading.Event``) to stop at the next batch.
        progress: show a tqdm bar on the terminal.
        threads: CPU threads for torch and BLAS during the fit; None chooses them
            (:func:`recsys_core.device.choose_threads`: one per physical core, one for models with
            narrow steps; never from the machine's load, so a seeded fit gives the same result every
            time). Each epoch's record says how many it used.
    """

    def __init__(
        self,
        device: str | torch.device = "auto",
        seed: int = 0,
        validation_metric: str | None = None,
        epochs: int | None = None,
        patience: int | None = None,
        mixed_precision: bool = True,
        compile_network: bool = False,
        cancel: Callable[[], bool] | Any = None,
        progress: bool = False,
        threads: int | None = None,
    ):
        self.device = resolve_device(device)
        self.seed = seed
        self.validation_metric = validation_metric
        self.epochs = epochs
        self.patience = patience
        self.mixed_precision = mixed_precision
        self.compile_network = compile_network
        self.cancel = cancel
        self.progress = progress
        self.threads = threads
        if threads is not None:
            choose_threads(threads)  # refuse a bad count before any work

    def _cancelled(self) -> bool:
        if self.cancel is None:
            return False
        if hasattr(self.cancel, "is_set"):
            return self.cancel.is_set()
        return bool(self.cancel())

    def _check_cancelled(self) -> None:
        if self._cancelled():
            raise TrainingCancelled("training was cancelled")

    def _validation_evaluator(self, model: Recommender, validation: Any) -> Evaluator | None:
        if validation is None or isinstance(validation, Evaluator):
            return validation
        if isinstance(validation, Split):
            protocol = validation_protocol_for(validation.kind)
            if not protocol.supports(model):
                return None
            # The run's seed, like the test pass: validation candidates must not be fixed whatever the seed.
            return Evaluator(validation, "validation", protocol.name, ks=protocol.validation_ks, seed=self.seed)
        raise ModelError(f"validation must be a Split or an Evaluator, not {type(validation).__name__}")

    def _metric(self, evaluator: Evaluator | None) -> str:
        """The validation metric: the one given, else the validated protocol's (without validation none is read)."""
        if self.validation_metric:
            return self.validation_metric
        return get_protocol(evaluator.protocol).validation_metric if evaluator is not None else "NDCG@10"

    def _epoch_budget(self, model: Recommender) -> int:
        epochs = self.epochs if self.epochs is not None else getattr(model.config, "epochs", 0)
        if self.epochs is not None and getattr(model.config, "epochs", None) not in (None, self.epochs):
            # One source for the epoch budget: what depends on it inside the model (KL annealing,
            # NeuMF's pretraining) reads config.epochs, so an override must land there too.
            model.config = dataclasses.replace(model.config, epochs=self.epochs)
        return epochs

    def fit(
        self,
        model: Recommender,
        train: Interactions,
        validation: Any = None,
        callback: Callable[[TrainingEvent], None] | None = None,
        *,
        stages: tuple[FitStage, ...] | None = None,
        stage: str | None = None,
    ) -> TrainingHistory:
        """Fit ``model`` on ``train``; ``validation`` (a Split or an Evaluator) selects the best epoch.

        ``stages``/``stage`` place this fit within a larger one's progress (a nested fit); by default
        the fit's stages are the model's own and this loop is the last of them."""
        seed_everything(self.seed)
        rng = np.random.default_rng(self.seed)
        evaluator = self._validation_evaluator(model, validation)
        history = TrainingHistory(device=device_description(self.device))
        started = time.perf_counter()
        epochs = self._epoch_budget(model)
        patience = self.patience if self.patience is not None else getattr(model.config, "patience", 0)
        stages = stages or (model.fit_stages(epochs) if model.iterative else (FitStage("training", 0),))
        progress = _Progress(callback or (lambda event: None), started, stages, stage or stages[-1].name)

        def on_batch(batch: int, batches: int) -> None:
            self._check_cancelled()
            progress.emit(progress.event("batch", epoch=progress.epoch, batch=batch, batches=batches))

        def fit_nested(sub: Recommender, sub_train: Interactions, *, stage: str, seed: int, epochs: int | None = None, validate: bool = True) -> TrainingHistory:
            nested = Trainer(
                device=self.device, seed=seed, mixed_precision=self.mixed_precision, compile_network=self.compile_network, epochs=epochs,
                patience=None if validate else 0, cancel=self.cancel, threads=self.threads,
            )  # fmt: skip

            def relay(event: TrainingEvent) -> None:  # the sub-model's batches are this fit's progress
                if event.kind == "batch":
                    progress.emit(dataclasses.replace(event, elapsed=time.perf_counter() - started))

            return nested.fit(sub, sub_train, validation=evaluator if validate else None, callback=relay, stages=stages, stage=stage)

        context = FitContext(
            device=self.device,
            rng=rng,
            seed=self.seed,
            mixed_precision=self.mixed_precision,
            on_batch=on_batch,
            evaluator=evaluator,
            fit_nested=fit_nested,
            epochs=epochs,
            compile_network=self.compile_network,
        )
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=max(1, epochs) if model.iterative else 1, desc=f"{model.name}", unit="epoch", leave=False)
        # A fit starts at its first stage (a NeuMF with pretraining: before the GMF's first batch).
        progress.emit(dataclasses.replace(progress, stage=stages[0].name).event("start", message=f"{model.name} on {history.device}"))
        try:
            with thread_limit(self._threads_for(model)):
                model.begin_fit(context, train)  # under torchrun, wrapping the network in DDP starts every rank from rank 0's weights
                if model.iterative:
                    stopping = EarlyStopping.for_metric(self._metric(evaluator), patience)
                    self._fit_epochs(model, context, history, stopping, progress, bar)
                else:
                    self._fit_closed_form(model, evaluator, history, started)
                    if bar:
                        bar.update(1)
        finally:
            if bar:
                bar.close()
        history.fit_seconds = time.perf_counter() - started
        progress.emit(progress.event("end", epoch=history.epochs_run, best_epoch=history.best_epoch, metrics=history.validation))
        return history

    def _threads_for(self, model: Recommender) -> int:
        """CPU threads for ``model``'s fit (on a GPU the host's part is small: one unless asked for more)."""
        if self.device.type == "cuda":
            return self.threads or 1
        return choose_threads(self.threads, wide_steps=model.wide_steps)

    @staticmethod
    def _fit_closed_form(model: Recommender, evaluator: Evaluator | None, history: TrainingHistory, started: float) -> None:
        """The model fitted in ``begin_fit``; settings it may choose are tuned on validation here."""
        if evaluator is not None:
            tuned = model.tune(evaluator)
            if tuned:
                history.tuning = tuned
            history.validation = evaluator.evaluate(model).metrics
        history.epochs.append({"epoch": 0, "seconds": time.perf_counter() - started, "threads": torch.get_num_threads(), **history.validation})

    def _fit_epochs(
        self, model: Recommender, context: FitContext, history: TrainingHistory, stopping: EarlyStopping, progress: _Progress, bar: Any
    ) -> None:
        """Epochs until the budget or early stopping; the model ends at its best validation epoch."""
        for epoch in range(1, context.epochs + 1):
            progress.epoch = epoch
            self._check_cancelled()
            epoch_start = time.perf_counter()
            if hasattr(model, "network"):
                model.network.train()
            stats = model.train_epoch(context, epoch)
            record = {"epoch": epoch, "seconds": time.perf_counter() - epoch_start, "threads": torch.get_num_threads()}
            record.update({k: float(v) for k, v in stats.items()})
            if context.evaluator is not None:
                metrics = context.evaluator.evaluate(model).metrics
                record.update(metrics)
                if stopping.update(epoch, metrics, model):
                    history.best_epoch, history.validation = epoch, dict(metrics)
            history.epochs.append(record)
            if bar:
                bar.update(1)
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k in ("loss", stopping.metric)})
            progress.emit(
                progress.event(
                    "epoch",
                    epoch=epoch,
                    loss=record.get("loss"),
                    metrics={k: v for k, v in record.items() if k not in ("epoch", "seconds", "threads")},
                    best_epoch=history.best_epoch,
                )
            )
            if context.evaluator is not None and stopping.should_stop:
                history.stopped_early = True
                break
        stopping.restore_best(model)


def fit_model(
    model: Recommender,
    train: Interactions,
    validation: Any = None,
    callback: Callable[[TrainingEvent], None] | None = None,
    **trainer_options: Any,
) -> Recommender:
    """Fit ``model`` with a fresh :class:`Trainer` (``trainer_options`` are its arguments) and return
    the model, for scripts and tests that do not need the :class:`TrainingHistory`."""
    Trainer(**trainer_options).fit(model, train, validation=validation, callback=callback)
    return model
