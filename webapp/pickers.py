"""Pickers several pages share (a user, a handful of items) and the cached tables behind them.

The tables are built once per data set (keyed by the data source, ``webapp.frame.Page.data_key``)
and shared between sessions through ``st.cache_resource``: they are read-only, and a copy per rerun
through ``st.cache_data`` would cost as much as the data set on large data.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from recsys_core import explain
from webapp.frame import keep_valid
from webapp.loading import data_for_key
from webapp.safe_output import plain

MAX_OPTIONS = 20_000
"""Longest list a picker sends to the browser; larger data sets list the most active users / items."""


@st.cache_resource(show_spinner=False, max_entries=4)
def history_index(key: str) -> explain.HistoryIndex:
    return explain.HistoryIndex.build(data_for_key(key))


@st.cache_resource(show_spinner=False, max_entries=4)
def popularity(key: str) -> np.ndarray:
    return data_for_key(key).item_counts()


@st.cache_resource(show_spinner=False, max_entries=4)
def user_labels(key: str) -> list[str]:
    """A one-line label per user (``recsys_core.explain.user_labels``)."""
    return explain.user_labels(data_for_key(key))


@st.cache_resource(show_spinner=False, max_entries=4)
def picker_order(key: str, what: str) -> np.ndarray:
    """User or item indices for a picker: the most active first, at most MAX_OPTIONS."""
    data = data_for_key(key)
    counts = data.user_counts() if what == "users" else data.item_counts()
    order = np.argsort(-counts, kind="stable")
    return order[counts[order] > 0][:MAX_OPTIONS]


def pick_user(key: str, data, data_key: str, label: str | None = None) -> int:
    """A searchable selectbox of users (type to search); returns the user index."""
    labels = user_labels(data_key)
    options = picker_order(data_key, "users")
    if data.users.kind != "condition":
        options = np.sort(options)  # MovieLens users read best in id order
    options = options.tolist()
    keep_valid(key, options)
    chosen = st.selectbox(label or f"{data.users.kind.capitalize()} (type to search)", options, format_func=lambda u: labels[u], key=key)
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
    """What user_info says of a user as markdown, e.g. "age **49** · gender **M** · occupation **writer**"."""
    return " · ".join(f"{column} **{plain(value)}**" for column, value in explain.user_facts(data, user))
