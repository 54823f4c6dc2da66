"""Tables and sentences of the Compare page, from saved runs' records (:class:`~recsys_core.runs.RunRecord`; no Streamlit here).

The leaderboard, the paired test's verdict and its sentence are the core's (:mod:`recsys_core.comparison`, which the
report calls too); this module names the runs as every page does and fits them to the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from recsys_core import comparison
from recsys_core.protocols import PROTOCOL_NAMES, SPLIT_KIND_LABELS

if TYPE_CHECKING:
    from recsys_core.runs import RunRecord


def split_key(record: RunRecord) -> str:
    """Runs with the same key were tested on the same split (same data is checked by the caller)."""
    from recsys_core.best import split_key as key

    return key(record)


def split_label(record: RunRecord, n_runs: int) -> str:
    kind = SPLIT_KIND_LABELS.get(record.split.get("kind"), record.split.get("kind", "?"))
    return f"{kind} split, seed {record.seed} ({n_runs} run{'s' if n_runs != 1 else ''})"


def group_by_split(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.test:
            groups.setdefault(split_key(record), []).append(record)
    return groups


def protocols_of(records: list[RunRecord]) -> list[str]:
    found = {p for r in records for p in r.test}
    return [p for p in PROTOCOL_NAMES if p in found]


def short_name(record: RunRecord) -> str:
    """The run's name on this page: the one every page uses (webapp.run_labels.run_label)."""
    from .run_labels import run_label

    return run_label(record)


def _metric(record: RunRecord, protocol: str, metric: str) -> float | None:
    test = record.test.get(protocol)
    return None if test is None else test.scores.get(metric)


def leaderboard(records: list[RunRecord], protocol: str) -> pd.DataFrame:
    """The core's leaderboard (:func:`recsys_core.comparison.leaderboard`) with the page's run names."""
    return comparison.leaderboard(records, protocol, short_name)


def history_condition(records: list[RunRecord]) -> str:
    """Which test-time history the runs had: refitted on train + validation (the default) or not."""
    refitted = sum(1 for r in records if r.refit.done)
    if refitted == len(records):
        return (
            "Every run here was refitted on train + validation after selection on validation (the default), "
            "so every model, embedding models included, knows each user's validation interaction at test time."
        )
    plain = len(records) - refitted
    return (
        f"{plain} of {len(records)} run(s) here were not refitted (--no-refit): GMF, MLP, NeuMF, BPR, AutoRec and popularity "
        "among them scored the test without the validation interaction that the other models read, "
        "so they were measured under a different condition. Retrain them with refit for a fair comparison."
    )


def meaning_note(records: list[RunRecord], protocol: str) -> str | None:
    """The "not meaningful" note (the core's rule) when any run's headline interval is too wide."""
    notes = [r.test[protocol].meaning_note() for r in records if protocol in r.test]
    notes = [n for n in notes if n]
    return notes[0] if notes else None


def paired_sentence(result: dict, name_a: str, name_b: str, level: float = comparison.LEVEL) -> tuple[str, str]:
    """The core's sentence and verdict on a paired comparison (:func:`recsys_core.comparison.paired_sentence`, as
    the report states it), its conclusion in bold."""
    return comparison.paired_sentence(result, name_a, name_b, level, strong=lambda conclusion: f"**{conclusion}**")


def sampled_vs_full(records: list[RunRecord], metric: str = "HR@10") -> pd.DataFrame:
    """Runs with both leave-one-out evaluations: the metric sampled (99 negatives) and on the full
    ranking, and each run's rank under both."""
    rows = []
    for record in records:
        if "loo-sampled" in record.test and "loo-full" in record.test:
            rows.append(
                {
                    "run": short_name(record),
                    f"{metric} sampled": _metric(record, "loo-sampled", metric),
                    f"{metric} full": _metric(record, "loo-full", metric),
                    "NDCG@10 sampled": _metric(record, "loo-sampled", "NDCG@10"),
                    "NDCG@10 full": _metric(record, "loo-full", "NDCG@10"),
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["rank sampled"] = table[f"{metric} sampled"].rank(ascending=False, method="min").astype(int)
    table["rank full"] = table[f"{metric} full"].rank(ascending=False, method="min").astype(int)
    return table.sort_values("rank full", kind="stable").reset_index(drop=True)


def reversals(table: pd.DataFrame, metric: str = "HR@10") -> list[str]:
    """Pairs of runs whose order under the sampled metric is the reverse of their order under the full one."""
    out = []
    rows = table.to_dict("records")
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            sampled = a[f"{metric} sampled"] - b[f"{metric} sampled"]
            full = a[f"{metric} full"] - b[f"{metric} full"]
            if sampled * full < 0:
                first, second = (a, b) if full > 0 else (b, a)
                out.append(f"{first['run']} beats {second['run']} on the full ranking but loses to it on the sampled metric.")
    return out


def overlap(a: list, b: list) -> tuple[int, float]:
    """Items in both lists and their Jaccard index."""
    common = set(a) & set(b)
    union = set(a) | set(b)
    return len(common), (len(common) / len(union) if union else 0.0)
