"""Where saved runs lie and how their files are written and read: the one reader and writer of run.json.

``$RECSYS_HOME/runs/<run_id>/``
    model.safetensors   the model's tensors and its known interactions (no pickle anywhere)
    model.json          model name, config, sizes, model-specific metadata
    run.json            dataset, split, protocol, seed, versions, device, history, metrics
                        (its entries and their order: :class:`~recsys_core.run_record.RunRecord`)
    vocab.json          raw user and item ids in index order
    items.parquet       item metadata (titles, genres, ...) when the data set has it
    users.parquet       user metadata when the data set has it
    evaluation-*.json   per-user values of each evaluation, for paired comparisons
    seen.safetensors    the items each user has interacted with, in any part of the data (CSR arrays):
                        what recommendations from the run exclude; the model itself keeps the
                        interactions it scores from (runs saved before this file existed hold the
                        seen items in the model's own ``known`` tensors instead)

A run is written into a temporary folder and renamed into place (:func:`new_run_folder`), so a crash
never leaves half a run. run.json changes after that only through :func:`write_record`: a temporary
file in the run's folder, renamed over the old one, so a reader sees the old record or the new one,
never a mix, and a failure leaves the old one as it was. Its text is :func:`record_text` in both cases.

A saved run is untrusted input (runs are shared as folders): everything is checked before use and a
check stops at the first problem with a :class:`~recsys_core.errors.RunFileError`. The id must name a
folder directly under runs/, no file may be a symlink or lie outside the data home, JSON files are
size-capped and must have the expected shape (:func:`check_record`, :func:`check_evaluation`), tables
are capped before and after decoding. The tensor files are checked by :mod:`recsys_core.run_tensors`.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import limits
from .errors import RecsysError, RunFileError, RunNotFoundError
from .home import data_home, runs_dir
from .interactions import Vocabulary
from .protocols import PROTOCOLS
from .run_record import RunRecord
from .safe_files import decoded_frame, open_regular_file, parse_json, read_parquet_capped, read_regular_file

RECORD_FILE = "run.json"
MODEL_FILE = "model.safetensors"
SEEN_FILE = "seen.safetensors"


def inside_home(path: Path, what: str, root: Path | None = None) -> Path:
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


def read_json(folder: Path, name: str, kind: type = dict) -> Any:
    """A run's JSON file ``name``, read as every run file is: a regular file inside the run's folder, within its size cap
    (:func:`_json_cap`), strict JSON of the type ``kind``; a RunFileError otherwise."""
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


def json_default(value: Any):
    """The JSON of the numpy values and paths a run's files hold; anything else is refused (a TypeError)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def library_versions() -> dict[str, str]:
    """The versions run.json records (``versions``), so a result can be traced to the code that made it."""
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
    """A fresh id: the time, the data set's name made safe for a folder name, the model and a random suffix."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset).strip("-")[:40] or "data"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{model}-{uuid.uuid4().hex[:6]}"


def clean_for_parquet(table: pd.DataFrame) -> pd.DataFrame:
    """A metadata table parquet can store: text columns as strings or None, column names as strings."""
    table = table.copy()
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    table.columns = [str(c) for c in table.columns]
    return table


@dataclass(frozen=True)
class BrokenRun:
    """A run folder that cannot be read: listed with the reason, so one damaged run hides no other."""

    run_id: str
    reason: str

    def to_json(self) -> dict:
        return {"run_id": self.run_id, "broken": True, "reason": self.reason}


_RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")


def run_path(run_id: str) -> Path:
    """The folder of the saved run ``run_id``: a valid id, a plain folder directly under runs/ holding a run.json."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise RunNotFoundError(f"{run_id!r} is not a valid run id", "Run ids are letters, digits, '.', '_' and '-' (see `runs`).")
    path = runs_dir() / run_id
    if path.is_symlink():
        raise RunFileError(
            f"run {run_id} is a symbolic link; saved runs must be plain folders", "Copy the run folder instead of linking it."
        )
    if not (path / RECORD_FILE).exists():
        known = [r.run_id for r in list_runs()][:5]
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


def _units_are_ratings(protocol: str) -> bool:
    return protocol in PROTOCOLS and PROTOCOLS[protocol].units_are_ratings


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
    if (users < 0).any() or (users != np.round(users)).any():
        raise RunFileError(f"{label}: the user list holds negative or fractional indices", hint)
    # A rating result lists a user once per test rating; every other protocol lists each test user once.
    if not _units_are_ratings(data["protocol"]) and len(np.unique(users)) != len(users):
        raise RunFileError(f"{label}: the user list holds repeated indices", hint)
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


def read_vocabulary(data: Any, what: str, label: str) -> Vocabulary:
    if not isinstance(data, dict) or not isinstance(data.get("ids"), list) or data.get("dtype") not in ("int", "str", "object"):
        raise RunFileError(f"{label}: the {what} vocabulary is damaged")
    ids, integer = data["ids"], data["dtype"] == "int"
    if not all(isinstance(i, int) and not isinstance(i, bool) if integer else isinstance(i, str) for i in ids) or len(set(ids)) != len(ids):
        raise RunFileError(f"{label}: the {what} vocabulary holds ids of the wrong type or repeated ids")
    try:
        return Vocabulary.from_json(data)
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise RunFileError(f"{label}: the {what} vocabulary is damaged: {exc}") from None


def read_table(path: Path, name: str, rows: int) -> pd.DataFrame | None:
    """items.parquet / users.parquet: a regular file within MAX_TABLE_BYTES whose metadata declares ``rows``
    rows and distinct column names, and whose decoded size (text columns kept dictionary-encoded until it
    is known) stays within MAX_TABLE_DECODED_BYTES; then decoded."""
    import pyarrow.parquet as pq

    file = path / f"{name}.parquet"
    if not os.path.lexists(file):
        return None
    what = f"{name}.parquet of run {path.name}"
    inside_home(file, what, root=path)
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


def list_runs() -> list[RunRecord | BrokenRun]:
    """Every saved run's record, newest first; an unreadable folder is listed as a :class:`BrokenRun`."""
    out: list[RunRecord | BrokenRun] = []
    for path in runs_dir().iterdir():
        if path.name.startswith(".") or not (path / RECORD_FILE).exists():
            continue
        label = f"run.json of run {path.name}"
        try:
            inside_home(path, f"run {path.name}")
            raw = check_record(read_json(path, RECORD_FILE), label)
            if raw.get("run_id") != path.name or not isinstance(raw.get("created", ""), str) or not isinstance(raw.get("model"), str):
                raise RunFileError(f"run.json of run {path.name} does not describe this run")
            out.append(RunRecord.from_json(raw, label))
        except RecsysError as error:  # one damaged run must not hide the others
            out.append(BrokenRun(path.name, error.message))
    # Broken runs have no creation time and sort last.
    return sorted(out, key=lambda r: r.created if isinstance(r, RunRecord) else "", reverse=True)


def delete_run(run_id: str) -> None:
    shutil.rmtree(run_path(run_id))


def record_text(record: dict) -> str:
    """run.json's text for ``record`` (a :meth:`RunRecord.to_json` or a record as read), as every writer writes it."""
    return json.dumps(record, indent=2, default=json_default)


@contextmanager
def new_run_folder(run_id: str) -> Iterator[Path]:
    """A staging folder for a new run, renamed to ``runs/<run_id>`` when the block ends without an error
    and removed when it raises: a run appears whole or not at all."""
    final = runs_dir() / run_id
    if final.exists():
        raise RecsysError(f"a run named {run_id!r} already exists")
    # The process id in the name lets the next start tell a dead writer's leftovers from a live one's.
    staging = Path(tempfile.mkdtemp(prefix=f".{run_id}.{os.getpid()}.", dir=runs_dir()))
    try:
        yield staging
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_record(folder: Path, record: dict) -> None:
    """Replace the run.json of the saved run in ``folder`` atomically: the text goes to a temporary file beside it,
    which is renamed over run.json; on any failure the temporary file goes and the old run.json stays as it was."""
    text = record_text(record)  # a value JSON cannot hold fails here, before anything is written
    handle, temporary = tempfile.mkstemp(prefix=f".{RECORD_FILE}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, folder / RECORD_FILE)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
