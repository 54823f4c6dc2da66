"""The Recommend page's own widgets: the drug explorer's pickers, its two-part answer (Home shows it too) and the download button.

The tables themselves come from the core (``recsys_core.explain.recommendations_with_reasons``,
``recsys_core.drugs``); pickers other pages share live in ``webapp.pickers``, the run picker and the
page frame in ``webapp.frame``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core.explain import INTERNAL_COLUMNS
from webapp.frame import keep_valid
from webapp.loading import load_run
from webapp.pickers import MAX_OPTIONS
from webapp.safe_output import csv_download, plain


@st.cache_resource(show_spinner="Collecting every review of this data…", max_entries=4)
def drug_explorer(run_id: str):
    """The run with all reviews of its data (positive, neutral and negative) as evidence, built once."""
    from recsys_core.drugs import explorer_for_run

    return explorer_for_run(load_run(run_id))


def pick_reviewed(key: str, explorer, what: str, label: str, on_change=None) -> int:
    """A searchable selectbox of conditions (``what="users"``) or drugs by their number of reviews, most first.

    Built from all reviews, so a condition whose reviews are all negative can still be asked about."""
    reviews = explorer.reviews
    counts = reviews.user_counts() if what == "users" else reviews.item_counts()
    names = reviews.users.ids.astype(str) if what == "users" else reviews.item_titles()
    order = np.argsort(-counts, kind="stable")
    options = order[counts[order] > 0][:MAX_OPTIONS].tolist()
    keep_valid(key, options)
    chosen = st.selectbox(
        label, options, format_func=lambda i: f"{names[i]} · {plural(int(counts[i]), 'review')}", key=key, on_change=on_change
    )
    return int(chosen)


LAST_CONDITION = "drug_last_condition"
"""Session key of the condition last looked at (Recommend page or Home): Home opens on it."""

PART_ONE_ORDER_LABELS = {"model": "the model", "evidence": "the reviews' evidence"}


def remember_condition(name: str) -> None:
    st.session_state[LAST_CONDITION] = str(name)


def home_condition(explorer) -> int:
    """The condition Home opens on: the last one looked at, else one picked at random (once per
    session) among the well-reviewed conditions (:meth:`~recsys_core.drugs.DrugExplorer.well_reviewed_conditions`)."""
    conditions = explorer.reviews.users
    last = st.session_state.get(LAST_CONDITION)
    if last is not None and last in conditions:
        return conditions.index(last)
    well = explorer.well_reviewed_conditions()
    chosen = int(np.random.default_rng().choice(well))
    remember_condition(conditions.ids[chosen])
    return chosen


def show_drug_answer(answer, name_label: str, caption_reviewed: str, caption_suggested: str) -> None:
    """Both parts of a :class:`~recsys_core.drugs.DrugAnswer` as the Recommend page and Home show them:
    the model's strength and rank (never a raw score), the evidence, the flags, part 2's similarity."""
    if answer.rating_note:
        st.caption(plain(answer.rating_note))
    _show_part(answer.reviewed_title, answer.reviewed, name_label, caption_reviewed, "Nothing is reviewed here.", answer)
    _show_part(
        answer.suggested_title,
        answer.suggested,
        name_label,
        caption_suggested + " " + answer.similarity_rule.capitalize() + ".",
        answer.suggested_note or "Nothing to suggest.",
        answer,
    )


# The flag right after the name (at the end it was off screen at 1280 px), both pinned while the evidence scrolls.
DRUG_COLUMNS = (
    "rank", "name", "status", "other_names", "strength", "model_rank", "similarity", "weighted", "provenance",
    "reviews", "positive", "neutral", "negative", "positive_share_low", "mean_rating",
)  # fmt: skip
REVIEW_COLUMNS = ("best_positive", "best_neutral", "best_negative")


def _show_part(title: str, table: pd.DataFrame, name_label: str, caption: str, empty: str, answer) -> None:
    number, text = st.column_config.NumberColumn, st.column_config.TextColumn
    st.subheader(plain(title))
    st.caption(plain(caption))
    if table.empty:
        st.info(plain(empty))
        return
    flagged = int(table["status"].astype(bool).sum())
    if flagged:
        st.markdown(
            f":material/warning: {plural(flagged, 'row')} flagged: most of the reviews are negative, so it is shown as evidence, not as a suggestion."
        )
    columns = [c for c in (*DRUG_COLUMNS, *REVIEW_COLUMNS) if c in table.columns]
    if "other_names" in columns and not table["other_names"].astype(bool).any():
        columns.remove("other_names")
    config = {
        "rank": number("#", width="small"),
        "name": text(name_label, pinned=True),
        "other_names": text("Also listed as", help="Another name the data lists the same reviews under (brand or generic)"),
        "strength": st.column_config.ProgressColumn("Strength", min_value=0, max_value=100, format="%d"),
        "model_rank": text("Model's rank"),
        "similarity": number("Similarity", format="%.2f", help="Of the most similar condition it comes from"),
        "weighted": number("Strength × similarity", format="%.1f", help="What part 2 is ordered by"),
        "reviews": number("Reviews", format="%d"),
        "positive": number("positive", format="%d"),
        "neutral": number("neutral", format="%d"),
        "negative": number("negative", format="%d"),
        "positive_share_low": number("Positive share (95% lower bound)", format="%.2f", help="Wilson score interval's lower bound"),
        "mean_rating": number(answer.mean_rating_label, format="%.1f"),
        "status": text("Flag", width="medium", pinned=True, help="mostly negative: most reviews are negative, so the drug is shown as evidence, not as a suggestion"),
        "provenance": text("Where it comes from", width="large"),
        "best_positive": text("Most useful positive review", width="large"),
        "best_neutral": text("Most useful neutral review", width="large"),
        "best_negative": text("Most useful negative review", width="large"),
    }
    shown = table[columns].copy()
    # The whole sentence does not fit a pinned column at 1280 px; the line above the table and the column's help say it.
    shown["status"] = np.where(shown["status"].astype(bool), "mostly negative", "")
    st.dataframe(shown, hide_index=True, width="stretch", column_config=config)


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
