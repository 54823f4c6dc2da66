"""The session's active data and run: what every page works on, kept in session state, and the sidebar that says so.

Written once here: the default data (:data:`DEFAULT_SOURCE`), choosing data (:func:`set_active_source`, which
forgets the active run), the active run and its fallback to the newest run on the data
(:func:`active_run_id`), pinning it before a training saves new runs (:func:`keep_active_run`), the best run
by the one rule and the one button that switches to it (:func:`offer_best_run`), the positives caption and the
sidebar status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from recsys_core.best import BEST_RULE
from recsys_core.datasets.source import DataSource

from .loading import runs_for
from .run_labels import run_label, run_label_for
from .safe_output import plain

if TYPE_CHECKING:  # recsys_core.runs imports the models (torch): the first page must not
    from recsys_core.runs import RunRecord

DEFAULT_SOURCE = DataSource.builtin("ml-100k")


def active_source() -> DataSource:
    if "source" not in st.session_state:
        st.session_state["source"] = DEFAULT_SOURCE.to_json()
    return DataSource.from_json(st.session_state["source"])


def set_active_source(source: DataSource) -> None:
    st.session_state["source"] = source.to_json()
    st.session_state.pop("run_id", None)


def active_run_id(data) -> str | None:
    """The chosen run for the active data, falling back to the newest run on it."""
    runs = runs_for(data)
    ids = [r.run_id for r in runs]
    chosen = st.session_state.get("run_id")
    if chosen in ids:
        return chosen
    return ids[0] if ids else None


def set_active_run(run_id: str) -> None:
    st.session_state["run_id"] = run_id


def keep_active_run(data) -> str | None:
    """Pin the active run before new runs are saved, so a new run never becomes active by itself.

    Without a choice in session state the active run is "the newest run on this data", which a
    training would silently replace (a Mult-VAE at HR@10 0.582 replaced EASE at 0.669 that way).
    """
    current = active_run_id(data)
    if current is not None:
        set_active_run(current)
    return current


def best_run(data) -> RunRecord | None:
    """The best run on this data by the one rule (:data:`recsys_core.best.BEST_RULE`), among the runs comparable
    with the active run (the same split, judged on the same protocol), else with the newest scored run."""
    from recsys_core.best import best_run as best_by_rule

    runs = runs_for(data)
    current = active_run_id(data)
    return best_by_rule(runs, like=next((r for r in runs if r.run_id == current), None))


def offer_best_run(data, key: str = "use_best_run") -> None:
    """A button "Use the best run on this data" when the active run is not the best on its protocol.

    Training never switches the active run by itself (``keep_active_run``); this is the one click
    that does, and it names both runs so the person sees what changes.
    """
    best = best_run(data)
    current = active_run_id(data)
    if best is None or best.run_id == current:
        return
    st.button(
        f"Use the best run on this data: {plain(run_label(best))}",
        key=key,
        icon=":material/trophy:",
        help=f"{BEST_RULE} The active run is now {plain(run_label_for(current))}.",
        on_click=set_active_run,
        args=(best.run_id,),
    )


def positive_rule_text(record: RunRecord | None = None) -> str:
    """ "Positives: ..." for a caption beside metrics: the run's recorded rule, else the active data's."""
    if record is not None and record.dataset.rule_recorded:
        return f"Positives: {plain(record.dataset.positive_rule.text)}."
    return f"Positives: {plain(active_source().positive_rule())}."


def sidebar_status(data=None, slot=None) -> None:
    """The sidebar's active data, active run and best run. ``slot`` (an ``st.sidebar.empty()``, see
    ``frame.open_page``) is rewritten in place, so a page that changes its data after opening shows one status."""
    where = slot.container() if slot is not None else st.sidebar
    source = active_source()
    where.markdown(f"**Dataset:** {plain(source.name)}")
    if data is not None:
        current = active_run_id(data)
        where.markdown(f"**Run:** {plain(run_label_for(current))}")
        best = best_run(data)
        if best is not None:
            which = "the active run" if best.run_id == current else plain(run_label(best))
            where.caption(f"Best run: {which}.", help=BEST_RULE)
