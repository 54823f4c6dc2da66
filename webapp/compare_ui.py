"""Tables and sentences of the Compare page, from saved runs' records (:class:`~recsys_core.runs.RunRecord`; no Streamlit here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from recsys_core.evaluation import HEADLINE, LOWER_IS_BETTER, paired_difference_is_significant

if TYPE_CHECKING:
    from recsys_core.runs import RunRecord

# The metrics each protocol's leaderboard shows, in order (those a record has).
LEADERBOARD_METRICS = {
    "loo-sampled": ("HR@10", "NDCG@10", "MRR", "Recall@10", "Precision@10", "MAP@10"),
    "loo-full": ("HR@10", "NDCG@10", "MRR", "Recall@10", "Precision@10", "MAP@10", "Coverage@10"),
    "heldout-users": ("Recall@20", "Recall@50", "NDCG@100", "Coverage@20"),
    "ratings": ("RMSE", "MAE"),
}
SPLIT_NAMES = {"leave-one-out": "leave-one-out", "heldout-users": "held-out users", "ratio": "random ratio"}


def split_key(record: RunRecord) -> str:
    """Runs with the same key were tested on the same split (same data is checked by the caller)."""
    from recsys_core.best import split_key as key

    return key(record)


def split_label(record: RunRecord, n_runs: int) -> str:
    kind = SPLIT_NAMES.get(record.split.get("kind"), record.split.get("kind", "?"))
    return f"{kind} split, seed {record.seed} ({n_runs} run{'s' if n_runs != 1 else ''})"


def group_by_split(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.test:
            groups.setdefault(split_key(record), []).append(record)
    return groups


def protocols_of(records: list[RunRecord]) -> list[str]:
    found = {p for r in records for p in r.test}
    return [p for p in HEADLINE if p in found]


def short_name(record: RunRecord) -> str:
    """The run's name on this page: the one every page uses (webapp.common.run_label)."""
    from .run_labels import run_label

    return run_label(record)


def _metric(record: RunRecord, protocol: str, metric: str) -> float | None:
    test = record.test.get(protocol)
    return None if test is None else test.scores.get(metric)


def leaderboard(records: list[RunRecord], protocol: str) -> pd.DataFrame:
    """One row per run evaluated on ``protocol``: metrics with 95% bootstrap intervals, Coverage@10
    of the full ranking (leave-one-out runs), fit time; best headline first."""
    rows = []
    for record in records:
        test = record.test.get(protocol)
        if test is None:
            continue
        row = {"run": short_name(record), "model": record.model.name, "run_id": record.run_id}
        for metric in LEADERBOARD_METRICS.get(protocol, ()):
            value = test.scores.get(metric)
            if value is None and metric.startswith("Coverage@") and protocol.startswith("loo"):
                value = _metric(record, "loo-full", metric)
            if value is None:
                continue
            row[metric] = value
            interval = test.scores.interval(metric)
            if interval is not None:
                row[f"{metric} 95% CI"] = f"{interval[0]:.3f} – {interval[1]:.3f}"
        if protocol == "loo-sampled":
            coverage = _metric(record, "loo-full", "Coverage@10")
            if coverage is not None:
                row["Coverage@10 (full ranking)"] = coverage
        row["fit seconds"] = record.history.fit_seconds
        row["epochs"] = record.history.epochs_run
        row["created"] = record.created.replace("T", " ")[:19]
        rows.append(row)
    table = pd.DataFrame(rows)
    headline = HEADLINE.get(protocol)
    if not table.empty and headline in table.columns:
        table = table.sort_values(headline, ascending=headline in LOWER_IS_BETTER, kind="stable").reset_index(drop=True)
    return table


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


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _test_sentence(result: dict) -> str:
    """Which paired test was run and its p-value(s), in words."""
    if result["test"] == "exact McNemar":
        discordant = result["a_better"] + result["b_better"]
        return f"Exact McNemar test on the {discordant:,} users where only one run hits: {_p(result['p_value'])}. "
    return f"Paired t-test {_p(result['p_value_t'])}, Wilcoxon signed-rank {_p(result['p_value_wilcoxon'])}. "


def paired_sentence(result: dict, name_a: str, name_b: str, level: float = 0.05) -> tuple[str, str]:
    """The outcome of :func:`~recsys_core.evaluation.paired_comparison` in words, and a verdict:
    "a", "b" (significantly better) or "none", decided as the report decides it
    (:func:`~recsys_core.evaluation.paired_difference_is_significant`)."""
    metric = result["metric"]
    lower_better = metric in LOWER_IS_BETTER or metric == "squared_error"
    diff, (lo, hi) = result["difference"], result["interval"]
    higher = name_a if diff > 0 else name_b
    text = (
        f"On the {result['n_users']:,} test users both runs were evaluated on, {name_a} has mean {metric} "
        f"{result['mean_a']:.4f} and {name_b} {result['mean_b']:.4f}: a difference of {diff:+.4f} "
        f"(95% bootstrap interval {lo:+.4f} to {hi:+.4f}). "
        + _test_sentence(result)
        + f"{name_a} does better for {result['a_better']:,} users, {name_b} for {result['b_better']:,}, "
        f"{result['ties']:,} ties. "
    )
    percent = f"{level * 100:g}%"
    if not paired_difference_is_significant(result, level):
        return text + f"The difference is not significant at the {percent} level: neither run is shown to be better.", "none"
    better = (name_b if diff > 0 else name_a) if lower_better else higher
    verdict = "a" if better == name_a else "b"
    # For a continuous metric the t-test decides; the Wilcoxon test ignores the size of differences,
    # so it is reported and only noted where it disagrees.
    note = (
        " (the Wilcoxon test, which ignores how large each difference is, does not confirm it)"
        if result["test"] == "paired t-test" and result["p_value_wilcoxon"] >= level
        else ""
    )
    return text + f"The difference is significant at the {percent} level: **{better} is better** on {metric}{note}.", verdict


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
