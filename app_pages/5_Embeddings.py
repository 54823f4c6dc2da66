"""Embeddings: a UMAP map of a run's item (or user) embeddings, computed once per run, then instant.

While a run's UMAP map is computed in the background (webapp/map_jobs.py) the page draws the instant
PCA preview with the same colouring and controls, says which one is on screen, and reruns itself
when UMAP is ready.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core import embedding_map, explain
from recsys_core.drugs import MEDICAL_NOTE
from webapp import embeddings_ui, errors, frame, map_jobs, pickers
from webapp.loading import is_drug_data
from webapp.run_labels import run_label
from webapp.safe_output import plain

page = frame.open_page("Embeddings")

NONE = -1
STAGES = {"queued": "Waiting for another map to finish…", "importing umap": "Importing UMAP (the first time compiles it: up to a minute)…", "fitting": "Fitting UMAP…", "done": "Done"}
NUMBER = st.column_config.NumberColumn

data, data_key = page.data, page.data_key
drugs = is_drug_data(data)
top = st.columns([4, 1], gap="medium")
with top[0]:
    run = frame.pick_run(data, key="emb_run")
model = run.model
titles = run.item_titles()
counts = pickers.popularity(data_key)
item_kind, user_kind = data.items.kind, data.users.kind
if drugs:
    st.info(MEDICAL_NOTE)

KINDS = {"items": f"{item_kind.capitalize()}s", "users": f"{user_kind.capitalize()}s"}
frame.keep_valid("emb_kind", list(KINDS))
with top[1]:
    kind = st.radio("Map of", list(KINDS), format_func=KINDS.get, key="emb_kind", horizontal=True)


# Both once per run and kind (a run folder never changes): a VAE's user vectors encode every user, which every
# rerun (a click on the map, another colour) used to do twice, once only to learn whether there were vectors.
@st.cache_resource(show_spinner=False, max_entries=16)
def _has_vectors(run_path: str, kind: str, _model) -> bool:
    return embedding_map.has_embeddings(_model, kind)


@st.cache_resource(show_spinner=False, max_entries=8)
def _pca_preview(run_path: str, kind: str, _model) -> np.ndarray:
    """The PCA preview of a run's vectors."""
    return embedding_map.pca_map(embedding_map.embeddings(_model, kind))


if not _has_vectors(str(run.path), kind, model):
    st.info(embedding_map.no_embeddings_message(model.name, kind))
    st.stop()


n_points = model.n_items if kind == "items" else model.n_users
coords = embedding_map.load_map(run.path, kind, n_points)
method = "UMAP"
if coords is None:
    method = "PCA preview"
    job = map_jobs.start_map(run, kind)
    coords = _pca_preview(str(run.path), kind, model)

    @st.fragment(run_every=2)
    def _umap_progress() -> None:
        """Polls the background job; reruns the whole page once the UMAP map is on disk."""
        if job.done and job.error is None:
            st.rerun(scope="app")
        if job.error is not None:
            errors.show_error(job.error, "The UMAP map could not be computed; the PCA preview stays")
            return
        st.progress(
            min(1.0, job.fraction),
            text=f"On screen: the **PCA preview** (instant, coarser). UMAP is computing in the background: "
            f"{STAGES.get(job.stage, job.stage)} {job.elapsed:.0f} s so far; the map switches to it when ready.",
        )

    _umap_progress()
else:
    shown = embedding_map.mapped_count(coords)
    sample_note = (
        f" UMAP was fitted on a random sample of {shown:,} of the {n_points:,} {kind} (at most {embedding_map.MAX_UMAP_POINTS:,}); "
        "the others are not drawn."
        if shown < n_points
        else ""
    )
    st.caption(f"On screen: the **UMAP** map (saved beside the run).{sample_note}")


def _on_select() -> None:
    index = embeddings_ui.selected_index(st.session_state.get("emb_chart"))
    if index is not None:
        st.session_state["emb_item" if st.session_state.get("emb_kind") == "items" else "emb_selected_user"] = index


# ---------------------------------------------------------------------------------- items
if kind == "items":
    options = embeddings_ui.item_colour_options(run.item_info, drugs)
    controls = st.columns([1, 2])
    frame.keep_valid("emb_colour", options)
    colour_by = controls[0].selectbox("Colour by", options, key="emb_colour")
    users = [NONE] + pickers.picker_order(data_key, "users").tolist()
    labels = pickers.user_labels(data_key)
    frame.keep_valid("emb_user", users)
    with controls[1]:
        overlay_user = st.selectbox(
            f"Draw a {user_kind}'s history and recommendations over the map",
            users,
            format_func=lambda u: "— nobody —" if u == NONE else labels[u],
            key="emb_user",
        )
    overlays = []
    if overlay_user != NONE:
        history = run.seen[overlay_user].indices
        recommended, _ = model.recommend(np.array([overlay_user]), k=10, history=run.seen)
        overlays = [
            {
                "name": f"history of {data.users.ids[overlay_user]} ({len(history)})",
                "index": history,
                "symbol": "circle-open",
                "color": "#000000",
            },
            {"name": "top 10 recommended", "index": recommended[0], "symbol": "star", "color": "#FFD700", "line": "#000000", "size": 14},
        ]
    # The point clicked (or typed) is known before the map is drawn: mark it and its nearest neighbours on it.
    chosen_item = st.session_state.get("emb_item")
    near = None
    if isinstance(chosen_item, int) and 0 <= chosen_item < len(titles):
        with errors.friendly_errors():
            near = model.similar_items(np.array([chosen_item]), k=10)
        overlays += embeddings_ui.neighbour_overlays(chosen_item, near[0][0], str(titles[chosen_item])[:40])
    colour = embeddings_ui.colouring(colour_by, run.item_info, counts)
    texts = embeddings_ui.hover_texts(titles, run.item_info, counts, "reviews" if drugs else "interactions")
    figure = embeddings_ui.map_figure(coords, texts, colour, overlays, title=f"{n_points:,} {item_kind}s of {run_label(run.info)} · {method}")
    st.plotly_chart(figure, key="emb_chart", on_select=_on_select, selection_mode=("points", "box", "lasso"), config={"scrollZoom": True})
    st.caption(f"Close points are {item_kind}s the model treats alike (cosine of their vectors). Click a point to see its neighbours, marked on the map and listed below.")

    item = st.selectbox(
        f"Selected {item_kind}",
        embeddings_ui.picker_options(pickers.picker_order(data_key, "items"), st.session_state.get("emb_item"), NONE),
        format_func=lambda i: "— click a point or type a title —" if i == NONE else str(titles[i]),
        key="emb_item",
    )
    if item != NONE:
        facts = [f"**{plain(titles[item])}**"]
        info = run.item_info
        if info is not None:
            for column, label in (("genres", "genres"), ("year", "year"), ("top_condition", "most reviewed for")):
                if column in info.columns and not pd.isna(info[column].iloc[item]):
                    facts.append(f"{label}: {plain(info[column].iloc[item])}")
        facts.append(f"{counts[item]:,} {'reviews' if drugs else 'interactions'}")
        st.markdown(" · ".join(facts))
        if near is None or item != chosen_item:
            with errors.friendly_errors():
                near = model.similar_items(np.array([item]), k=10)
        neighbours, similarity = near
        table = explain.item_table(run, neighbours[0], similarity[0], counts).rename(columns={"score": "similarity"})
        st.subheader(f"Nearest {item_kind}s")
        st.dataframe(
            table[[c for c in ("rank", "title", "similarity", "genres", "year", "top_condition", "popularity") if c in table]],
            hide_index=True,
            width="stretch",
            column_config={
                "title": st.column_config.TextColumn(item_kind.capitalize()),
                "similarity": NUMBER(format="%.4f"),
                "year": NUMBER(format="%d"),
                "popularity": NUMBER("Interactions", format="%d"),
                "top_condition": st.column_config.TextColumn("Most reviewed for"),
            },
        )
    st.stop()

# ---------------------------------------------------------------------------------- users
options = embeddings_ui.user_colour_options(data.user_info)
frame.keep_valid("emb_colour", options)
colour_by = st.selectbox("Colour by", options, key="emb_colour")
user_counts = data.user_counts()
labels = pickers.user_labels(data_key)
colour = embeddings_ui.colouring(colour_by, data.user_info, user_counts)
noun = "reviews" if drugs else "ratings" if data.rating is not None else "interactions"
texts = embeddings_ui.hover_texts(np.asarray(labels, dtype=object), None, user_counts, noun)
figure = embeddings_ui.map_figure(coords, texts, colour, title=f"{n_points:,} {user_kind}s of {run_label(run.info)} · {method}")
st.plotly_chart(figure, key="emb_chart", on_select=_on_select, selection_mode=("points", "box", "lasso"), config={"scrollZoom": True})
st.caption(f"Close points are {user_kind}s whose vectors point the same way. Click a point to see what the model recommends them.")
user = st.selectbox(
    f"Selected {user_kind}",
    embeddings_ui.picker_options(pickers.picker_order(data_key, "users"), st.session_state.get("emb_selected_user"), NONE),
    format_func=lambda u: "— click a point or type an id —" if u == NONE else labels[u],
    key="emb_selected_user",
)
if user != NONE:
    facts = pickers.user_facts(data, user)
    st.markdown(f"**{plain(data.users.ids[user])}**" + (f" · {facts}" if facts else ""))
    items, scores, _ = explain.rank_items(model, user, k=10, seen=run.seen)
    table = explain.item_table(run, items, scores, counts)
    st.dataframe(
        table[[c for c in ("rank", "title", "score", "genres", "year", "popularity") if c in table]],
        hide_index=True,
        width="stretch",
        column_config={"score": NUMBER(format="%.4f"), "year": NUMBER(format="%d"), "popularity": NUMBER("Interactions", format="%d")},
    )
