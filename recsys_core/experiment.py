"""One experiment, end to end: data → split → fit with validation → one test pass → saved run.

The CLI and the web app both call :func:`run_experiment`, so a run means the same thing wherever
it was made.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .beyond import TopKLists, beyond_accuracy_record, shared_lists
from .datasets.source import DEFAULT_THRESHOLD, DataSource, keep_positives  # noqa: F401  (moved to datasets/; old imports)
from .errors import DataError, ModelError
from .evaluation import EvaluationResult, Evaluator
from .fit_context import TrainingHistory, TrainingPhase
from .interactions import Interactions
from .models import create_model
from .models.base import Recommender
from .protocols import DEFAULT_PROTOCOL, Protocol, get_protocol
from .run_record import DatasetRecord, History, ModelRecord, PositiveRule, Refit, RunRecord, Scores, Settings, TestResult
from .splits import Split, make_split
from .trainer import Trainer, TrainingEvent


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` made: the tested model, its split and evaluations, and its run's record
    (``info``, as saved when it was saved; ``run_id`` None when it was not)."""

    run_id: str | None
    model: Recommender
    split: Split
    test: EvaluationResult
    evaluations: dict[str, EvaluationResult]
    info: RunRecord

    @property
    def record(self) -> dict:
        """The run's record as run.json holds it (:meth:`RunRecord.to_json`)."""
        return self.info.to_json()

    def summary(self) -> dict:
        """The CLI's ``--json`` line."""
        info = self.info
        return {
            "run_id": self.run_id,
            "dataset": info.dataset.name,
            "model": self.model.name,
            "protocol": self.test.protocol,
            "metrics": {k: round(v, 6) for k, v in self.test.metrics.items()},
            "intervals": {k: [round(a, 6), round(b, 6)] for k, (a, b) in self.test.intervals.items()},
            "fit_seconds": round(info.history.fit_seconds, 3),
            "epochs_run": info.history.epochs_run,
            "positive_threshold": info.dataset.positive_rule.threshold,
            "refit": info.refit.done,
            "differences_meaningful": self.test.differences_meaningful,
            "note": self.test.meaning_note,
            "beyond": info.beyond,
        }


@dataclass(frozen=True)
class FitOutcome:
    """The fit step's result: the model to test (refit or not), the model selected on validation, how
    the fit went and whether and how the selection was refit."""

    model: Recommender
    selected: Recommender
    history: TrainingHistory
    seconds: float
    refit: Refit


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
    spec = get_protocol(protocol)  # an unknown protocol is refused before the data is read
    if isinstance(data, DataSource):
        source, data = data, data.load()
    model = _checked_model(data, model_name, spec, overrides, device)
    announce = _announcer(callback)
    if split is None:
        announce("split", f"{len(data):,} interactions for {protocol}")
        split = make_split(data, protocol, seed=seed, loo_order=loo_order)
    trainer = dict(device=device, seed=seed, cancel=cancel, progress=progress, compile_network=compile_network, threads=threads)
    fit = _fit(model, model_name, overrides, split, epochs, refit, trainer, callback)
    lists = shared_lists(fit.model, split, seed)  # the beyond-accuracy lists, made in the full-ranking pass
    evaluations = _test(fit.model, split, protocol, seed, lists, announce)
    test = evaluations[protocol]
    beyond = beyond_accuracy_record(fit.model, split, test, data.item_info, seed, lists=lists)
    # Data handed over as Interactions is used as it is: record no rule it did not go through.
    source = source or DataSource.builtin(data.name, threshold=None)
    record = experiment_record(data, source, split, protocol, seed, fit, evaluations, beyond)
    run_id = None
    if save:
        from .runs import save_run

        # The model keeps what it was fitted on (what it scores from when evaluated); what a user has
        # seen in any part of the data goes beside it, so recommendations from the run exclude it all.
        known = "train + validation" if refit else "train"
        record = dataclasses.replace(record, extra={**record.extra, "known_history": known, "seen_items": "all interactions of the data set"})
        record = save_run(
            fit.model,
            users=data.users,
            items=data.items,
            record=record,
            item_info=data.item_info,
            user_info=data.user_info,
            evaluations={p: r.to_json(per_user=True) for p, r in evaluations.items()},
            seen=data.to_csr() if len(data) else fit.model.known,
        )
        run_id = record.run_id
    return ExperimentResult(run_id, fit.model, split, test, evaluations, record)


def _checked_model(data: Interactions, model_name: str, spec: Protocol, overrides: dict[str, Any] | None, device: str) -> Recommender:
    """The model to fit; refused first, with the reason, where the data cannot give finite metrics for the
    protocol, the model does not fit in memory or the protocol cannot test it."""
    from .limits import check_memory, check_protocol_data

    check_protocol_data(data, spec.name)
    model = create_model(model_name, **(overrides or {}))
    check_memory(model_name, data.n_users, data.n_items, len(data), model.config, device)
    spec.check(model, has_ratings=data.rating is not None)
    return model


def _announcer(callback: Callable[[TrainingEvent], None] | None) -> Callable[[TrainingPhase, str], None]:
    """Report the steps around training (split, test) to ``callback``, for progress lines."""

    def announce(phase: TrainingPhase, message: str) -> None:
        if callback is not None:
            callback(TrainingEvent("start", phase=phase, message=message))

    return announce


def _fit(
    model: Recommender,
    model_name: str,
    overrides: dict[str, Any] | None,
    split: Split,
    epochs: int | None,
    refit: bool,
    trainer: dict[str, Any],
    callback: Callable[[TrainingEvent], None] | None,
) -> FitOutcome:
    """Fit ``model`` with validation, then (``refit``) a new one with the selection on train + validation; timed
    together. ``trainer``: the :class:`~recsys_core.trainer.Trainer` settings both fits share."""
    started = time.perf_counter()
    history = Trainer(epochs=epochs, **trainer).fit(model, split.train, validation=split, callback=callback)
    selected = model
    record = Refit()
    if refit:
        # A closed-form model (EASE, popularity, item-kNN) has no epochs: its refit records none.
        refit_epochs = None
        if model.iterative:
            refit_epochs = history.best_epoch or (epochs if epochs is not None else getattr(model.config, "epochs", None))
        # Keep what validation chose: the epoch count, any setting a closed-form model tuned, and
        # the settings derived from the selection's epoch budget (so β follows the same schedule).
        chosen = {**(history.tuning or {}).get("chosen", {}), **model.derived_settings()}
        model = create_model(model_name, **{**(overrides or {}), **chosen})
        relay = (lambda event: callback(dataclasses.replace(event, phase="refit"))) if callback is not None else None
        Trainer(epochs=refit_epochs, patience=0, **trainer).fit(model, split.train_with_validation(), validation=None, callback=relay)
        record = Refit(done=True, epochs=refit_epochs, on="train + validation", settings=_jsonable(chosen))
    return FitOutcome(model, selected, history, time.perf_counter() - started, record)


def _test(
    model: Recommender, split: Split, protocol: str, seed: int, lists: TopKLists | None, announce: Callable[[TrainingPhase, str], None]
) -> dict[str, EvaluationResult]:
    """The one test pass: every protocol tested on this split, ``protocol`` first; the full-ranking pass
    also gathers the beyond-accuracy ``lists``."""
    evaluations = {}
    protocols = companion_protocols(protocol)
    for index, name in enumerate(protocols):
        announce("test", f"{name} ({index + 1} of {len(protocols)})")
        evaluations[name] = Evaluator(split, "test", name, seed=seed).evaluate(model, on_block=_gatherer(lists, name))
    return evaluations


def _gatherer(lists: TopKLists | None, protocol: str) -> Callable[[Any, Any], None] | None:
    """What the test pass of ``protocol`` hands its score blocks to: ``lists`` where it ranks the full catalogue."""
    return lists.add if lists is not None and get_protocol(protocol).sampled_negatives is None else None


def experiment_record(
    data: Interactions,
    source: DataSource,
    split: Split,
    protocol: str,
    seed: int,
    fit: FitOutcome,
    evaluations: dict[str, EvaluationResult],
    beyond: dict,
) -> RunRecord:
    """The run's record before it is saved (:func:`~recsys_core.runs.save_run` gives it its id and the versions)."""
    test, history = evaluations[protocol], fit.history
    dataset = DatasetRecord(
        name=data.name,
        source=source.to_json(),
        content_hash=data.content_hash(),
        positive_rule=PositiveRule(source.positive_threshold, source.positive_rule()),
        stats={k: v for k, v in data.stats().items() if k in ("users", "items", "interactions", "density")},
    )
    return RunRecord(
        run_id="",
        model=ModelRecord(fit.model.name, fit.model.config.to_json()),
        dataset=dataset,
        protocol=protocol,
        headline=get_protocol(protocol).headline,
        seed=seed,
        split=split.info,
        scores=Scores(test.metrics, dict(test.intervals)),
        test={name: TestResult.from_json(name, result.to_json()) for name, result in evaluations.items()},
        history=History(
            tuple(history.epochs), history.epochs_run, history.best_epoch, history.stopped_early, fit.seconds, history.device
        ),
        refit=fit.refit,
        settings=settings_record(fit.selected, history, seed=seed, refit=fit.refit.done, refit_epochs=fit.refit.epochs, source=source),
        tuning=history.tuning,
        extra={"validation": history.validation, "beyond": beyond},
        # Microseconds: runs saved in the same second (several models trained in one go) still order newest first.
        created=datetime.now().isoformat(timespec="microseconds"),
    )


def _jsonable(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def settings_record(
    model: Recommender, history: Any, seed: int, refit: bool, refit_epochs: int | None, source: DataSource | None = None
) -> Settings:
    """The exact settings a run used, the derived ones included, for run.json.

    ``model`` is the model selected on validation (before any refit): its config holds the epoch
    budget the trainer gave it, and ``derived_settings()`` what the fit computed from it."""
    config, kl, pretrain = model.config, None, None
    if "total_anneal_steps" in model.meta:
        betas = [r["beta"] for r in history.epochs if "beta" in r]
        at_best = [r["beta"] for r in history.epochs if r.get("epoch") == history.best_epoch and "beta" in r]
        kl = {
            "total_anneal_steps": int(model.meta["total_anneal_steps"]),
            "beta_cap": float(config.beta_cap),
            "beta_reached": float(max(betas)) if betas else None,
            "beta_at_best_epoch": float(at_best[0]) if at_best else None,
            "cap_reached": bool(betas) and max(betas) >= float(config.beta_cap) - 1e-9,
        }
    if "pretrain_epochs" in model.meta:
        pretrain = {"gmf": model.meta["pretrain_epochs"][0], "mlp": model.meta["pretrain_epochs"][1]}
    return Settings(
        epoch_budget=getattr(config, "epochs", None),
        seed=seed,
        validation_seed=seed,
        refit=refit,
        refit_epochs=refit_epochs,
        derived=_jsonable(model.derived_settings()),
        # The positive rule the data was read with (built-in rule, a file's threshold or none).
        threshold=source.positive_threshold if source is not None else None,
        kl=kl,
        pretrain_epochs=pretrain,
    )


def _rebuild_test(run_id: str, protocol: str | None, data: Interactions | None) -> tuple[Any, Split, str, Interactions]:
    """A saved run, its test split rebuilt from its data source and seed, the protocol, and the data."""
    from .runs import load_run

    run = load_run(run_id)
    info = run.info
    protocol = protocol or info.protocol
    wanted, trained = get_protocol(protocol), get_protocol(info.protocol)
    if wanted.split_kind != trained.split_kind:
        raise ModelError(
            f"run {run_id} was trained on a {trained.split_kind} split; {protocol} needs a {wanted.split_kind} split",
            "Train a new run with that protocol.",
        )
    if data is None:
        data = info.dataset.data_source().load()
    if data.content_hash() != info.dataset.content_hash:
        raise DataError(
            f"the data of {info.dataset.name!r} has changed since run {run_id} was trained",
            "Evaluate on the data the run was trained on, or train a new run.",
        )
    split = make_split(data, protocol, seed=info.seed, loo_order=info.loo_order)
    if run.seen_saved is None:
        # A run saved before seen.safetensors stored every interaction as the model's `known`, which
        # must not reach the models that read it: score from the training history, as then.
        run.model.known = split.train.to_csr()
    return run, split, protocol, data


def evaluate_run(run_id: str, protocol: str | None = None, data: Interactions | None = None) -> EvaluationResult:
    """Evaluate a saved run again on its own test split (rebuilt from its data source and seed)."""
    run, split, protocol, _ = _rebuild_test(run_id, protocol, data)
    return Evaluator(split, "test", protocol, seed=run.info.seed).evaluate(run.model)


def evaluate_run_with_beyond(run_id: str, protocol: str | None = None, data: Interactions | None = None) -> tuple[EvaluationResult, dict]:
    """:func:`evaluate_run` and the beyond-accuracy metrics of the same test lists, computed again as
    run.json's ``beyond`` entry was (``evaluate --json`` prints both)."""
    run, split, protocol, data = _rebuild_test(run_id, protocol, data)
    seed = run.info.seed
    # As in run_experiment: a full-ranking pass gathers the lists on the way, so each test user is scored once.
    lists = shared_lists(run.model, split, seed)
    result = Evaluator(split, "test", protocol, seed=seed).evaluate(run.model, on_block=_gatherer(lists, protocol))
    return result, beyond_accuracy_record(run.model, split, result, data.item_info, seed, lists=lists)
