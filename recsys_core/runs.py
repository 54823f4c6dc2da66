"""Saved runs, the facade: save a run, load it, update what may change, name it, list and delete runs.

The parts live in three modules, each the one owner of its fact: :mod:`recsys_core.run_record` is
run.json's schema (:class:`RunRecord`), :mod:`recsys_core.run_store` the folder layout (documented
there file by file), the atomic writes and the checked reads, :mod:`recsys_core.run_tensors` the model
and seen-items tensors. Everything else imports from here: ``from recsys_core.runs import save_run,
load_run, list_runs, RunRecord``.

A run is saved once (:func:`save_run`, written whole or not at all) and its results never change
afterwards; only its :data:`ANNOTATIONS` do, through :func:`update_run`, which rewrites run.json
atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import RecsysError, RunFileError
from .interactions import Vocabulary, display_titles
from .models.base import Recommender
from .run_record import (
    MAX_RUN_TITLE,
    DatasetRecord,
    History,
    ModelRecord,
    PositiveRule,
    Refit,
    RunRecord,
    Scores,
    Settings,
    TestResult,
)
from .run_store import (
    MODEL_FILE,
    RECORD_FILE,
    SEEN_FILE,
    BrokenRun,
    check_evaluation,
    check_record,
    clean_for_parquet,
    delete_run,
    inside_home,
    json_default,
    library_versions,
    list_runs,
    new_run_folder,
    new_run_id,
    read_json,
    read_table,
    read_vocabulary,
    record_text,
    run_path,
    write_record,
)
from .run_tensors import load_model, load_seen, save_model, save_seen

__all__ = [  # what pages, the CLI, the report and the tests import from here
    "ANNOTATIONS", "MAX_RUN_TITLE", "MODEL_FILE", "RECORD_FILE", "SEEN_FILE", "BrokenRun", "DatasetRecord", "History", "ModelRecord",
    "PositiveRule", "Refit", "Run", "RunRecord", "Scores", "Settings", "TestResult", "delete_run", "list_runs", "load_model", "load_run",
    "load_seen", "rename_run", "run_path", "save_model", "save_run", "save_seen", "update_run",
]  # fmt: skip

#: The entries of run.json that may change after the run is saved (:func:`update_run`): the name a person
#: gave it, the study that chose its configuration, how it was trained across processes.
ANNOTATIONS = ("title", "study", "distributed")


def save_run(
    model: Recommender,
    *,
    users: Vocabulary,
    items: Vocabulary,
    record: RunRecord,
    item_info: pd.DataFrame | None = None,
    user_info: pd.DataFrame | None = None,
    evaluations: dict[str, dict] | None = None,
    run_id: str | None = None,
    seen: sp.csr_matrix | None = None,
) -> RunRecord:
    """Write a run atomically and return its record as saved: ``record`` with the run's id, the model's name and
    config and the library versions filled in, written as run.json.

    ``seen`` (users × items) is what recommendations from the run must not repeat: every interaction
    of the data set, where the model's own ``known`` holds only what it was fitted on."""
    bad = [name for name, value in record.scores.values.items() if not np.isfinite(value)]
    if bad:
        raise RecsysError(
            f"the run was not saved: its test metrics {', '.join(bad)} are not finite numbers",
            "The data cannot support this protocol (too few users with enough interactions, or bad values): check the data and the protocol.",
        )
    run_id = run_id or new_run_id(record.dataset.name, model.name)
    record = dataclasses.replace(
        record,
        run_id=run_id,
        model=ModelRecord(model.name, model.config.to_json()),
        extra={"versions": library_versions(), **record.extra},
    )
    with new_run_folder(run_id) as staging:
        save_model(model, staging)
        if seen is not None:
            save_seen(seen, staging)
        (staging / "vocab.json").write_text(json.dumps({"users": users.to_json(), "items": items.to_json()}))
        for name, table in (("items", item_info), ("users", user_info)):
            if table is not None:
                clean_for_parquet(table).to_parquet(staging / f"{name}.parquet", index=False)
        for protocol, data in (evaluations or {}).items():
            (staging / f"evaluation-{protocol}.json").write_text(json.dumps(data, default=json_default))
        (staging / RECORD_FILE).write_text(record_text(record.to_json()))
    return record


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
    _titles: np.ndarray | None = field(default=None, repr=False)
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
        """Every item's display title, made once per loaded run (every recommendation list indexes it)."""
        if self._titles is None:
            self._titles = display_titles(self.items, self.item_info)
        return self._titles

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
                self._evaluations[protocol] = EvaluationResult.from_json(check_evaluation(read_json(self.path, name), name, self.run_id))
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


def load_run(run_id: str, device: str = "cpu") -> Run:
    """A saved run, every file checked before use (see :mod:`recsys_core.run_store`); RunFileError at the first problem."""
    path = run_path(run_id)
    inside_home(path, f"run {run_id}")
    label = f"run.json of run {run_id}"
    record = check_record(read_json(path, RECORD_FILE), label)
    vocab = read_json(path, "vocab.json")
    users = read_vocabulary(vocab.get("users"), "user", f"vocab.json of run {run_id}")
    items = read_vocabulary(vocab.get("items"), "item", f"vocab.json of run {run_id}")
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
        item_info=read_table(path, "items", len(items)),
        user_info=read_table(path, "users", len(users)),
        seen_saved=load_seen(path, model.n_users, model.n_items),
    )
    _ = run.info  # a record whose fields have the wrong types is refused here, not on some page later
    return run


def update_run(run_id: str, **annotations: Any) -> RunRecord:
    """Set :data:`ANNOTATIONS` of a saved run's run.json (None removes one) and return the run's record.

    The record is read as every run file is (regular, size-capped, strict JSON), changed, checked to still
    read as a :class:`RunRecord`, and written back by :func:`~recsys_core.run_store.write_record`: atomically,
    every other entry as it was. A run's results never change, so any other name is a programming error."""
    unknown = set(annotations) - set(ANNOTATIONS)
    if unknown:
        raise ValueError(f"update_run changes only {', '.join(ANNOTATIONS)}, not {', '.join(sorted(unknown))}")
    folder = run_path(run_id)
    record = read_json(folder, RECORD_FILE)
    for name, value in annotations.items():
        if value is None:
            record.pop(name, None)
        else:
            record[name] = value
    updated = RunRecord.from_json(record, f"run.json of run {run_id}")
    write_record(folder, record)
    return updated


def rename_run(run_id: str, title: str) -> str:
    """Give a saved run a name of the person's choosing, shown first in its name on every page; "" removes it.

    Only run.json's ``title`` changes (:func:`update_run`, atomically): the run id and folder stay, so the
    active run, its maps and a study's link to it keep working. Returns the title as stored (one line,
    spaces collapsed)."""
    title = " ".join(str(title).split())
    if len(title) > MAX_RUN_TITLE:
        raise RecsysError(f"a run's name may have at most {MAX_RUN_TITLE} characters, not {len(title)}", "Choose a shorter name.")
    update_run(run_id, title=title or None)
    return title
