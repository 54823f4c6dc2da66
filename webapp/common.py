"""Cached access to data and runs, the user's choices in session state, and friendly errors.

Interactions and loaded runs are immutable or read-only, so they are shared through
``st.cache_resource`` (no copy per rerun; a 20M-row data set is never re-serialised); derived
tables go through ``st.cache_data``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING

import streamlit as st

from recsys_core.best import BEST_RULE
from recsys_core.datasets.source import DataSource
from recsys_core.drugs import MEDICAL_NOTE as MEDICAL_NOTE  # one wording for the CLI and every page
from recsys_core.errors import RecsysError
from webapp.safe_output import plain

if TYPE_CHECKING:  # recsys_core.runs imports the models (torch): the first page must not
    from recsys_core.runs import RunRecord

DEFAULT_SOURCE = DataSource.builtin("ml-100k")


def source_key(source: DataSource) -> str:
    return json.dumps(source.to_json(), sort_keys=True)


@st.cache_resource(show_spinner="Loading data…", max_entries=4)
def _load_data(key: str, _loaded=None):
    # ``_loaded``: data read outside the cache (where a progress bar may be updated) to keep under
    # this key; the leading underscore keeps it out of the key (Streamlit does not hash it).
    return _loaded if _loaded is not None else DataSource.from_json(json.loads(key)).load()


def load_data(source: DataSource, read_progress=None):
    """The Interactions of ``source``, loaded once per process.

    With ``read_progress(fraction, text)`` a user file is read again with its steps reported (a
    cached function may not update an element made outside it) and the result kept in the cache.
    """
    if read_progress is None:
        return _load_data(source_key(source))
    return _load_data(source_key(source), source.load(read_progress=read_progress))


def data_for_key(key: str):
    """``load_data`` of the source whose ``source_key`` is ``key`` (cached tables are keyed by it)."""
    return _load_data(key)


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def load_run(run_id: str):
    """A saved run (model + vocabularies), loaded once per process; the run folder never changes."""
    from recsys_core.runs import load_run as _load

    return _load(run_id, device="auto")


def all_runs() -> list[RunRecord]:
    """Every readable saved run, newest first (damaged folders are left to the CLI's `runs` to list)."""
    from recsys_core.runs import RunRecord, list_runs

    return [r for r in list_runs() if isinstance(r, RunRecord)]


def runs_for(data) -> list[RunRecord]:
    """Saved runs trained on exactly this data (same content hash), newest first."""
    digest = data.content_hash()
    return [r for r in all_runs() if r.dataset.content_hash == digest]


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


def run_label(record: RunRecord, today: date | None = None, with_score: bool = True) -> str:
    """How every page names a run: "EASE · ml-100k · 09:21 · HR@10 0.134, full ranking" instead of its raw id.

    The date is added when the run is not from today. The score is the one the best-run rule judges the run by
    (:func:`recsys_core.best.judging_score`), its protocol named: a leave-one-out run shows its full-ranking HR@10,
    never the sampled one.
    """
    from recsys_core.best import judging_score
    from recsys_core.models import model_title

    model = model_title(record.model.name)
    parts = [f"{record.title} ({model})" if record.title else model, record.dataset.name]
    try:
        when = datetime.fromisoformat(record.created)
        parts.append(when.strftime("%H:%M") if when.date() == (today or date.today()) else when.strftime("%d %b %H:%M"))
    except (TypeError, ValueError):  # an old run without a creation time: its id still tells runs apart
        parts.append(record.run_id[-6:])
    if with_score:  # without: where the score stands beside the name (the demo table and its sentence)
        score = judging_score(record)
        parts.append(score.text() if score is not None else "no test score")
    return " · ".join(parts)


def run_label_for(run_id: str | None) -> str:
    """``run_label`` of a saved run given by id ("— none yet —" for None; the id itself if it is not listed)."""
    if run_id is None:
        return "— none yet —"
    record = next((r for r in all_runs() if r.run_id == run_id), None)
    return run_label(record) if record is not None else run_id


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


def is_drug_data(data) -> bool:
    return data.users.kind == "condition" or data.items.kind == "drug"


@contextmanager
def friendly_errors(what: str = "") -> Iterator[None]:
    """Run a block; a library error in it is shown as webapp.frame's ``show_error`` shows any, then the page stops."""
    try:
        yield
    except RecsysError as error:
        from webapp.frame import show_error

        show_error(error, what)
        st.stop()


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
