"""Page helpers of Recommend, Compare and Embeddings: the run picker, cached derived tables, pickers.

Derived tables are built once per data set (keyed by the data source) and shared between sessions
through ``st.cache_resource``: they are read-only, and the evidence of the full Drugs.com data
would cost a copy per rerun through ``st.cache_data``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core import explain as ex
from recsys_core.errors import RecsysError
from recsys_core.experiment import DataSource
from webapp.common import (
    active_run_id,
    active_source,
    load_data,
    load_run,
    positive_rule_text,
    runs_for,
    set_active_run,
    sidebar_status,
    source_key,
)
from webapp.data_ui import page_link as data_page_link
from webapp.safe_output import csv_download, plain

MAX_OPTIONS = 20_000
"""Longest list a picker sends to the browser; larger data sets list the most active users / items."""


def show_error(error: RecsysError, what: str = "") -> None:
    st.error((f"{what}: " if what else "") + error.message + (f"\n\n{error.hint}" if error.hint else ""))


def _data_for(key: str):
    return load_data(DataSource.from_json(json.loads(key)))


# ------------------------------------------------------------------------------------ data and run
def active_data():
    """(source key, Interactions) of the active data, or a message and a stop."""
    source = active_source()
    try:
        data = load_data(source)
    except RecsysError as error:
        show_error(error, f"The active data {source.name} cannot be loaded")
        st.info("Choose or fetch a data set on the **Data** page.")
        data_page_link("pages/1_Data.py", label="Fetch a data set or upload your own file", icon=":material/folder_open:")
        sidebar_status()
        st.stop()
    sidebar_status(data)
    return source_key(source), data


def run_label(record: dict) -> str:
    """The name every page gives a run (kept here for the pages that import it from this module)."""
    from .common import run_label as _label

    return _label(record)


def pick_run(data, key: str, label: str = "Run"):
    """A selectbox of the saved runs on this data (newest first), kept in step with the active run.

    Returns the loaded Run, or shows how to get one and stops the page.
    """
    runs = runs_for(data)
    if not runs:
        st.info(f"No saved run on {plain(data.name)} yet. Train one on the **Train** page (EASE takes seconds).")
        data_page_link("pages/2_Train.py", label="Train a first model", icon=":material/model_training:")
        st.stop()
    ids = [r["run_id"] for r in runs]
    labels = {r["run_id"]: run_label(r) for r in runs}
    current = active_run_id(data)
    keep_valid(key, ids)
    run_id = st.selectbox(
        label,
        ids,
        index=ids.index(current) if current in ids else 0,
        format_func=lambda r: labels.get(r, r),
        key=key,
        on_change=lambda: set_active_run(st.session_state[key]),
    )
    set_active_run(run_id)
    # The labels show test metrics: say which interactions counted as positives for them.
    record = next((r for r in runs if r["run_id"] == run_id), None)
    st.caption(positive_rule_text(record))
    try:
        return load_run(run_id)
    except RecsysError as error:
        show_error(error, f"Run {run_id} cannot be loaded")
        st.stop()


# ------------------------------------------------------------------------------------ cached tables
@st.cache_resource(show_spinner=False, max_entries=4)
def history_index(key: str) -> ex.HistoryIndex:
    return ex.HistoryIndex.build(_data_for(key))


@st.cache_resource(show_spinner="Collecting the reviews of every pair…", max_entries=4)
def pair_evidence(key: str) -> pd.DataFrame:
    return ex.pair_evidence(_data_for(key))


@st.cache_resource(show_spinner=False, max_entries=4)
def item_evidence(key: str) -> pd.DataFrame:
    return ex.item_evidence(_data_for(key))


@st.cache_resource(show_spinner=False, max_entries=4)
def popularity(key: str) -> np.ndarray:
    return _data_for(key).item_counts()


@st.cache_resource(show_spinner=False, max_entries=4)
def max_rating(key: str) -> float | None:
    data = _data_for(key)
    return float(np.max(data.rating)) if data.rating is not None and len(data) else None


@st.cache_resource(show_spinner=False, max_entries=4)
def user_labels(key: str) -> list[str]:
    """A one-line label per user: id, then age, gender and occupation where known, then activity."""
    data = _data_for(key)
    ids = pd.Series(data.users.ids).astype(str)
    parts = []
    info = data.user_info
    if info is not None:
        for column in ("age", "gender", "occupation"):
            if column in info.columns:
                parts.append(info[column].astype(object).where(info[column].notna(), "").astype(str).str.replace("<NA>", "", regex=False))
    counts = pd.Series(data.user_counts())
    noun = "reviews" if data.users.kind == "condition" else "ratings" if data.rating is not None else "interactions"
    described = None
    for part in parts:
        described = part if described is None else described.str.cat(part, sep=", ")
    label = ids
    if described is not None:
        described = described.str.strip(", ").str.replace(r"(, )+", ", ", regex=True)
        label = label.where(described == "", ids + " · " + described)
    return (label + " · " + counts.astype(str) + f" {noun}").tolist()


@st.cache_resource(show_spinner=False, max_entries=4)
def picker_order(key: str, what: str) -> np.ndarray:
    """User or item indices for a picker: the most active first, at most MAX_OPTIONS."""
    data = _data_for(key)
    counts = data.user_counts() if what == "users" else data.item_counts()
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0][:MAX_OPTIONS]
    return order


@st.cache_resource(show_spinner="Collecting every review of this data…", max_entries=4)
def drug_explorer(run_id: str):
    """The run with all reviews of its data (positive, neutral and negative) as evidence, built once."""
    from recsys_core.drugs import explorer_for_run

    return explorer_for_run(load_run(run_id))


def pick_reviewed(key: str, explorer, what: str, label: str) -> int:
    """A searchable selectbox of conditions (``what="users"``) or drugs by their number of reviews, most first.

    Built from all reviews, so a condition whose reviews are all negative can still be asked about."""
    reviews = explorer.reviews
    counts = reviews.user_counts() if what == "users" else reviews.item_counts()
    names = reviews.users.ids.astype(str) if what == "users" else reviews.item_titles()
    order = np.argsort(-counts, kind="stable")
    options = order[counts[order] > 0][:MAX_OPTIONS].tolist()
    keep_valid(key, options)
    chosen = st.selectbox(label, options, format_func=lambda i: f"{names[i]} · {plural(int(counts[i]), 'review')}", key=key)
    return int(chosen)


# ------------------------------------------------------------------------------------ pickers
def pick_user(key: str, data, data_key: str, label: str | None = None) -> int:
    """A searchable selectbox of users (type to search); returns the user index."""
    labels = user_labels(data_key)
    options = picker_order(data_key, "users")
    if data.users.kind != "condition":
        options = np.sort(options)  # MovieLens users read best in id order
    options = options.tolist()
    keep_valid(key, options)
    chosen = st.selectbox(
        label or f"{data.users.kind.capitalize()} (type to search)",
        options,
        format_func=lambda u: labels[u],
        key=key,
    )
    if len(options) < data.n_users:
        st.caption(f"Listing the {len(options):,} most active of {data.n_users:,} {data.users.kind}s.")
    return int(chosen)


def pick_items(key: str, data, data_key: str, label: str, max_items: int = 50) -> list[int]:
    """A multiselect of items by title (type to search), most popular first."""
    titles = data.item_titles()
    options = picker_order(data_key, "items").tolist()
    picked = st.multiselect(label, options, format_func=lambda i: str(titles[i]), key=key, max_selections=max_items)
    return [int(i) for i in picked]


def user_facts(data, user: int) -> str:
    """What user_info says of a user, e.g. "age 49 · gender M · occupation writer"."""
    info = data.user_info
    if info is None:
        return ""
    facts = []
    for column in ("age", "gender", "occupation"):
        if column in info.columns:
            value = info[column].iloc[user]
            if not pd.isna(value) and str(value) != "":
                facts.append(f"{column} **{plain(value)}**")
    return " · ".join(facts)


def keep_valid(key: str, options) -> None:
    """Forget a remembered choice that is no longer among ``options`` (other data, a deleted run)."""
    if key in st.session_state and st.session_state[key] not in list(options):
        st.session_state.pop(key, None)


def article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def csv_bytes(table: pd.DataFrame) -> bytes:
    return csv_download(table)  # formula cells neutralised (webapp.safe_output)


def drop_internal(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in table.columns if c in ("item_index", "because_items", "because_weights")])
