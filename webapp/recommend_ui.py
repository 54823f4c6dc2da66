"""The Recommend page's own widgets: the drug explorer's pickers and the download button.

The tables themselves come from the core (``recsys_core.explain.recommendations_with_reasons``,
``recsys_core.drugs``); pickers other pages share live in ``webapp.pickers``, the run picker and the
page frame in ``webapp.frame``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core.explain import INTERNAL_COLUMNS
from webapp.common import load_run
from webapp.frame import keep_valid
from webapp.pickers import MAX_OPTIONS
from webapp.safe_output import csv_download


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


def download_button(table: pd.DataFrame, name: str) -> None:
    """The page's one CSV download: formula cells neutralised (webapp.safe_output), index columns left out."""
    shown = table.drop(columns=[c for c in table.columns if c in INTERNAL_COLUMNS])
    st.download_button(
        "Download these recommendations (CSV)",
        csv_download(shown),
        file_name=f"{name}.csv",
        mime="text/csv",
        key="rec_download",
        on_click="ignore",
    )


def article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")
