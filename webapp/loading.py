"""Cached access to data and runs: the one place pages load interactions and saved runs, and ask what there is.

Interactions and loaded runs are immutable or read-only, so they are shared through ``st.cache_resource``
(no copy per rerun; a 20M-row data set is never re-serialised); derived tables go through ``st.cache_data``.
Written once here: the cache key of a data source (:func:`source_key`), whether a built-in data set is
fetched (:func:`is_available`), the runs trained on a data set (:func:`runs_for`) and what kind of data it
is (:func:`is_drug_data`).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import streamlit as st

from recsys_core.datasets.source import DataSource

if TYPE_CHECKING:
    from recsys_core.run_record import RunRecord


def source_key(source: DataSource) -> str:
    return json.dumps(source.to_json(), sort_keys=True)


@st.cache_resource(show_spinner="Loading data…", max_entries=4)
def _load_data(key: str, _loaded=None):
    # ``_loaded``: data read outside the cache (where a progress bar may be updated) to keep under
    # this key; the leading underscore keeps it out of the key (Streamlit does not hash it).
    return _loaded if _loaded is not None else DataSource.from_json(json.loads(key)).load()


def load_data(source: DataSource, read_progress=None):
    """The Interactions of ``source``, loaded once per process.

    With ``read_progress(fraction, text)`` a user file is read again with its steps reported (a
    cached function may not update an element made outside it) and the result kept in the cache.
    """
    if read_progress is None:
        return _load_data(source_key(source))
    return _load_data(source_key(source), source.load(read_progress=read_progress))


def data_for_key(key: str):
    """``load_data`` of the source whose ``source_key`` is ``key`` (cached tables are keyed by it)."""
    return _load_data(key)


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def load_run(run_id: str):
    """A saved run (model + vocabularies), loaded once per process; the run folder never changes."""
    from recsys_core.runs import load_run as _load

    return _load(run_id, device="auto")


def _runs_fingerprint() -> tuple:
    """What the saved runs' records are, cheaply: the runs folder, and each run's name and its run.json's inode, size
    and modification time. Every run.json is written whole and renamed into place (a new run's folder appears at once,
    ``write_record`` replaces the file), so a changed record always changes its stat."""
    from recsys_core.home import runs_dir
    from recsys_core.run_store import RECORD_FILE

    folder = runs_dir()
    stats = []
    for entry in os.scandir(folder):
        try:
            stat = os.stat(os.path.join(entry.path, RECORD_FILE))
        except OSError:  # not a run (yet): list_runs skips it too
            continue
        stats.append((entry.name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return (str(folder), tuple(sorted(stats)))


@st.cache_resource(show_spinner=False, max_entries=4)
def _readable_runs(fingerprint: tuple) -> tuple[RunRecord, ...]:
    # From run_store, not recsys_core.runs: that imports the models (torch), and every page's sidebar lists runs.
    from recsys_core.run_record import RunRecord
    from recsys_core.run_store import list_runs

    return tuple(r for r in list_runs() if isinstance(r, RunRecord))


def all_runs() -> list[RunRecord]:
    """Every readable saved run, newest first (damaged folders are left to the CLI's `runs` to list).

    Read again only when a run.json changed (:func:`_runs_fingerprint`): a page asks several times per rerun (the
    sidebar, the run picker, the best run), and each read used to open and check every run's record."""
    return list(_readable_runs(_runs_fingerprint()))


def runs_for(data) -> list[RunRecord]:
    """Saved runs trained on exactly this data (same content hash), newest first."""
    digest = data.content_hash()
    return [r for r in all_runs() if r.dataset.content_hash == digest]


def is_available(name: str) -> bool:
    """Whether the built-in data set ``name`` is fetched into the data home (the Data page fetches it)."""
    from recsys_core.datasets import is_available as _available

    return _available(name)


def is_drug_data(data) -> bool:
    return data.users.kind == "condition" or data.items.kind == "drug"
