"""The Embeddings page's figure: a WebGL scatter of a UMAP map, coloured, with hover text and overlays.

No Streamlit here, so the figure can be built and checked in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from recsys_core.safe_text import plotly_text

MAX_CATEGORIES = 12
PALETTE = (
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948",
    "#B07AA1", "#FF9DA7", "#9C755F", "#3B3B98", "#A0CBE8", "#8CD17D",
)  # fmt: skip
OTHER = "#B0B0B0"
UNKNOWN = "#DDDDDD"


@dataclass
class Colouring:
    """Per point: a category (``categorical``) or a number (NaN = unknown), with a legend title."""

    title: str
    values: np.ndarray
    categorical: bool


def item_colour_options(item_info: pd.DataFrame | None, drugs: bool) -> list[str]:
    columns = set(item_info.columns) if item_info is not None else set()
    options = []
    if drugs and "top_condition" in columns:
        options.append("Condition it is most reviewed for")
    if "genres" in columns:
        options.append("Genre (first listed)")
    options.append("Popularity (log)")
    if "year" in columns:
        options.append("Year")
    return options


def user_colour_options(user_info: pd.DataFrame | None) -> list[str]:
    columns = set(user_info.columns) if user_info is not None else set()
    options = ["Activity (log)"]
    for column in ("gender", "age", "occupation"):
        if column in columns:
            options.append(column.capitalize())
    return options


def colouring(option: str, info: pd.DataFrame | None, counts: np.ndarray) -> Colouring:
    """The values behind a colour option (see ``*_colour_options``)."""
    n = len(counts)

    def column(name: str) -> pd.Series:
        if info is None or name not in info.columns:
            return pd.Series([None] * n, dtype=object)
        return info[name]

    if option.startswith("Condition"):
        return Colouring("Most reviewed for", column("top_condition").astype(object).to_numpy(), True)
    if option.startswith("Genre"):
        first = column("genres").astype("string").str.split("|").str[0]
        return Colouring("First genre", first.astype(object).to_numpy(), True)
    if option in ("Gender", "Occupation"):
        return Colouring(option, column(option.lower()).astype(object).to_numpy(), True)
    if option in ("Year", "Age"):
        return Colouring(option, pd.to_numeric(column(option.lower()), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan), False)
    return Colouring("log10(1 + interactions)", np.log10(1.0 + np.asarray(counts, dtype=np.float64)), False)


def hover_texts(titles: np.ndarray, info: pd.DataFrame | None, counts: np.ndarray, noun: str = "interactions") -> np.ndarray:
    """Hover text for every point: "<b>Title</b><br>Genres<br>123 interactions"."""
    text = "<b>" + pd.Series(plotly_text(pd.Series(titles, dtype=object).astype(str)), dtype=object) + "</b>"
    if info is not None:
        for name in ("genres", "top_condition"):
            if name in info.columns:
                values = pd.Series(plotly_text(info[name].astype("string").fillna("").str.replace("|", ", ", regex=False)), dtype=object)
                label = "" if name == "genres" else "most reviewed for "
                text = text + np.where(values.to_numpy(dtype=object) == "", "", "<br>" + label + values.to_numpy(dtype=object))
    return (text + "<br>" + pd.Series(counts).map("{:,}".format) + f" {noun}").to_numpy(dtype=object)


def _trace(x, y, text, index, name, **marker) -> go.Scattergl:
    return go.Scattergl(
        x=x,
        y=y,
        mode="markers",
        name=name,
        text=text,
        customdata=index,
        hovertemplate="%{text}<extra></extra>",
        marker={"size": 5, "opacity": 0.75, **marker},
        selected={"marker": {"size": 13, "opacity": 1.0}},
        unselected={"marker": {"opacity": 0.3}},
    )


def map_figure(
    coords: np.ndarray,
    texts: np.ndarray,
    colour: Colouring,
    overlays: list[dict] | None = None,
    title: str = "",
    height: int = 640,
) -> go.Figure:
    """The map as WebGL traces (smooth with tens of thousands of points); every point's customdata is its index.

    ``overlays``: extra traces drawn on top, each ``{"name", "index", "symbol", "color", "size"}``.
    """
    index = np.arange(len(coords))
    x, y = coords[:, 0], coords[:, 1]
    traces = []
    if colour.categorical:
        values = pd.Series(colour.values, dtype=object).where(pd.notna(colour.values), "unknown").astype(str)
        values = values.where(values != "", "unknown")
        order = [v for v in values.value_counts().index if v != "unknown"][:MAX_CATEGORIES]
        grouped = values.where(values.isin(order), "other").where(values != "unknown", "unknown").to_numpy()
        for i, category in enumerate(order + ["other", "unknown"]):
            mask = grouped == category
            if mask.any():
                color = {"other": OTHER, "unknown": UNKNOWN}.get(category, PALETTE[i % len(PALETTE)])
                traces.append(_trace(x[mask], y[mask], texts[mask], index[mask], f"{category} ({int(mask.sum()):,})", color=color))
    else:
        values = np.asarray(colour.values, dtype=np.float64)
        known = np.isfinite(values)
        if (~known).any():
            traces.append(_trace(x[~known], y[~known], texts[~known], index[~known], f"unknown ({int((~known).sum()):,})", color=UNKNOWN))
        traces.append(
            _trace(
                x[known],
                y[known],
                texts[known],
                index[known],
                colour.title,
                color=values[known],
                colorscale="Viridis",
                showscale=True,
                colorbar={"title": {"text": colour.title}, "thickness": 12},
            )
        )
    for overlay in overlays or []:
        chosen = np.asarray(overlay["index"], dtype=np.int64)
        if len(chosen) == 0:
            continue
        traces.append(
            _trace(
                x[chosen],
                y[chosen],
                texts[chosen],
                chosen,
                overlay["name"],
                symbol=overlay.get("symbol", "circle-open"),
                color=overlay.get("color", "#000000"),
                size=overlay.get("size", 11),
                opacity=1.0,
                line={"width": 1.5, "color": overlay.get("line", overlay.get("color", "#000000"))},
            )
        )
    figure = go.Figure(traces)
    figure.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        legend={"itemsizing": "constant", "title": {"text": colour.title if colour.categorical else ""}},
        # The axes are fitted to the points (a UMAP map's scale means nothing): with one scale for both axes the
        # cloud filled about a third of the frame.
        xaxis={"visible": False, "range": _padded_range(x)},
        yaxis={"visible": False, "range": _padded_range(y)},
        dragmode="pan",
        clickmode="event+select",
        plot_bgcolor="white",
    )
    return figure


def _padded_range(values: np.ndarray, pad: float = 0.03) -> list[float] | None:
    """The span of the drawn points (NaN: not drawn) with a little room around them."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    low, high = float(finite.min()), float(finite.max())
    room = (high - low) * pad or 1.0
    return [low - room, high + room]


def neighbour_overlays(selected: int, neighbours: np.ndarray, name: str) -> list[dict]:
    """The overlays that mark a clicked point and its nearest neighbours on the map."""
    return [
        {"name": f"nearest 10 to {name}", "index": np.asarray(neighbours), "symbol": "circle-open", "color": "#D62728", "size": 13},
        {"name": name, "index": np.array([selected]), "symbol": "diamond", "color": "#D62728", "line": "#000000", "size": 16},
    ]


def picker_options(order: np.ndarray, chosen: int | None, none: int) -> list[int]:
    """``none`` first, then the picker's usual order, with a point chosen on the map kept in the list."""
    options = order.tolist()
    if chosen is not None and chosen != none and chosen not in set(options):
        options.insert(0, int(chosen))
    return [none, *options]


def selected_index(event) -> int | None:
    """The index of the first point of a ``st.plotly_chart`` selection event (customdata), or None."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points or []:
        value = point.get("customdata")
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                continue
    return None
