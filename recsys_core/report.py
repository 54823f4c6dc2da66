"""A report to hand to stakeholders: one self-contained HTML file about a set of saved runs.

The file opens offline, without a server: plotly's JavaScript is embedded once, inline, and every chart
is a plotly figure drawn by it; tables are plain HTML. Sections:

1. the data set and its statistics;
2. the protocol in plain words (split, candidates, seed, that the test split was used once);
3. the leaderboard with 95% bootstrap intervals, and a paired test of the best run against each other;
4. beyond accuracy: accuracy against catalogue coverage and novelty, the beyond-accuracy metrics and
   accuracy by user activity (from run.json, see :mod:`recsys_core.beyond`);
5. sample users: their history and each model's top-10 with the reasons ("because you liked …",
   :func:`recsys_core.explain.explain`);
6. the embedding map of the first run with item embeddings: the cached UMAP map when there is one,
   else a PCA of the item vectors (UMAP is not fitted for a report: it takes minutes on first use).

All runs must be on the same data (same content hash) and the same split, so their numbers compare.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import DataError, RecsysError
from .safe_text import plotly_text

if TYPE_CHECKING:  # runs imports the models (torch); the report loads them only when it builds
    from .runs import RunRecord

PROTOCOL_WORDS = {
    "loo-sampled": (
        "Leave-one-out (He et al. 2017): each user's latest interaction is hidden for the test and the one before it for "
        "validation. At test time the hidden item is ranked among 99 items the user never interacted with, sampled at random "
        "with a fixed seed, so every model faces the same candidates. HR@10 is the share of users whose hidden item lands in the "
        "top 10; NDCG@10 also rewards placing it higher."
    ),
    "loo-full": (
        "Leave-one-out, full ranking: each user's latest interaction is hidden and ranked among every item the user has not "
        "interacted with. Stricter than sampling 99 negatives, and not biased by the sampling (Krichene & Rendle 2020)."
    ),
    "heldout-users": (
        "Held-out users (Liang et al. 2018): 10% of users are kept for validation and 10% for test. The model reads 80% of each "
        "held-out user's items and must find the other 20%. Recall@20 is the share of those found in the top 20."
    ),
    "ratings": "A random 90/10 split of the explicit ratings; RMSE and MAE measure how far predicted ratings are from the real ones.",
}
COMMON_WORDS = (
    "Settings and the number of training epochs were chosen on the validation part only; the test part was used once, after "
    "training. Ties in scores are broken at random with a fixed seed. Every interval is a 95% bootstrap interval over test users."
)


def _same_data(records: list[RunRecord]) -> None:
    hashes = {r.dataset.content_hash for r in records}
    if len(hashes) > 1:
        raise DataError(
            "the runs of a report must be trained on the same data",
            "Choose runs of one data set (see `python -m recsys_core runs`).",
        )
    splits = {str(sorted(r.split.items())) + str(r.seed) for r in records}
    if len(splits) > 1:
        raise DataError(
            "the runs of a report must share one split (same protocol family and seed)", "Choose runs tested on the same split."
        )


def _table(frame: pd.DataFrame, float_format: str = "{:.4f}") -> str:
    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "—" if np.isnan(value) else float_format.format(value)
        if isinstance(value, (list, tuple)):
            return html.escape(", ".join(str(v) for v in value))
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _figure(figure: Any, element_id: str) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=element_id, config={"displaylogo": False, "responsive": True})


def _run_name(record: RunRecord) -> str:
    """How the report names a run: the model and the end of the run id."""
    return f"{record.model.name} ({record.run_id[-6:]})"


def _leaderboard(records: list[RunRecord], protocol: str) -> pd.DataFrame:
    from .evaluation import HEADLINE, LOWER_IS_BETTER
    from .protocols import get_protocol

    metrics = get_protocol(protocol).metrics
    rows = []
    for record in records:
        test = record.test.get(protocol)
        row = {"run": _run_name(record), "model": record.model.name}
        for metric in metrics:
            if test is not None and metric in test.scores.values:
                lo, hi = test.scores.interval(metric) or (np.nan, np.nan)
                row[metric] = test.scores.values[metric]
                row[f"{metric} 95% CI"] = f"{lo:.3f} – {hi:.3f}"
        row["fit seconds"] = record.history.fit_seconds
        rows.append(row)
    table = pd.DataFrame(rows)
    headline = HEADLINE[protocol]
    if headline in table.columns:
        table = table.sort_values(headline, ascending=headline in LOWER_IS_BETTER, kind="stable").reset_index(drop=True)
    return table


def _paired_sentences(runs: list[Any], protocol: str) -> list[str]:
    """The best run by the one rule (:data:`~recsys_core.best.BEST_RULE`) against every other, with the paired test
    on the same users, on the protocol the rule judges by (the full ranking for leave-one-out runs)."""
    from .best import JUDGED_ON
    from .evaluation import HEADLINE, LOWER_IS_BETTER, paired_comparison, paired_difference_is_significant
    from .protocols import get_protocol

    protocol = JUDGED_ON.get(protocol, protocol)
    headline = HEADLINE[protocol]

    metric = "squared_error" if get_protocol(protocol).needs_ratings else headline  # rating protocols pair per-rating errors
    scored = [(run, run.info.test[protocol].scores.get(headline) if protocol in run.info.test else None) for run in runs]
    scored = [(run, value) for run, value in scored if value is not None and run.evaluation(protocol) is not None]
    if len(scored) < 2:
        return []
    scored.sort(key=lambda pair: pair[1], reverse=headline not in LOWER_IS_BETTER)
    best = scored[0][0]
    out = []
    for other, _ in scored[1:]:
        try:
            result = paired_comparison(best.evaluation(protocol), other.evaluation(protocol), metric)
        except RecsysError as error:
            out.append(f"{best.info.model.name} vs {other.info.model.name}: {error.message}")
            continue
        lo, hi = result["interval"]
        significant = paired_difference_is_significant(result)
        verdict = "a significant difference" if significant else "not a significant difference (neither is shown to be better)"
        if result["test"] == "exact McNemar":
            tests = f"exact McNemar p = {result['p_value']:.3g} over {result['a_better'] + result['b_better']:,} users where one run hits"
        else:
            tests = f"paired t-test p = {result['p_value_t']:.3g}, Wilcoxon p = {result['p_value_wilcoxon']:.3g}"
        out.append(
            f"{best.info.model.name} vs {other.info.model.name} on {result['n_users']:,} shared test users ({protocol}): mean {metric} "
            f"{result['mean_a']:.4f} vs {result['mean_b']:.4f}, difference {result['difference']:+.4f} "
            f"(95% interval {lo:+.4f} to {hi:+.4f}; {tests}): {verdict}."
        )
    return out


def leaderboard_figure(labels: Sequence[str], values: Sequence[float], records: Sequence[RunRecord], protocol: str):
    """Bars of each run's headline metric with its 95% interval (the Compare page and the report draw this)."""
    import plotly.graph_objects as go

    from .evaluation import HEADLINE

    headline = HEADLINE[protocol]
    values = list(values)
    intervals = [record.test[protocol].scores.interval(headline) or (v, v) for record, v in zip(records, values)]
    figure = go.Figure(
        go.Bar(
            x=plotly_text(list(labels)),
            y=values,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [hi - v for (lo, hi), v in zip(intervals, values)],
                "arrayminus": [v - lo for (lo, hi), v in zip(intervals, values)],
            },
            marker_color="#4C78A8",
        )
    )
    # Room for the axis numbers and the runs' names: with a 10 px margin the numbers were cut (".5") and so were the
    # names under the bars; automargin grows the margins to what the labels need.
    figure.update_layout(height=380, margin={"l": 60, "r": 20, "t": 40, "b": 20}, title=f"{headline} by run (95% CI)", yaxis_title=headline)
    figure.update_yaxes(automargin=True, tickformat=".2f", rangemode="tozero")
    figure.update_xaxes(automargin=True, tickangle=-20 if max((len(str(label)) for label in labels), default=0) > 16 else 0)
    return figure


def _sample_users(data: Any, runs: list[Any], n_users: int, seed: int) -> str:
    """Sample users: their latest history and each model's top-10 with the reason for each item."""
    from . import explain as explanation

    index = explanation.HistoryIndex.build(data)
    counts = data.user_counts()
    candidates = np.flatnonzero(counts >= 5)
    if not len(candidates):
        return "<p>No user has enough history to show.</p>"
    picked = np.sort(np.random.default_rng(seed).choice(candidates, size=min(n_users, len(candidates)), replace=False))
    titles = data.item_titles()
    parts = []
    for user in picked:
        history = explanation.user_history(data, int(user), index)
        shown = history[[c for c in ("title", "genres", "rating", "date") if c in history.columns]].head(10)
        block = [f"<h3>{html.escape(data.users.kind)} {html.escape(str(data.users.ids[user]))} ({len(history)} interactions)</h3>"]
        block.append(f"<p>Latest history{' (newest first)' if data.timestamp is not None else ''}:</p>" + _table(shown, "{:g}"))
        items_seen, ratings = explanation.user_item_ratings(data, int(user), index)
        for run in runs:
            if int(user) >= run.model.n_users:
                continue
            items, scores, _ = explanation.rank_items(run.model, int(user), k=10, seen=run.seen)
            reasons = explanation.explain(run.model, items_seen, items, titles, ratings=ratings)
            table = pd.DataFrame(
                {"rank": np.arange(1, len(items) + 1), "title": titles[items], "score": scores, "why": reasons["because"].to_numpy()}
            )
            block.append(f"<h4>{html.escape(_run_name(run.info))}</h4>" + _table(table))
        parts.append("<section class='user'>" + "".join(block) + "</section>")
    return "".join(parts)


def _embedding_map(runs: list[Any], data: Any) -> tuple[str, Any | None]:
    """The first run with item embeddings: its cached UMAP map, else a PCA of its unit item vectors."""
    import plotly.graph_objects as go

    from . import embedding_map

    for run in runs:
        vectors = embedding_map.embeddings(run.model, "items")
        if vectors is None or len(vectors) < 4:
            continue
        coords = embedding_map.load_map(run.path, "items", n_points=len(vectors))
        method = "UMAP (cached with the run)"
        if coords is None:
            unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            centred = unit - unit.mean(axis=0)
            _, _, components = np.linalg.svd(centred, full_matrices=False)
            coords = centred @ components[:2].T
            method = "PCA of the unit-length item vectors (no UMAP map is cached for this run)"
        popularity = data.item_counts()
        titles = run.item_titles()
        figure = go.Figure(
            go.Scatter(
                x=coords[:, 0],
                y=coords[:, 1],
                mode="markers",
                text=plotly_text(titles),
                marker={"size": 5, "color": np.log1p(popularity), "colorscale": "Viridis", "colorbar": {"title": "log(1 + interactions)"}},
                hovertemplate="%{text}<extra></extra>",
            )
        )
        title = plotly_text(f"Item map of {run.info.model.name}: {method}")
        figure.update_layout(height=520, margin={"l": 10, "r": 10, "t": 40, "b": 10}, title=title)
        figure.update_xaxes(showticklabels=False)
        figure.update_yaxes(showticklabels=False)
        caption = f"Each point is an {html.escape(data.items.kind)}, placed by the {html.escape(run.info.model.name)} model's item vectors ({html.escape(method)}); colour is popularity. Items close together are ones the model treats alike."
        return caption, figure
    return "None of these runs has item embeddings, so there is no map.", None


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left}
th{background:#f4f6f8}.note{color:#555;font-size:.9em}.user{margin-bottom:1.5em}
"""


def build_report(run_ids: list[str], n_users: int = 3, seed: int = 0, protocol: str | None = None) -> str:
    """The report of ``run_ids`` as one HTML string (plotly JS inline; a few MB). ``protocol`` chooses
    which of the runs' test results to show (default: the first run's own protocol)."""
    import plotly.offline

    from .best import BEST_RULE, best_line
    from .beyond import TRADEOFF_AXES, activity_table, beyond_metrics_table, tradeoff_figure, tradeoff_table
    from .evaluation import HEADLINE
    from .runs import load_run

    if not run_ids:
        raise RecsysError("a report needs at least one run", "Pass run ids with --runs (see `python -m recsys_core runs`).")
    runs = [load_run(run_id) for run_id in dict.fromkeys(run_ids)]
    records = [run.info for run in runs]
    _same_data(records)
    data = records[0].dataset.data_source().load()
    if data.content_hash() != records[0].dataset.content_hash:
        raise DataError(f"the data of {data.name!r} has changed since these runs were trained", "Train the runs again on the current data.")
    protocol = protocol or records[0].protocol
    # Runs trained on other protocols of the same split still have this protocol's results when it is a companion.
    usable = [r for r in records if protocol in r.test]
    by_run = {_run_name(r): r for r in usable}

    figures: list[str] = []
    sections: list[str] = []

    stats = data.stats()
    facts = pd.DataFrame(
        [
            {"": f"{data.users.kind}s", "value": f"{stats['users']:,}"},
            {"": f"{data.items.kind}s", "value": f"{stats['items']:,}"},
            {"": "interactions", "value": f"{stats['interactions']:,}"},
            {"": "density", "value": f"{stats['density']:.4%}"},
            {
                "": f"interactions per {data.users.kind} (median, mean)",
                "value": f"{stats['interactions_per_user']['q50']:g}, {stats['interactions_per_user']['mean']:.1f}",
            },
            {
                "": f"interactions per {data.items.kind} (median, mean)",
                "value": f"{stats['interactions_per_item']['q50']:g}, {stats['interactions_per_item']['mean']:.1f}",
            },
            {
                "": "ratings / timestamps",
                "value": f"{'yes' if stats['has_rating'] else 'no'} / {'yes' if stats['has_timestamp'] else 'no'}",
            },
        ]
    )
    sections.append(f"<h2>1. Data: {html.escape(data.name)}</h2>" + _table(facts))

    split = records[0].split
    refits = {r.model.name: r.refit.done for r in records}
    refit_text = ", ".join(f"{m}: {'refitted on train + validation' if done else 'trained on train only'}" for m, done in refits.items())
    sections.append(
        "<h2>2. How the models were tested</h2>"
        f"<p>{html.escape(PROTOCOL_WORDS.get(protocol, protocol))}</p><p>{html.escape(COMMON_WORDS)}</p>"
        f"<p class='note'>Split: {html.escape(str(split.get('kind', '?')))}, seed {records[0].seed}. {html.escape(refit_text)}.</p>"
    )

    board = _leaderboard(usable, protocol)
    paired = _paired_sentences([run for run in runs if protocol in run.info.test], protocol)
    best = best_line(usable, _run_name)
    sections.append(
        f"<h2>3. Leaderboard ({html.escape(protocol)}, test split)</h2>"
        + (f"<p><strong>{html.escape(best)}</strong> {html.escape(BEST_RULE)}</p>" if best else "")
        + _table(board.drop(columns=["model"]))
        + "<div class='chart'>@@FIGURE0@@</div>"
        + (
            "<h3>Is the best run really better?</h3><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in paired) + "</ul>"
            if paired
            else ""
        )
    )
    if HEADLINE[protocol] in board.columns and len(board):
        figures.append(
            _figure(
                leaderboard_figure(board["run"], board[HEADLINE[protocol]], [by_run[run] for run in board["run"]], protocol), "leaderboard"
            )
        )
    else:
        sections[-1] = sections[-1].replace("<div class='chart'>@@FIGURE0@@</div>", "")

    # Which model to demo: the same table and sentence as the Compare page.
    from .demo import demo_choice, demo_display, demo_table

    demo = demo_table([run for run in runs if protocol in run.info.test], _run_name)
    choice = demo_choice(demo, usable)
    if not demo.empty:
        sections[-1] += (
            "<h3>Which model should I demo?</h3><p class='note'>Accuracy as the best-run rule judges it, coverage and novelty "
            "of the top 10s, the fit time and one user's top 10 timed when this report was made.</p>"
            + _table(demo_display(demo))
            + (f"<p><strong>{html.escape(choice[1])}</strong></p>" if choice else "")
        )

    tradeoff = tradeoff_table(usable, protocol)
    if tradeoff.empty:
        sections.append("<h2>4. Beyond accuracy</h2><p>These runs have no beyond-accuracy metrics (trained before they existed).</p>")
    else:
        charts = []
        for axis in TRADEOFF_AXES:
            if axis in tradeoff.columns:
                charts.append(f"<div class='chart'>@@FIGURE{len(figures)}@@</div>")
                figures.append(_figure(tradeoff_figure(tradeoff, HEADLINE[protocol], axis), f"tradeoff-{axis.split('@')[0].lower()}"))
        activity = activity_table(usable)
        sections.append(
            "<h2>4. Beyond accuracy</h2><p class='note'>From each test user's top 10 over the whole catalogue, known items excluded. "
            "Coverage: share of the catalogue recommended to anyone. Gini: how unequally items are recommended (0 = evenly). "
            "Novelty: mean log2(users / users who have the item) over the list (Zhou et al. 2010; bits). ILD: mean distance between the items of a list "
            "(genres, else item vectors). ARP: mean interactions of a recommended item. LongTail: share of recommended items outside the "
            "most popular items that hold 20% of interactions.</p>"
            + "".join(charts)
            + _table(beyond_metrics_table(usable))
            + (
                "<h3>Accuracy by user activity</h3><p class='note'>Test users in five equal groups by history length (Q1 least active).</p>"
                + _table(activity)
                if not activity.empty
                else ""
            )
        )

    sections.append(f"<h2>5. Sample {html.escape(data.users.kind)}s and their top 10</h2>" + _sample_users(data, runs, n_users, seed))

    caption, figure = _embedding_map(runs, data)
    if figure is not None:
        sections.append(f"<h2>6. Embedding map</h2><p class='note'>{caption}</p><div class='chart'>@@FIGURE{len(figures)}@@</div>")
        figures.append(_figure(figure, "embedding-map"))
    else:
        sections.append(f"<h2>6. Embedding map</h2><p>{html.escape(caption)}</p>")

    body = "".join(sections)
    for i, figure_html in enumerate(figures):
        body = body.replace(f"@@FIGURE{i}@@", figure_html)
    title = f"Recsys Explorer report: {data.name}, {len(runs)} run(s)"
    created = datetime.now().isoformat(timespec="seconds")
    run_list = ", ".join(html.escape(run.run_id) for run in runs)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='note'>Made {created} by Recsys Explorer from runs {run_list}.</p>"
        f"{body}</body></html>"
    )


def write_report(run_ids: list[str], out: str | Path, n_users: int = 3, seed: int = 0, protocol: str | None = None) -> Path:
    """Write the report to ``out`` (through a temporary file, so a failure leaves no half file)."""
    import os
    import tempfile

    text = build_report(run_ids, n_users=n_users, seed=seed, protocol=protocol)
    path = Path(out).expanduser()
    if path.parent and not path.parent.exists():
        raise RecsysError(f"the folder {path.parent} does not exist", "Choose an existing folder for --out.")
    handle, temporary = tempfile.mkstemp(prefix=".report.", suffix=".html", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
