"""The one comparison module (recsys_core.comparison): the leaderboard, the paired verdict and its sentence, the same
for the Compare page (webapp.compare_ui) and the report (recsys_core.report)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_core.comparison import leaderboard, paired_comparison, paired_sentence, paired_verdict
from recsys_core.evaluation import EvaluationResult
from recsys_core.protocols import get_protocol
from recsys_core.report import _paired_sentences
from recsys_core.runs import RunRecord
from webapp import compare_ui


class FakeRun:
    """What the report reads of a loaded run: its record and its per-user evaluation on each protocol."""

    def __init__(self, model: str, evaluations: dict[str, EvaluationResult], seed: int = 0):
        self.evaluations = evaluations
        self.info = RunRecord.from_json(
            {
                "run_id": f"run-{model}", "model": model, "dataset": {"name": "d"}, "protocol": next(iter(evaluations)),
                "split": {"kind": "leave-one-out"}, "seed": seed,
                "test": {p: {"metrics": e.metrics, "intervals": {m: list(v) for m, v in e.intervals.items()}} for p, e in evaluations.items()},
            }
        )  # fmt: skip

    def evaluation(self, protocol: str) -> EvaluationResult | None:
        return self.evaluations.get(protocol)


def _result(protocol: str, per_user: dict[str, np.ndarray], metrics: dict[str, float] | None = None) -> EvaluationResult:
    per_user = {m: np.asarray(v, dtype=np.float64) for m, v in per_user.items()}
    users = np.arange(len(next(iter(per_user.values()))))
    metrics = metrics or {m: float(v.mean()) for m, v in per_user.items()}
    return EvaluationResult(protocol, "test", users, per_user, metrics, {})


def _loo_run(model: str, hits: list[int]) -> FakeRun:
    """A leave-one-out run: its sampled result (not what decides) and its full-ranking HR@10 per user."""
    full = _result("loo-full", {"HR@10": hits})
    sampled = _result("loo-sampled", {"HR@10": np.ones(len(hits))})
    return FakeRun(model, {"loo-sampled": sampled, "loo-full": full})


def _report_verdict(sentences: list[str], best: str, other: str) -> str:
    """The report's verdict, read back from its sentence: "a" when ``best`` is said better, "b" for ``other``."""
    (sentence,) = sentences
    if "neither run is shown to be better" in sentence:
        return "none"
    return "a" if f"{best} is better" in sentence else "b" if f"{other} is better" in sentence else "?"


PAIRS = {
    # 9 users where only a hits, 1 where only b: a clear difference on 200 users.
    "a better": ([1] * 60 + [0] * 140, [1] * 20 + [0] * 180),
    # The same hits: a zero difference, nothing to test.
    "identical": ([1, 0] * 100, [1, 0] * 100),
    # As many users favour a as b: the mean difference is zero though 100 users disagree.
    "zero difference, disagreeing users": ([1, 0] * 100, [0, 1] * 100),
    "too few discordant users": ([1] * 3 + [0] * 197, [0] * 200),
}


@pytest.mark.parametrize("pair", PAIRS)
def test_the_page_and_the_report_reach_the_same_verdict_on_a_pair(pair):
    hits_a, hits_b = PAIRS[pair]
    a, b = _loo_run("a", hits_a), _loo_run("b", hits_b)
    # The report: the best run (by the full ranking) against the other, read from its sentence.
    report = _paired_sentences([a, b], "loo-sampled")
    assert len(report) == 1 and report[0].startswith("a vs b (loo-full): On the 200 test users")
    # The page: the same two evaluations paired as app_pages/4_Compare.py pairs them.
    text, page = compare_ui.paired_sentence(paired_comparison(a.evaluation("loo-full"), b.evaluation("loo-full"), "HR@10"), "a", "b")
    assert _report_verdict(report, "a", "b") == page
    assert page == ("a" if pair == "a better" else "none")
    assert ("**a is better**" in text) == (page == "a")


def test_a_difference_lost_in_rounding_names_no_better_run():
    """Rule (3): both tests can pass on a difference of float rounding; no run is called better for it."""
    rounding = {
        "metric": "NDCG@10", "n_users": 500, "mean_a": 0.3, "mean_b": 0.3, "difference": 1e-12, "interval": (5e-13, 2e-12),
        "test": "paired t-test", "p_value": 1e-6, "p_value_t": 1e-6, "p_value_wilcoxon": 1e-6, "a_better": 500, "b_better": 0, "ties": 0,
    }  # fmt: skip
    assert paired_verdict(rounding) == "none"
    text, verdict = paired_sentence(rounding, "A", "B")
    assert verdict == "none" and "neither run is shown to be better" in text
    assert paired_verdict({**rounding, "difference": 0.01, "interval": (0.005, 0.015)}) == "a"


@pytest.mark.parametrize("metric, better", [("squared_error", "b"), ("MAE", "b"), ("NDCG@10", "a")])
def test_the_better_run_follows_the_metrics_direction_from_the_protocols(metric, better):
    result = {
        "metric": metric, "n_users": 100, "mean_a": 0.9, "mean_b": 0.8, "difference": 0.1, "interval": (0.05, 0.15),
        "test": "paired t-test", "p_value": 0.001, "p_value_t": 0.001, "p_value_wilcoxon": 0.001, "a_better": 70, "b_better": 30, "ties": 0,
    }  # fmt: skip
    assert paired_verdict(result) == better
    text, _ = paired_sentence(result, "A", "B", strong=lambda s: f"<{s}>")
    assert f"<{'A' if better == 'a' else 'B'} is better>" in text


def test_the_report_pairs_the_best_run_only_with_runs_on_its_split():
    """The report's best run is the best-run rule's, and a run tested on another split is never paired with it."""
    best, same, elsewhere = _loo_run("a", [1] * 60 + [0] * 140), _loo_run("b", [1] * 20 + [0] * 180), _loo_run("c", [1] * 90 + [0] * 110)
    elsewhere = FakeRun("c", elsewhere.evaluations, seed=1)  # the highest score, but on another split
    sentences = _paired_sentences([best, same, elsewhere], "loo-sampled")
    assert [s.split(" (")[0] for s in sentences] == ["a vs b"]


def test_rating_runs_are_paired_on_squared_errors_and_the_lower_error_wins():
    errors_a = np.linspace(0.0, 1.0, 300)
    errors_b = errors_a + 0.2 + np.random.default_rng(0).normal(0.0, 0.05, 300)
    a = FakeRun("a", {"ratings": _result("ratings", {"squared_error": errors_a}, {"RMSE": float(np.sqrt(errors_a.mean()))})})
    b = FakeRun("b", {"ratings": _result("ratings", {"squared_error": errors_b}, {"RMSE": float(np.sqrt(errors_b.mean()))})})
    # b is listed first; the report still puts the lower RMSE first.
    (sentence,) = _paired_sentences([b, a], "ratings")
    assert sentence.startswith("a vs b (ratings): ") and "mean squared_error" in sentence and "a is better on squared_error" in sentence
    assert get_protocol("ratings").paired_headline == "squared_error"


def _record(model: str, protocol: str, metrics: dict, intervals: dict | None = None, full: dict | None = None) -> RunRecord:
    test = {protocol: {"metrics": metrics, "intervals": intervals or {}}}
    if full is not None:
        test["loo-full"] = {"metrics": full}
    return RunRecord.from_json(
        {"run_id": f"id-{model}", "model": model, "dataset": {"name": "d"}, "protocol": protocol, "split": {"kind": "x"}, "test": test}
    )


def test_the_leaderboard_shows_the_protocols_metrics_best_first_in_the_metrics_direction():
    sampled = [
        _record("pop", "loo-sampled", {"HR@10": 0.4, "NDCG@10": 0.2}, {"HR@10": [0.37, 0.43]}, full={"Coverage@10": 0.05}),
        _record("ease", "loo-sampled", {"HR@10": 0.6, "NDCG@10": 0.3}, full={"Coverage@10": 0.25}),
        _record("none", "loo-full", {"HR@10": 0.1}),  # not tested on loo-sampled: not on its board
    ]
    board = leaderboard(sampled, "loo-sampled", lambda r: r.model.name.upper())
    assert list(board["run"]) == ["EASE", "POP"] and list(board["run_id"]) == ["id-ease", "id-pop"]
    assert list(board["Coverage@10 (full ranking)"]) == [0.25, 0.05]  # a sampled ranking has no coverage of its own
    assert board.loc[1, "HR@10 95% CI"] == "0.370 – 0.430" and "MRR" not in board.columns
    rated = [_record("deeprec", "ratings", {"RMSE": 0.95, "MAE": 0.75}), _record("autorec", "ratings", {"RMSE": 0.90, "MAE": 0.71})]
    board = leaderboard(rated, "ratings", lambda r: r.model.name)
    assert list(board["run"]) == ["autorec", "deeprec"]  # the lower error first
    assert [c for c in board.columns if c in get_protocol("ratings").metrics] == ["RMSE", "MAE"]
    # The Compare page's board is the core's, with the page's run names.
    assert compare_ui.leaderboard(rated, "ratings")["run_id"].tolist() == board["run_id"].tolist()

