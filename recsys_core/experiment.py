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
from typing import Any

from .beyond import beyond_accuracy_record, shared_lists
from .datasets.source import DEFAULT_THRESHOLD, DataSource, keep_positives  # noqa: F401  (moved to datasets/; old imports)
from .errors import DataError, ModelError
from .evaluation import EvaluationResult, Evaluator
from .fit_context import TrainingPhase
from .interactions import Interactions
from .models import create_model
from .models.base import Recommender
from .protocols import DEFAULT_PROTOCOL, get_protocol
from .splits import Split, make_split
from .trainer import Trainer, TrainingEvent


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
            "positive_threshold": self.record["dataset"].get("positive_rule", {}).get("threshold"),
            "refit": bool(self.record.get("refit", {}).get("done")),
            "differences_meaningful": self.test.differences_meaningful,
            "note": self.test.meaning_note,
            "beyond": self.record.get("beyond"),
        }


def companion_protocols(protocol: str) -> list[str]:
    """Protocols evaluated on the same test split, ``protocol`` first: sampled and full ranking go together."""
    return list(get_protocol(protocol).companions)


def run_experiment(
    data: Interactions | DataSource,
    model_name: str,
    protocol: str = DEFAULT_PROTOCOL,
    seed: int = 0,
    device: str = "auto",
    overrides: dict[str, Any] | None = None,
    epochs: int | None = None,
    refit: bool = True,
    callback: Callable[[TrainingEvent], None] | None = None,
    cancel: Any = None,
    progress: bool = False,
    save: bool = True,
    source: DataSource | None = None,
    split: Split | None = None,
    loo_order: str = "time",
    compile_network: bool = False,
    threads: int | None = None,
) -> ExperimentResult:
    """Train ``model_name`` on the split ``protocol`` needs, select on validation, test once, save.

    ``refit`` (the default) retrains the selected configuration on train + validation before the
    test pass: the epoch count validation chose, any setting a closed-form model tuned, and what the
    fit derived from the epoch budget (KL anneal steps, NeuMF's pretraining epochs). Every model is
    then tested knowing the validation interaction, as models that read the history (EASE, the
    autoencoders) always did. ``refit=False`` tests the model selected on validation as it is; the
    run records which was done. ``loo_order`` ("time" or "random") picks
    the held-out items of leave-one-out; the run's split info records it. ``compile_network``
    compiles the networks' ``forward`` with ``torch.compile`` (see :class:`~recsys_core.trainer.Trainer`);
    ``threads`` fixes the CPU threads of both fits (None: chosen by the trainer, epoch by epoch).
    """
    spec = get_protocol(protocol)
    if isinstance(data, DataSource):
        source, data = data, data.load()
    from .limits import check_memory, check_protocol_data

    check_protocol_data(data, protocol)  # refuse before training, with the reason, what cannot give finite metrics
    model = create_model(model_name, **(overrides or {}))
    check_memory(model_name, data.n_users, data.n_items, len(data), model.config, device)
    spec.check(model, has_ratings=data.rating is not None)

    def announce(phase: TrainingPhase, message: str) -> None:  # the steps around training, for progress lines
        if callback is not None:
            callback(TrainingEvent("start", phase=phase, message=message))

    if split is None:
        announce("split", f"{len(data):,} interactions for {protocol}")
        split = make_split(data, protocol, seed=seed, loo_order=loo_order)
    trainer = Trainer(device=device, seed=seed, epochs=epochs, cancel=cancel, progress=progress, compile_network=compile_network, threads=threads)
    started = time.perf_counter()
    history = trainer.fit(model, split.train, validation=split, callback=callback)
    selected = model
    derived = model.derived_settings()
    refit_epochs = None
    if refit:
        # A closed-form model (EASE, popularity, item-kNN) has no epochs: its refit records none.
        if model.iterative:
            refit_epochs = history.best_epoch or (epochs if epochs is not None else getattr(model.config, "epochs", None))
        # Keep what validation chose: the epoch count, any setting a closed-form model tuned, and
        # the settings derived from the selection's epoch budget (so β follows the same schedule).
        chosen = {**(history.tuning or {}).get("chosen", {}), **derived}
        model = create_model(model_name, **{**(overrides or {}), **chosen})
        relay = (lambda event: callback(dataclasses.replace(event, phase="refit"))) if callback is not None else None
        Trainer(
            device=device, seed=seed, epochs=refit_epochs, patience=0, cancel=cancel, progress=progress, compile_network=compile_network, threads=threads
        ).fit(
            model, split.train_with_validation(), validation=None, callback=relay
        )
    fit_seconds = time.perf_counter() - started

    evaluations = {}
    protocols = companion_protocols(protocol)
    lists = shared_lists(model, split, seed)  # the beyond-accuracy lists, made in the full-ranking pass
    for index, name in enumerate(protocols):
        announce("test", f"{name} ({index + 1} of {len(protocols)})")
        on_block = lists.add if lists is not None and get_protocol(name).sampled_negatives is None else None
        evaluations[name] = Evaluator(split, "test", name, seed=seed).evaluate(model, on_block=on_block)
    test = evaluations[protocol]
    # Data handed over as Interactions is used as it is: record no rule it did not go through.
    source = source or DataSource.builtin(data.name, threshold=None)
    record = {
        "dataset": {
            "name": data.name,
            "source": source.to_json(),
            "positive_rule": {"threshold": source.positive_threshold, "text": source.positive_rule()},
            "content_hash": data.content_hash(),
            "stats": {k: v for k, v in data.stats().items() if k in ("users", "items", "interactions", "density")},
        },
        "protocol": protocol,
        "headline": spec.headline,
        "split": split.info,
        "seed": seed,
        "device": history.device,
        "fit_seconds": fit_seconds,
        "epochs_run": history.epochs_run,
        "best_epoch": history.best_epoch,
        "stopped_early": history.stopped_early,
        "history": history.epochs,
        "tuning": history.tuning,
        "refit": {"done": True, "epochs": refit_epochs, "on": "train + validation", "settings": _jsonable(chosen)} if refit else {"done": False},
        "settings": settings_record(selected, history, seed=seed, refit=refit, refit_epochs=refit_epochs, source=source),
        "validation": history.validation,
        "test": {p: r.to_json() for p, r in evaluations.items()},
        "metrics": test.metrics,
        "intervals": {k: list(v) for k, v in test.intervals.items()},
        "beyond": beyond_accuracy_record(model, split, test, data.item_info, seed, lists=lists),
        # Microseconds: runs saved in the same second (several models trained in one go) still order newest first.
        "created": datetime.now().isoformat(timespec="microseconds"),
    }
    run_id = None
    if save:
        from .runs import save_run

        # The model keeps what it was fitted on (what it scores from when evaluated); what a user has
        # seen in any part of the data goes beside it, so recommendations from the run exclude it all.
        record["known_history"] = "train + validation" if refit else "train"
        record["seen_items"] = "all interactions of the data set"
        run_id = save_run(
            model,
            users=data.users,
            items=data.items,
            record=record,
            item_info=data.item_info,
            user_info=data.user_info,
            evaluations={p: r.to_json(per_user=True) for p, r in evaluations.items()},
            seen=data.to_csr() if len(data) else model.known,
        )
    return ExperimentResult(run_id, model, split, test, evaluations, record)


def _jsonable(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def settings_record(
    model: Recommender, history: Any, seed: int, refit: bool, refit_epochs: int | None, source: DataSource | None = None
) -> dict[str, Any]:
    """The exact settings a run used, the derived ones included, for run.json.

    ``model`` is the model selected on validation (before any refit): its config holds the epoch
    budget the trainer gave it, and ``derived_settings()`` what the fit computed from it."""
    config = model.config
    record: dict[str, Any] = {
        "epoch_budget": getattr(config, "epochs", None),
        "seed": seed,
        "validation_seed": seed,
        "refit": refit,
        "refit_epochs": refit_epochs,
        "derived": _jsonable(model.derived_settings()),
    }
    if "total_anneal_steps" in model.meta:
        betas = [r["beta"] for r in history.epochs if "beta" in r]
        at_best = [r["beta"] for r in history.epochs if r.get("epoch") == history.best_epoch and "beta" in r]
        record["kl"] = {
            "total_anneal_steps": int(model.meta["total_anneal_steps"]),
            "beta_cap": float(config.beta_cap),
            "beta_reached": float(max(betas)) if betas else None,
            "beta_at_best_epoch": float(at_best[0]) if at_best else None,
            "cap_reached": bool(betas) and max(betas) >= float(config.beta_cap) - 1e-9,
        }
    if "pretrain_epochs" in model.meta:
        record["pretrain_epochs"] = {"gmf": model.meta["pretrain_epochs"][0], "mlp": model.meta["pretrain_epochs"][1]}
    # The positive rule the data was read with (built-in rule, a file's threshold or none).
    record["threshold"] = source.positive_threshold if source is not None else None
    return record


def _rebuild_test(run_id: str, protocol: str | None, data: Interactions | None) -> tuple[Any, Split, str, Interactions]:
    """A saved run, its test split rebuilt from its data source and seed, the protocol, and the data."""
    from .runs import load_run

    run = load_run(run_id)
    record = run.record
    protocol = protocol or record["protocol"]
    wanted, trained = get_protocol(protocol), get_protocol(record["protocol"])
    if wanted.split_kind != trained.split_kind:
        raise ModelError(
            f"run {run_id} was trained on a {trained.split_kind} split; {protocol} needs a {wanted.split_kind} split",
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
    if run.seen_saved is None:
        # A run saved before seen.safetensors stored every interaction as the model's `known`, which
        # must not reach the models that read it: score from the training history, as then.
        run.model.known = split.train.to_csr()
    return run, split, protocol, data


def evaluate_run(run_id: str, protocol: str | None = None, data: Interactions | None = None) -> EvaluationResult:
    """Evaluate a saved run again on its own test split (rebuilt from its data source and seed)."""
    run, split, protocol, _ = _rebuild_test(run_id, protocol, data)
    return Evaluator(split, "test", protocol, seed=run.record["seed"]).evaluate(run.model)


def evaluate_run_with_beyond(run_id: str, protocol: str | None = None, data: Interactions | None = None) -> tuple[EvaluationResult, dict]:
    """:func:`evaluate_run` and the beyond-accuracy metrics of the same test lists, computed again as
    run.json's ``beyond`` entry was (``evaluate --json`` prints both)."""
    run, split, protocol, data = _rebuild_test(run_id, protocol, data)
    seed = run.record["seed"]
    result = Evaluator(split, "test", protocol, seed=seed).evaluate(run.model)
    return result, beyond_accuracy_record(run.model, split, result, data.item_info, seed)
