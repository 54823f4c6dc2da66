"""One experiment, end to end: data → split → fit with validation → one test pass → saved run.

The CLI and the web app both call :func:`run_experiment`, so a run means the same thing wherever
it was made.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import DataError, ModelError
from .evaluation import HEADLINE, EvaluationResult, Evaluator
from .interactions import Interactions
from .models import create_model
from .models.base import Recommender
from .splits import PROTOCOL_SPLITS, Split, make_split
from .trainer import Trainer, TrainingEvent


@dataclass(frozen=True)
class DataSource:
    """Where a run's data comes from, stored in run.json so the run can be evaluated again.

    ``kind`` is "builtin" (``name`` is a built-in dataset), "file" (``path`` is a file inside the
    data home and ``options`` the :class:`~recsys_core.datasets.UserFileOptions` it was read with) or
    "drugscom-file" (a Drugs.com review file the user brought, read like the built-in drugscom data:
    rows without a condition and scraping artefacts dropped, reviews kept as evidence).
    """

    kind: str
    name: str
    path: str | None = None
    options: dict | None = None

    @classmethod
    def builtin(cls, name: str) -> DataSource:
        return cls("builtin", name)

    @classmethod
    def file(cls, path: str | Path, options: Any, name: str | None = None) -> DataSource:
        opts = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else dict(options)
        return cls("file", name or Path(path).stem, str(Path(path).resolve()), opts)

    @classmethod
    def drugscom_file(cls, path: str | Path, name: str | None = None) -> DataSource:
        return cls("drugscom-file", name or Path(path).stem, str(Path(path).resolve()))

    def load(self, download: bool = False, progress: Any = False) -> Interactions:
        from . import datasets

        if self.kind == "builtin":
            return datasets.load_dataset(self.name, download=download, progress=progress)
        if self.kind not in ("file", "drugscom-file"):
            raise DataError(f"unknown data source kind {self.kind!r}")
        if not self.path or not Path(self.path).exists():
            raise DataError(f"the data file {self.path!r} is no longer there", "Upload or point to the file again.")
        if self.kind == "drugscom-file":
            return datasets.read_drugscom(self.path, name=self.name)
        return datasets.read_user_file(self.path, datasets.UserFileOptions(**(self.options or {})), name=self.name)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> DataSource:
        return cls(**{k: data.get(k) for k in ("kind", "name", "path", "options")})


@dataclass
class ExperimentResult:
    run_id: str | None
    model: Recommender
    split: Split
    test: EvaluationResult
    evaluations: dict[str, EvaluationResult]
    record: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The CLI's ``--json`` line."""
        return {
            "run_id": self.run_id,
            "dataset": self.record["dataset"]["name"],
            "model": self.model.name,
            "protocol": self.test.protocol,
            "metrics": {k: round(v, 6) for k, v in self.test.metrics.items()},
            "intervals": {k: [round(a, 6), round(b, 6)] for k, (a, b) in self.test.intervals.items()},
            "fit_seconds": round(self.record["fit_seconds"], 3),
            "epochs_run": self.record["epochs_run"],
        }


def companion_protocols(protocol: str) -> list[str]:
    """Protocols evaluated on the same test split: sampled and full ranking go together."""
    if protocol in ("loo-sampled", "loo-full"):
        return [protocol] + [p for p in ("loo-sampled", "loo-full") if p != protocol]
    return [protocol]


def run_experiment(
    data: Interactions | DataSource,
    model_name: str,
    protocol: str = "loo-sampled",
    seed: int = 0,
    device: str = "auto",
    overrides: dict[str, Any] | None = None,
    epochs: int | None = None,
    refit: bool = False,
    callback: Callable[[TrainingEvent], None] | None = None,
    cancel: Any = None,
    progress: bool = False,
    save: bool = True,
    source: DataSource | None = None,
    split: Split | None = None,
    loo_order: str = "time",
) -> ExperimentResult:
    """Train ``model_name`` on the split ``protocol`` needs, select on validation, test once, save.

    ``refit`` retrains the selected configuration (the best epoch count) on train + validation
    before the test pass; the run records which was done. ``loo_order`` ("time" or "random") picks
    the held-out items of leave-one-out; the run's split info records it.
    """
    if protocol not in PROTOCOL_SPLITS:
        raise ModelError(f"unknown protocol {protocol!r}", "Protocols: " + ", ".join(PROTOCOL_SPLITS))
    if isinstance(data, DataSource):
        source, data = data, data.load()
    model = create_model(model_name, **(overrides or {}))
    if protocol == "ratings" and not model.predicts_ratings:
        raise ModelError(f"{model_name} ranks items and cannot be evaluated on ratings", "Use autorec or deeprec, or a ranking protocol.")
    if protocol == "ratings" and data.rating is None:
        raise DataError("the ratings protocol needs a rating column", "Choose a rating column or a ranking protocol.")
    split = split if split is not None else make_split(data, protocol, seed=seed, loo_order=loo_order)
    trainer = Trainer(device=device, seed=seed, epochs=epochs, cancel=cancel, progress=progress)
    started = time.perf_counter()
    history = trainer.fit(model, split.train, validation=split, callback=callback)
    refit_epochs = None
    if refit:
        refit_epochs = history.best_epoch or (epochs if epochs is not None else getattr(model.config, "epochs", None))
        # Keep what validation chose: the epoch count, and any setting a closed-form model tuned.
        chosen = (history.tuning or {}).get("chosen", {})
        model = create_model(model_name, **{**(overrides or {}), **chosen})
        Trainer(device=device, seed=seed, epochs=refit_epochs, patience=0, cancel=cancel, progress=progress).fit(
            model, split.train_with_validation(), validation=None, callback=callback
        )
        model.training_history = history
    fit_seconds = time.perf_counter() - started

    evaluations = {p: Evaluator(split, "test", p, seed=seed).evaluate(model) for p in companion_protocols(protocol)}
    test = evaluations[protocol]
    record = {
        "dataset": {
            "name": data.name,
            "source": (source or DataSource.builtin(data.name)).to_json(),
            "content_hash": data.content_hash(),
            "stats": {k: v for k, v in data.stats().items() if k in ("users", "items", "interactions", "density")},
        },
        "protocol": protocol,
        "headline": HEADLINE[protocol],
        "split": split.info,
        "seed": seed,
        "device": history.device,
        "fit_seconds": fit_seconds,
        "epochs_run": history.epochs_run,
        "best_epoch": history.best_epoch,
        "stopped_early": history.stopped_early,
        "history": history.epochs,
        "tuning": history.tuning,
        "refit": {"done": refit, "epochs": refit_epochs, "on": "train + validation"} if refit else {"done": False},
        "validation": history.validation,
        "test": {p: r.to_json() for p, r in evaluations.items()},
        "metrics": test.metrics,
        "intervals": {k: list(v) for k, v in test.intervals.items()},
        # Microseconds: runs saved in the same second (several models trained in one go) still order newest first.
        "created": datetime.now().isoformat(timespec="microseconds"),
    }
    run_id = None
    if save:
        from .runs import save_run

        # The saved model knows every interaction of the data set, so recommendations made from the
        # run exclude everything a user has seen, not only the training part.
        model.known = data.to_csr() if len(data) else model.known
        record["known_history"] = "all interactions of the data set"
        run_id = save_run(
            model,
            users=data.users,
            items=data.items,
            record=record,
            item_info=data.item_info,
            user_info=data.user_info,
            evaluations={p: r.to_json(per_user=True) for p, r in evaluations.items()},
        )
    return ExperimentResult(run_id, model, split, test, evaluations, record)


def evaluate_run(run_id: str, protocol: str | None = None, data: Interactions | None = None) -> EvaluationResult:
    """Evaluate a saved run again on its own test split (rebuilt from its data source and seed)."""
    from .runs import load_run

    run = load_run(run_id)
    record = run.record
    protocol = protocol or record["protocol"]
    if PROTOCOL_SPLITS[protocol] != PROTOCOL_SPLITS[record["protocol"]]:
        raise ModelError(
            f"run {run_id} was trained on a {PROTOCOL_SPLITS[record['protocol']]} split; {protocol} needs a {PROTOCOL_SPLITS[protocol]} split",
            "Train a new run with that protocol.",
        )
    if data is None:
        data = DataSource.from_json(record["dataset"]["source"]).load()
    if data.content_hash() != record["dataset"]["content_hash"]:
        raise DataError(
            f"the data of {record['dataset']['name']!r} has changed since run {run_id} was trained",
            "Evaluate on the data the run was trained on, or train a new run.",
        )
    split = make_split(data, protocol, seed=record["seed"], loo_order=record.get("split", {}).get("loo_order", "time"))
    # Score from the training history (the evaluator passes each part's own history); the saved
    # model's `known` holds all interactions, which must not reach the models that read it.
    run.model.known = split.train.to_csr()
    return Evaluator(split, "test", protocol, seed=record["seed"]).evaluate(run.model)
