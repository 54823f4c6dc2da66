"""Which model to demo: the runs on one split side by side on what a live demo needs, and a choice in plain words.

A demo needs a model that is accurate (the full-ranking score the best-run rule judges by, :mod:`recsys_core.best`),
answers at once (the measured time of one user's top 10) and shows more than the blockbusters (catalogue
coverage and novelty of the top 10s, :mod:`recsys_core.beyond`). :func:`demo_table` puts these side by side with
their 95% intervals and each run's fit time; :func:`demo_choice` picks one and says why:

1. the runs whose accuracy is not shown to be worse than the best run's (their 95% intervals overlap) and which
   answer within :data:`MAX_DEMO_MS` are the candidates (without any such run: the best run);
2. among them the one whose top 10s cover the most of the catalogue (novelty breaks a tie), since a demo that
   shows every visitor the same popular items says little; the most accurate when coverage was not measured.

The Compare page and the HTML report print the same table and the same sentence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .best import best_run, comparable, judging_score
from .beyond import BeyondAccuracy
from .protocols import lower_is_better

#: One user's top 10 slower than this (milliseconds) is felt in a live demo.
MAX_DEMO_MS = 200.0
#: Users timed per run for the recommendation time (the median is kept).
TIMED_USERS = 15


def recommendation_ms(run: Any, n_users: int = TIMED_USERS, k: int = 10, seed: int = 0) -> float:
    """Milliseconds for one user's top ``k`` as a page asks for it (``Run.recommend``: scores, known items left out,
    titles), the median over ``n_users`` seeded users after one untimed warm-up call."""
    ids = run.users.ids
    chosen = np.random.default_rng(seed).choice(len(ids), size=min(n_users, len(ids)), replace=False)
    run.recommend(ids[chosen[0]], k=k)  # warm-up: the first call builds caches
    times = []
    for index in chosen:
        started = time.perf_counter()
        run.recommend(ids[index], k=k)
        times.append((time.perf_counter() - started) * 1000.0)
    return float(np.median(times))


def demo_table(runs: Sequence[Any], name: Callable[[Any], str]) -> pd.DataFrame:
    """One row per loaded run (``runs``: :class:`~recsys_core.runs.Run`): its accuracy by the best-run rule with the
    95% interval, coverage and novelty of its top 10s with theirs, fit seconds and the measured milliseconds per
    user's top 10. ``name(record)`` names a run."""
    rows = []
    for run in runs:
        record = run.info
        score = judging_score(record)
        if score is None:
            continue
        test = record.test.get(score.protocol)
        low, high = (test.scores.interval(score.metric) if test is not None else None) or (score.value, score.value)
        row = {
            "run": name(record),
            "run_id": record.run_id,
            "accuracy": score.label(),
            "accuracy value": score.value,
            "accuracy low": float(low),
            "accuracy high": float(high),
        }
        beyond = BeyondAccuracy.saved(record)
        for metric in ("Coverage@10", "Novelty@10"):
            value = beyond.metrics.get(metric) if beyond is not None else None
            row[metric] = value
            b_low, b_high = (beyond.intervals.get(metric) if beyond is not None else None) or (value, value)
            row[f"{metric} low"], row[f"{metric} high"] = b_low, b_high
        row["fit seconds"] = record.history.fit_seconds
        row["ms per user"] = recommendation_ms(run)
        rows.append(row)
    return pd.DataFrame(rows)


def demo_choice(table: pd.DataFrame, records: Sequence[Any]) -> tuple[str, str] | None:
    """The run to demo (its id) and why, in plain words; None without a run to choose from."""
    if table.empty:
        return None
    by_id = {r.run_id: r for r in records}
    best = best_run([by_id[i] for i in table["run_id"] if i in by_id])
    if best is None:
        return None
    rows = table.set_index("run_id")
    top = rows.loc[best.run_id]
    if lower_is_better(judging_score(best).metric):
        as_good = rows["accuracy low"] <= top["accuracy high"]
    else:
        as_good = rows["accuracy high"] >= top["accuracy low"]
    # Intervals are compared only where the rule may rank the two runs (the same split, judged on the same metric).
    as_good &= np.array([i in by_id and comparable(by_id[i], best) for i in rows.index], dtype=bool)
    fast = rows["ms per user"] <= MAX_DEMO_MS
    candidates = rows[as_good & fast]
    if candidates.empty:
        candidates = rows.loc[[best.run_id]]
    if candidates["Coverage@10"].notna().any():
        chosen_id = candidates.sort_values(["Coverage@10", "Novelty@10"], ascending=False, na_position="last").index[0]
    else:
        chosen_id = best.run_id
    chosen = rows.loc[chosen_id]

    def accuracy(row) -> str:
        return f"{row['accuracy']} {row['accuracy value']:.3f} (95% {row['accuracy low']:.3f}–{row['accuracy high']:.3f})"

    def breadth(row) -> str:
        if pd.isna(row["Coverage@10"]):
            return "its catalogue coverage was not measured"
        novelty = f" and a novelty of {row['Novelty@10']:.1f} bits" if pd.notna(row["Novelty@10"]) else ""
        return f"its top 10s cover {row['Coverage@10']:.0%} of the catalogue{novelty}"

    fit = chosen["fit seconds"]
    timing = f"it answers in {chosen['ms per user']:.0f} ms per user and took {fit:.{1 if fit < 10 else 0}f} s to fit"
    if chosen_id == best.run_id:
        others = len(candidates) - 1
        why = f"Demo {chosen['run']}: it is the most accurate ({accuracy(chosen)}), {breadth(chosen)}, and {timing}." + (
            " No run as accurate covers more of the catalogue." if others else ""
        )
    else:
        why = (
            f"Demo {chosen['run']}: its accuracy ({accuracy(chosen)}) is not shown to be worse than the most accurate run, "
            f"{top['run']} ({accuracy(top)}): their 95% intervals overlap. It shows visitors more of the catalogue: "
            f"{breadth(chosen)}, against {top['Coverage@10']:.0%} for {top['run']}; {timing}."
        )
    slow = rows[~fast]
    if len(slow):
        why += f" Too slow for a live demo (over {MAX_DEMO_MS:.0f} ms per user): " + ", ".join(slow["run"]) + "."
    return str(chosen_id), why


def demo_display(table: pd.DataFrame) -> pd.DataFrame:
    """The demo table for reading: each measure with its 95% interval in one cell."""

    def with_interval(metric: str, pattern: str) -> list[str]:
        return [
            "—" if pd.isna(v) else f"{pattern.format(v)} ({pattern.format(lo)}–{pattern.format(hi)})"
            for v, lo, hi in zip(
                table[f"{metric}" if metric != "accuracy" else "accuracy value"], table[f"{metric} low"], table[f"{metric} high"]
            )
        ]

    return pd.DataFrame(
        {
            "run": table["run"],
            "accuracy (95% CI)": [f"{a}: {text}" for a, text in zip(table["accuracy"], with_interval("accuracy", "{:.3f}"))],
            "coverage of the catalogue (95% CI)": with_interval("Coverage@10", "{:.0%}"),
            "novelty, bits (95% CI)": with_interval("Novelty@10", "{:.2f}"),
            "fit seconds": table["fit seconds"].round(1),
            "ms per user's top 10": table["ms per user"].round(1),
        }
    )
