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
"""

from __future__ import annotations

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

from .errors import RecsysError, RunNotFoundError
from .home import runs_dir
from .interactions import Vocabulary, display_titles
from .models import model_class
from .models.base import Recommender

MODEL_FILE = "model.safetensors"


def save_model(model: Recommender, folder: Path) -> None:
    """Write a fitted model's tensors and metadata into ``folder`` (which must exist)."""
    from safetensors.torch import save_file

    save_file(model.state_tensors(), str(folder / MODEL_FILE))
    (folder / "model.json").write_text(json.dumps(model.metadata(), indent=2, default=_json_default))


def load_model(folder: Path, device: str = "cpu") -> Recommender:
    """Rebuild a model from ``folder`` (safetensors + JSON, never a pickle)."""
    from safetensors.torch import load_file

    metadata = json.loads((folder / "model.json").read_text())
    tensors = load_file(str(folder / MODEL_FILE))
    return model_class(metadata["model"]).from_state(metadata, tensors, device=device)


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
    root = runs_dir()
    final = root / run_id
    if final.exists():
        raise RecsysError(f"a run named {run_id!r} already exists")
    staging = Path(tempfile.mkdtemp(prefix=f".{run_id}.", dir=root))
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


def run_path(run_id: str) -> Path:
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise RunNotFoundError(f"{run_id!r} is not a valid run id")
    path = runs_dir() / run_id
    if not (path / "run.json").exists():
        known = [r["run_id"] for r in list_runs()][:5]
        hint = ("Recent runs: " + ", ".join(known)) if known else "No runs are saved yet: train one with `python -m recsys_core train`."
        raise RunNotFoundError(f"no saved run {run_id!r} in {runs_dir()}", hint)
    return path


def load_run(run_id: str, device: str = "cpu") -> Run:
    path = run_path(run_id)
    record = json.loads((path / "run.json").read_text())
    vocab = json.loads((path / "vocab.json").read_text())
    tables = {name: pd.read_parquet(path / f"{name}.parquet") if (path / f"{name}.parquet").exists() else None for name in ("items", "users")}
    return Run(
        run_id=run_id,
        path=path,
        record=record,
        model=load_model(path, device=device),
        users=Vocabulary.from_json(vocab["users"]),
        items=Vocabulary.from_json(vocab["items"]),
        item_info=tables["items"],
        user_info=tables["users"],
    )


def list_runs() -> list[dict]:
    """run.json of every saved run, newest first; unreadable folders are skipped with a note."""
    out = []
    for path in runs_dir().iterdir():
        if path.name.startswith(".") or not (path / "run.json").exists():
            continue
        try:
            out.append(json.loads((path / "run.json").read_text()))
        except (OSError, json.JSONDecodeError):
            out.append({"run_id": path.name, "broken": True})
    return sorted(out, key=lambda r: r.get("created", ""), reverse=True)


def delete_run(run_id: str) -> None:
    shutil.rmtree(run_path(run_id))
