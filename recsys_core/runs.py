"""Saved runs: tensors in safetensors, everything else in JSON (and parquet for metadata tables).

``$RECSYS_HOME/runs/<run_id>/``
    model.safetensors   the model's tensors and its known interactions (no pickle anywhere)
    model.json          model name, config, sizes, model-specific metadata
    run.json            dataset, split, protocol, seed, versions, device, history, metrics
    vocab.json          raw user and item ids in index order
    items.parquet       item metadata (titles, genres, ...) when the data set has it
    users.parquet       user metadata when the data set has it
    evaluation-*.json   per-user values of each evaluation, for paired comparisons

A run is written into a temporary folder and renamed into place, so a crash never leaves half a run.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ModelError, RecsysError, RunFileError, RunNotFoundError
from .home import data_home, runs_dir
from .interactions import Vocabulary, display_titles
from .models import model_class
from .models.base import Recommender

MODEL_FILE = "model.safetensors"


def save_model(model: Recommender, folder: Path) -> None:
    """Write a fitted model's tensors and metadata into ``folder`` (which must exist)."""
    from safetensors.torch import save_file

    save_file(model.state_tensors(), str(folder / MODEL_FILE))
    (folder / "model.json").write_text(json.dumps(model.metadata(), indent=2, default=_json_default))


MAX_JSON_BYTES = 512 << 20  # per-user evaluations of a 20M-rating run stay well below this
MAX_HEADER_BYTES = 100 << 20
MAX_SIZE = 100_000_000  # users or items a saved model may claim
_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def _inside_home(path: Path, what: str, root: Path | None = None) -> Path:
    """``path`` resolved, refused when it is a symlink or resolves outside ``root`` (default: the data home)."""
    home = data_home() if root is None else root.resolve()
    if path.is_symlink():
        raise RunFileError(f"{what} is a symbolic link; saved runs must hold plain files", "Copy the run's files instead of linking them.")
    resolved = path.resolve()
    if not resolved.is_relative_to(home):
        raise RunFileError(f"{what} lies outside {'the data home ' if root is None else ''}{home}", "Only files inside the data home are read.")
    return resolved


def _read_json(folder: Path, name: str, kind: type = dict) -> Any:
    path = _inside_home(folder / name, f"{name} of run {folder.name}", root=folder)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise RunFileError(f"{name} of run {folder.name} has {size / 1e6:,.0f} MB, more than a run's JSON may have")
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"run {folder.name} has no {name}", "The run is incomplete: delete it and train it again.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RunFileError(f"{name} of run {folder.name} is not readable JSON: {exc}", "Delete the run and train it again.") from None
    if not isinstance(value, kind):
        raise RunFileError(f"{name} of run {folder.name} holds a {type(value).__name__}, not a JSON {kind.__name__}")
    return value


def _safetensors_header(path: Path, label: str) -> dict:
    """Parse and check the safetensors header: 8-byte length, JSON, known dtypes, offsets inside the file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if length < 2 or length > min(MAX_HEADER_BYTES, size - 8):
                raise RunFileError(f"{label} is not a safetensors file (a pickle or a truncated file?)", "Delete the run and train it again.")
            header = json.loads(handle.read(length))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
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
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets) and 0 <= offsets[0] <= offsets[1] <= body):
            raise RunFileError(f"{label} is truncated or damaged: the tensor {name!r} lies outside the file", "Delete the run and train it again.")
    return header


def _check_tensors(cls: type[Recommender], model: Recommender, tensors: dict, label: str) -> None:
    """Names, dtypes and shapes against a freshly built model of the same config and sizes."""
    import torch

    expected = {k: v for k, v in model._state().items()}
    expected["known.indptr"] = torch.zeros(model.n_users + 1, dtype=torch.int64)
    expected["known.indices"] = torch.zeros(0, dtype=torch.int64)
    for name, reference in expected.items():
        if name not in tensors:
            raise RunFileError(f"{label} lacks the tensor {name!r} that a {cls.name} model of this config has", "Delete the run and train it again.")
        tensor = tensors[name]
        if tensor.dtype != reference.dtype or tensor.dim() != reference.dim():
            raise RunFileError(f"{label}: the tensor {name!r} is {tensor.dtype} with {tensor.dim()} dimensions; a {cls.name} model needs {reference.dtype} with {reference.dim()}")
        # Dimensions of size 0 in the fresh model depend on the data (sparse entries, sequences); the rest is fixed by the config.
        if any(r != 0 and t != r for t, r in zip(tensor.shape, reference.shape)):
            raise RunFileError(f"{label}: the tensor {name!r} has shape {tuple(tensor.shape)}; this model's config needs {tuple(reference.shape)}")
    for name, tensor in tensors.items():
        if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all()):
            raise RunFileError(f"{label}: the tensor {name!r} holds non-finite values")
        if name.endswith(".indptr"):
            values = tensor.numpy()
            prefix = name[: -len("indptr")]
            partner = tensors.get(prefix + "indices", tensors.get(prefix + "items"))  # CSR indices, or SVAE's item sequences
            if values.ndim != 1 or len(values) == 0 or values[0] != 0 or (np.diff(values) < 0).any() or partner is None or values[-1] != len(partner):
                raise RunFileError(f"{label}: the sparse index {name!r} is inconsistent")
        if name.endswith((".indices", ".items")) and tensor.numel():
            values = tensor.numpy()
            if values.min() < 0 or values.max() >= model.n_items:
                raise RunFileError(f"{label}: {name!r} refers to items outside the model's {model.n_items}")
    if len(tensors["known.indptr"]) != model.n_users + 1:
        raise RunFileError(f"{label}: the known interactions cover {len(tensors['known.indptr']) - 1} users, the model {model.n_users}")


def load_model(folder: Path, device: str = "cpu") -> Recommender:
    """Rebuild a model from ``folder`` (safetensors + JSON, never a pickle), checking everything first."""
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
        skeleton._build()
    except ModelError as error:  # unknown model name, settings out of bounds
        raise RunFileError(f"{label}: {error.message}", error.hint) from None
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise RunFileError(f"{label} has damaged metadata: {exc}", "Delete the run and train it again.") from None
    path = _inside_home(folder / MODEL_FILE, f"{MODEL_FILE} of run {folder.name}", root=folder)
    if not path.is_file():
        raise RunFileError(f"run {folder.name} has no {MODEL_FILE}", "The run is incomplete: delete it and train it again.")
    _safetensors_header(path, label)
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
) -> str:
    """Write a run atomically and return its id. ``record`` becomes run.json."""
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
    _evaluations: dict = field(default_factory=dict, repr=False)

    def item_titles(self) -> np.ndarray:
        return display_titles(self.items, self.item_info)

    def evaluation(self, protocol: str):
        """The saved per-user evaluation for ``protocol`` (an EvaluationResult), or None."""
        from .evaluation import EvaluationResult

        if protocol not in self._evaluations:
            path = self.path / f"evaluation-{protocol}.json"
            self._evaluations[protocol] = EvaluationResult.from_json(json.loads(path.read_text())) if path.exists() else None
        return self._evaluations[protocol]

    def recommend(self, raw_user: Any, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-``k`` items for a user given by raw id, as a table with titles and scores."""
        user = self.users.index(raw_user)
        items, scores = self.model.recommend(np.array([user]), k=k, exclude_seen=exclude_seen)
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
            block = np.nan_to_num(self.model.score(users).astype(np.float64), nan=-np.inf)
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
                "already_seen": np.asarray(self.model.known[order, item].todense()).ravel() > 0,
            }
        )

    def _item_table(self, items: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        keep = np.isfinite(scores)
        items, scores = items[keep], scores[keep]
        table = pd.DataFrame({"rank": np.arange(1, len(items) + 1), "item": self.items.ids[items], "title": self.item_titles()[items], "score": scores})
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
        raise RunFileError(f"run {run_id} is a symbolic link; saved runs must be plain folders", "Copy the run folder instead of linking it.")
    if not (path / "run.json").exists():
        known = [r["run_id"] for r in list_runs()][:5]
        hint = ("Recent runs: " + ", ".join(known)) if known else "No runs are saved yet: train one with `python -m recsys_core train`."
        raise RunNotFoundError(f"no saved run {run_id!r} in {runs_dir()}", hint)
    return path


def check_record(record: dict, label: str) -> dict:
    """The parts of run.json that code reads without looking, with their types; returns the record."""
    from .splits import PROTOCOL_SPLITS

    dataset = record.get("dataset")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("name"), str):
        raise RunFileError(f"{label} names no dataset", "The run is incomplete or was edited: delete it and train it again.")
    source = dataset.get("source")
    if not (isinstance(source, dict) and source.get("kind") in ("builtin", "file", "drugscom-file") and isinstance(source.get("name"), str)
            and isinstance(source.get("path"), (str, type(None))) and isinstance(source.get("options"), (dict, type(None)))):
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
    file = path / f"{name}.parquet"
    if not file.exists() and not file.is_symlink():
        return None
    _inside_home(file, f"{name}.parquet of run {path.name}", root=path)
    try:
        table = pd.read_parquet(file)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise RunFileError(f"{name}.parquet of run {path.name} is not readable: {exc}") from None
    if len(table) != rows:
        raise RunFileError(f"{name}.parquet of run {path.name} has {len(table)} rows for {rows} {name}")
    return table


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
        raise RunFileError(f"run {run_id}: vocab.json lists {len(users)} users and {len(items)} items, the model {model.n_users} and {model.n_items}")
    return Run(
        run_id=run_id,
        path=path,
        record=record,
        model=model,
        users=users,
        items=items,
        item_info=_table(path, "items", len(items)),
        user_info=_table(path, "users", len(users)),
    )


def list_runs() -> list[dict]:
    """run.json of every saved run, newest first; unreadable folders are skipped with a note."""
    out = []
    for path in runs_dir().iterdir():
        if path.name.startswith(".") or not (path / "run.json").exists():
            continue
        try:
            _inside_home(path, f"run {path.name}")
            record = check_record(_read_json(path, "run.json"), f"run.json of run {path.name}")
            if record.get("run_id") != path.name or not isinstance(record.get("created", ""), str) or not isinstance(record.get("model"), str):
                raise RunFileError(f"run.json of run {path.name} does not describe this run")
            out.append(record)
        except RecsysError as error:  # one damaged run must not hide the others
            out.append({"run_id": path.name, "broken": True, "reason": error.message})
    return sorted(out, key=lambda r: str(r.get("created", "")), reverse=True)


def delete_run(run_id: str) -> None:
    shutil.rmtree(run_path(run_id))
