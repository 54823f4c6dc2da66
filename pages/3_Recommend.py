"""Recommend: a user's history and top-K with explanations; conditions and drugs with their evidence; your own profile."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core import explain as ex
from recsys_core.errors import RecsysError
from webapp import recommend_ui as ui
from webapp.common import MEDICAL_NOTE, is_drug_data
from webapp.safe_output import plain

st.set_page_config(page_title="Recommend · Recsys Explorer", page_icon="⭐", layout="wide")
st.title("Recommend")

data_key, data = ui.active_data()
top = st.columns([4, 1], gap="medium")
with top[0]:
    run = ui.pick_run(data, key="rec_run")
with top[1]:
    k = st.number_input("How many", min_value=1, max_value=100, value=10, step=5, key="rec_k")
model = run.model
titles = run.item_titles()
drugs = is_drug_data(data)
item_kind, user_kind = data.items.kind, data.users.kind

NUMBER = st.column_config.NumberColumn
TEXT = st.column_config.TextColumn


def _download(table: pd.DataFrame, name: str) -> None:
    st.download_button(
        "Download these recommendations (CSV)",
        ui.csv_bytes(ui.drop_internal(table)),
        file_name=f"{name}.csv",
        mime="text/csv",
        key="rec_download",
        on_click="ignore",
    )


def _profile(kind_label: str, template: str) -> None:
    """Fold-in: recommendations for a list of items picked here, from the chosen run at once."""
    st.markdown(
        f"Pick a handful of {item_kind}s; the model folds them in as a new {user_kind} "
        "(autoencoders, EASE and item-kNN read the list directly, embedding models fit a vector for it in a few steps)."
    )
    picked = ui.pick_items("rec_profile_items", data, data_key, f"Your {item_kind}s (type to search)")
    if not picked:
        st.info(f"Pick at least one {item_kind} to see recommendations.")
        return
    try:
        with st.spinner("Folding in your profile…"):
            items, scores = model.recommend_for_history(np.asarray(picked), k=int(k))
    except RecsysError as error:
        ui.show_error(error, "This run cannot fold in a new profile")
        return
    table = ex.item_table(run, items, scores, ui.popularity(data_key))
    because = ex.explain(model, np.asarray(picked), items, titles, template=template)
    table["because"] = because["because"].to_numpy()
    st.subheader(f"Recommended for {kind_label}")
    _show_items(table)
    _download(table, f"recommendations-profile-{run.model.name}")


def _show_items(table: pd.DataFrame, extra_config: dict | None = None) -> None:
    order = ("rank", "title", "because", "genres", "year", "top_condition", "score", "popularity", "seen")
    columns = [c for c in order if c in table.columns]
    st.dataframe(
        table[columns],
        hide_index=True,
        width="stretch",
        column_config={
            "rank": NUMBER(width="small"),
            "title": TEXT(item_kind.capitalize(), width="medium"),
            "score": NUMBER(format="%.4f"),
            "year": NUMBER(format="%d"),
            "top_condition": TEXT("Most reviewed for"),
            "popularity": NUMBER("Interactions", format="%d"),
            "seen": st.column_config.CheckboxColumn("Already seen"),
            "because": TEXT("Why", width="large"),
            **(extra_config or {}),
        },
    )


# ================================================================================== movies & co.
if not drugs:
    MODES = ["A user of the data set", "Your own profile"]
    ui.keep_valid("rec_mode", MODES)
    mode = st.radio("Recommend for", MODES, key="rec_mode", horizontal=True)
    if mode == "Your own profile":
        _profile("your profile", "Because you picked {items}")
        st.stop()

    pick, options = st.columns([3, 2], gap="medium", vertical_alignment="bottom")
    with pick:
        user = ui.pick_user("rec_user", data, data_key)
    with options:
        include_seen = st.toggle(f"Include {item_kind}s already seen", key="rec_include_seen")
    facts = ui.user_facts(data, user)
    if facts:
        st.markdown(facts)
    items, scores, seen = ex.rank_items(model, user, k=int(k), include_seen=include_seen)
    table = ex.item_table(run, items, scores, ui.popularity(data_key))
    table["seen"] = seen[np.isfinite(scores)]
    history_items, ratings = ex.user_item_ratings(data, user, ui.history_index(data_key))
    because = ex.explain(model, history_items, table["item_index"].to_numpy(), titles, ratings, ui.max_rating(data_key))
    table["because"] = because["because"].to_numpy()

    st.subheader(f"Top {k} from {run.model.name}")
    if not include_seen:
        st.caption(f"Never {ui.article(item_kind)} {item_kind} this {user_kind} has already seen (in any part of the data).")
    _show_items(table)
    _download(table, f"recommendations-{data.users.ids[user]}-{run.model.name}")

    history = ex.user_history(data, user, ui.history_index(data_key))
    st.subheader(f"History ({len(history):,} {item_kind}s, newest first)")
    columns = [c for c in ("title", "genres", "year", "rating", "date") if c in history.columns]
    st.dataframe(
        history[columns],
        hide_index=True,
        width="stretch",
        height=min(420, 38 + 35 * len(history)),
        column_config={
            "title": TEXT(item_kind.capitalize(), width="large"),
            "year": NUMBER(format="%d"),
            "rating": NUMBER(format="%.1f"),
            "date": st.column_config.DateColumn(),
        },
    )
    st.stop()

# ================================================================================== drugs
st.warning(MEDICAL_NOTE, icon="⚕️")
MODES = ["A condition", "A drug (reverse: which conditions)", "A new condition (your own list of drugs)"]
ui.keep_valid("rec_mode", MODES)
mode = st.radio("Explore", MODES, key="rec_mode", horizontal=True)
pairs = ui.pair_evidence(data_key)
overall = ui.item_evidence(data_key)
EVIDENCE = {
    "reviews": NUMBER("Reviews", format="%d"),
    "mean_rating": NUMBER("Mean rating (1-10)", format="%.1f"),
    "useful": NUMBER("Useful votes", format="%d"),
    "snippet": TEXT("Most useful review", width="large"),
}

if mode.startswith("A new condition"):
    _profile("this new condition", "Close to {items}, which you picked")
    st.stop()

if mode.startswith("A drug"):
    drug_labels = {int(i): f"{titles[i]} · {overall['reviews'].iloc[i]} reviews" for i in ui.picker_order(data_key, "items")}
    options = list(drug_labels)
    ui.keep_valid("rec_drug", options)
    drug = st.selectbox("Drug (type to search)", options, format_func=drug_labels.get, key="rec_drug")
    table = ex.conditions_for_item(run, data.items.ids[drug], k=int(k), pairs=pairs)
    table = table.rename(columns={user_kind: "condition"})
    st.subheader(f"Conditions {plain(titles[drug])} ranks highest for")
    st.caption(
        "Scores are not comparable between conditions, so each condition is ranked by where the drug falls among all "
        "drugs for that condition (its percentile). Evidence counts the reviews of this drug for that condition."
    )
    columns = [
        c for c in ("rank", "condition", "percentile", "score", "already_seen", "reviews", "mean_rating", "useful", "snippet") if c in table
    ]
    st.dataframe(
        table[columns],
        hide_index=True,
        width="stretch",
        column_config={
            "percentile": NUMBER("Percentile", format="%.3f"),
            "score": NUMBER(format="%.4f"),
            "already_seen": st.column_config.CheckboxColumn("Reviewed for it"),
            **EVIDENCE,
        },
    )
    _download(table, f"conditions-for-{titles[drug]}-{run.model.name}")
    st.stop()

condition = ui.pick_user("rec_condition", data, data_key, label="Medical condition (type to search)")
history_items, ratings = ex.user_item_ratings(data, condition, ui.history_index(data_key))
items, scores, _ = ex.rank_items(model, condition, k=int(k), include_seen=False)
table = ex.item_table(run, items, scores)
because = ex.explain(
    model,
    history_items,
    table["item_index"].to_numpy(),
    titles,
    ratings,
    ui.max_rating(data_key),
    template="Close to {items}, reviewed for it",
)
table["because"] = because["because"].to_numpy()
drug_overall = overall.iloc[table["item_index"].to_numpy()].reset_index(drop=True)
table["reviews"] = drug_overall["reviews"].to_numpy()
table["mean_rating"] = drug_overall["mean_rating"].to_numpy()
table["conditions"] = drug_overall["users"].to_numpy()

st.subheader(f"New suggestions for {plain(data.users.ids[condition])}")
st.caption(
    f"Drugs nobody has reviewed for this condition yet, ranked by {run.model.name}. Their evidence is over all conditions; "
    "the model only suggests where patterns in other conditions point."
)
columns = [c for c in ("rank", "title", "because", "top_condition", "reviews", "mean_rating", "conditions", "score") if c in table]
st.dataframe(
    table[columns],
    hide_index=True,
    width="stretch",
    column_config={
        "title": TEXT("Drug"),
        "score": NUMBER(format="%.4f"),
        "top_condition": TEXT("Most reviewed for"),
        "reviews": NUMBER("Reviews (all conditions)", format="%d"),
        "mean_rating": NUMBER("Mean rating (all conditions)", format="%.1f"),
        "conditions": NUMBER("Conditions", format="%d"),
        "because": TEXT("Why", width="large"),
    },
)

seen_items, seen_scores, seen_ranks = ex.rank_seen_items(model, condition)
reviewed = ex.evidence_for(pairs, condition, seen_items)
reviewed.insert(0, "model_rank", seen_ranks)
reviewed.insert(1, "title", titles[seen_items])
reviewed["score"] = seen_scores
st.subheader(f"Already reviewed for {plain(data.users.ids[condition])} ({len(reviewed)})")
st.caption("How the model ranks the drugs patients already reviewed for this condition, with what the reviews say.")
columns = [c for c in ("model_rank", "title", "reviews", "mean_rating", "useful", "snippet", "score") if c in reviewed]
st.dataframe(
    reviewed[columns],
    hide_index=True,
    width="stretch",
    column_config={"model_rank": NUMBER("Model rank", format="%d"), "title": TEXT("Drug"), "score": NUMBER(format="%.4f"), **EVIDENCE},
)
shown = pd.concat([table.assign(group="new suggestion"), reviewed.assign(group="already reviewed")], ignore_index=True)
_download(shown, f"drugs-for-{data.users.ids[condition]}-{run.model.name}")
