"""run.json as typed, frozen dataclasses: :class:`RunRecord` and its parts, the schema of a saved run.

Pages, the CLI and the report read ``record.dataset.name`` or ``record.scores.interval("HR@10")``, not
string look-ups into a dict: a renamed field is one edit here and a typo fails at once. ``from_json``
gives fields that older runs lack their defaults (runs are kept for years and shared); ``to_json``
writes back what it read, in run.json's order (:data:`RUN_JSON_ORDER`), so a record saved, read and
written again has the same entries in the same order. Parts read as a whole (the beyond-accuracy record, a tuning study,
the versions, ...) travel untouched in ``extra``. Where and how run.json is stored: :mod:`recsys_core.run_store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import RunFileError

MAX_RUN_TITLE = 80  #: the longest name a person may give a run

#: run.json's entries in the order they are written; entries this version does not know follow, as read.
RUN_JSON_ORDER = (
    "run_id", "model", "config", "versions", "dataset", "protocol", "headline", "split", "seed", "device", "fit_seconds",
    "epochs_run", "best_epoch", "stopped_early", "history", "tuning", "refit", "settings", "validation", "test", "metrics",
    "intervals", "beyond", "created", "known_history", "seen_items",
)  # fmt: skip


def _mapping(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):  # each checker raises TypeError: RunRecord.from_json makes it a RunFileError
        raise TypeError(f"{what} is a {type(value).__name__}, not a JSON object")
    return value


def _number(value: Any, what: str, default: float | None = None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} is not a number")
    return float(value)


def _whole(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} is not a whole number")
    return value


@dataclass(frozen=True)
class PositiveRule:
    """Which interactions counted as positives: ratings ``>= threshold`` (None: every interaction)."""

    threshold: float | None = None
    text: str = "every interaction counts as positive"

    @classmethod
    def from_json(cls, data: Any) -> PositiveRule:
        data = _mapping(data, "dataset.positive_rule")
        # Runs saved before the positive rule learned from every interaction: the default says so.
        return cls(_number(data.get("threshold"), "the positive threshold"), str(data.get("text", cls.text)))

    def to_json(self) -> dict:
        return {"threshold": self.threshold, "text": self.text}


@dataclass(frozen=True)
class DatasetRecord:
    """The data a run was trained on: its name, where it comes from, its rule and its fingerprint.

    ``source`` stays the JSON of a :class:`~recsys_core.experiment.DataSource` (:meth:`data_source`
    builds one): that class lives with the readers, which this module does not import.
    """

    name: str
    source: Mapping[str, Any] = field(default_factory=dict)
    content_hash: str = ""
    positive_rule: PositiveRule = PositiveRule()
    stats: Mapping[str, float] = field(default_factory=dict)
    rule_recorded: bool = True  # False for runs saved before the positive rule: to_json leaves it out

    @classmethod
    def from_json(cls, data: Any) -> DatasetRecord:
        data = _mapping(data, "dataset")
        if not isinstance(data.get("name"), str):
            raise TypeError("the dataset has no name")
        return cls(
            name=data["name"],
            source=_mapping(data.get("source"), "dataset.source"),
            content_hash=str(data.get("content_hash", "")),
            positive_rule=PositiveRule.from_json(data.get("positive_rule")),
            stats=_mapping(data.get("stats"), "dataset.stats"),
            rule_recorded="positive_rule" in data,
        )

    def to_json(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "source": dict(self.source)}
        if self.rule_recorded:
            out["positive_rule"] = self.positive_rule.to_json()
        return {**out, "content_hash": self.content_hash, "stats": dict(self.stats)}

    def data_source(self):
        """The :class:`~recsys_core.experiment.DataSource` to load this data again."""
        from .datasets.source import DataSource

        return DataSource.from_json(dict(self.source))


@dataclass(frozen=True)
class Scores:
    """Metric values with their 95% bootstrap intervals (a metric may have none)."""

    values: Mapping[str, float] = field(default_factory=dict)
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, metrics: Any, intervals: Any) -> Scores:
        values = {str(k): _number(v, f"the metric {k}") for k, v in _mapping(metrics, "metrics").items()}
        bounds = {}
        for name, pair in _mapping(intervals, "intervals").items():
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise TypeError(f"the interval of {name} is not a pair of numbers")
            bounds[str(name)] = (_number(pair[0], f"the interval of {name}"), _number(pair[1], f"the interval of {name}"))
        return cls(values, bounds)

    def get(self, name: str) -> float | None:
        return self.values.get(name)

    def interval(self, name: str) -> tuple[float, float] | None:
        return self.intervals.get(name)

    def metrics_json(self) -> dict[str, float]:
        return dict(self.values)

    def intervals_json(self) -> dict[str, list[float]]:
        return {k: [a, b] for k, (a, b) in self.intervals.items()}


@dataclass(frozen=True)
class TestResult:
    """One protocol's test pass as run.json keeps it (``EvaluationResult.to_json()`` without per-user values)."""

    protocol: str
    scores: Scores
    n_users: int | None = None
    part: str = "test"
    info: Mapping[str, Any] = field(default_factory=dict)
    differences_meaningful: bool | None = None

    @classmethod
    def from_json(cls, protocol: str, data: Any) -> TestResult:
        data = _mapping(data, f"test.{protocol}")
        return cls(
            protocol=str(data.get("protocol", protocol)),
            scores=Scores.from_json(data.get("metrics"), data.get("intervals")),
            n_users=_whole(data.get("n_users"), "n_users"),
            part=str(data.get("part", "test")),
            info=_mapping(data.get("info"), "test info"),
            differences_meaningful=data.get("differences_meaningful"),
        )

    def to_json(self) -> dict:
        """As ``EvaluationResult.to_json()`` writes it."""
        metrics, intervals = self.scores.metrics_json(), self.scores.intervals_json()
        return {"protocol": self.protocol, "part": self.part, "n_users": self.n_users, "metrics": metrics, "intervals": intervals,
                "info": dict(self.info), "differences_meaningful": self.differences_meaningful}  # fmt: skip

    def meaning_note(self) -> str | None:
        """The "differences are not meaningful here" sentence for this result, or None."""
        from .evaluation import saved_meaning_note

        return saved_meaning_note(self.to_json())


@dataclass(frozen=True)
class ModelRecord:
    """Which model a run holds and the configuration it was built with."""

    name: str
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class History:
    """How the fit went: one entry per epoch (loss, validation metrics, β, seconds where known)."""

    epochs: tuple[Mapping[str, Any], ...] = ()
    epochs_run: int | None = None
    best_epoch: int | None = None
    stopped_early: bool = False
    fit_seconds: float = 0.0
    device: str = "?"

    @property
    def has_loss(self) -> bool:
        """True for models trained by epochs (closed-form fits record no loss)."""
        return any("loss" in epoch for epoch in self.epochs)


@dataclass(frozen=True)
class Refit:
    """Whether the selected configuration was trained again on train + validation before the test."""

    done: bool = False
    epochs: int | None = None
    on: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Refit:
        data = _mapping(data, "refit")
        epochs, settings = _whole(data.get("epochs"), "refit epochs"), _mapping(data.get("settings"), "refit settings")
        return cls(bool(data.get("done", False)), epochs, data.get("on"), settings)

    def to_json(self) -> dict:
        if not self.done:
            return {"done": False}
        return {"done": True, "epochs": self.epochs, "on": self.on, "settings": dict(self.settings)}


@dataclass(frozen=True)
class Settings:
    """The exact settings a run used (``experiment.settings_record``): the epoch budget, seeds, refit
    and what the fit derived from them; ``kl`` (Mult-VAE, SVAE) and ``pretrain_epochs`` (NeuMF) only
    where the model has them, ``other`` any key this version does not know (written back as read)."""

    epoch_budget: int | None = None
    seed: int | None = None
    validation_seed: int | None = None
    refit: bool | None = None
    refit_epochs: int | None = None
    derived: Mapping[str, Any] = field(default_factory=dict)
    threshold: float | None = None
    kl: Mapping[str, Any] | None = None
    pretrain_epochs: Mapping[str, int] | None = None
    other: Mapping[str, Any] = field(default_factory=dict)

    _ALWAYS = ("epoch_budget", "seed", "validation_seed", "refit", "refit_epochs", "derived", "threshold")

    @classmethod
    def from_json(cls, data: Any) -> Settings:
        data = _mapping(data, "settings")
        kl, pretrain = data.get("kl"), data.get("pretrain_epochs")
        return cls(
            epoch_budget=_whole(data.get("epoch_budget"), "the epoch budget"),
            seed=_whole(data.get("seed"), "the settings' seed"),
            validation_seed=_whole(data.get("validation_seed"), "the validation seed"),
            refit=None if data.get("refit") is None else bool(data["refit"]),
            refit_epochs=_whole(data.get("refit_epochs"), "the refit epochs"),
            derived=_mapping(data.get("derived"), "derived settings"),
            threshold=_number(data.get("threshold"), "the settings' threshold"),
            kl=None if kl is None else _mapping(kl, "the KL settings"),
            pretrain_epochs=None if pretrain is None else _mapping(pretrain, "the pretraining epochs"),
            other={k: v for k, v in data.items() if k not in (*cls._ALWAYS, "kl", "pretrain_epochs")},
        )

    def to_json(self) -> dict:
        out: dict[str, Any] = {name: getattr(self, name) for name in self._ALWAYS[:-1]}  # the threshold comes last
        out["derived"] = dict(self.derived)
        if self.kl is not None:
            out["kl"] = dict(self.kl)
        if self.pretrain_epochs is not None:
            out["pretrain_epochs"] = dict(self.pretrain_epochs)
        return {**out, "threshold": self.threshold, **self.other}


@dataclass(frozen=True)
class RunRecord:
    """run.json, typed: what pages, the CLI and the report read of a saved run.

    ``scores`` are the test metrics of ``protocol`` (the run's own), ``test`` every protocol tested on
    the same split. ``extra`` keeps the parts read as a whole elsewhere (validation curves, the
    beyond-accuracy record, a tuning study, versions, ...), so ``to_json`` gives back what was read.
    """

    run_id: str
    model: ModelRecord
    dataset: DatasetRecord
    protocol: str
    headline: str
    seed: int = 0
    created: str = ""
    split: Mapping[str, Any] = field(default_factory=dict)
    scores: Scores = Scores()
    test: Mapping[str, TestResult] = field(default_factory=dict)
    history: History = History()
    refit: Refit = Refit()
    settings: Settings = Settings()
    tuning: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _TYPED = (
        "run_id", "model", "config", "dataset", "protocol", "headline", "seed", "created", "split", "metrics", "intervals", "test",
        "history", "epochs_run", "best_epoch", "stopped_early", "fit_seconds", "device", "refit", "settings", "tuning",
    )  # fmt: skip

    @classmethod
    def from_json(cls, data: Any, label: str = "run.json") -> RunRecord:
        """A record from run.json; fields older runs lack get defaults, wrong types a RunFileError."""
        from .evaluation import HEADLINE

        try:
            data = _mapping(data, "run.json")
            protocol = data.get("protocol")
            if not isinstance(protocol, str):
                raise TypeError("the protocol is missing")
            history = data.get("history") or []
            if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
                raise TypeError("the history is not a list of epochs")
            seed = data.get("seed", 0)
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise TypeError("the seed is not a whole number")
            return cls(
                run_id=str(data.get("run_id", "")),
                model=ModelRecord(str(data.get("model", "?")), _mapping(data.get("config"), "config")),
                dataset=DatasetRecord.from_json(data.get("dataset")),
                protocol=protocol,
                # Runs saved before "headline" was recorded used the protocol's headline metric.
                headline=str(data.get("headline") or HEADLINE.get(protocol, "HR@10")),
                seed=seed,
                created=str(data.get("created") or ""),
                split=_mapping(data.get("split"), "split"),
                scores=Scores.from_json(data.get("metrics"), data.get("intervals")),
                test={str(p): TestResult.from_json(str(p), t) for p, t in _mapping(data.get("test"), "test").items()},
                history=History(
                    tuple(history), _whole(data.get("epochs_run"), "epochs_run"), _whole(data.get("best_epoch"), "best_epoch"),
                    bool(data.get("stopped_early", False)), _number(data.get("fit_seconds"), "fit_seconds", 0.0), str(data.get("device") or "?"),
                ),  # fmt: skip
                refit=Refit.from_json(data.get("refit")),
                settings=Settings.from_json(data.get("settings")),
                tuning=data.get("tuning") if isinstance(data.get("tuning"), dict) else None,
                extra={k: v for k, v in data.items() if k not in cls._TYPED},
            )
        except TypeError as error:
            raise RunFileError(
                f"{label} is damaged: {error}", "The run is incomplete or was edited: delete it and train it again."
            ) from None

    def to_json(self) -> dict:
        """run.json as written, in :data:`RUN_JSON_ORDER` (fields from_json filled in for an old run are written out)."""
        entries = {
            "run_id": self.run_id,
            "model": self.model.name,
            "config": dict(self.model.config),
            "dataset": self.dataset.to_json(),
            "protocol": self.protocol,
            "headline": self.headline,
            "split": dict(self.split),
            "seed": self.seed,
            "device": self.history.device,
            "fit_seconds": self.history.fit_seconds,
            "epochs_run": self.history.epochs_run,
            "best_epoch": self.history.best_epoch,
            "stopped_early": self.history.stopped_early,
            "history": [dict(h) for h in self.history.epochs],
            "tuning": None if self.tuning is None else dict(self.tuning),
            "refit": self.refit.to_json(),
            "settings": self.settings.to_json(),
            "test": {p: t.to_json() for p, t in self.test.items()},
            "metrics": self.scores.metrics_json(),
            "intervals": self.scores.intervals_json(),
            "created": self.created,
            **self.extra,
        }
        ordered = {name: entries[name] for name in RUN_JSON_ORDER if name in entries}
        return {**ordered, **{name: value for name, value in entries.items() if name not in ordered}}

    @property
    def headline_value(self) -> float | None:
        """The test value of the run's headline metric (None when it has none)."""
        return self.scores.get(self.headline)

    @property
    def own_test(self) -> TestResult | None:
        """The test result of the run's own protocol."""
        return self.test.get(self.protocol)

    @property
    def loo_order(self) -> str:
        """How leave-one-out picked the held-out items ("time" for runs saved before the choice existed)."""
        return str(self.split.get("loo_order", "time"))

    @property
    def title(self) -> str:
        """The name the person gave the run (:func:`rename_run`), "" when none."""
        title = self.extra.get("title")
        return " ".join(title.split())[:MAX_RUN_TITLE] if isinstance(title, str) else ""

    @property
    def beyond(self) -> Mapping[str, Any] | None:
        return self.extra.get("beyond")

    @property
    def study(self) -> Mapping[str, Any] | None:
        return self.extra.get("study")


def short_run_name(record: RunRecord) -> str:
    """ "ease (a1b2c3)": the model and the end of the run id, how the report and the beyond-accuracy tables name a run."""
    return f"{record.model.name} ({record.run_id[-6:]})"
