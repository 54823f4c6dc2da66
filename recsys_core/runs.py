"""Saved runs: tensors in safetensors, everything else in JSON (and parquet for metadata tables).

``$RECSYS_HOME/runs/<run_id>/``
    model.safetensors   the model's tensors and its known interactions (no pickle anywhere)
    model.json          model name, config, sizes, model-specific metadata
    run.json            dataset, split, protocol, seed, versions, device, history, metrics
    vocab.json          raw user and item ids in index order
    items.parquet       item metadata (titles, genres, ...) when the data set has it
    users.parquet       user metadata when the data set has it
    evaluation-*.json   per-user values of each evaluation, for paired comparisons
    seen.safetensors    the items each user has interacted with, in any part of the data (CSR arrays):
                        what recommendations from the run exclude; the model itself keeps the
                        interactions it scores from (runs saved before this file existed hold the
                        seen items in the model's own ``known`` tensors instead)

A run is written into a temporary folder and renamed into place, so a crash never leaves half a run.

:class:`RunRecord` is run.json as typed, frozen dataclasses: pages, the CLI and the report read
``record.dataset.name`` or ``record.scores.interval("HR@10")`` instead of string look-ups into a dict,
so a renamed field is one edit here and a typo fails at once. ``from_json`` gives fields that older
runs lack their defaults (runs are kept for years and shared), ``to_json`` writes back what
``from_json`` read (parts no page reads field by field, such as the beyond-accuracy record or a
tuning study, travel untouched in ``extra``).

A saved run is untrusted input (runs are shared as folders): :func:`load_run` checks everything
before use and stops at the first problem with a :class:`~recsys_core.errors.RunFileError`. The id
must name a folder directly under runs/, no file may be a symlink or lie outside the data home, JSON
files are size-capped and must have the expected shape, the model name must be known and its config
within the documented bounds, the safetensors header is parsed and checked (a pickle renamed to
model.safetensors or a truncated file is refused before any tensor is read), and every tensor's name,
dtype and shape is compared with a freshly built model of that config; sparse index tensors must lie
inside the model's users and items.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import limits
from .errors import ModelError, RecsysError, RunFileError, RunNotFoundError
from .home import data_home, runs_dir
from .interactions import Vocabulary, display_titles
from .models import model_class
from .models.base import Recommender
from .safe_files import decoded_frame, open_regular_file, parse_json, read_parquet_capped, read_regular_file

MODEL_FILE = "model.safetensors"
SEEN_FILE = "seen.safetensors"


# ---------------------------------------------------------------------------------- run.json, typed
def _mapping(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
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
        return {
            "protocol": self.protocol,
            "part": self.part,
            "n_users": self.n_users,
            "metrics": self.scores.metrics_json(),
            "intervals": self.scores.intervals_json(),
            "info": dict(self.info),
            "differences_meaningful": self.differences_meaningful,
        }

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
        return cls(
            bool(data.get("done", False)),
            _whole(data.get("epochs"), "refit epochs"),
            data.get("on"),
            _mapping(data.get("settings"), "refit settings"),
        )

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
        out: dict[str, Any] = {name: getattr(self, name) for name in self._ALWAYS}
        out["derived"] = dict(self.derived)
        if self.kl is not None:
            out["kl"] = dict(self.kl)
        if self.pretrain_epochs is not None:
            out["pretrain_epochs"] = dict(self.pretrain_epochs)
        return {**out, **self.other}


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
                    epochs=tuple(history),
                    epochs_run=_whole(data.get("epochs_run"), "epochs_run"),
                    best_epoch=_whole(data.get("best_epoch"), "best_epoch"),
                    stopped_early=bool(data.get("stopped_early", False)),
                    fit_seconds=_number(data.get("fit_seconds"), "fit_seconds", 0.0),
                    device=str(data.get("device") or "?"),
                ),
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
        """run.json as written (fields from_json filled in for an old run are written out)."""
        return {
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


@dataclass(frozen=True)
class BrokenRun:
    """A run folder that cannot be read: listed with the reason, so one damaged run hides no other."""

    run_id: str
    reason: str

    def to_json(self) -> dict:
        return {"run_id": self.run_id, "broken": True, "reason": self.reason}


def save_model(model: Recommender, folder: Path) -> None:
    """Write a fitted model's tensors and metadata into ``folder`` (which must exist)."""
    from safetensors.torch import save_file

    save_file(model.state_tensors(), str(folder / MODEL_FILE))
    (folder / "model.json").write_text(json.dumps(model.metadata(), indent=2, default=_json_default))


def save_seen(seen: sp.csr_matrix, folder: Path) -> None:
    """The seen-items matrix as two CSR arrays (indptr, indices) in safetensors."""
    import torch
    from safetensors.torch import save_file

    seen = sp.csr_matrix(seen)
    seen.sum_duplicates()
    seen.sort_indices()
    save_file(
        {"seen.indptr": torch.as_tensor(seen.indptr.astype(np.int64)), "seen.indices": torch.as_tensor(seen.indices.astype(np.int64))},
        str(folder / SEEN_FILE),
    )


def load_seen(folder: Path, n_users: int, n_items: int) -> sp.csr_matrix | None:
    """The run's seen-items matrix, checked like the model's sparse tensors; None for runs saved before it existed."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = folder / SEEN_FILE
    if not os.path.lexists(path):
        return None
    label = f"{SEEN_FILE} of run {folder.name}"
    path = _inside_home(path, label, root=folder)
    header = _safetensors_header(path, label, limits.MAX_SEEN_BYTES)
    declared = header.get("seen.indptr", {}).get("shape")
    if declared != [n_users + 1]:  # before any array is allocated
        raise RunFileError(
            f"{label}: the sparse index declares shape {declared}, the model has {n_users} users", "Delete the run and train it again."
        )
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise RunFileError(f"{label} cannot be read: {exc}", "Delete the run and train it again.") from None
    indptr, indices = tensors.get("seen.indptr"), tensors.get("seen.indices")
    if indptr is None or indices is None or indptr.dtype != indices.dtype or str(indptr.dtype) != "torch.int64":
        raise RunFileError(f"{label} lacks the int64 tensors seen.indptr and seen.indices", "Delete the run and train it again.")
    indptr, indices = indptr.numpy(), indices.numpy()
    if indptr.ndim != 1 or len(indptr) != n_users + 1 or indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != len(indices):
        raise RunFileError(f"{label}: the sparse index is inconsistent with the model's {n_users} users")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_items):
        raise RunFileError(f"{label} refers to items outside the model's {n_items}")
    return sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(n_users, n_items))


MAX_SIZE = 100_000_000  # users or items a saved model may claim
_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def _inside_home(path: Path, what: str, root: Path | None = None) -> Path:
    """``path`` resolved, refused when it is a symlink or resolves outside ``root`` (default: the data home)."""
    home = data_home() if root is None else root.resolve()
    if path.is_symlink():
        raise RunFileError(f"{what} is a symbolic link; saved runs must hold plain files", "Copy the run's files instead of linking them.")
    resolved = path.resolve()
    if not resolved.is_relative_to(home):
        raise RunFileError(
            f"{what} lies outside {'the data home ' if root is None else ''}{home}", "Only files inside the data home are read."
        )
    return resolved


def _json_cap(name: str) -> tuple[int, int | None]:
    """The size cap of a run's JSON file and the longest string it may hold (read at call time: tests lower them)."""
    if name == "vocab.json":
        return limits.MAX_VOCAB_JSON_BYTES, None
    if name.startswith("evaluation-"):
        return limits.MAX_EVALUATION_JSON_BYTES, None
    return limits.MAX_RUN_JSON_BYTES, limits.MAX_RECORD_STRING_CHARS


def _read_json(folder: Path, name: str, kind: type = dict) -> Any:
    what = f"{name} of run {folder.name}"
    max_bytes, max_string = _json_cap(name)
    try:
        data = read_regular_file(folder / name, what, max_bytes, root=folder)
    except FileNotFoundError:
        raise RunFileError(f"run {folder.name} has no {name}", "The run is incomplete: delete it and train it again.") from None
    except OSError as exc:
        raise RunFileError(f"{what} is not readable: {exc.strerror}", "Delete the run and train it again.") from None
    value = parse_json(data, what, max_string=max_string)
    if not isinstance(value, kind):
        raise RunFileError(f"{what} holds a {type(value).__name__}, not a JSON {kind.__name__}")
    return value


def _safetensors_header(path: Path, label: str, max_bytes: int) -> dict:
    """Parse and check the safetensors header: a regular file within ``max_bytes``, an 8-byte length at most
    ``MAX_SAFETENSORS_HEADER_BYTES``, JSON nested at most ``MAX_JSON_DEPTH`` deep, known dtypes, offsets inside the file."""
    try:
        with open_regular_file(path, label, max_bytes, root=path.parent) as handle:
            size = os.fstat(handle.fileno()).st_size
            prefix = handle.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if length < 2 or length > min(limits.MAX_SAFETENSORS_HEADER_BYTES, size - 8):
                raise RunFileError(
                    f"{label} is not a safetensors file (a pickle or a truncated file?)", "Delete the run and train it again."
                )
            header = parse_json(handle.read(length), f"the safetensors header of {label}")
    except OSError as exc:
        raise RunFileError(f"{label} is not a readable safetensors file: {exc}", "Delete the run and train it again.") from None
    if not isinstance(header, dict):
        raise RunFileError(f"{label} has a damaged header")
    body = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPES or not isinstance(entry.get("shape"), list):
            raise RunFileError(f"{label}: the tensor {name!r} has an unknown dtype or shape")
        offsets = entry.get("data_offsets")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= body
        ):
            raise RunFileError(
                f"{label} is truncated or damaged: the tensor {name!r} lies outside the file", "Delete the run and train it again."
            )
    return header


def _check_declared_shapes(cls: type[Recommender], skeleton: Recommender, header: dict, label: str) -> None:
    """Every tensor a model of this config has, against the safetensors header: dtype and shape, before loading.

    ``skeleton`` lives on the meta device (shapes without memory); a dimension it leaves at 0 depends on
    the data (sparse entries, sequences) and is checked after loading."""
    expected = dict(skeleton._state())
    expected["known.indptr"] = (skeleton.n_users + 1,)
    for name, reference in expected.items():
        entry = header.get(name)
        if entry is None:
            raise RunFileError(
                f"{label} lacks the tensor {name!r} that a {cls.name} model of this config has", "Delete the run and train it again."
            )
        shape = tuple(reference) if isinstance(reference, tuple) else tuple(reference.shape)
        declared = entry["shape"]
        if len(declared) != len(shape) or any(r != 0 and d != r for d, r in zip(declared, shape)):
            raise RunFileError(f"{label}: the tensor {name!r} has shape {tuple(declared)}; this model's config needs {shape}")


def _check_tensors(cls: type[Recommender], model: Recommender, tensors: dict, label: str) -> None:
    """Names, dtypes and shapes against a freshly built model of the same config and sizes."""
    import torch

    expected = {k: v for k, v in model._state().items()}
    expected["known.indptr"] = torch.zeros(model.n_users + 1, dtype=torch.int64)
    expected["known.indices"] = torch.zeros(0, dtype=torch.int64)
    for name, reference in expected.items():
        if name not in tensors:
            raise RunFileError(
                f"{label} lacks the tensor {name!r} that a {cls.name} model of this config has", "Delete the run and train it again."
            )
        tensor = tensors[name]
        if tensor.dtype != reference.dtype or tensor.dim() != reference.dim():
            raise RunFileError(
                f"{label}: the tensor {name!r} is {tensor.dtype} with {tensor.dim()} dimensions; a {cls.name} model needs {reference.dtype} with {reference.dim()}"
            )
        # Dimensions of size 0 in the fresh model depend on the data (sparse entries, sequences); the rest is fixed by the config.
        if any(r != 0 and t != r for t, r in zip(tensor.shape, reference.shape)):
            raise RunFileError(
                f"{label}: the tensor {name!r} has shape {tuple(tensor.shape)}; this model's config needs {tuple(reference.shape)}"
            )
    for name, tensor in tensors.items():
        if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all()):
            raise RunFileError(f"{label}: the tensor {name!r} holds non-finite values")
        if name.endswith(".indptr"):
            values = tensor.numpy()
            prefix = name[: -len("indptr")]
            partner = tensors.get(prefix + "indices", tensors.get(prefix + "items"))  # CSR indices, or SVAE's item sequences
            if (
                values.ndim != 1
                or len(values) == 0
                or values[0] != 0
                or (np.diff(values) < 0).any()
                or partner is None
                or values[-1] != len(partner)
            ):
                raise RunFileError(f"{label}: the sparse index {name!r} is inconsistent")
        if name.endswith((".indices", ".items")) and tensor.numel():
            values = tensor.numpy()
            if values.min() < 0 or values.max() >= model.n_items:
                raise RunFileError(f"{label}: {name!r} refers to items outside the model's {model.n_items}")
    if len(tensors["known.indptr"]) != model.n_users + 1:
        raise RunFileError(f"{label}: the known interactions cover {len(tensors['known.indptr']) - 1} users, the model {model.n_users}")


def load_model(folder: Path, device: str = "cpu") -> Recommender:
    """Rebuild a model from ``folder`` (safetensors + JSON, never a pickle), checking everything first."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .limits import check_memory

    label = f"the model of run {folder.name}"
    metadata = _read_json(folder, "model.json")
    try:
        cls = model_class(metadata.get("model"))
        n_users, n_items = metadata.get("n_users"), metadata.get("n_items")
        if not all(isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_SIZE for n in (n_users, n_items)):
            raise RunFileError(f"{label} claims {n_users!r} users and {n_items!r} items, which is not a valid size")
        config = cls.Config.from_json(metadata.get("config", {}))
        meta = metadata.get("meta", {})
        if not isinstance(meta, dict):
            raise RunFileError(f"{label} has damaged metadata")
        check_memory(cls.name, n_users, n_items, 0, config, str(device))
        skeleton = cls(config)
        skeleton.n_users, skeleton.n_items, skeleton.meta = n_users, n_items, dict(meta)
        # On torch's meta device the skeleton has every tensor's shape and dtype and allocates none of them:
        # sizes declared in model.json are compared with the file's header before any memory is spent on them.
        skeleton.device = torch.device("meta")
        with torch.device("meta"):
            skeleton._build()
    except ModelError as error:  # unknown model name, settings out of bounds
        raise RunFileError(f"{label}: {error.message}", error.hint) from None
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise RunFileError(f"{label} has damaged metadata: {exc}", "Delete the run and train it again.") from None
    if not os.path.lexists(folder / MODEL_FILE):
        raise RunFileError(f"run {folder.name} has no {MODEL_FILE}", "The run is incomplete: delete it and train it again.")
    path = _inside_home(folder / MODEL_FILE, f"{MODEL_FILE} of run {folder.name}", root=folder)
    _check_declared_shapes(cls, skeleton, _safetensors_header(path, label, limits.MAX_MODEL_BYTES), label)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise RunFileError(f"{label} cannot be read: {exc}", "Delete the run and train it again.") from None
    _check_tensors(cls, skeleton, tensors, label)
    try:
        return cls.from_state({**metadata, "n_users": n_users, "n_items": n_items, "meta": meta}, tensors, device=device)
    except (RuntimeError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise RunFileError(f"{label} does not fit its config: {exc}", "Delete the run and train it again.") from None


def _json_default(value: Any):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def library_versions() -> dict[str, str]:
    import numpy
    import scipy
    import torch

    from . import __version__

    return {
        "recsys_core": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
    }


def new_run_id(dataset: str, model: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset).strip("-")[:40] or "data"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{model}-{uuid.uuid4().hex[:6]}"


def save_run(
    model: Recommender,
    *,
    users: Vocabulary,
    items: Vocabulary,
    record: dict,
    item_info: pd.DataFrame | None = None,
    user_info: pd.DataFrame | None = None,
    evaluations: dict[str, dict] | None = None,
    run_id: str | None = None,
    seen: sp.csr_matrix | None = None,
) -> str:
    """Write a run atomically and return its id. ``record`` becomes run.json.

    ``seen`` (users × items) is what recommendations from the run must not repeat: every interaction
    of the data set, where the model's own ``known`` holds only what it was fitted on."""
    run_id = run_id or new_run_id(str(record.get("dataset", {}).get("name", "data")), model.name)
    bad = {k: v for k, v in (record.get("metrics") or {}).items() if not np.isfinite(v)}
    if bad:
        raise RecsysError(
            f"the run was not saved: its test metrics {', '.join(bad)} are not finite numbers",
            "The data cannot support this protocol (too few users with enough interactions, or bad values): check the data and the protocol.",
        )
    root = runs_dir()
    final = root / run_id
    if final.exists():
        raise RecsysError(f"a run named {run_id!r} already exists")
    # The process id in the name lets the next start tell a dead writer's leftovers from a live one's.
    staging = Path(tempfile.mkdtemp(prefix=f".{run_id}.{os.getpid()}.", dir=root))
    try:
        save_model(model, staging)
        if seen is not None:
            save_seen(seen, staging)
        (staging / "vocab.json").write_text(json.dumps({"users": users.to_json(), "items": items.to_json()}))
        for name, table in (("items", item_info), ("users", user_info)):
            if table is not None:
                _clean_for_parquet(table).to_parquet(staging / f"{name}.parquet", index=False)
        for protocol, data in (evaluations or {}).items():
            (staging / f"evaluation-{protocol}.json").write_text(json.dumps(data, default=_json_default))
        record = {"run_id": run_id, "model": model.name, "config": model.config.to_json(), "versions": library_versions(), **record}
        (staging / "run.json").write_text(json.dumps(record, indent=2, default=_json_default))
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return run_id


def _clean_for_parquet(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    table.columns = [str(c) for c in table.columns]
    return table


@dataclass
class Run:
    """A saved run, loaded: the model plus what is needed to talk about raw ids and titles."""

    run_id: str
    path: Path
    record: dict
    model: Recommender
    users: Vocabulary
    items: Vocabulary
    item_info: pd.DataFrame | None = None
    user_info: pd.DataFrame | None = None
    seen_saved: sp.csr_matrix | None = field(default=None, repr=False)
    _evaluations: dict = field(default_factory=dict, repr=False)
    _info: RunRecord | None = field(default=None, repr=False)

    @property
    def info(self) -> RunRecord:
        """run.json as a typed :class:`RunRecord` (``record`` is the same, as the raw dict)."""
        if self._info is None:
            self._info = RunRecord.from_json(self.record, f"run.json of run {self.run_id}")
        return self._info

    @property
    def seen(self) -> sp.csr_matrix:
        """What each user has interacted with in any part of the data: recommendations never repeat it,
        and the app scores a user from it (everything known of the user, not only the fitted part).

        Runs saved before seen.safetensors existed stored these interactions as the model's ``known``."""
        return self.model.known if self.seen_saved is None else self.seen_saved

    def score(self, users: np.ndarray) -> np.ndarray:
        """The model's scores of ``users`` over every item, read from their whole history (:attr:`seen`)."""
        return self.model.score(np.asarray(users), history=self.seen)

    def item_titles(self) -> np.ndarray:
        return display_titles(self.items, self.item_info)

    def evaluation(self, protocol: str):
        """The saved per-user evaluation for ``protocol`` (an EvaluationResult), or None.

        The file must be a regular file inside the run's folder, within MAX_EVALUATION_JSON_BYTES and of the
        expected shape; anything else is a RunFileError (a comparison is never made from a file outside the run)."""
        from .evaluation import EvaluationResult

        if protocol not in self._evaluations:
            name = f"evaluation-{protocol}.json"
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", str(protocol)) or not os.path.lexists(self.path / name):
                self._evaluations[protocol] = None
            else:
                self._evaluations[protocol] = EvaluationResult.from_json(check_evaluation(_read_json(self.path, name), name, self.run_id))
        return self._evaluations[protocol]

    def recommend(self, raw_user: Any, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-``k`` items for a user given by raw id, as a table with titles and scores."""
        user = self.users.index(raw_user)
        items, scores = self.model.recommend(np.array([user]), k=k, exclude_seen=exclude_seen, history=self.seen)
        return self._item_table(items[0], scores[0])

    def rank_of_item(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """For every user: the item's first rank among all items by that user's scores (1 + the number
        scored strictly higher) and how many items share its score (1: no tie)."""
        n_users = self.model.n_users
        first = np.empty(n_users, dtype=np.int64)
        tied = np.empty(n_users, dtype=np.int64)
        step = max(1, int(2**24 // max(1, self.model.n_items)))
        for start in range(0, n_users, step):  # blocks of users, bounded memory
            users = np.arange(start, min(n_users, start + step))
            block = np.nan_to_num(self.score(users).astype(np.float64), nan=-np.inf)
            mine = block[:, item : item + 1]
            first[users] = (block > mine).sum(axis=1) + 1
            tied[users] = (block == mine).sum(axis=1)
        return first, tied

    def rank_users_for_item(self, raw_item: Any, k: int = 10) -> pd.DataFrame:
        """Reverse mode: the users (e.g. medical conditions) for which an item ranks highest.

        A score's scale differs between users, so each user is ranked by where the item falls among
        all items for that user: ``model_rank`` reads "ranked 3rd of 470 drugs" (or "tied 5th-9th"
        where the model scores several items equally); ``strength`` is that rank on a 0-100 scale.
        Users with the same rank and tie keep their vocabulary order: nothing separates them.
        """
        from .explain import rank_strength, rank_text

        item = self.items.index(raw_item)
        first, tied = self.rank_of_item(item)
        order = np.lexsort((np.arange(len(first)), tied, first))[:k]
        n_items = self.model.n_items
        noun = f"{self.items.kind}s"
        return pd.DataFrame(
            {
                "rank": np.arange(1, len(order) + 1),
                self.users.kind: self.users.ids[order],
                "model_rank": [rank_text(f, t, n_items, noun) for f, t in zip(first[order], tied[order])],
                "strength": rank_strength(first[order], tied[order], n_items),
                "rank_first": first[order],
                "tied": tied[order],
                "already_seen": np.asarray(self.seen[order, item].todense()).ravel() > 0,
            }
        )

    def _item_table(self, items: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        keep = np.isfinite(scores)
        items, scores = items[keep], scores[keep]
        table = pd.DataFrame(
            {"rank": np.arange(1, len(items) + 1), "item": self.items.ids[items], "title": self.item_titles()[items], "score": scores}
        )
        if self.item_info is not None:
            for column in ("genres", "year"):
                if column in self.item_info.columns:
                    table[column] = self.item_info[column].to_numpy()[items]
        table["item_index"] = items
        return table


_RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")


def run_path(run_id: str) -> Path:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise RunNotFoundError(f"{run_id!r} is not a valid run id", "Run ids are letters, digits, '.', '_' and '-' (see `runs`).")
    path = runs_dir() / run_id
    if path.is_symlink():
        raise RunFileError(
            f"run {run_id} is a symbolic link; saved runs must be plain folders", "Copy the run folder instead of linking it."
        )
    if not (path / "run.json").exists():
        known = [r.run_id for r in list_runs()][:5]
        hint = ("Recent runs: " + ", ".join(known)) if known else "No runs are saved yet: train one with `python -m recsys_core train`."
        raise RunNotFoundError(f"no saved run {run_id!r} in {runs_dir()}", hint)
    return path


def read_record(run_id: str) -> dict:
    """run.json of a saved run as a dict, read as every run file is (regular, size-capped, strict JSON)."""
    return _read_json(run_path(run_id), "run.json")


def check_record(record: dict, label: str) -> dict:
    """The parts of run.json that code reads without looking, with their types; returns the record."""
    from .splits import PROTOCOL_SPLITS

    dataset = record.get("dataset")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("name"), str):
        raise RunFileError(f"{label} names no dataset", "The run is incomplete or was edited: delete it and train it again.")
    source = dataset.get("source")
    if not (
        isinstance(source, dict)
        and source.get("kind") in ("builtin", "file", "drugscom-file")
        and isinstance(source.get("name"), str)
        and isinstance(source.get("path"), (str, type(None)))
        and isinstance(source.get("options"), (dict, type(None)))
    ):
        raise RunFileError(f"{label} has a damaged data source", "The run is incomplete or was edited: delete it and train it again.")
    if source.get("options"):
        from .datasets import UserFileOptions

        known = {f.name for f in dataclasses.fields(UserFileOptions)}
        if not set(source["options"]) <= known:
            raise RunFileError(f"{label} has unknown file options: {', '.join(sorted(set(source['options']) - known))}")
    if not isinstance(dataset.get("content_hash", ""), str):
        raise RunFileError(f"{label} has a damaged content hash")
    if record.get("protocol") not in PROTOCOL_SPLITS:
        raise RunFileError(f"{label} has the unknown protocol {record.get('protocol')!r}")
    if not isinstance(record.get("seed", 0), int) or isinstance(record.get("seed", 0), bool):
        raise RunFileError(f"{label} has a seed that is not a whole number")
    metrics = record.get("metrics", {})
    if not isinstance(metrics, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values()):
        raise RunFileError(f"{label} has damaged metrics")
    return record


_UNIT_METRICS = ("HR@", "NDCG@", "MRR", "Recall@", "Precision@", "MAP@", "Coverage@")


def check_evaluation(data: dict, name: str, run_id: str) -> dict:
    """evaluation-*.json's shape: its protocol, one finite per-user value per listed user (hit rates, NDCG
    and MRR within [0, 1]), finite metrics and interval pairs."""
    label = f"{name} of run {run_id}"
    hint = "Delete the file (the run's comparisons need it) or train the run again."

    def numbers(values: Any, what: str) -> np.ndarray:
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise RunFileError(f"{label}: {what} is not a list of numbers", hint)
        return np.asarray(values, dtype=np.float64)

    if not (isinstance(data.get("protocol"), str) and isinstance(data.get("part"), str) and isinstance(data.get("metrics"), dict)):
        raise RunFileError(f"{label} lacks its protocol, part or metrics", hint)
    if f"evaluation-{data['protocol']}.json" != name:
        raise RunFileError(f"{label} holds the evaluation of another protocol ({data['protocol']!r})", hint)
    if not all(isinstance(data.get(part, {}), dict) for part in ("per_user", "intervals", "info")):
        raise RunFileError(f"{label} has damaged per-user values, intervals or info", hint)
    users = numbers(data.get("users", []), "the user list")
    if (users < 0).any() or (users != np.round(users)).any() or len(np.unique(users)) != len(users):
        raise RunFileError(f"{label}: the user list holds negative, fractional or repeated indices", hint)
    for metric, values in data["per_user"].items():
        per_user = numbers(values, f"the per-user values of {metric}")
        if len(per_user) != len(users):
            raise RunFileError(f"{label}: {len(per_user)} values of {metric} for {len(users)} users", hint)
        if str(metric).startswith(_UNIT_METRICS) and ((per_user < 0).any() or (per_user > 1).any()):
            raise RunFileError(f"{label}: the per-user values of {metric} lie outside its range", hint)
    numbers(list(data["metrics"].values()), "the metrics")
    for metric, pair in data["intervals"].items():
        if len(numbers(pair, f"the interval of {metric}")) != 2:
            raise RunFileError(f"{label}: the interval of {metric} is not a pair", hint)
    return data


def _vocabulary(data: Any, what: str, label: str) -> Vocabulary:
    if not isinstance(data, dict) or not isinstance(data.get("ids"), list) or data.get("dtype") not in ("int", "str", "object"):
        raise RunFileError(f"{label}: the {what} vocabulary is damaged")
    ids, integer = data["ids"], data["dtype"] == "int"
    if not all(isinstance(i, int) and not isinstance(i, bool) if integer else isinstance(i, str) for i in ids) or len(set(ids)) != len(ids):
        raise RunFileError(f"{label}: the {what} vocabulary holds ids of the wrong type or repeated ids")
    try:
        return Vocabulary.from_json(data)
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise RunFileError(f"{label}: the {what} vocabulary is damaged: {exc}") from None


def _table(path: Path, name: str, rows: int) -> pd.DataFrame | None:
    """items.parquet / users.parquet: a regular file within MAX_TABLE_BYTES whose metadata declares ``rows``
    rows and distinct column names, and whose decoded size (text columns kept dictionary-encoded until it
    is known) stays within MAX_TABLE_DECODED_BYTES; then decoded."""
    import pyarrow.parquet as pq

    file = path / f"{name}.parquet"
    if not os.path.lexists(file):
        return None
    what = f"{name}.parquet of run {path.name}"
    _inside_home(file, what, root=path)
    try:
        with open_regular_file(file, what, limits.MAX_TABLE_BYTES, root=path) as handle:
            declared = pq.ParquetFile(handle).metadata.num_rows
            if declared != rows:
                raise RunFileError(f"{what} has {declared} rows for {rows} {name}")
            handle.seek(0)
            table = read_parquet_capped(handle, what, limits.MAX_TABLE_DECODED_BYTES, hint="Delete the run and train it again.")
    except RecsysError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise RunFileError(f"{what} is not readable: {exc}") from None
    try:
        return decoded_frame(table)
    except Exception as exc:
        raise RunFileError(f"{what} is not readable: {exc}") from None


def load_run(run_id: str, device: str = "cpu") -> Run:
    """A saved run, every file checked before use (see the module docstring); RunFileError at the first problem."""
    path = run_path(run_id)
    _inside_home(path, f"run {run_id}")
    label = f"run.json of run {run_id}"
    record = check_record(_read_json(path, "run.json"), label)
    vocab = _read_json(path, "vocab.json")
    users = _vocabulary(vocab.get("users"), "user", f"vocab.json of run {run_id}")
    items = _vocabulary(vocab.get("items"), "item", f"vocab.json of run {run_id}")
    model = load_model(path, device=device)
    if (len(users), len(items)) != (model.n_users, model.n_items):
        raise RunFileError(
            f"run {run_id}: vocab.json lists {len(users)} users and {len(items)} items, the model {model.n_users} and {model.n_items}"
        )
    run = Run(
        run_id=run_id,
        path=path,
        record=record,
        model=model,
        users=users,
        items=items,
        item_info=_table(path, "items", len(items)),
        user_info=_table(path, "users", len(users)),
        seen_saved=load_seen(path, model.n_users, model.n_items),
    )
    _ = run.info  # a record whose fields have the wrong types is refused here, not on some page later
    return run


def list_runs() -> list[RunRecord | BrokenRun]:
    """Every saved run's record, newest first; an unreadable folder is listed as a :class:`BrokenRun`."""
    out: list[RunRecord | BrokenRun] = []
    for path in runs_dir().iterdir():
        if path.name.startswith(".") or not (path / "run.json").exists():
            continue
        label = f"run.json of run {path.name}"
        try:
            _inside_home(path, f"run {path.name}")
            raw = check_record(_read_json(path, "run.json"), label)
            if raw.get("run_id") != path.name or not isinstance(raw.get("created", ""), str) or not isinstance(raw.get("model"), str):
                raise RunFileError(f"run.json of run {path.name} does not describe this run")
            out.append(RunRecord.from_json(raw, label))
        except RecsysError as error:  # one damaged run must not hide the others
            out.append(BrokenRun(path.name, error.message))
    # Broken runs have no creation time and sort last.
    return sorted(out, key=lambda r: r.created if isinstance(r, RunRecord) else "", reverse=True)


def delete_run(run_id: str) -> None:
    shutil.rmtree(run_path(run_id))


#: The longest name a person may give a run.
MAX_RUN_TITLE = 80


def rename_run(run_id: str, title: str) -> str:
    """Give a saved run a name of the person's choosing, shown first in its name on every page; "" removes it.

    Only run.json's ``title`` changes, rewritten atomically (a temporary file, then a rename): the run id and
    folder stay, so the active run, its maps and a study's link to it keep working. Returns the title as stored
    (one line, spaces collapsed)."""
    title = " ".join(str(title).split())
    if len(title) > MAX_RUN_TITLE:
        raise RecsysError(f"a run's name may have at most {MAX_RUN_TITLE} characters, not {len(title)}", "Choose a shorter name.")
    folder = run_path(run_id)
    record = _read_json(folder, "run.json")
    if title:
        record["title"] = title
    else:
        record.pop("title", None)
    handle, temporary = tempfile.mkstemp(prefix=".run.json.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(record, indent=2, default=_json_default))
        os.replace(temporary, folder / "run.json")
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return title
