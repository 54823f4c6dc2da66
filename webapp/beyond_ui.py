"""Beyond accuracy on the Compare page: accuracy against coverage and novelty for every run, and the
report download. Tables and figures are built from run.json records (see recsys_core.beyond), so the
HTML report draws the very same charts.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys_core.beyond import METRIC_LABELS
from recsys_core.evaluation import HEADLINE

#: The beyond-accuracy metrics plotted against accuracy, in order.
TRADEOFF_AXES = ("Coverage@10", "Novelty@10")


def tradeoff_table(records: list[dict], protocol: str) -> pd.DataFrame:
    """One row per run with both an accuracy result on ``protocol`` and beyond-accuracy metrics:
    the headline accuracy and each beyond metric with its 95% interval bounds."""
    headline = HEADLINE[protocol]
    rows = []
    for record in records:
        test = record.get("test", {}).get(protocol)
        beyond = record.get("beyond", {})
        if test is None or not beyond.get("available") or headline not in test.get("metrics", {}):
            continue
        value = test["metrics"][headline]
        lo, hi = test.get("intervals", {}).get(headline, [value, value])
        row = {"run": f"{record['model']} ({record['run_id'][-6:]})", "run_id": record["run_id"], headline: value, f"{headline} lo": lo, f"{headline} hi": hi}
        for name, metric in beyond["metrics"].items():
            row[name] = metric
            b_lo, b_hi = beyond.get("intervals", {}).get(name, [metric, metric])
            row[f"{name} lo"], row[f"{name} hi"] = b_lo, b_hi
        rows.append(row)
    return pd.DataFrame(rows)


def tradeoff_figure(table: pd.DataFrame, accuracy: str, other: str):
    """Scatter of ``accuracy`` (y) against ``other`` (x), one labelled point per run, with both 95% intervals."""
    import plotly.graph_objects as go

    name = other.split("@")[0]
    figure = go.Figure(
        go.Scatter(
            x=table[other],
            y=table[accuracy],
            mode="markers+text",
            text=table["run"],
            textposition="top center",
            marker={"size": 10, "color": "#4C78A8"},
            error_x={"type": "data", "symmetric": False, "array": table[f"{other} hi"] - table[other], "arrayminus": table[other] - table[f"{other} lo"]},
            error_y={"type": "data", "symmetric": False, "array": table[f"{accuracy} hi"] - table[accuracy], "arrayminus": table[accuracy] - table[f"{accuracy} lo"]},
            hovertemplate=f"%{{text}}<br>{other} %{{x:.4f}}<br>{accuracy} %{{y:.4f}}<extra></extra>",
        )
    )
    figure.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title=f"{accuracy} vs {METRIC_LABELS.get(name, name)}",
        xaxis_title=f"{other} (95% CI)",
        yaxis_title=f"{accuracy} (95% CI)",
    )
    return figure


def activity_table(records: list[dict]) -> pd.DataFrame:
    """Each run's accuracy in each quintile of user activity (history length), one column per quintile."""
    rows = []
    for record in records:
        beyond = record.get("beyond", {})
        if not beyond.get("by_activity"):
            continue
        row = {"run": f"{record['model']} ({record['run_id'][-6:]})", "metric": beyond.get("activity_metric", "")}
        for group in beyond["by_activity"]:
            row[f"Q{group['group']} ({group['min_length']}–{group['max_length']})"] = group["mean"]
        rows.append(row)
    return pd.DataFrame(rows)


def beyond_metrics_table(records: list[dict]) -> pd.DataFrame:
    """Every beyond-accuracy metric of each run with its interval, for the table under the charts."""
    rows = []
    for record in records:
        beyond = record.get("beyond", {})
        if not beyond.get("available"):
            continue
        row = {"run": f"{record['model']} ({record['run_id'][-6:]})"}
        for name, value in beyond["metrics"].items():
            lo, hi = beyond.get("intervals", {}).get(name, [value, value])
            row[name] = value
            row[f"{name} 95% CI"] = f"{lo:.3f} – {hi:.3f}"
        row["ILD by"] = beyond.get("diversity_basis", "")
        rows.append(row)
    return pd.DataFrame(rows)


def show_beyond_accuracy(records: list[dict], protocol: str) -> None:
    """The Compare page's beyond-accuracy section: the trade-off charts, the metrics and accuracy by activity."""
    st.header("Beyond accuracy")
    table = tradeoff_table(records, protocol)
    if table.empty:
        st.info("None of these runs has beyond-accuracy metrics yet (runs saved before they existed); train them again to see them.")
        return
    headline = HEADLINE[protocol]
    st.caption(
        "From each test user's top 10 over the whole catalogue (items they have excluded). Coverage: share of the catalogue "
        "recommended to anyone. Novelty: mean −log2 of a recommended item's share of all interactions (bits; higher = less "
        "popular). Up and to the right is better on both axes; a model that buys accuracy with popular items sits up and left."
    )
    columns = st.columns(len(TRADEOFF_AXES))
    for column, other in zip(columns, TRADEOFF_AXES):
        if other in table.columns:
            column.plotly_chart(tradeoff_figure(table, headline, other), key=f"cmp_tradeoff_{other}")
    metrics = beyond_metrics_table(records)
    st.dataframe(metrics, hide_index=True, width="stretch", column_config={c: st.column_config.NumberColumn(format="%.4f") for c in metrics.columns if "@" in c and "CI" not in c})
    activity = activity_table(records)
    if not activity.empty:
        st.caption("Accuracy by user activity: test users cut into five equal groups by history length (Q1 least active; lengths in brackets).")
        st.dataframe(activity, hide_index=True, width="stretch", column_config={c: st.column_config.NumberColumn(format="%.4f") for c in activity.columns if c.startswith("Q")})
