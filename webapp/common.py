"""Cached access to data and runs, the user's choices in session state, and friendly errors.

Interactions and loaded runs are immutable or read-only, so they are shared through
``st.cache_resource`` (no copy per rerun; a 20M-row data set is never re-serialised); derived
tables go through ``st.cache_data``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from recsys_core.drugs import MEDICAL_NOTE as MEDICAL_NOTE  # one wording for the CLI and every page
from recsys_core.errors import RecsysError
from recsys_core.experiment import DataSource
from webapp.safe_output import plain

DEFAULT_SOURCE = DataSource.builtin("ml-100k")


def source_key(source: DataSource) -> str:
    return json.dumps(source.to_json(), sort_keys=True)


@st.cache_resource(show_spinner="Loading data…", max_entries=4)
def _load_data(key: str):
    return DataSource.from_json(json.loads(key)).load()


def load_data(source: DataSource):
    """The Interactions of ``source``, loaded once per process."""
    return _load_data(source_key(source))


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def load_run(run_id: str):
    """A saved run (model + vocabularies), loaded once per process; the run folder never changes."""
    from recsys_core.runs import load_run as _load

    return _load(run_id, device="auto")


def all_runs() -> list[dict]:
    from recsys_core.runs import list_runs

    return [r for r in list_runs() if not r.get("broken")]


def runs_for(data) -> list[dict]:
    """Saved runs trained on exactly this data (same content hash), newest first."""
    digest = data.content_hash()
    return [r for r in all_runs() if r["dataset"]["content_hash"] == digest]


def active_source() -> DataSource:
    if "source" not in st.session_state:
        st.session_state["source"] = DEFAULT_SOURCE.to_json()
    return DataSource.from_json(st.session_state["source"])


def set_active_source(source: DataSource) -> None:
    st.session_state["source"] = source.to_json()
    st.session_state.pop("run_id", None)


def active_run_id(data) -> str | None:
    """The chosen run for the active data, falling back to the newest run on it."""
    runs = runs_for(data)
    ids = [r["run_id"] for r in runs]
    chosen = st.session_state.get("run_id")
    if chosen in ids:
        return chosen
    return ids[0] if ids else None


def set_active_run(run_id: str) -> None:
    st.session_state["run_id"] = run_id


def positive_rule_text(record: dict | None = None) -> str:
    """ "Positives: ..." for a caption beside metrics: the run's recorded rule, else the active data's."""
    rule = (record or {}).get("dataset", {}).get("positive_rule")
    return f"Positives: {rule['text'] if rule else active_source().positive_rule()}."


def is_drug_data(data) -> bool:
    return data.users.kind == "condition" or data.items.kind == "drug"


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Show the library's own errors as a message on the page, never a traceback."""
    try:
        yield
    except RecsysError as error:
        st.error(error.message + (f"\n\n{error.hint}" if error.hint else ""))
        st.stop()


def sidebar_status(data=None) -> None:
    source = active_source()
    st.sidebar.markdown(f"**Dataset:** {plain(source.name)}")
    if data is not None:
        run_id = active_run_id(data)
        st.sidebar.markdown(f"**Run:** {run_id or '— none yet —'}")
