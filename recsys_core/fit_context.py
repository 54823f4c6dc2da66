"""What the trainer hands a model for one fit, and what a fit reports back.

The trainer owns the loop (seeding, epochs, validation, early stopping, progress, cancellation); a
model owns what one epoch means. They meet here, in one frozen :class:`FitContext` the trainer
builds per fit and passes to the model's hooks (``begin_fit(context, train)``,
``_prepare(context, train)``, ``train_epoch(context, epoch)``). Everything a model needs from the
loop is a declared field: the device, the seeded generator every draw of the fit comes from, the
mixed precision flag, the batch callback (progress and cancellation), the validation evaluator and
``fit_nested`` to train a sub-model through the same loop (NeuMF pretrains its GMF and MLP that
way). So the trainer never sets attributes on a model, and ``recsys_core.models`` never imports the
trainer: this module depends on neither.

A fit may run in stages (:class:`FitStage`): NeuMF pretrains a GMF, then an MLP, then fine-tunes.
Progress events (:class:`TrainingEvent`) name the stage and count epochs within it, and
``TrainingEvent.fraction`` places them on one scale over every stage's epoch budget, so a bar
moves from the first pretraining batch to the last fine-tuning one and never goes back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import torch

from .device import autocast

if TYPE_CHECKING:
    from .evaluation import Evaluator
    from .interactions import Interactions
    from .models.base import Recommender

TrainingPhase = Literal["split", "selection", "refit", "test"]
EventKind = Literal["start", "batch", "epoch", "end"]


@dataclass(frozen=True)
class FitStage:
    """One stage of a fit: its name as the progress line shows it and its epoch budget (an upper
    bound: early stopping may end it sooner)."""

    name: str
    epochs: int


@dataclass
class TrainingEvent:
    """What a callback receives: ``kind`` is "start", "batch", "epoch" or "end".

    ``epoch`` / ``epochs`` count within the current ``stage``; ``stage_offset`` is the epoch budget
    of the stages before it and ``total_epochs`` that of all stages (0: the same as ``epochs``, a
    fit in one stage)."""

    kind: EventKind
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
    """"split": the data is being split (one "start" event); "selection": training with validation; "refit": the
    chosen configuration retrained on train + validation; "test": one "start" event per test protocol evaluated."""
    stage: str = ""
    stage_index: int = 0
    stage_count: int = 1
    stage_offset: int = 0
    total_epochs: int = 0

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1], over every stage's epochs."""
        if self.kind == "end":
            return 1.0
        total = self.total_epochs or self.epochs
        if not total:
            return 0.0
        within = self.batch / self.batches if self.batches else (1.0 if self.kind == "epoch" else 0.0)
        done = min(self.epochs, (self.epoch - 1) + within) if self.epoch else 0.0
        return min(1.0, (self.stage_offset + done) / total)


@dataclass
class TrainingHistory:
    """What one fit did, returned by ``Trainer.fit`` (never stored on the model)."""

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


class NestedFit(Protocol):
    """Train ``model`` on ``train`` through the same loop, as the named ``stage`` of this fit.

    ``seed`` seeds the nested fit (a model draws it from ``context.rng`` so the whole fit stays
    deterministic); ``epochs`` fixes its budget (None: the sub-model's own config); ``validate``
    selects its best epoch on this fit's validation evaluator with early stopping, else every epoch
    runs. Progress and cancellation go through this fit's callback."""

    def __call__(
        self, model: Recommender, train: Interactions, *, stage: str, seed: int, epochs: int | None = None, validate: bool = True
    ) -> TrainingHistory: ...


@dataclass(frozen=True)
class FitContext:
    """Everything a model receives from the trainer for one fit (see the module docstring)."""

    device: torch.device
    rng: np.random.Generator
    """The fit's one seeded generator: shuffles, negatives and any seed a model draws come from it, in order."""
    seed: int
    mixed_precision: bool
    on_batch: Callable[[int, int], None]
    """Called after each batch with (batch, batches): reports progress, raises TrainingCancelled when cancelled."""
    evaluator: Evaluator | None
    """The validation evaluator (None: no validation), for early stopping, tuning and nested fits."""
    fit_nested: NestedFit
    epochs: int = 0
    """The epoch budget of this fit (what the model's config says after the trainer's override)."""
    compile_network: bool = False
    """Compile the network's ``forward`` with ``torch.compile`` before training (``train --compile``)."""

    def batches(self, n: int, batch_size: int) -> Iterator[np.ndarray]:
        """Shuffled index batches over ``n`` examples, reporting each finished batch to ``on_batch``."""
        order = self.rng.permutation(n)
        from .distributed import shard

        order = shard(order)  # under torchrun, this rank's shard of the permutation every rank drew alike
        yield from self._slices(order, batch_size)

    def device_batches(self, n: int, batch_size: int) -> Iterator[torch.Tensor]:
        """:meth:`batches` as int64 tensors on the fit's device: the same permutation (the same draw
        from ``rng``), copied to the device once per epoch, so a batch is a slice there and no index
        array crosses from the host per step."""
        from .distributed import shard

        order = shard(self.rng.permutation(n))
        yield from self._slices(torch.from_numpy(order.astype(np.int64)).to(self.device), batch_size)

    def _slices(self, order, batch_size: int) -> Iterator:
        n = len(order)
        n_batches = max(1, -(-n // batch_size))
        for b in range(n_batches):
            yield order[b * batch_size : (b + 1) * batch_size]
            self.on_batch(b + 1, n_batches)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when mixed precision is on; a no-op on the CPU."""
        return autocast(self.device, self.mixed_precision)
