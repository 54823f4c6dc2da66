"""Beyond accuracy on the Compare page: accuracy against coverage and novelty for every run, and the
report download. The trade-off table and figure come from recsys_core.beyond, so the HTML report draws
the very same charts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from recsys_core.beyond import TRADEOFF_AXES, activity_table, beyond_metrics_table, tradeoff_figure, tradeoff_table
from recsys_core.errors import RecsysError
from recsys_core.evaluation import HEADLINE
from webapp.errors import show_error
from webapp.safe_output import plain

if TYPE_CHECKING:
    from recsys_core.runs import RunRecord


def show_beyond_accuracy(runs: list[RunRecord], protocol: str) -> None:
    """The Compare page's beyond-accuracy section: the trade-off charts, the metrics and accuracy by activity."""
    st.header("Beyond accuracy")
    table = tradeoff_table(runs, protocol)
    if table.empty:
        st.info("None of these runs has beyond-accuracy metrics yet (runs saved before they existed); train them again to see them.")
        return
    headline = HEADLINE[protocol]
    st.caption(
        "From each test user's top 10 over the whole catalogue (items they already have excluded). Coverage: share of the catalogue "
        "recommended to anyone. Novelty: mean log2(users / users who have the item) over the list (Zhou et al. 2010; bits; "
        "higher = less popular). Up and to the right is better on both axes; a model that buys accuracy with popular items sits up and left."
    )
    columns = st.columns(len(TRADEOFF_AXES))
    for column, other in zip(columns, TRADEOFF_AXES):
        if other in table.columns:
            column.plotly_chart(tradeoff_figure(table, headline, other), key=f"cmp_tradeoff_{other}")
    metrics = beyond_metrics_table(runs)
    st.dataframe(
        metrics,
        hide_index=True,
        width="stretch",
        column_config={c: st.column_config.NumberColumn(format="%.4f") for c in metrics.columns if "@" in c and "CI" not in c},
    )
    activity = activity_table(runs)
    if not activity.empty:
        st.caption(
            "Accuracy by user activity: test users cut into five equal groups by history length (Q1 least active; lengths in brackets)."
        )
        st.dataframe(
            activity,
            hide_index=True,
            width="stretch",
            column_config={c: st.column_config.NumberColumn(format="%.4f") for c in activity.columns if c.startswith("Q")},
        )


def show_report_download(run_ids: list[str], protocol: str) -> None:
    """Build the stakeholder report of these runs on request, then offer it for download."""
    from recsys_core.report import build_report

    st.header("Report")
    st.caption(
        "One HTML file for people without the app: the data, the protocol in plain words, this leaderboard with intervals "
        "and paired tests, the beyond-accuracy charts, sample users with each model's top 10 and why, and an item map. "
        "It opens offline in any browser."
    )
    key = (tuple(run_ids), protocol)
    if st.button("Build the report", key="cmp_report_build", disabled=not run_ids):
        try:
            with st.spinner("Building the report…"):
                st.session_state["cmp_report"] = (key, build_report(run_ids, protocol=protocol).encode("utf-8"))
        except RecsysError as error:
            show_error(error, "The report could not be built")
    built = st.session_state.get("cmp_report")
    if built and built[0] == key:
        st.download_button("Download report.html", built[1], file_name="recsys-report.html", mime="text/html", key="cmp_report_download")


@st.cache_data(show_spinner="Timing each run's recommendations…", max_entries=16)
def _demo_view(run_ids: tuple[str, ...]) -> tuple[pd.DataFrame, tuple[str, str] | None]:
    """The demo table and choice of these runs (recommendation times are measured: worth keeping)."""
    from recsys_core.demo import demo_choice, demo_table

    from .loading import load_run
    from .run_labels import run_label

    runs = [load_run(run_id) for run_id in run_ids]
    table = demo_table(runs, lambda record: run_label(record, with_score=False))
    return table, demo_choice(table, [run.info for run in runs])


def show_demo_choice(runs: list[RunRecord]) -> None:
    """The Compare page's "Which model should I demo?": the runs side by side on what a demo needs, and a choice."""
    from recsys_core.demo import MAX_DEMO_MS, demo_display

    st.header("Which model should I demo?")
    ids = tuple(r.run_id for r in runs)
    try:
        table, choice = _demo_view(ids)
    except RecsysError as error:
        show_error(error, "The runs could not be compared for a demo")
        return
    if table.empty:
        st.info("None of these runs has a test score to go by.")
        return
    st.caption(
        "Accuracy as the best-run rule judges it, coverage and novelty of the top 10s, how long the fit took and how long one "
        f"user's top 10 takes here (measured now; over {MAX_DEMO_MS:.0f} ms is felt in a live demo)."
    )
    st.dataframe(demo_display(table), hide_index=True, width="stretch")
    if choice is not None:
        st.success(plain(choice[1]))
