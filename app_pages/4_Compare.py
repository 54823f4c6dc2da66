"""Compare: a leaderboard of the runs on one split, a paired test, two runs' lists for one user, sampled vs full metrics."""

from __future__ import annotations

import streamlit as st

from recsys_core import explain
from recsys_core.best import BEST_RULE, best_line
from recsys_core.comparison import leaderboard_figure, paired_comparison
from recsys_core.errors import RecsysError
from recsys_core.protocols import get_protocol
from webapp import beyond_ui, compare_ui, errors, frame, pickers
from webapp.active import positive_rule_text
from webapp.loading import is_drug_data, load_run, runs_for
from webapp.safe_output import plain

page = frame.open_page("Compare")
data, data_key = page.data, page.data_key
records = runs_for(data)
if not records:
    st.info(f"No saved run on {plain(data.name)} yet. Train a few on the **Train** page, then compare them here.")
    frame.link_to_train("Train models to compare")
    st.stop()

NUMBER = st.column_config.NumberColumn


@st.cache_data(show_spinner="Pairing the two runs…", max_entries=64)
def _paired(run_a: str, run_b: str, protocol: str, metric: str) -> dict:
    """paired_comparison of two saved runs (a bootstrap over every test user: worth keeping)."""
    return paired_comparison(load_run(run_a).evaluation(protocol), load_run(run_b).evaluation(protocol), metric)


# ---------------------------------------------------------------------------------- which split
groups = compare_ui.group_by_split(records)
if not groups:
    st.info(f"None of the runs on {plain(data.name)} has test results to compare; train a run on the **Train** page.")
    st.stop()
keys = sorted(groups, key=lambda g: -len(groups[g]))
labels = {g: compare_ui.split_label(groups[g][0], len(groups[g])) for g in keys}
frame.keep_valid("cmp_split", keys)
top = st.columns([3, 2], gap="medium")
group_key = top[0].selectbox(
    "Runs tested on the same split",
    keys,
    format_func=labels.get,
    key="cmp_split",
    help="Only runs on the same data (same content hash), split kind and seed share their test users, so only they can be compared.",
)
group = groups[group_key]
protocols = compare_ui.protocols_of(group)
frame.keep_valid("cmp_protocol", protocols)
protocol = top[1].radio("Protocol", protocols, key="cmp_protocol", horizontal=True)
by_id = {r.run_id: r for r in group}

# ---------------------------------------------------------------------------------- leaderboard
st.header("Leaderboard")
board = compare_ui.leaderboard(group, protocol)
headline = get_protocol(protocol).headline
st.caption(
    f"Test metrics of {len(board)} run(s) on {plain(data.name)}, {protocol}; 95% intervals from a bootstrap over test users. "
    + positive_rule_text(group[0])
    + " "
    + (
        "Coverage@10 is the share of all items that appear in some user's full-ranking top 10. With one held-out item per user, "
        "Recall@10 equals HR@10, Precision@10 is HR@10 / 10 and MAP@10 is 1 / rank when the item is in the top 10, else 0."
        if protocol.startswith("loo")
        else ""
    )
)
st.caption(plain(compare_ui.history_condition(group)))
if best := best_line(group, lambda record: plain(compare_ui.short_name(record))):
    st.markdown(f"**{best}** {BEST_RULE}")
if compare_ui.meaning_note(group, protocol):
    st.warning(plain(compare_ui.meaning_note(group, protocol)))
metric_config = {c: NUMBER(format="%.4f") for c in board.columns if ("@" in c and "CI" not in c) or c in ("MRR", "RMSE", "MAE")}
st.dataframe(
    board,
    hide_index=True,
    width="stretch",
    column_order=[c for c in board.columns if c not in ("model", "run_id")] + ["run_id"],
    column_config={**metric_config, "fit seconds": NUMBER(format="%.1f"), "run_id": st.column_config.TextColumn("run id")},
)
if headline in board.columns and len(board):
    figure = leaderboard_figure(board["run"], board[headline], [by_id[r] for r in board["run_id"]], protocol)
    st.plotly_chart(figure, key="cmp_chart")

# ---------------------------------------------------------------------------------- paired test
st.header("Is one run really better?")
ids = board["run_id"].tolist()
if len(ids) < 2:
    st.info("Train a second run on this split to compare two runs.")
else:
    names = {r: compare_ui.short_name(by_id[r]) for r in ids}
    col_a, col_b, col_m = st.columns([2, 2, 1])
    frame.keep_valid("cmp_a", ids)
    frame.keep_valid("cmp_b", ids)
    with col_a:
        run_a = st.selectbox("Run A", ids, index=0, format_func=names.get, key="cmp_a")
    with col_b:
        run_b = st.selectbox("Run B", ids, index=1, format_func=names.get, key="cmp_b")
    refused = None
    try:
        eval_a, eval_b = load_run(run_a).evaluation(protocol), load_run(run_b).evaluation(protocol)
    except RecsysError as error:
        refused, eval_a, eval_b = error, None, None
    if refused is not None:  # one message: the damaged file, not also "no per-user evaluation"
        errors.show_error(refused, "These runs cannot be paired")
    elif eval_a is None or eval_b is None:
        st.info("One of the runs has no per-user evaluation saved for this protocol, so they cannot be paired.")
    elif run_a == run_b:
        st.info("Choose two different runs.")
    else:
        metrics = [m for m in eval_a.per_user if m in eval_b.per_user and m != "rank"]
        frame.keep_valid("cmp_metric", metrics)
        paired_metric = get_protocol(protocol).paired_headline  # the report pairs on it too (rating runs: squared errors)
        default = metrics.index(paired_metric) if paired_metric in metrics else 0
        with col_m:
            metric = st.selectbox("Metric", metrics, index=default, key="cmp_metric")
        try:
            result = _paired(run_a, run_b, protocol, metric)
            text, verdict = compare_ui.paired_sentence(result, plain(names[run_a]), plain(names[run_b]))
            (st.success if verdict != "none" else st.info)(text)
        except RecsysError as error:
            errors.show_error(error, "These runs cannot be paired")

    # ------------------------------------------------------------------------------ the same user, two runs
    st.header(f"The same {data.users.kind}, two runs")
    user = pickers.pick_user("cmp_user", data, data_key)
    lists = {}
    columns = st.columns(2)
    for column, run_id in zip(columns, (run_a, run_b)):
        run = load_run(run_id)
        items, scores, _ = explain.rank_items(run.model, user, k=10, seen=run.seen)
        table = explain.item_table(run, items, scores)
        lists[run_id] = table["item_index"].tolist()
        column.subheader(plain(names[run_id]))
        column.dataframe(
            table[[c for c in ("rank", "title", "score") if c in table]],
            hide_index=True,
            width="stretch",
            column_config={"score": NUMBER(format="%.4f"), "title": st.column_config.TextColumn(data.items.kind.capitalize())},
        )
    common, jaccard = compare_ui.overlap(lists[run_a], lists[run_b])
    titles = load_run(run_a).item_titles()
    shared = [plain(titles[i]) for i in lists[run_a] if i in set(lists[run_b])]
    st.markdown(f"**Overlap:** {common} of 10 in both lists (Jaccard {jaccard:.2f})" + (f": {', '.join(shared)}." if shared else "."))
    if is_drug_data(data):
        st.caption("Drug lists describe patterns in reviews, not medical advice.")

# ---------------------------------------------------------------------------------- sampled vs full
st.header("Sampled vs full-ranking metrics")
table = compare_ui.sampled_vs_full(group)
if table.empty:
    st.info("Only leave-one-out runs are evaluated both ways (99 sampled negatives and the full ranking).")
else:
    st.dataframe(table, hide_index=True, width="stretch", column_config={c: NUMBER(format="%.4f") for c in table.columns if "@" in c})
    flips = compare_ui.reversals(table)
    if flips:
        st.warning("The two ways of measuring disagree on the order here: " + " ".join(plain(flip) for flip in flips))
    elif len(table) > 1:
        st.caption("Here both ways of measuring put the runs in the same order of HR@10.")
st.markdown(
    "Leave-one-out runs are tested twice on the same held-out item per user: ranked among **99 sampled items** the user "
    "never interacted with (`loo-sampled`, as in the NCF paper) and among **all items** (`loo-full`). Sampled metrics are "
    "much higher and can mislead: Krichene & Rendle (KDD 2020, *On Sampled Metrics for Item Recommendation*) show that they "
    "are not consistent with the full-ranking metrics they stand for — with few negatives they reward getting the item "
    "roughly near the top rather than at the top, and they can even **reverse the order of two models**. Trust the full "
    "ranking when the two disagree."
)

# ---------------------------------------------------------------------------------- which model to demo
beyond_ui.show_demo_choice(group)

# ---------------------------------------------------------------------------------- beyond accuracy
beyond_ui.show_beyond_accuracy(group, protocol)
beyond_ui.show_report_download([r.run_id for r in group if protocol in r.test], protocol)
