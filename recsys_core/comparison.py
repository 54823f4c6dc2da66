"""Comparing saved runs tested on one split: the leaderboard, the paired test, its verdict and the sentence that states it.

The Compare page (:mod:`webapp.compare_ui`, ``app_pages/4_Compare.py``) and the HTML report (:mod:`recsys_core.report`)
both call this module, so they show the same table and reach the same verdict on the same pair of runs. Metric
names, which metrics a leaderboard shows and which way each is better come from :mod:`recsys_core.protocols`.

The paired test (:func:`paired_comparison`) compares two runs on the test users both were evaluated on, with the
test that fits the metric: the exact McNemar test for a 0/1 per-user metric (HR@K), the paired t-test otherwise
(the Wilcoxon signed-rank test reported beside it). The verdict (:func:`paired_verdict`) is written once:

    a run is **better** when (1) the 95% bootstrap interval of the mean per-user difference excludes 0, (2) the
    metric's own paired test rejects "no difference" at the level (5%) and (3) the mean difference is not zero
    (``numpy.isclose``); the better run is then the one the metric's direction favours (the lower error, the higher
    hit rate). Otherwise neither run is shown to be better.

Rule (3) is the one the Compare page applied and the report's wording did not state; both now follow it. It rarely
binds after (1) and (2) (a difference that is zero for every user gets p = 1), but a verdict names the better run by
the sign of the mean difference, and a mean of zero, or one lost in float rounding, has no sign to read: such a pair
is "neither is shown to be better" on every page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .best import best_run, comparable, judging_score
from .errors import ModelError, RecsysError
from .protocols import get_protocol, lower_is_better
from .safe_text import plotly_text

if TYPE_CHECKING:
    from .evaluation import EvaluationResult
    from .runs import RunRecord

Verdict = Literal["a", "b", "none"]
#: The level of every paired test the pages and the report state.
LEVEL = 0.05
#: Dataset-level metrics (catalogue coverage) have no per-user values and hence no paired test.
SET_METRIC_PREFIX = "Coverage@"


# ------------------------------------------------------------------------------------------------ leaderboard
def _score(record: RunRecord, protocol: str, metric: str) -> float | None:
    test = record.test.get(protocol)
    return None if test is None else test.scores.get(metric)


def leaderboard(records: Sequence[RunRecord], protocol: str, name: Callable[[RunRecord], str]) -> pd.DataFrame:
    """One row per run tested on ``protocol``, best headline first (ties keep the order of ``records``): ``run``
    (``name(record)``), ``model``, ``run_id``, the protocol's metrics with their 95% bootstrap intervals, the
    catalogue coverage of the protocol that judges it where that is another (a sampled ranking has none of its own:
    "Coverage@10 (full ranking)"), fit seconds, epochs and when the run was made."""
    facts = get_protocol(protocol)
    judge = get_protocol(facts.judged_on)
    borrowed = [m for m in judge.metrics if m.startswith(SET_METRIC_PREFIX)] if judge.name != protocol else []
    rows = []
    for record in records:
        test = record.test.get(protocol)
        if test is None:
            continue
        row = {"run": name(record), "model": record.model.name, "run_id": record.run_id}
        for metric in facts.metrics:
            value = test.scores.get(metric)
            if value is None:
                continue
            row[metric] = value
            interval = test.scores.interval(metric)
            if interval is not None:
                row[f"{metric} 95% CI"] = f"{interval[0]:.3f} – {interval[1]:.3f}"
        for metric in borrowed:
            value = _score(record, judge.name, metric)
            if value is not None:
                row[f"{metric} ({judge.short})"] = value
        row["fit seconds"] = record.history.fit_seconds
        row["epochs"] = record.history.epochs_run
        row["created"] = record.created.replace("T", " ")[:19]
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty and facts.headline in table.columns:
        table = table.sort_values(facts.headline, ascending=lower_is_better(facts.headline), kind="stable").reset_index(drop=True)
    return table


def leaderboard_figure(labels: Sequence[str], values: Sequence[float], records: Sequence[RunRecord], protocol: str):
    """Bars of each run's headline metric with its 95% interval: the leaderboard's chart (a plotly figure)."""
    import plotly.graph_objects as go

    headline = get_protocol(protocol).headline
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


# ------------------------------------------------------------------------------------------------ the paired test
def paired_comparison(a: EvaluationResult, b: EvaluationResult, metric: str, n_resamples: int = 2000, seed: int = 0) -> dict:
    """Paired comparison of two results on the users both evaluated: mean difference (a − b), its
    bootstrap interval, and the paired test that fits the metric (``test``, ``p_value``):

    * a binary per-user metric (HR@K: every value 0 or 1) gets the exact McNemar test: under no
      difference each user on whom exactly one run hits is equally likely to favour either, so the
      count favouring a is Binomial(discordant users, 1/2) (``scipy.stats.binomtest``, two-sided);
    * a continuous one (NDCG, MRR, recall, errors) gets the paired t-test, with the Wilcoxon
      signed-rank test (zero differences split) reported beside it (``p_value_wilcoxon``).

    :func:`paired_verdict` decides from it, for the Compare page and the report alike.
    """
    from scipy import stats

    from .evaluation import bootstrap_interval

    if a.protocol != b.protocol or a.part != b.part:
        raise ModelError(f"cannot pair a {a.protocol}/{a.part} result with a {b.protocol}/{b.part} result")
    if metric not in a.per_user or metric not in b.per_user:
        raise ModelError(f"{metric} has no per-user values in both results; choose one of {sorted(set(a.per_user) & set(b.per_user))}")
    if np.array_equal(a.users, b.users):
        # Same units in the same order (always so for the ratings protocol, whose units are
        # ratings and where a user appears once per rating): pair them one to one.
        common = a.users
        ia = ib = np.arange(len(a.users))
    else:
        common, ia, ib = np.intersect1d(a.users, b.users, return_indices=True)
    if len(common) < 2:
        raise ModelError("the two results share fewer than two users, so they cannot be paired")
    values_a, values_b = a.per_user[metric][ia], b.per_user[metric][ib]
    diff = values_a - values_b
    lo, hi = bootstrap_interval(diff, n_resamples=n_resamples, seed=seed)
    a_better, b_better = int((diff > 0).sum()), int((diff < 0).sum())
    binary = bool(np.isin(values_a, (0.0, 1.0)).all() and np.isin(values_b, (0.0, 1.0)).all())
    tests: dict[str, Any]
    if binary:
        p = 1.0 if a_better + b_better == 0 else float(stats.binomtest(a_better, a_better + b_better, 0.5).pvalue)
        tests = {"test": "exact McNemar", "p_value": p, "p_value_mcnemar": p}
    else:
        if np.allclose(diff, 0):
            t_p, w_p = 1.0, 1.0
        else:
            t_p = float(stats.ttest_rel(values_a, values_b).pvalue)
            w_p = float(stats.wilcoxon(diff, zero_method="zsplit").pvalue)
        tests = {"test": "paired t-test", "p_value": t_p, "p_value_t": t_p, "p_value_wilcoxon": w_p}
    return {
        "metric": metric,
        "n_users": int(len(common)),
        "mean_a": float(values_a.mean()),
        "mean_b": float(values_b.mean()),
        "difference": float(diff.mean()),
        "interval": (lo, hi),
        **tests,
        "a_better": a_better,
        "b_better": b_better,
        "ties": int((diff == 0).sum()),
    }


def paired_difference_is_significant(result: dict, level: float = LEVEL) -> bool:
    """Whether a :func:`paired_comparison` shows a difference: rules (1) to (3) of the module docstring."""
    lo, hi = result["interval"]
    return bool((lo > 0 or hi < 0) and result["p_value"] < level and not np.isclose(result["difference"], 0.0))


def paired_verdict(result: dict, level: float = LEVEL) -> Verdict:
    """The one verdict on a :func:`paired_comparison`: "a" or "b" (shown to be better, in the metric's direction) or
    "none" (see the module docstring)."""
    if not paired_difference_is_significant(result, level):
        return "none"
    a_higher = result["difference"] > 0
    return "a" if a_higher != lower_is_better(result["metric"]) else "b"


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _test_sentence(result: dict) -> str:
    """Which paired test was run and its p-value(s), in words."""
    if result["test"] == "exact McNemar":
        discordant = result["a_better"] + result["b_better"]
        return f"Exact McNemar test on the {discordant:,} users where only one run hits: {_p(result['p_value'])}. "
    return f"Paired t-test {_p(result['p_value_t'])}, Wilcoxon signed-rank {_p(result['p_value_wilcoxon'])}. "


def paired_sentence(
    result: dict, name_a: str, name_b: str, level: float = LEVEL, strong: Callable[[str], str] = str
) -> tuple[str, Verdict]:
    """The outcome of :func:`paired_comparison` in words, and its :func:`paired_verdict`. ``strong`` sets the
    conclusion apart where the reader's format can ("**…**" for the page's markdown); the names are put in as given."""
    metric = result["metric"]
    diff, (lo, hi) = result["difference"], result["interval"]
    text = (
        f"On the {result['n_users']:,} test users both runs were evaluated on, {name_a} has mean {metric} "
        f"{result['mean_a']:.4f} and {name_b} {result['mean_b']:.4f}: a difference of {diff:+.4f} "
        f"(95% bootstrap interval {lo:+.4f} to {hi:+.4f}). "
        + _test_sentence(result)
        + f"{name_a} does better for {result['a_better']:,} users, {name_b} for {result['b_better']:,}, "
        f"{result['ties']:,} ties. "
    )
    percent = f"{level * 100:g}%"
    verdict = paired_verdict(result, level)
    if verdict == "none":
        return text + f"The difference is not significant at the {percent} level: neither run is shown to be better.", verdict
    better = name_a if verdict == "a" else name_b
    # For a continuous metric the t-test decides; the Wilcoxon test ignores the size of differences,
    # so it is reported and only noted where it disagrees.
    note = (
        " (the Wilcoxon test, which ignores how large each difference is, does not confirm it)"
        if result["test"] == "paired t-test" and result["p_value_wilcoxon"] >= level
        else ""
    )
    return text + f"The difference is significant at the {percent} level: {strong(f'{better} is better')} on {metric}{note}.", verdict


def paired_with_best(runs: Sequence[Any], protocol: str) -> list[tuple[Any, Any, dict | RecsysError]]:
    """The best of the loaded ``runs`` (:class:`~recsys_core.runs.Run`) by the best-run rule
    (:func:`recsys_core.best.best_run`) against each run it may be ranked with (:func:`recsys_core.best.comparable`:
    same split, judged on the same protocol), on the protocol that judges ``protocol`` (:attr:`~recsys_core.protocols.
    Protocol.judged_on`: the full ranking for leave-one-out) and its paired metric (rating runs: squared errors):
    ``(best, other, paired_comparison or the error that refused it)``, the others best first (ties keep the order of
    ``runs``). Runs without that evaluation are left out; a damaged evaluation file raises
    (:meth:`~recsys_core.runs.Run.evaluation`)."""
    judge = get_protocol(get_protocol(protocol).judged_on)
    usable = [run for run in runs if run.evaluation(judge.name) is not None]
    best_record = best_run([run.info for run in usable])
    if best_record is None:
        return []
    best = next(run for run in usable if run.info is best_record)
    others = [run for run in usable if run is not best and comparable(run.info, best_record)]
    sign = 1.0 if lower_is_better(judge.headline) else -1.0
    others.sort(key=lambda run: sign * judging_score(run.info).value)
    out: list[tuple[Any, Any, dict | RecsysError]] = []
    for other in others:
        try:
            out.append((best, other, paired_comparison(best.evaluation(judge.name), other.evaluation(judge.name), judge.paired_headline)))
        except RecsysError as error:
            out.append((best, other, error))
    return out
