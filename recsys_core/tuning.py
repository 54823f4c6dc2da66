"""Hyperparameter search with Optuna that only ever sees the validation split.

A study is a set of trials; each trial samples a configuration from the model's search space
(declared by its class: ``Recommender.search_space``), trains it with the one :class:`~recsys_core.trainer.Trainer` on the training
part and scores it on the validation part with the metric the trainer selects epochs by (NDCG@10 for
leave-one-out, NDCG@100 for held-out users, RMSE for ratings). The first trial is the model's default
configuration (where it lies in the space), so a search never ends below the defaults on validation;
then the sampler is TPE, seeded, so a study repeats; a median pruner stops a trial whose validation metric after an epoch is below the median of
earlier trials at that epoch (it listens to the trainer's ``"epoch"`` events and raises
``optuna.TrialPruned``, so the trainer needs no change).

The test split is never read during the search. The best configuration is then handed to
:func:`~recsys_core.experiment.run_experiment`, which trains it (refitting per the run rules) and tests
it once; the saved run records the study: its space, sampler, every trial with its value.

Studies live in one SQLite file in the data home (``$RECSYS_HOME/studies/studies.db``), keyed by data,
model, protocol and seed, so a search can be resumed (run ``tune`` again) and watched from a second
browser tab while it runs. Optuna is imported only when a study is made or read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ModelError, RecsysError, TrainingCancelled
from .interactions import Interactions
from .protocols import DEFAULT_PROTOCOL, Direction, get_protocol

ParamKind = Literal["float", "int", "categorical"]


@dataclass(frozen=True)
class Param:
    """One dimension of a search space: a range (``log`` = sampled uniformly in log scale) or choices."""

    kind: ParamKind
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()
    doc: str = ""

    def suggest(self, trial: Any, name: str) -> Any:
        if self.kind == "float":
            return trial.suggest_float(name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        # Optuna stores categorical choices as JSON scalars: tuples (layer sizes) travel as strings.
        picked = trial.suggest_categorical(name, [_choice_key(c) for c in self.choices])
        return _choice_value(picked)

    def to_json(self) -> dict:
        if self.kind == "categorical":
            return {"kind": self.kind, "choices": [_choice_key(c) for c in self.choices], "doc": self.doc}
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log, "doc": self.doc}


def _choice_key(choice: Any) -> Any:
    return " ".join(str(v) for v in choice) if isinstance(choice, tuple) else choice


def _choice_value(key: Any) -> Any:
    if isinstance(key, str) and key.replace(" ", "").isdigit():
        return tuple(int(v) for v in key.split())
    return key


#: Dimensions several models' search spaces share (each model declares its space: ``Recommender.search_space``).
LEARNING_RATE_SPACE = Param("float", 1e-4, 3e-2, log=True, doc="Adam step size; log scale, as its effect is multiplicative")
WEIGHT_DECAY_SPACE = Param("float", 1e-6, 1e-1, log=True, doc="L2 penalty; log scale over five decades")
N_NEGATIVES_SPACE = Param("int", 1, 8, doc="sampled negatives per positive")


def tunable_models(names: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """The models among ``names`` (default: every registered model) that declare a search space."""
    from .models import MODEL_NAMES, model_class

    return [name for name in (MODEL_NAMES if names is None else names) if model_class(name).search_space]


def search_space(model_name: str) -> dict[str, Param]:
    """The model's search space, as its class declares it (``Recommender.search_space``), in the order
    a trial suggests its settings."""
    from .models import model_class

    space = model_class(model_name).search_space
    if not space:
        raise ModelError(f"{model_name} has no search space to tune", "Tunable models: " + ", ".join(tunable_models()))
    return space


def default_params(model_name: str) -> dict[str, Any]:
    """The model's default settings that lie inside its search space, as Optuna stores them
    (a default outside the space, e.g. EASE's λ = None chosen from a grid, is left to the sampler)."""
    from .models import model_class

    config = model_class(model_name).Config()
    out: dict[str, Any] = {}
    for name, param in search_space(model_name).items():
        value = getattr(config, name, None)
        if param.kind == "categorical":
            if value in param.choices:
                out[name] = _choice_key(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and param.low <= value <= param.high:
            out[name] = value
    return out


class TuningStoreError(RecsysError):
    """The tuning store (studies/studies.db in the data home) cannot be used: damaged, linked, not writable or busy."""


_SQLITE_MAGIC = b"SQLite format 3\x00"
_MOVE_ASIDE = "Move the file aside (or delete it) to start afresh; the runs saved from its studies keep their study in run.json."


def storage_path() -> Path:
    """``$RECSYS_HOME/studies/studies.db``, checked before Optuna opens it: the folder and the file are no
    symbolic links (nothing is written outside the data home), the folder is writable, and the file, when
    it exists, is a regular file within ``MAX_STUDY_STORE_BYTES`` that starts as an SQLite database does."""
    import stat

    from . import limits
    from .home import data_home
    from .safe_files import check_regular_file

    home = data_home()
    folder = home / "studies"
    try:
        if os.path.lexists(folder) and not stat.S_ISDIR(os.lstat(folder).st_mode):
            from .safe_files import file_kind

            raise TuningStoreError(
                f"the tuning store's folder {folder} is {file_kind(os.lstat(folder).st_mode)}, not a folder, so it is not used",
                "Studies are kept only inside the data home: move it aside, and `tune` makes a new folder.",
            )
        folder.mkdir(exist_ok=True)
    except PermissionError:
        raise TuningStoreError(
            f"the tuning store's folder {folder} cannot be made: the data home {home} is not writable",
            "Set RECSYS_HOME to a writable folder.",
        ) from None
    if not os.access(folder, os.W_OK):
        raise TuningStoreError(
            f"the tuning store's folder {folder} is not writable", "Set RECSYS_HOME to a writable folder, or make this one writable."
        )
    path = folder / "studies.db"
    if os.path.lexists(path):
        what = f"the tuning store {path}"
        check_regular_file(path, what, limits.MAX_STUDY_STORE_BYTES, root=home, error=TuningStoreError, hint=_MOVE_ASIDE)
        with open(path, "rb") as handle:  # a regular file, checked above
            magic = handle.read(len(_SQLITE_MAGIC))
        if magic and magic != _SQLITE_MAGIC:  # an empty file is a store SQLite has yet to write
            raise TuningStoreError(f"{what} is damaged: it is not an SQLite database", _MOVE_ASIDE)
        if not os.access(path, os.W_OK):
            raise TuningStoreError(f"{what} is read-only", "Make it writable, or set RECSYS_HOME to a writable data home.")
    return path


def storage_url() -> str:
    return f"sqlite:///{storage_path()}"


@contextmanager
def store_errors() -> Iterator[None]:
    """Errors of the database under Optuna as one clear TuningStoreError (a damaged, truncated or locked store)."""
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, sqlite3.Error) as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        raise TuningStoreError(f"the tuning store {storage_path()} is damaged ({detail})", _MOVE_ASIDE) from None
    except Exception as exc:  # optuna wraps some storage failures in its own errors
        import optuna

        if isinstance(exc, optuna.exceptions.StorageInternalError):
            raise TuningStoreError(f"the tuning store {storage_path()} is damaged ({exc})", _MOVE_ASIDE) from None
        raise


@contextmanager
def study_lock(name: str) -> Iterator[None]:
    """Hold the study for one search at a time: a second process (or browser tab) asking for it is refused
    with a clear message instead of sampling the same trials and saving the same run again."""
    import fcntl
    import hashlib
    import threading

    held = (threading.get_ident(), name)  # per thread: the app's searches of two tabs are threads of one process
    if held in _HELD:  # re-entered by the same search (tune → run_study)
        yield
        return
    lock = storage_path().parent / f".lock-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TuningStoreError(
                f"a search of the study {name} is running in another process or browser tab",
                "Wait for it to finish (its trials appear in the study as they end), then search again to add trials.",
            ) from None
        _HELD.add(held)
        try:
            yield
        finally:
            _HELD.discard(held)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_HELD: set[tuple[int, str]] = set()  # (thread, study) pairs whose lock that thread holds


def _storage():
    import warnings

    import optuna

    # A heartbeat lets a later session mark trials of a killed or interrupted search as failed
    # (Optuna flags the heartbeat as experimental; its interface is stable enough for this use).
    url = storage_url()
    with warnings.catch_warnings(), store_errors():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, heartbeat_interval=10, grace_period=60)


def study_name(data: Interactions, model_name: str, protocol: str, seed: int) -> str:
    return f"{data.name}-{data.content_hash()[:8]}-{model_name}-{protocol}-seed{seed}"


def validation_metric(protocol: str) -> tuple[str, Direction]:
    """The metric the trainer selects epochs by on this protocol's validation part, and its direction."""
    spec = get_protocol(protocol)
    return spec.validation_metric, spec.validation_direction


def list_studies() -> list[str]:
    """Names of the studies in the data home (empty when none was made yet)."""
    if not storage_path().exists():
        return []
    import optuna

    with store_errors():
        return sorted(s.study_name for s in optuna.study.get_all_study_summaries(storage=_storage()))


def load_study(name: str):
    import optuna

    try:
        with store_errors():
            return optuna.load_study(study_name=name, storage=_storage())
    except KeyError:
        raise RecsysError(f"no study named {name!r} in {storage_path()}", "Start one with `python -m recsys_core tune`.") from None


def trials_records(study: Any) -> list[dict]:
    """Every trial of a study as plain JSON: number, state, value, params, epochs reported, seconds."""
    out = []
    for trial in study.trials:
        seconds = (
            (trial.datetime_complete - trial.datetime_start).total_seconds() if trial.datetime_complete and trial.datetime_start else None
        )
        out.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "value": trial.value,
                "params": dict(trial.params),
                "epochs": len(trial.intermediate_values),
                "seconds": seconds,
            }
        )
    return out


def trials_table(study: Any):
    """The trials as a table for the browser: one row per trial, one column per parameter."""
    import pandas as pd

    rows = []
    for record in trials_records(study):
        rows.append(
            {
                "trial": record["number"],
                "state": record["state"],
                "value": record["value"],
                **record["params"],
                "epochs": record["epochs"],
                "seconds": record["seconds"],
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class TuneResult:
    """What a search found; ``run_id`` is the saved run of the best configuration (None if not trained)."""

    study_name: str
    storage: str
    metric: str
    direction: Direction
    best_params: dict[str, Any]
    best_value: float | None
    trials: list[dict]
    space: dict[str, dict]
    run_id: str | None = None
    cancelled: bool = False
    test_metrics: dict[str, float] = field(default_factory=dict)

    def study_record(self) -> dict:
        """The run's record of the study that chose its configuration."""
        return {
            "study_name": self.study_name,
            "storage": self.storage,
            "sampler": "TPE (seeded)",
            "pruner": "median of earlier trials at the same epoch",
            "objective": f"validation {self.metric} ({self.direction})",
            "space": self.space,
            "best_params": self.best_params,
            "best_value": self.best_value,
            "trials": self.trials,
        }


def run_study(
    data: Interactions,
    model_name: str,
    protocol: str = DEFAULT_PROTOCOL,
    trials: int = 30,
    timeout: float | None = None,
    seed: int = 0,
    device: str = "auto",
    epochs: int | None = None,
    split: Any = None,
    on_trial: Callable[[Any], None] | None = None,
    callback: Callable[[Any], None] | None = None,
    cancel: Any = None,
    threads: int | None = None,
):
    """Run (or resume) the study of ``model_name`` on ``data``: ``trials`` more trials, or until ``timeout``
    seconds. Returns the optuna study. Only the validation part of the split is evaluated.

    ``on_trial(study)`` is called after each finished trial (for live tables); ``callback`` receives the
    trainer's events; ``cancel`` (an Event or callable) stops the running trial and the search.
    """
    import optuna

    from .models import model_class
    from .splits import make_split

    space = search_space(model_name)
    if not get_protocol(protocol).supports(model_class(model_name)):
        raise ModelError(
            f"{model_name} ranks items and cannot be tuned on the {protocol} protocol", "Use autorec or deeprec, or a ranking protocol."
        )
    metric, direction = validation_metric(protocol)
    split = split if split is not None else make_split(data, protocol, seed=seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = study_name(data, model_name, protocol, seed)
    with study_lock(name), store_errors():
        study = optuna.create_study(
            study_name=name,
            storage=_storage(),
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
            direction=direction,
            load_if_exists=True,
        )
        if study.trials:  # seeded by the study's length: a resumed search does not sample its first trials again
            study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
        study.set_user_attr("space", {key: param.to_json() for key, param in space.items()})
        study.set_user_attr("metric", metric)
        if not study.trials:
            # The defaults are the first trial, so the search can only end at or above them on validation.
            defaults = default_params(model_name)
            if defaults:
                study.enqueue_trial(defaults, skip_if_exists=True)
        return _optimize(study, space, model_name, metric, split, device, seed, epochs, trials, timeout, on_trial, callback, cancel, threads)


def _optimize(study, space, model_name, metric, split, device, seed, epochs, trials, timeout, on_trial, callback, cancel, threads=None):
    """Trials of ``study`` until ``trials`` more finished or ``timeout`` (see :func:`run_study`)."""
    import optuna

    from .trainer import Trainer, TrainingEvent

    def objective(trial: optuna.Trial) -> float:
        from .models import create_model

        overrides = {name: param.suggest(trial, name) for name, param in space.items()}
        model = create_model(model_name, **overrides)

        def report(event: TrainingEvent) -> None:
            if callback is not None:
                callback(event)
            if event.kind == "epoch" and metric in event.metrics:
                trial.report(event.metrics[metric], event.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"validation {metric} {event.metrics[metric]:.4f} below the median at epoch {event.epoch}")

        history = Trainer(device=device, seed=seed, epochs=epochs, cancel=cancel, threads=threads).fit(
            model, split.train, validation=split, callback=report
        )
        trial.set_user_attr("best_epoch", history.best_epoch)
        if metric not in history.validation:
            raise ModelError(f"{model_name} reported no validation {metric}")
        return float(history.validation[metric])

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(study)
        if cancel is not None and (cancel.is_set() if hasattr(cancel, "is_set") else cancel()):
            study.stop()

    study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[after_trial], catch=(ModelError,), gc_after_trial=True)
    return study


def _best(study: Any) -> tuple[dict, float | None]:
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return {}, None
    return {name: _choice_value(value) for name, value in study.best_params.items()}, float(study.best_value)


def summarise(study: Any) -> TuneResult:
    params, value = _best(study)
    return TuneResult(
        study_name=study.study_name,
        storage=str(storage_path()),
        metric=study.user_attrs.get("metric", ""),
        direction="minimize" if study.direction.name == "MINIMIZE" else "maximize",
        best_params=params,
        best_value=value,
        trials=trials_records(study),
        space=study.user_attrs.get("space", {}),
    )


def train_best(
    study: Any,
    data: Interactions,
    model_name: str,
    protocol: str,
    seed: int = 0,
    device: str = "auto",
    epochs: int | None = None,
    source: Any = None,
    split: Any = None,
    callback: Any = None,
    cancel: Any = None,
    threads: int | None = None,
) -> TuneResult:
    """Train the study's best configuration through ``run_experiment`` (refit and the single test pass
    as for any run), save it, and record the study in its run.json."""
    from dataclasses import replace

    from .experiment import run_experiment

    summary = summarise(study)
    if summary.best_value is None:
        raise ModelError("the study has no finished trial yet, so there is no best configuration", "Run more trials.")
    result = run_experiment(
        data,
        model_name,
        protocol=protocol,
        seed=seed,
        device=device,
        overrides=summary.best_params,
        epochs=epochs,
        source=source,
        split=split,
        callback=callback,
        cancel=cancel,
        threads=threads,
    )
    summary = replace(summary, run_id=result.run_id, test_metrics=dict(result.test.metrics))
    if result.run_id is not None:
        from .runs import update_run

        update_run(result.run_id, study=summary.study_record())
    return summary


def tune(
    data: Interactions,
    model_name: str,
    protocol: str = DEFAULT_PROTOCOL,
    trials: int = 30,
    timeout: float | None = None,
    seed: int = 0,
    device: str = "auto",
    epochs: int | None = None,
    source: Any = None,
    train: bool = True,
    on_trial: Callable[[Any], None] | None = None,
    cancel: Any = None,
    threads: int | None = None,
) -> TuneResult:
    """Search on validation, then (``train``) train the best configuration, test it once and save the run.
    ``threads`` fixes the CPU threads of every fit (None: the trainer's choice)."""
    from .splits import make_split

    split = make_split(data, protocol, seed=seed)
    with study_lock(study_name(data, model_name, protocol, seed)):  # the search and its run: one process at a time
        try:
            study = run_study(
                data, model_name, protocol, trials, timeout, seed, device, epochs, split=split, on_trial=on_trial, cancel=cancel,
                threads=threads,
            )  # fmt: skip
        except TrainingCancelled:
            from dataclasses import replace

            return replace(summarise(load_study(study_name(data, model_name, protocol, seed))), cancelled=True)
        if not train:
            return summarise(study)
        return train_best(study, data, model_name, protocol, seed, device, epochs, source=source, split=split, threads=threads)
