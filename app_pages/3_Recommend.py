"""Recommend: a user's history and top-K with explanations; conditions and drugs with their evidence; your own profile."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys_core import explain
from recsys_core.drugs import MEDICAL_NOTE
from recsys_core.errors import RecsysError
from recsys_core.models import model_title
from webapp import errors, frame, pickers, recommend_ui
from webapp.loading import is_drug_data
from webapp.safe_output import plain

page = frame.open_page("Recommend")
data, data_key = page.data, page.data_key
top = st.columns([4, 1], gap="medium")
with top[0]:
    run = frame.pick_run(data, key="rec_run")
with top[1]:
    k = st.number_input("How many", min_value=1, max_value=100, value=10, step=5, key="rec_k")
model = run.model
drugs = is_drug_data(data)
item_kind, user_kind = data.items.kind, data.users.kind

NUMBER = st.column_config.NumberColumn
TEXT = st.column_config.TextColumn


def _profile(kind_label: str, template: str) -> None:
    """Fold-in: recommendations for a list of items picked here, from the chosen run at once."""
    st.markdown(
        f"Pick a handful of {item_kind}s; the model folds them in as a new {user_kind} "
        "(autoencoders, EASE and item-kNN read the list directly, embedding models fit a vector for it in a few steps)."
    )
    picked = pickers.pick_items("rec_profile_items", data, data_key, f"Your {item_kind}s (type to search)")
    if not picked:
        st.info(f"Pick at least one {item_kind} to see recommendations.")
        return
    if model.uses_timestamps:
        st.caption(f"{model.name} reads a history as a sequence: a profile built here has no dates, so it reads your {item_kind}s in the order you added them.")
    try:
        with st.spinner("Folding in your profile…"):
            table = explain.recommendations_with_reasons(
                run, data, profile=picked, k=int(k), popularity=pickers.popularity(data_key), template=template
            )
    except RecsysError as error:
        errors.show_error(error, "This run cannot fold in a new profile")
        return
    st.subheader(f"Recommended for {kind_label}")
    _show_items(table)
    recommend_ui.download_button(table, f"recommendations-profile-{run.model.name}")


def _show_items(table: pd.DataFrame, extra_config: dict | None = None) -> None:
    order = ("rank", "title", "because", "genres", "year", "top_condition", "score", "popularity", "seen")
    columns = [c for c in order if c in table.columns]
    st.dataframe(
        table[columns],
        hide_index=True,
        width="stretch",
        column_config={
            "rank": NUMBER(width="small"),
            "title": TEXT(item_kind.capitalize(), width="medium", pinned=True),
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
    frame.keep_valid("rec_mode", MODES)
    mode = st.radio("Recommend for", MODES, key="rec_mode", horizontal=True)
    if mode == "Your own profile":
        _profile("your profile", "Because you picked {items}")
        st.stop()

    pick, options = st.columns([3, 2], gap="medium", vertical_alignment="bottom")
    with pick:
        user = pickers.pick_user("rec_user", data, data_key)
    with options:
        include_seen = st.toggle(f"Include {item_kind}s already seen", key="rec_include_seen")
    facts = pickers.user_facts(data, user)
    if facts:
        st.markdown(facts)
    table = explain.recommendations_with_reasons(
        run, data, user=user, k=int(k), include_seen=include_seen, popularity=pickers.popularity(data_key), index=pickers.history_index(data_key)
    )

    st.subheader(f"Top {k} from {model_title(run.model.name)}")
    if not include_seen:
        st.caption(f"Never {recommend_ui.article(item_kind)} {item_kind} this {user_kind} has already seen (in any part of the data).")
    _show_items(table)
    recommend_ui.download_button(table, f"recommendations-{data.users.ids[user]}-{run.model.name}")

    history = explain.user_history(data, user, pickers.history_index(data_key))
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
st.warning(MEDICAL_NOTE, icon=":material/medical_information:")
MODES = [
    "A condition",
    "A drug (reverse: which conditions)",
    "Drugs like one drug",
    "A new condition (your own list of drugs)",
]
frame.keep_valid("rec_mode", MODES)
mode = st.radio("Explore", MODES, key="rec_mode", horizontal=True)

with errors.friendly_errors("The reviews behind this run cannot be loaded"):
    explorer = recommend_ui.drug_explorer(run.run_id)
st.caption(
    f"Positive rule of this run: {explorer.positive_rule}. Models learn from and are tested on positive reviews; "
    "the counts below cover every review. Strength is the drug's rank among all drugs for the condition on a 0-100 scale "
    "(100: first place; tied drugs share one value), never a raw model score."
)


def _answer_download(answer) -> None:
    shown = pd.concat([answer.reviewed.assign(part="1 reviewed"), answer.suggested.assign(part="2 not yet reviewed")], ignore_index=True)
    recommend_ui.download_button(shown.drop(columns=[c for c in ("user_index", "rank_first", "tied") if c in shown]), f"{answer.question}-{answer.subject}-{run.model.name}")


def _order() -> str:
    """Part 1's order: the model's, or the reviews' evidence (what a pharmacist asks for first)."""
    return st.radio(
        "Order part 1 by",
        list(recommend_ui.PART_ONE_ORDER_LABELS),
        format_func=recommend_ui.PART_ONE_ORDER_LABELS.get,
        key="rec_order",
        horizontal=True,
        help="The evidence order: the share of positive reviews (the lower bound of its 95% Wilson interval, so 7 of 8 beats 1 of 1), "
        "then the number of reviews.",
    )


if mode.startswith("A new condition"):
    st.markdown(
        "Pick a handful of drugs; the model folds them in as a new condition, and the list is that condition's drug set "
        "when similar conditions are looked for."
    )
    picked = pickers.pick_items("rec_profile_items", data, data_key, "Your drugs (type to search)")
    if not picked:
        st.info("Pick at least one drug to see recommendations.")
        st.stop()
    if model.uses_timestamps:
        st.caption(f"{model.name} reads a history as a sequence: a list built here has no dates, so it reads your drugs in the order you added them.")
    with errors.friendly_errors("This run cannot fold in a new list"), st.spinner("Folding in your list…"):
        answer = explorer.for_profile([data.items.ids[i] for i in picked], k=int(k), order=_order())
    recommend_ui.show_drug_answer(
        answer,
        "Drug",
        "Your drugs with every review of each (for any condition), and where the model ranks each for your list.",
        "Drugs reviewed for conditions similar to your list, not on it; each names those conditions, and the evidence is its reviews for them.",
    )
    _answer_download(answer)
    st.stop()



if mode.startswith("Drugs like"):
    drug = recommend_ui.pick_reviewed("rec_similar_drug", explorer, "items", "Drug (type to search)")
    similar = explorer.similar_to(data.items.ids[drug], k=int(k))
    st.subheader(f"Drugs like {plain(similar.subject)}, by {model_title(run.model.name)}'s item-item similarity")
    st.caption("Strength is each drug's rank among all other drugs by similarity to this one; shared conditions are those both are reviewed for.")
    table = similar.table.assign(shared_conditions=similar.table["shared_conditions"].map(lambda names: ", ".join(names)))
    st.dataframe(
        table[["rank", "name", "strength", "model_rank", "shared_conditions", "n_shared", "reviews", "mean_rating", "status"]],
        hide_index=True,
        width="stretch",
        column_config={
            "name": TEXT("Drug"),
            "model_rank": TEXT("Similarity rank"),
            "shared_conditions": TEXT("Conditions both are reviewed for", width="large"),
            "n_shared": NUMBER("Shared conditions", format="%d"),
            "rank": NUMBER("#", width="small"),
            "strength": st.column_config.ProgressColumn("Strength", min_value=0, max_value=100, format="%d"),
            "reviews": NUMBER("Reviews", format="%d"),
            "mean_rating": NUMBER("Mean rating bin (2.5/5.5/8.5)" if explorer.rating_note else "Mean rating (1-10)", format="%.1f"),
            "status": TEXT("Flag"),
        },
    )
    recommend_ui.download_button(table, f"drugs-like-{similar.subject}-{run.model.name}")
    st.stop()

if mode.startswith("A drug"):
    drug = recommend_ui.pick_reviewed("rec_drug", explorer, "items", "Drug (type to search)")
    answer = explorer.for_drug(data.items.ids[drug], k=int(k))
    recommend_ui.show_drug_answer(
        answer,
        "Condition",
        "Each condition the drug is reviewed for, with where the model ranks the drug among all drugs for that condition "
        "(ties shown as ties) and what the reviews of this drug for it say.",
        "Conditions similar to one this drug is reviewed for, ordered by the drug's strength there × that similarity; "
        "the evidence is this drug's reviews for those similar conditions.",
    )
    _answer_download(answer)
    st.stop()

condition = recommend_ui.pick_reviewed("rec_condition", explorer, "users", "Medical condition (type to search)")
recommend_ui.remember_condition(data.users.ids[condition])
answer = explorer.for_condition(data.users.ids[condition], k=int(k), order=_order())
recommend_ui.show_drug_answer(
    answer,
    "Drug",
    "Every drug patients reviewed for this condition, with where the model ranks it and what the reviews say.",
    "Drugs not reviewed for this condition yet, from conditions similar to it, ordered by the model's strength × that similarity; "
    "each names those conditions, and the evidence is its reviews for them.",
)
_answer_download(answer)
