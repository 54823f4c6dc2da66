"""Which model to demo (recsys_core.demo): the table's measures and the choice in plain words."""

from __future__ import annotations

import pandas as pd

from recsys_core.demo import MAX_DEMO_MS, demo_choice, demo_display
from recsys_core.runs import RunRecord


def record(run_id: str, full: float) -> RunRecord:
    return RunRecord.from_json(
        {
            "run_id": run_id, "model": run_id, "dataset": {"name": "d"}, "protocol": "loo-sampled", "split": {"kind": "leave-one-out"},
            "test": {"loo-sampled": {"metrics": {"HR@10": 0.6}}, "loo-full": {"metrics": {"HR@10": full}}},
        }
    )  # fmt: skip


def row(run_id, value, low, high, coverage, novelty=9.0, ms=5.0, fit=3.0):
    return {
        "run": run_id, "run_id": run_id, "accuracy": "HR@10, full ranking", "accuracy value": value, "accuracy low": low,
        "accuracy high": high, "Coverage@10": coverage, "Coverage@10 low": coverage - 0.01, "Coverage@10 high": coverage + 0.01,
        "Novelty@10": novelty, "Novelty@10 low": novelty - 0.1, "Novelty@10 high": novelty + 0.1, "fit seconds": fit, "ms per user": ms,
    }  # fmt: skip


def test_an_as_accurate_run_that_shows_more_of_the_catalogue_is_chosen():
    records = [record("ease", 0.14), record("multvae", 0.13), record("pop", 0.05)]
    table = pd.DataFrame([row("ease", 0.14, 0.12, 0.16, 0.10), row("multvae", 0.13, 0.11, 0.15, 0.35), row("pop", 0.05, 0.04, 0.06, 0.02)])
    chosen, why = demo_choice(table, records)
    assert chosen == "multvae"
    assert "not shown to be worse than the most accurate run, ease" in why and "cover 35% of the catalogue" in why and "10% for ease" in why


def test_the_most_accurate_run_when_no_other_is_as_good_and_slow_runs_are_named():
    records = [record("ease", 0.14), record("multvae", 0.13), record("pop", 0.05)]
    table = pd.DataFrame(
        [
            row("ease", 0.14, 0.135, 0.145, 0.10),
            row("multvae", 0.13, 0.125, 0.134, 0.35),
            row("pop", 0.05, 0.04, 0.06, 0.9, ms=MAX_DEMO_MS + 1),
        ]
    )
    chosen, why = demo_choice(table, records)
    assert chosen == "ease" and why.startswith("Demo ease: it is the most accurate (HR@10, full ranking 0.140 (95% 0.135–0.145))")
    assert "Too slow for a live demo (over 200 ms per user): pop." in why
    # An as-accurate run that is too slow is not chosen for its coverage.
    table.loc[1, ["accuracy high", "ms per user"]] = [0.15, MAX_DEMO_MS * 2]
    assert demo_choice(table, records)[0] == "ease"
    assert demo_choice(pd.DataFrame(), records) is None


def test_a_run_on_another_split_is_never_the_demo_for_its_coverage():
    other_split = RunRecord.from_json({**record("multvae", 0.13).to_json(), "split": {"kind": "leave-one-out", "order": "random"}})
    records = [record("ease", 0.14), other_split]
    table = pd.DataFrame([row("ease", 0.14, 0.12, 0.16, 0.10), row("multvae", 0.13, 0.11, 0.15, 0.35)])
    assert demo_choice(table, records)[0] == "ease"
    assert demo_choice(table, [record("ease", 0.14), record("multvae", 0.13)])[0] == "multvae"


def test_the_display_puts_each_measure_with_its_interval():
    shown = demo_display(pd.DataFrame([row("ease", 0.14, 0.12, 0.16, 0.10)]))
    assert shown.loc[0, "accuracy (95% CI)"] == "HR@10, full ranking: 0.140 (0.120–0.160)"
    assert shown.loc[0, "coverage of the catalogue (95% CI)"] == "10% (9%–11%)"
    assert shown.loc[0, "novelty, bits (95% CI)"] == "9.00 (8.90–9.10)"


def test_for_rating_error_the_lower_score_is_the_more_accurate():
    def rated(run_id: str, rmse: float) -> RunRecord:
        return RunRecord.from_json(
            {"run_id": run_id, "model": run_id, "dataset": {"name": "d"}, "protocol": "ratings", "test": {"ratings": {"metrics": {"RMSE": rmse}}}}
        )

    records = [rated("autorec", 0.90), rated("deeprec", 0.91), rated("svd", 1.20)]
    rows = [row("autorec", 0.90, 0.88, 0.92, 0.10), row("deeprec", 0.91, 0.89, 0.93, 0.30), row("svd", 1.20, 1.15, 1.25, 0.90)]
    for one in rows:
        one["accuracy"] = "RMSE, ratings"
    chosen, why = demo_choice(pd.DataFrame(rows), records)
    # deeprec's interval overlaps the best's (autorec, the lowest RMSE); svd's error is shown to be higher.
    assert chosen == "deeprec" and "the most accurate run, autorec" in why
