"""The Inside page's views: item-item weights, embedding norms against popularity, a VAE's latent code.

The numbers come from :mod:`recsys_core.inside`; this module lays them out and draws them with plotly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core import inside
from recsys_core.models import model_title
from recsys_core.safe_text import plotly_text

VIEW_LABELS = {"item-weights": "Item-item weights", "embedding-norms": "Embedding norms vs popularity", "latent": "Latent code of a user"}
NUMBER = st.column_config.NumberColumn


def weights_figure(weights: np.ndarray, labels: list[str], model_name: str):
    import plotly.graph_objects as go

    limit = float(np.abs(weights).max()) or 1.0
    figure = go.Figure(
        go.Heatmap(
            z=weights,
            x=plotly_text(labels),
            y=plotly_text(labels),
            colorscale="RdBu",
            zmid=0.0,
            zmin=-limit,
            zmax=limit,
            colorbar={"title": "weight"},
            hovertemplate="from %{y}<br>to %{x}<br>weight %{z:.4f}<extra></extra>",
        )
    )
    figure.update_layout(
        height=640, margin={"l": 10, "r": 10, "t": 40, "b": 10}, title=f"{model_name}: weight of the row item on the column item's score"
    )
    figure.update_yaxes(autorange="reversed", tickfont={"size": 9})
    figure.update_xaxes(tickfont={"size": 9}, tickangle=45)
    return figure


def show_item_weights(run, data, pick_items) -> None:
    st.caption(inside.explanation("item-weights", data.items.kind))
    chosen = pick_items("inside_items", data, "Items to show (empty: the most popular)")
    count = st.slider("How many popular items", 5, 60, 25, key="inside_n_items", disabled=bool(chosen))
    items = np.asarray(chosen, dtype=np.int64) if len(chosen) >= 2 else inside.most_popular_items(run.model, count)
    titles = run.item_titles()
    weights = inside.item_weights(run.model, items)
    st.plotly_chart(weights_figure(weights, [str(titles[i])[:40] for i in items], model_title(run.model.name)), key="inside_heatmap")
    st.markdown("**Strongest pairs among these items**")
    pairs = inside.strongest_pairs(weights, items, titles, n=15)
    st.dataframe(
        pairs, hide_index=True, width="stretch", column_config={"weight": NUMBER(format="%.4f"), "reverse weight": NUMBER(format="%.4f")}
    )


def show_embedding_norms(run) -> None:
    import plotly.graph_objects as go

    st.caption(inside.EXPLANATIONS["embedding-norms"])
    table = inside.embedding_norms(run.model)
    titles = run.item_titles()
    correlation = inside.norm_popularity_correlation(table)
    figure = go.Figure(
        go.Scatter(
            x=table["interactions"],
            y=table["norm"],
            mode="markers",
            text=plotly_text(titles[table["item_index"].to_numpy()]),
            marker={"size": 5, "opacity": 0.6},
            hovertemplate="%{text}<br>%{x} interactions<br>norm %{y:.3f}<extra></extra>",
        )
    )
    figure.update_layout(
        height=420,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title=f"{model_title(run.model.name)}: item vector length vs popularity",
        xaxis_title="interactions (log scale)",
        yaxis_title="vector length",
    )
    figure.update_xaxes(type="log")
    st.plotly_chart(figure, key="inside_norms")
    st.markdown(
        (
            f"**Spearman correlation of length and popularity:** {correlation:.3f}"
            if np.isfinite(correlation)
            else "**Spearman correlation:** undefined."
        )
        + " "
        + inside.norm_popularity_note(correlation, table)
    )
    longest = table.sort_values("norm", ascending=False).head(10)
    st.dataframe(
        pd.DataFrame({"title": titles[longest["item_index"].to_numpy()], "norm": longest["norm"], "interactions": longest["interactions"]}),
        hide_index=True,
        width="stretch",
    )


@st.cache_resource(show_spinner="Placing every user's code…", max_entries=4)
def latent_plane(run_id: str, _model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``inside.latent_plane`` of a saved run, once per run (its folder never changes): it encodes every training user
    and takes their principal components, which each rerun of the view (a user picked, an item added) needs unchanged."""
    return inside.latent_plane(_model)


def show_latent(run, data, pick_user, pick_items) -> None:
    import plotly.graph_objects as go

    st.caption(inside.EXPLANATIONS["latent"])
    mean, components, users_xy = latent_plane(run.run_id, run.model)
    user = pick_user("inside_user", data)
    code = inside.latent_mean(run.model, user)
    profile = pick_items("inside_profile", data, "Build a profile: add items one at a time")
    path = inside.latent_path(run.model, profile)
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=users_xy[:, 0], y=users_xy[:, 1], mode="markers", name="every user", marker={"size": 4, "color": "#BBBBBB"}, hoverinfo="skip"
        )
    )
    point = (code - mean) @ components.T
    figure.add_trace(
        go.Scatter(
            x=[point[0]],
            y=[point[1]],
            mode="markers",
            name=plotly_text(f"{data.users.kind} {data.users.ids[user]}"),
            marker={"size": 14, "color": "#E45756", "symbol": "star"},
        )
    )
    if len(path):
        titles = run.item_titles()
        xy = (path - mean) @ components.T
        figure.add_trace(
            go.Scatter(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="lines+markers+text",
                name="your profile",
                text=[plotly_text(f"+{str(titles[i])[:25]}") for i in profile],
                textposition="top center",
                marker={"size": 9, "color": "#4C78A8"},
            )
        )
    figure.update_layout(
        height=480,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title=f"{model_title(run.model.name)}: codes in the plane of their two principal components",
        xaxis_title="component 1",
        yaxis_title="component 2",
    )
    st.plotly_chart(figure, key="inside_latent")
    dims = pd.DataFrame({"dimension": np.arange(len(code)), "user": code})
    if len(path):
        dims["profile (all items)"] = path[-1]
    st.markdown(f"**The code's {len(code)} dimensions** (the mean of q(z | x); the DAE's tanh code)")
    st.bar_chart(dims.set_index("dimension"), height=220)
    if len(path) >= 2:
        moves = np.linalg.norm(np.diff(path, axis=0), axis=1)
        st.dataframe(
            pd.DataFrame({"added": [str(run.item_titles()[i]) for i in profile[1:]], "move of the code": moves}),
            hide_index=True,
            width="stretch",
            column_config={"move of the code": NUMBER(format="%.4f")},
        )
