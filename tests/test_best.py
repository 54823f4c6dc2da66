"""The one best-run rule (recsys_core.best): judged on the full ranking, among runs on the same split."""

from __future__ import annotations

from recsys_core.best import BEST_RULE, best_line, best_run, judging_score
from recsys_core.runs import RunRecord


def run(model: str, sampled: float | None, full: float | None, seed: int = 0, protocol: str = "loo-sampled") -> RunRecord:
    test = {}
    if sampled is not None:
        test["loo-sampled"] = {"metrics": {"HR@10": sampled}}
    if full is not None:
        test["loo-full"] = {"metrics": {"HR@10": full}}
    own = test.get(protocol, {}).get("metrics", {})
    return RunRecord.from_json(
        {
            "run_id": f"{model}-{seed}",
            "model": model,
            "dataset": {"name": "ml-100k"},
            "protocol": protocol,
            "seed": seed,
            "split": {"kind": "leave-one-out"},
            "metrics": own,
            "test": test,
        }
    )


def test_the_full_ranking_decides_not_the_sampled_metric():
    # The demo's case: EASE wins sampled, Mult-VAE wins on the full ranking; the rule names Mult-VAE.
    ease, multvae = run("ease", 0.669, 0.120), run("multvae", 0.645, 0.1336)
    assert best_run([ease, multvae]).model.name == "multvae"
    assert best_run([multvae, ease], like=ease).model.name == "multvae"
    assert judging_score(ease).text() == "HR@10 0.120, full ranking"
    # A run trained for the full-ranking protocol is judged on the same score as a sampled one.
    assert best_run([ease, run("gmf", None, 0.2, protocol="loo-full")]).model.name == "gmf"


def test_only_runs_on_the_same_split_and_protocol_compete():
    ease, other_seed = run("ease", 0.669, 0.12), run("multvae", 0.7, 0.3, seed=1)
    assert best_run([ease, other_seed], like=ease).model.name == "ease"
    assert best_run([ease, other_seed], like=other_seed).model.name == "multvae"
    # An old run without a full-ranking result is judged by its sampled score, and only against such runs.
    old = run("pop", 0.9, None)
    assert judging_score(old).text() == "HR@10 0.900, sampled" and judging_score(old).label() == "HR@10, sampled"
    assert best_run([ease, old], like=ease).model.name == "ease"
    assert best_run([RunRecord.from_json({"run_id": "x", "model": "pop", "dataset": {"name": "d"}, "protocol": "loo-sampled"})]) is None


def test_lower_is_better_for_rating_error():
    def rated(model, rmse):
        return RunRecord.from_json(
            {
                "run_id": model,
                "model": model,
                "dataset": {"name": "d"},
                "protocol": "ratings",
                "headline": "RMSE",
                "test": {"ratings": {"metrics": {"RMSE": rmse}}},
            }
        )

    assert best_run([rated("autorec", 0.95), rated("deeprec", 0.91)]).model.name == "deeprec"
    assert judging_score(rated("deeprec", 0.91)).text() == "RMSE 0.910, ratings"


def test_the_sentence_names_the_best_run_its_score_and_the_rule():
    text = best_line([run("ease", 0.669, 0.12), run("multvae", 0.645, 0.1336)], lambda r: r.model.name)
    assert text == "Best run: multvae (HR@10 0.134, full ranking)."
    assert (
        best_line([run("ease", 0.669, 0.12)], lambda r: f"EASE · {judging_score(r).text()}")
        == "Best run: EASE · HR@10 0.120, full ranking."
    )
    assert BEST_RULE == (
        "Best run = the highest test score on the full ranking among the runs on the same data and split: HR@10 among all "
        "items for leave-one-out runs (never the sampled HR@10, which can reverse the order of two models), Recall@20 for "
        "held-out users, the lowest RMSE for rating prediction."
    )  # its metric names read from the protocols
    assert best_line([], str) is None
