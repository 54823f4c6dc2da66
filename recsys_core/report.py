"""A report to hand to stakeholders: one self-contained HTML file about a set of saved runs.

The file opens offline, without a server: plotly's JavaScript is embedded once, inline, and every chart
is a plotly figure drawn by it; tables are plain HTML. Sections:

1. the data set and its statistics;
2. the protocol in plain words (:meth:`recsys_core.protocols.Protocol.describe`, with the numbers of the split the
   runs recorded; candidates, seed, that the test split was used once);
3. the leaderboard with 95% bootstrap intervals, and a paired test of the best run against each other, in the
   Compare page's words and by its verdict (both from :mod:`recsys_core.comparison`); which model to demo;
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
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import DataError, RecsysError
from .models import model_title
from .run_record import short_run_name
from .safe_text import plotly_text

if TYPE_CHECKING:  # runs imports the models (torch); the report loads them only when it builds
    from .runs import RunRecord

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


def _paired_sentences(runs: list[Any], protocol: str) -> list[str]:
    """The best run against every other, each pair with the Compare page's sentence and verdict
    (:func:`recsys_core.comparison.paired_with_best`, :func:`recsys_core.comparison.paired_sentence`)."""
    from .comparison import paired_sentence, paired_with_best
    from .protocols import get_protocol

    judge = get_protocol(protocol).judged_on
    out = []
    for best, other, result in paired_with_best(runs, protocol):
        name_a, name_b = best.info.model.name, other.info.model.name
        said = result.message if isinstance(result, RecsysError) else paired_sentence(result, name_a, name_b)[0]
        out.append(f"{name_a} vs {name_b} ({judge}): {said}")
    return out


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
            block.append(f"<h4>{html.escape(short_run_name(run.info))}</h4>" + _table(table))
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
        if coords is None:  # the Embeddings page's preview: a randomized SVD, quick even for EASE's wide item rows
            coords = embedding_map.pca_map(vectors)
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
        title = plotly_text(f"Item map of {model_title(run.info.model.name)}: {method}")
        figure.update_layout(height=520, margin={"l": 10, "r": 10, "t": 40, "b": 10}, title=title)
        figure.update_xaxes(showticklabels=False)
        figure.update_yaxes(showticklabels=False)
        caption = f"Each point is an {html.escape(data.items.kind)}, placed by the {html.escape(model_title(run.info.model.name))} model's item vectors ({html.escape(method)}); colour is popularity. Items close together are ones the model treats alike."
        return caption, figure
    return "None of these runs has item embeddings, so there is no map.", None


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left}
th{background:#f4f6f8}.note{color:#555;font-size:.9em}.user{margin-bottom:1.5em}
"""


class _Figures:
    """The report's charts in page order: each section puts a placeholder where its chart goes, and
    :meth:`fill` puts the charts' HTML in at the end (a chart's HTML is large; it is written once)."""

    def __init__(self) -> None:
        self.html: list[str] = []

    def add(self, figure: Any, element_id: str) -> str:
        self.html.append(_figure(figure, element_id))
        return f"<div class='chart'>@@FIGURE{len(self.html) - 1}@@</div>"

    def fill(self, body: str) -> str:
        for i, figure_html in enumerate(self.html):
            body = body.replace(f"@@FIGURE{i}@@", figure_html)
        return body


def _load(run_ids: list[str]) -> tuple[list[Any], Any]:
    """The runs (each once, in the order given) and their data, refused when they are not on the same, unchanged data
    and split."""
    from .runs import load_run

    if not run_ids:
        raise RecsysError("a report needs at least one run", "Pass run ids with --runs (see `python -m recsys_core runs`).")
    runs = [load_run(run_id) for run_id in dict.fromkeys(run_ids)]
    records = [run.info for run in runs]
    _same_data(records)
    data = records[0].dataset.data_source().load()
    if data.content_hash() != records[0].dataset.content_hash:
        raise DataError(f"the data of {data.name!r} has changed since these runs were trained", "Train the runs again on the current data.")
    return runs, data


def _data_section(data: Any) -> str:
    """1. The data set and its statistics."""
    stats = data.stats()
    users, items = stats["interactions_per_user"], stats["interactions_per_item"]
    facts = pd.DataFrame(
        [
            {"": f"{data.users.kind}s", "value": f"{stats['users']:,}"},
            {"": f"{data.items.kind}s", "value": f"{stats['items']:,}"},
            {"": "interactions", "value": f"{stats['interactions']:,}"},
            {"": "density", "value": f"{stats['density']:.4%}"},
            {"": f"interactions per {data.users.kind} (median, mean)", "value": f"{users['q50']:g}, {users['mean']:.1f}"},
            {"": f"interactions per {data.items.kind} (median, mean)", "value": f"{items['q50']:g}, {items['mean']:.1f}"},
            {
                "": "ratings / timestamps",
                "value": f"{'yes' if stats['has_rating'] else 'no'} / {'yes' if stats['has_timestamp'] else 'no'}",
            },
        ]
    )
    return f"<h2>1. Data: {html.escape(data.name)}</h2>" + _table(facts)


def _protocol_section(records: list[RunRecord], protocol: str) -> str:
    """2. How the models were tested: the protocol's own words (:meth:`~recsys_core.protocols.Protocol.describe`, with
    the numbers of the split the runs recorded), the rules every run followed, and which runs were refitted."""
    from .protocols import get_protocol

    split = records[0].split
    refits = {r.model.name: r.refit.done for r in records}
    refit_text = ", ".join(f"{m}: {'refitted on train + validation' if done else 'trained on train only'}" for m, done in refits.items())
    return (
        "<h2>2. How the models were tested</h2>"
        f"<p>{html.escape(get_protocol(protocol).describe(split))}</p><p>{html.escape(COMMON_WORDS)}</p>"
        f"<p class='note'>Split: {html.escape(str(split.get('kind', '?')))}, seed {records[0].seed}. {html.escape(refit_text)}.</p>"
    )


def _leaderboard_section(runs: list[Any], usable: list[RunRecord], protocol: str, figures: _Figures) -> str:
    """3. The leaderboard (:func:`recsys_core.comparison.leaderboard`), the best run by the one rule, its chart and the
    paired test of the best run against each other."""
    from .best import BEST_RULE, best_line
    from .comparison import leaderboard, leaderboard_figure
    from .protocols import get_protocol

    board = leaderboard(usable, protocol, short_run_name)
    headline = get_protocol(protocol).headline
    paired = _paired_sentences([run for run in runs if protocol in run.info.test], protocol)
    best = best_line(usable, short_run_name)
    by_id = {r.run_id: r for r in usable}
    chart = (
        figures.add(leaderboard_figure(board["run"], board[headline], [by_id[i] for i in board["run_id"]], protocol), "leaderboard")
        if headline in board.columns and len(board)
        else ""
    )
    return (
        f"<h2>3. Leaderboard ({html.escape(protocol)}, test split)</h2>"
        + (f"<p><strong>{html.escape(best)}</strong> {html.escape(BEST_RULE)}</p>" if best else "")
        + _table(board.drop(columns=["model", "run_id", "created"], errors="ignore"))
        + chart
        + (
            "<h3>Is the best run really better?</h3><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in paired) + "</ul>"
            if paired
            else ""
        )
    )


def _demo_part(runs: list[Any], usable: list[RunRecord], protocol: str) -> str:
    """Which model to demo: the same table and sentence as the Compare page (:mod:`recsys_core.demo`)."""
    from .demo import demo_choice, demo_display, demo_table

    demo = demo_table([run for run in runs if protocol in run.info.test], short_run_name)
    if demo.empty:
        return ""
    choice = demo_choice(demo, usable)
    return (
        "<h3>Which model should I demo?</h3><p class='note'>Accuracy as the best-run rule judges it, coverage and novelty "
        "of the top 10s, the fit time and one user's top 10 timed when this report was made.</p>"
        + _table(demo_display(demo))
        + (f"<p><strong>{html.escape(choice[1])}</strong></p>" if choice else "")
    )


BEYOND_NOTE = (
    "From each test user's top 10 over the whole catalogue, known items excluded. "
    "Coverage: share of the catalogue recommended to anyone. Gini: how unequally items are recommended (0 = evenly). "
    "Novelty: mean log2(users / users who have the item) over the list (Zhou et al. 2010; bits). ILD: mean distance between the items of a list "
    "(genres, else item vectors). ARP: mean interactions of a recommended item. LongTail: share of recommended items outside the "
    "most popular items that hold 20% of interactions."
)


def _beyond_section(usable: list[RunRecord], protocol: str, figures: _Figures) -> str:
    """4. Beyond accuracy, from run.json as written (:mod:`recsys_core.beyond`)."""
    from .beyond import TRADEOFF_AXES, activity_table, beyond_metrics_table, tradeoff_figure, tradeoff_table
    from .protocols import get_protocol

    tradeoff = tradeoff_table(usable, protocol)
    if tradeoff.empty:
        return "<h2>4. Beyond accuracy</h2><p>These runs have no beyond-accuracy metrics (trained before they existed).</p>"
    headline = get_protocol(protocol).headline
    charts = [
        figures.add(tradeoff_figure(tradeoff, headline, axis), f"tradeoff-{axis.split('@')[0].lower()}")
        for axis in TRADEOFF_AXES
        if axis in tradeoff.columns
    ]
    activity = activity_table(usable)
    return (
        f"<h2>4. Beyond accuracy</h2><p class='note'>{BEYOND_NOTE}</p>"
        + "".join(charts)
        + _table(beyond_metrics_table(usable))
        + (
            "<h3>Accuracy by user activity</h3><p class='note'>Test users in five equal groups by history length (Q1 least active).</p>"
            + _table(activity)
            if not activity.empty
            else ""
        )
    )


def _map_section(runs: list[Any], data: Any, figures: _Figures) -> str:
    """6. The embedding map of the first run with item embeddings."""
    caption, figure = _embedding_map(runs, data)
    if figure is None:
        return f"<h2>6. Embedding map</h2><p>{html.escape(caption)}</p>"
    return f"<h2>6. Embedding map</h2><p class='note'>{caption}</p>" + figures.add(figure, "embedding-map")


def _page(title: str, runs: list[Any], body: str) -> str:
    """The whole HTML file: plotly's JavaScript inline, the title, when and from which runs it was made, the body."""
    import plotly.offline

    created = datetime.now().isoformat(timespec="seconds")
    run_list = ", ".join(html.escape(run.run_id) for run in runs)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='note'>Made {created} by Recsys Explorer from runs {run_list}.</p>"
        f"{body}</body></html>"
    )


def build_report(run_ids: list[str], n_users: int = 3, seed: int = 0, protocol: str | None = None) -> str:
    """The report of ``run_ids`` as one HTML string (plotly JS inline; a few MB). ``protocol`` chooses
    which of the runs' test results to show (default: the first run's own protocol)."""
    runs, data = _load(run_ids)
    records = [run.info for run in runs]
    protocol = protocol or records[0].protocol
    # Runs trained on other protocols of the same split still have this protocol's results when it is a companion.
    usable = [r for r in records if protocol in r.test]
    figures = _Figures()
    sections = [
        _data_section(data),
        _protocol_section(records, protocol),
        _leaderboard_section(runs, usable, protocol, figures) + _demo_part(runs, usable, protocol),
        _beyond_section(usable, protocol, figures),
        f"<h2>5. Sample {html.escape(data.users.kind)}s and their top 10</h2>" + _sample_users(data, runs, n_users, seed),
        _map_section(runs, data, figures),
    ]
    return _page(f"Recsys Explorer report: {data.name}, {len(runs)} run(s)", runs, figures.fill("".join(sections)))


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
