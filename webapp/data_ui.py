"""Helpers of the Data page (and of the home page's first fetch): built-in data sets, uploads, statistics.

The upload handling is plain functions over bytes and paths (:func:`accept_upload`,
:func:`options_from_form`, :func:`use_upload`) so it can be tested without a browser; the page only
wires widgets to them. Every problem with a file is a :class:`~recsys_core.errors.DataError` with
what is wrong, where, and how to fix it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core.datasets.source import DataSource
from recsys_core.errors import DataError, RecsysError
from recsys_core.home import uploads_dir

from .loading import load_data, source_key
from .safe_output import plain

#: File endings the upload accepts (a trailing .gz is unpacked by the reader).
UPLOAD_TYPES = ("csv", "tsv", "txt", "tab", "dat", "parquet", "pq", "gz")
#: Also let through the uploader, only to be answered with what to do instead (the browser's own refusal says less).
UPLOAD_WIDGET_TYPES = UPLOAD_TYPES + ("xlsx", "xls", "ods", "zip", "json", "jsonl")
#: Roles of a user file's columns, in form order; user and item are required.
ROLES = ("user", "item", "rating", "timestamp", "weight", "title")
#: Session-state keys of the column-mapping form (reset when a new file arrives).
FORM_KEYS = tuple(f"map_{role}" for role in ROLES) + (
    "map_implicit",
    "map_threshold",
    "map_drop_blank",
    "map_min_user",
    "map_min_item",
    "map_duplicates",
    "map_name",
    "map_delimiter",
)
_REJECTED = {
    ".xlsx": "an Excel workbook",
    ".xls": "an Excel workbook",
    ".ods": "a spreadsheet",
    ".zip": "a zip archive",
    ".json": "a JSON file",
    ".jsonl": "a JSON-lines file",
    ".pkl": "a pickle",
    ".pickle": "a pickle",
}


# -- locks and errors ----------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def bootstrap_lock() -> threading.Lock:
    """One lock per server process, so that two first visitors do not fetch or train twice."""
    return threading.Lock()


# -- built-in data sets ----------------------------------------------------------------------------------
def dataset_rows() -> list[dict]:
    from recsys_core.datasets import list_datasets

    return list_datasets()


def size_text(size_mb: float | None) -> str:
    return f"{size_mb:,.1f} MB download" if size_mb else "size not published"


def fetch_with_progress(name: str, title: str | None = None) -> RecsysError | None:
    """Fetch a built-in data set with an ``st.progress`` bar; returns the error instead of raising it."""
    from recsys_core.datasets import fetch

    label = title or name
    bar = st.progress(0.0, text=f"Fetching {label} …")
    last = [0.0]

    def progress(done: int, total: int | None) -> None:
        now = time.monotonic()
        if total and done < total and now - last[0] < 0.2:
            return
        last[0] = now
        if total:
            bar.progress(min(1.0, done / total), text=f"Fetching {label}: {done / 1e6:,.1f} of {total / 1e6:,.1f} MB")
        else:
            bar.progress(0.0, text=f"Fetching {label}: {done / 1e6:,.1f} MB")

    try:
        with bootstrap_lock():
            fetch(name, progress=progress)
    except RecsysError as error:
        bar.empty()
        return error
    bar.progress(1.0, text=f"{label} is ready.")
    return None


def data_home_state() -> dict:
    """What the data home holds: fetched data sets, saved runs, uploads."""
    from recsys_core.home import data_home

    from .loading import all_runs

    rows = dataset_rows()
    uploads = [p for p in uploads_dir().iterdir() if p.is_file() and not p.name.startswith(".")]
    return {
        "home": str(data_home()),
        "fetched": [r["name"] for r in rows if r["available"]],
        "missing": [r["name"] for r in rows if not r["available"]],
        "runs": len(all_runs()),
        "uploads": len(uploads),
    }


# -- uploads ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Upload:
    """A user file stored in the data home under a content-hashed name."""

    path: str
    name: str  # the file name the user uploaded
    sha256: str
    size: int

    @property
    def stem(self) -> str:
        base = self.name
        for suffix in (".gz",) + tuple(f".{t}" for t in UPLOAD_TYPES):
            if base.lower().endswith(suffix):
                base = base[: -len(suffix)]
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "upload"

    def to_json(self) -> dict:
        return {"path": self.path, "name": self.name, "sha256": self.sha256, "size": self.size}


def check_upload_name(name: str) -> None:
    """Reject file types the reader cannot take, with what to do instead."""
    lower = name.lower()
    for suffix, what in _REJECTED.items():
        if lower.endswith(suffix):
            raise DataError(
                f"{name} is {what}, not a CSV, TSV or parquet file",
                "Save or export the data as CSV (comma- or tab-separated text, one interaction per row) or parquet and upload that.",
            )


def accept_upload(data: bytes, name: str, max_mb: float | None = None) -> tuple[Upload, dict]:
    """Store an uploaded file in the data home (:func:`~recsys_core.datasets.store_user_file`) and take a first look at it.

    Returns the :class:`Upload` and the sniff result (columns, preview, guesses). Raises
    :class:`DataError` for an empty, too large or unreadable file, naming it as ``name``; a file
    that cannot be read is not kept.
    """
    from recsys_core.datasets import sniff_user_file, store_user_file

    data = bytes(data)
    check_upload_name(name)
    if not data.strip():
        raise DataError(f"{name} is empty", "Choose a file with a header row and at least one row of data.")
    if max_mb is not None and len(data) > max_mb * 1e6:
        raise DataError(
            f"{name} has {len(data) / 1e6:,.0f} MB, more than the {max_mb:g} MB an upload may have",
            "Upload a compressed copy (.csv.gz), keep only the columns you need, or raise server.maxUploadSize in .streamlit/config.toml.",
        )
    stored = store_user_file(data, display_name=name)
    upload = Upload(str(stored.path), name, stored.sha256, stored.size)
    try:
        sniff = sniff_user_file(stored.path, display_name=name)
        if sniff["preview"].empty:
            raise DataError(f"{name} has a header but no rows of data", "Choose a file with at least one row of data.")
    except DataError:
        if stored.created:
            stored.path.unlink(missing_ok=True)
        raise
    return upload, sniff


def sniff_path(path: str, delimiter: str | None = None, display_name: str | None = None) -> dict:
    from recsys_core.datasets import sniff_user_file

    return sniff_user_file(path, delimiter=delimiter, display_name=display_name)


DRUGSCOM_COLUMNS = ("drugName", "condition", "review", "rating", "date", "usefulCount")


def looks_like_drugscom(columns: list[str]) -> bool:
    """The column layout of the Drugs.com review files (UCI, Kaggle or the sample)."""
    return all(c in columns for c in DRUGSCOM_COLUMNS)


def options_from_form(
    columns: dict[str, str | None],
    threshold: float | None = None,
    min_user: int = 0,
    min_item: int = 0,
    duplicates: str = "latest",
    delimiter: str | None = None,
    encoding: str | None = None,
    drop_blank_ratings: bool = False,
):
    """:class:`UserFileOptions` from the form's values (raises DataError for a bad combination)."""
    from recsys_core.datasets import UserFileOptions

    return UserFileOptions(
        user_col=columns.get("user") or "",
        item_col=columns.get("item") or "",
        rating_col=columns.get("rating"),
        timestamp_col=columns.get("timestamp"),
        weight_col=columns.get("weight"),
        title_col=columns.get("title"),
        threshold=threshold,
        duplicates=duplicates,  # type: ignore[arg-type]
        min_user_interactions=int(min_user),
        min_item_interactions=int(min_item),
        delimiter=delimiter,
        encoding=encoding,
        drop_blank_ratings=bool(drop_blank_ratings and columns.get("rating")),
    )


def form_state(applied: dict | None, name: str) -> dict:
    """The mapping form's settings (session-state key -> value) other than the columns.

    ``applied``: the options the active data was read with when the file in the form is the active one, so that
    the form shows the state in use; otherwise the defaults. The page sets these through session state (never a
    widget's ``value=``), which also makes the browser redraw a widget it still shows with an older value.
    """
    applied = applied or {}
    threshold = applied.get("threshold")
    return {
        "map_implicit": threshold is not None,
        "map_threshold": float(threshold) if threshold is not None else 4.0,
        "map_drop_blank": bool(applied.get("drop_blank_ratings", False)),
        "map_min_user": int(applied.get("min_user_interactions", 0)),
        "map_min_item": int(applied.get("min_item_interactions", 0)),
        "map_duplicates": applied.get("duplicates", "latest"),
        "map_name": name,
    }


def use_upload(path: str, options, name: str, label: str | None = None):
    """Read a stored upload with ``options``: the DataSource to make active and its Interactions.

    ``label`` is the file name the person knows (the readers name it in messages instead of the stored copy).
    """
    name = (name or "").strip() or Path(path).stem
    source = DataSource.file(path, options, name=name, display_name=label)
    bar = st.progress(0.0, text=f"Reading {plain(label or name)} …")  # progress text is markdown; the name is data

    def progress(fraction: float, text: str) -> None:
        bar.progress(fraction, text=plain(text[:1].upper() + text[1:]) + " …")

    try:
        data = load_data(source, read_progress=progress)
    except RecsysError:
        raise
    except Exception as error:  # the reader should say everything itself; never show a traceback
        raise DataError(
            f"{label or Path(path).name} could not be read: {type(error).__name__}: {error}", "Check the delimiter and the columns."
        ) from None
    finally:
        bar.empty()  # the page reruns with the new data, or shows the message in its place
    if data.n_users < 2 or data.n_items < 2:
        raise DataError(
            f"only {data.n_users} user(s) and {data.n_items} item(s) are left",
            "A recommender needs several users and items: check the columns, the threshold and the k-core filter.",
        )
    return source, data


# -- statistics ------------------------------------------------------------------------------------------
def _count_bins(counts: np.ndarray) -> pd.DataFrame:
    """Counts grouped into roughly logarithmic bins: 1, 2, 3, 4–5, 6–9, ... (readable labels)."""
    counts = counts[counts > 0]
    if not len(counts):
        return pd.DataFrame({"bin": [], "count": []})
    top = int(counts.max())
    edges = [1, 2, 3, 4]
    while edges[-1] <= top:
        edges.append(max(edges[-1] + 1, int(round(edges[-1] * 1.5))))
    hist, _ = np.histogram(counts, bins=edges)
    labels = [str(a) if b - a == 1 else f"{a}–{b - 1}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    frame = pd.DataFrame({"bin": labels, "count": hist})
    last = int(np.flatnonzero(frame["count"].to_numpy())[-1])
    return frame.iloc[: last + 1]


@st.cache_data(show_spinner="Computing statistics…", max_entries=8)
def data_summary(key: str) -> dict:
    """Statistics and histogram tables of a data source (cached per source)."""
    data = load_data(DataSource.from_json(json.loads(key)))
    stats = data.stats()
    out: dict = {
        "name": data.name,
        "users_kind": data.users.kind,
        "items_kind": data.items.kind,
        "stats": stats,
        "per_user": _count_bins(data.user_counts()),
        "per_item": _count_bins(data.item_counts()),
        "ratings": None,
        "time_range": None,
    }
    if data.rating is not None:
        values, counts = np.unique(np.asarray(data.rating, dtype=np.float64), return_counts=True)
        if len(values) <= 25:
            out["ratings"] = pd.DataFrame({"rating": [f"{v:g}" for v in values], "count": counts})
        else:
            hist, edges = np.histogram(data.rating, bins=20)
            out["ratings"] = pd.DataFrame(
                {"rating": [f"{a:.3g}–{b:.3g}" for a, b in zip(edges[:-1], edges[1:], strict=True)], "count": hist}
            )
    if data.timestamp is not None and len(data):
        first, last = int(np.min(data.timestamp)), int(np.max(data.timestamp))
        out["time_range"] = (pd.Timestamp(first, unit="s").date().isoformat(), pd.Timestamp(last, unit="s").date().isoformat())
    return out


def quantile_table(stats: dict, users_kind: str, items_kind: str) -> pd.DataFrame:
    rows = []
    for key, label in (
        ("interactions_per_user", f"interactions per {users_kind}"),
        ("interactions_per_item", f"interactions per {items_kind}"),
    ):
        q = stats[key]
        rows.append({"": label, "min": q["q0"], "25%": q["q25"], "median": q["q50"], "75%": q["q75"], "max": q["q100"], "mean": q["mean"]})
    return pd.DataFrame(rows).set_index("").round(1)


@st.cache_data(show_spinner="Counting every rating…", max_entries=8)
def all_ratings(key: str) -> pd.DataFrame | None:
    """Every interaction of a built-in or Drugs.com source by rating, before its positive rule: columns ``rating``,
    ``count``, ``positive`` (counted as positive by the rule) and, on drug data, ``class`` (positive / neutral /
    negative review, as the Recommend page's evidence counts them). None without ratings or for a user file (its
    threshold drops the other rows while it is read)."""
    source = DataSource.from_json(json.loads(key))
    if source.kind == "file":
        return None
    everything = source.all_reviews()
    if everything.rating is None:
        return None
    values, counts = np.unique(np.asarray(everything.rating, dtype=np.float64), return_counts=True)
    if len(values) > 25:
        return None
    table = pd.DataFrame({"rating": values, "count": counts})
    table["positive"] = values >= source.threshold if source.threshold is not None else True
    if everything.users.kind == "condition" or everything.items.kind == "drug":
        from recsys_core.drugs import ReviewClasses

        table["class"] = ReviewClasses.for_threshold(source.threshold).classify(values)
    return table


#: Review classes' colours (the Recommend page's evidence columns say the same words).
CLASS_COLOURS = {"positive": "#54a24b", "neutral": "#bab0ac", "negative": "#e45756"}


def ratings_figure(table: pd.DataFrame, threshold: float | None, what: str):
    """Bars of every rating (by class on drug data) with the positive rule as a dashed line between the ratings it
    drops and those it keeps, and how many it keeps."""
    import plotly.graph_objects as go

    colours = [CLASS_COLOURS[c] for c in table["class"]] if "class" in table else ["#4c78a8" if p else "#bab0ac" for p in table["positive"]]
    names = [f"{r:g}" + (f"<br>{c}" if "class" in table else "") for r, c in zip(table["rating"], table.get("class", table["rating"]))]
    fig = go.Figure(
        go.Bar(x=table["rating"].tolist(), y=table["count"].tolist(), marker_color=colours, hovertext=names, hoverinfo="text+y")
    )
    fig.update_xaxes(tickvals=table["rating"].tolist(), ticktext=names, title_text="rating")
    fig.update_layout(yaxis_title=what, margin=dict(l=10, r=10, t=30, b=10), height=340, bargap=0.15, showlegend=False)
    below, above = table.loc[~table["positive"], "rating"], table.loc[table["positive"], "rating"]
    if threshold is not None and len(below) and len(above):
        kept = int(table.loc[table["positive"], "count"].sum())
        fig.add_vline(
            x=(below.max() + above.min()) / 2,
            line_dash="dash",
            line_color="#333",
            annotation_text=f"positive rule: rating ≥ {threshold:g} ({kept:,} of {int(table['count'].sum()):,} {what})",
            annotation_position="top left" if above.min() > table["rating"].median() else "top right",
        )
    return fig


def count_figure(table: pd.DataFrame, x_title: str, y_title: str, log_y: bool):
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=table["bin"], y=table["count"], marker_color="#4c78a8"))
    fig.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        yaxis_type="log" if log_y else "linear",
        margin=dict(l=10, r=10, t=30, b=10),
        height=320,
        bargap=0.05,
    )
    if log_y:
        # One label per power of ten: plotly's default log ticks also label 2, 5, ... in each decade,
        # which overlap into an unreadable jumble on a short axis.
        fig.update_yaxes(dtick=1, tickformat=",d", minor=dict(ticks="", showgrid=False))
    fig.update_xaxes(type="category")
    return fig


@st.cache_data(show_spinner=False, max_entries=8)
def file_account(key: str) -> pd.DataFrame | None:
    """One row accounting for every row of the active user file: read, merged, dropped and why, kept.

    Reads the file again through ``read_user_file_with_account`` (once per file and settings: cached),
    because the loaded Interactions do not carry the counts. None for built-in data.
    """
    from recsys_core.datasets.user_files import read_user_file_with_account

    source = DataSource.from_json(json.loads(key))
    if source.kind != "file":
        return None
    options = source.file_options()
    _data, account = read_user_file_with_account(source.path, options, name=source.name, display_name=source.display_name)
    threshold = f"below {options.rating_col} {options.threshold:g}" if options.threshold is not None else "no threshold"
    kcore = f"k-core (users ≥ {options.min_user_interactions}, items ≥ {options.min_item_interactions})"
    blank = {f"dropped: blank {options.rating_col}": account.blank_ratings_dropped} if options.drop_blank_ratings else {}
    return pd.DataFrame(
        [
            {
                "file": source.display_name or source.name,
                "rows read": account.rows_read,
                **blank,
                "duplicates merged": account.duplicate_text(),
                f"dropped: {threshold}": account.below_threshold,
                f"removed by {kcore}": account.removed_by_kcore,
                "kept": account.kept,
            }
        ]
    )


def summary_key(source: DataSource) -> str:
    return source_key(source)
