"""The frame every page stands in: one opener, the active-run picker, the links between pages.

Each page script starts with :func:`open_page`. It sets the page's config and title (the icon is the
one the sidebar shows, from ``navigation.app_pages``), writes the sidebar status, and loads the active
data. When there is none to load (not fetched yet, a file that is gone, data that no longer reads)
the page does not fail further down: the opener shows an empty state that says what happened and
links to the Data page, and stops the script. A page that works without data (the Data page itself)
asks for ``needs_data=False``.

:func:`pick_run` picks the run a page shows (the session's active run): runs named by ``run_label`` ("EASE ·
ml-100k · 09:21 · HR@10 0.669"), kept in step with the active run, with an empty state linking to the Train page.
The Compare page's Run A / Run B choose a pair within one group for the paired test and name runs the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from recsys_core.errors import RecsysError
from webapp import navigation, train_jobs
from webapp.active import active_run_id, active_source, positive_rule_text, set_active_run, sidebar_status
from webapp.errors import friendly_errors, show_error
from webapp.loading import is_available, load_data, load_run, runs_for, source_key
from webapp.run_labels import run_label
from webapp.safe_output import plain

if TYPE_CHECKING:
    from recsys_core.datasets.source import DataSource

APP_TITLE = "Recsys Explorer"


@dataclass(frozen=True)
class Page:
    """What a page gets from the opener: the active data source, its data and the key of its cached tables.

    ``data`` is None only for a page opened with ``needs_data=False`` whose data could not be loaded."""

    source: DataSource
    data: Any
    data_key: str
    sidebar: Any = None  # the sidebar status's slot: ``sidebar_status(data, page.sidebar)`` rewrites it


def page_link(title: str, label: str) -> None:
    """``st.page_link`` to the page called ``title`` (navigation's list), or plain text where the page cannot be
    linked (a page run on its own, outside ``st.navigation``)."""
    from streamlit.errors import StreamlitAPIException

    page = navigation.page(title)
    try:
        st.page_link(page, label=label, icon=page.icon)
    except StreamlitAPIException:
        st.markdown(f"{page.icon} {label} (open **{page.title}** in the sidebar).")


def link_to_data(label: str = "Choose, fetch or upload data on the Data page") -> None:
    page_link("Data", label)


def link_to_train(label: str = "Train a first model on the Train page") -> None:
    page_link("Train", label)


def set_page(title: str, heading: str | None = None) -> None:
    """The browser tab's title and icon (the page's in navigation's list), and the page's heading (``heading=""``:
    none, the page writes its own)."""
    st.set_page_config(
        page_title=APP_TITLE if title == "Home" else f"{title} · {APP_TITLE}",
        page_icon=navigation.page(title).icon,
        layout="wide",
    )
    if heading != "":
        st.title(heading or title)


def open_page(title: str, heading: str | None = None, needs_data: bool = True) -> Page:
    """Every page's first call: the page config and heading, the sidebar, the active data.

    Without data the page shows why and a link to the Data page, then stops (``needs_data=False``:
    it goes on with ``data=None``)."""
    set_page(title, heading)
    slot = st.sidebar.empty()
    train_jobs.sidebar_progress()  # first: a training that ended hands over its runs before the active run is read
    source = active_source()
    key = source_key(source)
    problem: RecsysError | None = None
    if source.kind == "builtin":
        if not is_available(source.name):
            problem = RecsysError(
                f"the active data, {source.name}, is not fetched yet", "Fetch it, or choose or upload other data, on the Data page."
            )
    if problem is None:
        try:
            data = load_data(source)
        except RecsysError as error:
            problem = error
    if problem is not None:
        sidebar_status(slot=slot)
        if not needs_data:
            return Page(source, None, key, slot)
        show_error(problem, f"No data to show on this page ({plain(source.name)})")
        link_to_data()
        st.stop()
    sidebar_status(data, slot)
    return Page(source, data, key, slot)


def pick_run(data, key: str, label: str = "Run"):
    """A selectbox of the saved runs on this data (newest first), kept in step with the active run.

    Returns the loaded Run, or shows how to get one and stops the page.
    """
    runs = runs_for(data)
    if not runs:
        st.info(f"No saved run on {plain(data.name)} yet. Train one on the **Train** page (EASE takes seconds).")
        link_to_train()
        st.stop()
    ids = [r.run_id for r in runs]
    labels = {r.run_id: run_label(r) for r in runs}
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
    st.caption(positive_rule_text(next((r for r in runs if r.run_id == run_id), None)))
    with friendly_errors(f"Run {run_id} cannot be loaded"):
        return load_run(run_id)


def keep_valid(key: str, options) -> None:
    """Forget a remembered choice that is no longer among ``options`` (other data, a deleted run)."""
    if key in st.session_state and st.session_state[key] not in list(options):
        st.session_state.pop(key, None)
